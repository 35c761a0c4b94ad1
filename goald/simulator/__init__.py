"""goald simulate: a TheSports-compatible provider on loopback (docs/simulator.md)."""
