"""A version number of the match data this process wrote, for the read endpoints' shared bodies.

Every writer of the match tables in this process (the match writer's flushes, the ingest jobs'
upserts) calls `bump()` after a commit that changed rows; the read endpoints build a body once per
version and serve it to every request until the version moves (console/matches_api.py). Writes
made by another node arrive through the change feed (goald/db/cluster.py, LISTEN/NOTIFY), which
bumps the version with `publish=False`; should the feed be down, the endpoints still rebuild a
body older than its `max_age_s`, so they follow a cluster within that time. Plain attribute reads and writes; under
gevent no lock is needed.
"""
from __future__ import annotations

import time
from typing import Callable


class Changes:
    def __init__(self) -> None:
        self.version = 0
        self.changed_at = time.time()
        # Called on every bump of this process's own writes: the change feed, which tells the other
        # nodes (goald/db/cluster.py ChangeFeed); plain callables that do no I/O.
        self.listeners: list[Callable[[], None]] = []

    def bump(self, publish: bool = True) -> None:
        """Match data changed; `publish=False` for a change another node made (already published)."""
        self.version += 1
        self.changed_at = time.time()
        if publish:
            for listener in self.listeners:
                listener()
