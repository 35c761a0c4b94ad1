"""Reading the run ledger (`job_runs`) for people: per-job summaries and the run history.

actors/ledger.py writes the ledger; this module only reads it, for the console's jobs and runs
pages and their JSON twins. Every query is bounded by an index on (job, scheduled_at) or on
scheduled_at, so a ledger of millions of rows answers in milliseconds: per job it reads its last
`STATS_RUNS` finished runs, never the whole table. Functions run in the caller's greenlet on the
connection they are given; database errors propagate.
"""
from __future__ import annotations

from datetime import datetime

OUTCOMES = ("running", "succeeded", "failed", "timed_out", "skipped_overlap", "skipped_lock", "skipped_disabled",
            "missed", "interrupted")
STATS_RUNS = 100           # a job's p95 duration is over its last this many runs that ran

_SUMMARY = """
SELECT j.name, last.outcome, last.trigger, last.scheduled_at, last.started_at, last.duration_ms, last.node,
       last.error, p.p50_ms, p.p95_ms, p.runs
FROM unnest(%(jobs)s::text[]) AS j(name)
LEFT JOIN LATERAL (
    SELECT r.outcome, r.trigger, r.scheduled_at, r.started_at, r.duration_ms, r.node, r.error
    FROM job_runs r WHERE r.job = j.name ORDER BY r.scheduled_at DESC LIMIT 1) last ON true
LEFT JOIN LATERAL (
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d.duration_ms) AS p50_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY d.duration_ms) AS p95_ms, count(*) AS runs
    FROM (SELECT r.duration_ms FROM job_runs r
          WHERE r.job = j.name AND r.started_at IS NOT NULL AND r.duration_ms IS NOT NULL
          ORDER BY r.scheduled_at DESC LIMIT %(n)s) d) p ON true
"""


def summaries(conn, jobs: list[str]) -> dict[str, dict]:
    """Per job: its last row (outcome, trigger, when, duration, node, error) and the median and
    p95 durations of its last STATS_RUNS runs that ran. One statement."""
    with conn.cursor() as cur:
        cur.execute(_SUMMARY, {"jobs": list(jobs), "n": STATS_RUNS})
        rows = cur.fetchall()
    out = {}
    for name, outcome, trigger, sched, started, dur, node, error, p50, p95, n in rows:
        out[name] = {"last_outcome": outcome, "last_trigger": trigger, "last_scheduled_at": _iso(sched),
                     "last_started_at": _iso(started), "last_duration_ms": dur, "last_node": node,
                     "last_error": error, "p50_duration_ms": round(p50) if p50 is not None else None,
                     "p95_duration_ms": round(p95) if p95 is not None else None,
                     "runs_counted": n or 0}
    return out


_HISTORY_COLUMNS = ("id", "job", "trigger", "outcome", "node", "scheduled_at", "started_at", "finished_at",
                    "duration_ms", "offset_s", "staggered", "rows_affected", "queries_issued",
                    "pool_utilization_at_start", "error")


def history(conn, *, job: str | None = None, outcome: str | None = None, node: str | None = None,
            since: datetime | None = None, until: datetime | None = None, before_id: int | None = None,
            limit: int = 50) -> list[dict]:
    """Runs, newest first (by id), filtered; `before_id` pages (the last id of the previous page)."""
    where, args = [], []
    for column, value in (("job", job), ("outcome", outcome), ("node", node)):
        if value:
            where.append(f"{column} = %s")
            args.append(value)
    if since is not None:
        where.append("scheduled_at >= %s")
        args.append(since)
    if until is not None:
        where.append("scheduled_at < %s")
        args.append(until)
    if before_id is not None:
        where.append("id < %s")
        args.append(before_id)
    sql = (f"SELECT {', '.join(_HISTORY_COLUMNS)} FROM job_runs" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY id DESC LIMIT %s")
    with conn.cursor() as cur:
        cur.execute(sql, (*args, limit))
        return [_run_dict(r) for r in cur.fetchall()]


def run(conn, run_id: int) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(_HISTORY_COLUMNS)} FROM job_runs WHERE id = %s", (run_id,))
        row = cur.fetchone()
    return _run_dict(row) if row else None


def manual_row(conn, job: str, period_at: datetime) -> dict | None:
    """The ledger row of one occurrence (a `manual` run the console asked for)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(_HISTORY_COLUMNS)} FROM job_runs WHERE job = %s AND period_at = %s",
                    (job, period_at))
        row = cur.fetchone()
    return _run_dict(row) if row else None


def starts_by_second(conn, since: datetime) -> list[dict]:
    """Per second of the minute (0-59): how many runs started in it since `since`, and the pool's
    mean and highest utilization at their starts (percent), from the ledger. One statement over
    the index on started_at."""
    with conn.cursor() as cur:
        cur.execute("SELECT extract(second FROM started_at)::int AS s, count(*), avg(pool_utilization_at_start), "
                    "max(pool_utilization_at_start) FROM job_runs WHERE started_at >= %s GROUP BY 1", (since,))
        got = {s: (n, avg, peak) for s, n, avg, peak in cur.fetchall()}
    return [{"second": s, "starts": got.get(s, (0,))[0],
             "utilization_mean": round(got[s][1], 1) if s in got and got[s][1] is not None else None,
             "utilization_max": round(got[s][2], 1) if s in got and got[s][2] is not None else None}
            for s in range(60)]


def _run_dict(row) -> dict:
    d = dict(zip(_HISTORY_COLUMNS, row))
    for k in ("scheduled_at", "started_at", "finished_at"):
        d[k] = _iso(d[k])
    return d


def _iso(t: datetime | None) -> str | None:
    return t.isoformat(timespec="milliseconds") if t is not None else None
