"""goald.console: the HTTP side of goald (installed as `goald.console`, never as `console`).

Health endpoints now; the operator console and the public read API arrive with their issues.
"""
