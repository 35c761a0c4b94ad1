"""PoolMonitor: samples the connection pool into `pool_samples` and the log.

`run_forever()` is the sampling loop; the tree hosts it in the `pool_monitor` actor (a
ServiceActor, goald/tree.py), so a crash is restarted by the root supervisor.
Every `interval_s`, on absolute targets so it never drifts, it logs
`PoolMonitor utilization X% (active a, idle i, waiting w, total t)` and writes a row. Old rows are
deleted by the `pool_samples_prune` job (retention `pool_monitor.retention_days`). A failed write is
logged as a warning and the loop goes on; nothing it does can raise into its caller.
"""
from __future__ import annotations

import time

import gevent

from goald import logs
from goald.db.pool import Pool, PoolStats

INSERT_SAMPLE = """
INSERT INTO pool_samples (node, active, idle, waiting, total, max, utilization, peak_utilization)
VALUES (%(node)s, %(active)s, %(idle)s, %(waiting)s, %(total)s, %(max)s, %(utilization)s, %(peak_utilization)s)
"""


class PoolMonitor:
    def __init__(self, pool: Pool, *, node: str, interval_s: float = 10.0):
        self.pool, self.node = pool, node
        self.interval_s = interval_s
        self.last: PoolStats | None = None

    def sample_once(self) -> PoolStats:
        """Take one sample (stats read before the monitor's own checkout), log it and store it."""
        s = self.pool.stats()
        peak = round(100.0 * self.pool.take_peak() / s.max, 1)
        self.last = s
        logs.event("INFO", "pool_monitor.sample",
                   f"PoolMonitor utilization {s.utilization:g}% (active {s.active}, idle {s.idle}, "
                   f"waiting {s.waiting}, total {s.total})",
                   peak_utilization=peak, active=s.active, idle=s.idle, waiting=s.waiting, total=s.total, max=s.max,
                   utilization=s.utilization)
        try:
            with self.pool.observer_connection(timeout_s=max(0.5, self.interval_s)) as conn, conn.cursor() as cur:
                cur.execute(INSERT_SAMPLE, dict(s.as_dict(), node=self.node, peak_utilization=peak))
                conn.commit()
        except Exception as e:  # a sample lost is logged, never fatal
            logs.event("WARNING", "pool_monitor.write_failed", f"PoolMonitor could not store a sample: {e}")
        return s

    def run_forever(self) -> None:
        target = time.time()
        while True:
            self.sample_once()
            target += self.interval_s
            now = time.time()
            if target < now:  # after a pause, skip the lost samples instead of bursting
                target = now + self.interval_s
            gevent.sleep(target - now)


_HISTORY = """
SELECT floor(extract(epoch FROM sampled_at) / %(bucket)s) * %(bucket)s AS t, avg(utilization), max(peak_utilization),
       max(waiting), max(active), max(max), count(*)
FROM pool_samples
WHERE node = %(node)s AND sampled_at >= now() - make_interval(secs => %(span)s)
GROUP BY 1 ORDER BY 1
"""


def history(conn, node: str, hours: float, points: int = 240) -> list[dict]:
    """This node's samples over the last `hours`, in at most `points` buckets: per bucket its
    start (epoch s), mean utilization, peak utilization, most waiting and active, the pool max.
    One statement over the index on sampled_at (the console's pool chart)."""
    span = hours * 3600
    bucket = max(1.0, span / points)
    with conn.cursor() as cur:
        cur.execute(_HISTORY, {"bucket": bucket, "node": node, "span": span})
        return [{"t": int(t), "utilization": round(u, 1), "peak_utilization": round(p, 1) if p is not None else None,
                 "waiting": w, "active": a, "max": m, "samples": n} for t, u, p, w, a, m, n in cur.fetchall()]
