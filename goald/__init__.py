"""goald: a single-process, actor-based live-football daemon.

This module must stay import-light: the `goald` console script imports `goald.main`, which has
to apply gevent's monkey-patching before anything else is imported (see goald/main.py).
"""
__version__ = "0.1.0"
