"""Test support for the job runtime: a Tree (jobs + clock, like `goald run`) on a test database."""
from __future__ import annotations

import contextlib

from goald import config
from goald.actors.catalog import JobSpec
from goald.actors.runtime import Runtime
from goald.actors.schedule import Schedule
from goald.tree import Tree
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
    cfg = make_config(**env)
    pool = Pool(dsn, maxconn=pool_max, timeout_s=cfg["database.pool_timeout_s"])
    rt = Runtime(pool=pool, node=node, cfg=cfg, specs={s.name: s for s in specs})
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

    cols = ["job", "period_at", "scheduled_at", "trigger", "outcome", "node", "started_at", "finished_at",
            "duration_ms", "offset_s", "staggered", "error", "rows_affected", "queries_issued",
            "pool_utilization_at_start", "db_spans"]
    where, args = ("WHERE job = %s", (job,)) if job else ("", None)
    rows = fetch(dsn, f"SELECT {', '.join(cols)} FROM job_runs {where} ORDER BY period_at, job", args)
    return [dict(zip(cols, r)) for r in rows]


@contextlib.contextmanager
def database_outage(server_dsn, dsn):
    """The test database refuses every connection, and the ones open are cut, until the block ends
    (ALLOW_CONNECTIONS false holds for superusers too). The server and other databases carry on."""
    import psycopg2.extensions

    from conftest import admin_execute

    name = psycopg2.extensions.parse_dsn(dsn)["dbname"]
    admin_execute(server_dsn, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
    try:
        admin_execute(server_dsn, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        yield
    finally:
        admin_execute(server_dsn, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")


def periods(rows):
    """The distinct periods of ledger rows (dicts from `runs`), as epoch seconds, in order."""
    return sorted({r["period_at"].timestamp() for r in rows})


def soon(every_s, lead_s=1.5):
    """An offset that puts a job's next occurrence about `lead_s` seconds from now (whole seconds)."""
    import time

    return int(time.time() + lead_s + 1) % every_s


def counter_table(dsn):
    """A one-row table `counter` for jobs that count their effects (see `count_job`)."""
    from support import fetch

    fetch(dsn, "CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)")


def count_job(ctx):
    """A job body whose every run adds 1 to `counter`: effects counted, to compare with the ledger."""
    with ctx.connection() as conn, conn.cursor() as cur:
        cur.execute("UPDATE counter SET n = n + 1")
        conn.commit()
    return 1


def counted(dsn):
    from support import fetch

    return fetch(dsn, "SELECT n FROM counter")[0][0]
