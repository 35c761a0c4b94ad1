"""Test support for the job runtime: a Tree (jobs + clock, like `goald run`) on a test database."""
from __future__ import annotations

import contextlib

from goald import config
from goald.actors.catalog import JobSpec
from goald.actors.runtime import Runtime
from goald.actors.schedule import Schedule
from goald.actors.tree import Tree
from goald.db.pool import Pool

FAST_ENV = {
    "GOALD_JOBS_HEARTBEAT_S": "0.5",
    "GOALD_JOBS_FLAG_POLL_S": "0.2",
    "GOALD_JOBS_SHUTDOWN_TIMEOUT_S": "5",
    "GOALD_SUPERVISOR_BACKOFF_BASE_S": "0.05",
    "GOALD_SUPERVISOR_BACKOFF_MAX_S": "0.2",
}


def job(name, fn, every_s=1, offset_s=0, timeout_s=10.0, **kw):
    return JobSpec(name, fn, Schedule(every_s=every_s, offset_s=offset_s), timeout_s=timeout_s,
                   description=f"test job {name}", **kw)


def make_config(**env):
    return config.load(None, {**FAST_ENV, **env}, search=False)


@contextlib.contextmanager
def running_tree(dsn, specs, *, node="test-node", pool_max=5, escalations=None, **env):
    pool = Pool(dsn, maxconn=pool_max)
    rt = Runtime(pool=pool, node=node, cfg=make_config(**env), specs={s.name: s for s in specs})
    tree = Tree(rt, with_pool_monitor=False,
                on_escalate=(escalations.append if escalations is not None else None))
    tree.start()
    try:
        yield tree
    finally:
        tree.stop()
        pool.close()


def runs(dsn, job=None):
    """The ledger rows as dicts, oldest occurrence first."""
    from support import fetch

    cols = ["job", "scheduled_at", "trigger", "outcome", "node", "started_at", "finished_at", "duration_ms",
            "offset_s", "staggered", "error", "rows_affected", "queries_issued", "pool_utilization_at_start"]
    where, args = ("WHERE job = %s", (job,)) if job else ("", None)
    rows = fetch(dsn, f"SELECT {', '.join(cols)} FROM job_runs {where} ORDER BY scheduled_at, job", args)
    return [dict(zip(cols, r)) for r in rows]
