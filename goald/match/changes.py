"""A version number of the match data this process wrote, for the read endpoints' shared bodies.

Every writer of the match tables in this process (the match writer's flushes, the ingest jobs'
upserts) calls `bump()` after a commit that changed rows; the read endpoints build a body once per
version and serve it to every request until the version moves (console/matches_api.py). Writes
made by another node do not bump it: the endpoints also rebuild a body older than its
`max_age_s`, so they follow a cluster within that time. Plain attribute reads and writes; under
gevent no lock is needed.
"""
from __future__ import annotations

import time


class Changes:
    def __init__(self) -> None:
        self.version = 0
        self.changed_at = time.time()

    def bump(self) -> None:
        self.version += 1
        self.changed_at = time.time()
