"""PoolMonitor: samples the connection pool into `pool_samples` and the log.

Runs in its own greenlet (`start()` spawns it; the actor runtime will host it as an actor). Every
`interval_s`, on absolute targets so it never drifts, it logs
`PoolMonitor utilization X% (active a, idle i, waiting w, total t)` and writes a row, deleting rows
older than the retention in the same statement (bounded table). A failed write is logged as a
warning and the loop goes on; nothing it does can raise into its caller.
"""
from __future__ import annotations

import time

import gevent

from goald import logs
from goald.db.pool import Pool, PoolStats

INSERT_AND_PRUNE = """
WITH pruned AS (
    DELETE FROM pool_samples WHERE sampled_at < now() - make_interval(secs => %(retention_s)s)
)
INSERT INTO pool_samples (node, active, idle, waiting, total, max, utilization)
VALUES (%(node)s, %(active)s, %(idle)s, %(waiting)s, %(total)s, %(max)s, %(utilization)s)
"""


class PoolMonitor:
    def __init__(self, pool: Pool, *, node: str, interval_s: float = 10.0, retention_days: float = 7.0):
        self.pool, self.node = pool, node
        self.interval_s, self.retention_s = interval_s, retention_days * 86400.0
        self._greenlet: gevent.Greenlet | None = None
        self.last: PoolStats | None = None

    def sample_once(self) -> PoolStats:
        """Take one sample (stats read before the monitor's own checkout), log it and store it."""
        s = self.pool.stats()
        self.last = s
        logs.event("INFO", "pool_monitor.sample",
                   f"PoolMonitor utilization {s.utilization:g}% (active {s.active}, idle {s.idle}, "
                   f"waiting {s.waiting}, total {s.total})",
                   active=s.active, idle=s.idle, waiting=s.waiting, total=s.total, max=s.max,
                   utilization=s.utilization)
        try:
            with self.pool.connection(timeout_s=max(0.5, self.interval_s)) as conn, conn.cursor() as cur:
                cur.execute(INSERT_AND_PRUNE, dict(s.as_dict(), node=self.node, retention_s=self.retention_s))
                conn.commit()
        except Exception as e:  # a sample lost is logged, never fatal
            logs.event("WARNING", "pool_monitor.write_failed", f"PoolMonitor could not store a sample: {e}")
        return s

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._loop)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=5)
            self._greenlet = None

    def _loop(self) -> None:
        target = time.time()
        while True:
            self.sample_once()
            target += self.interval_s
            now = time.time()
            if target < now:  # after a pause, skip the lost samples instead of bursting
                target = now + self.interval_s
            gevent.sleep(target - now)
