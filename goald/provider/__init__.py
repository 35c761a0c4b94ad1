"""The TheSports-compatible provider: typed payloads and their decoders (payloads.py, decode.py),
the resilient HTTP client (client.py, breaker.py, stats.py) and the errors callers see
(errors.py). Core: imports neither actors nor console (docs/ARCHITECTURE.md, Layers)."""
