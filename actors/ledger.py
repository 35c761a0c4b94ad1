"""The run ledger (`job_runs`): one row per job occurrence, written through one-statement calls.

Every function runs in the caller's greenlet (a run greenlet, the clock's reaper, the heartbeat,
a runtime job), checks one connection out of the pool for one statement in autocommit (one round
trip) and gives it back: no connection is held across a run to keep a lock. Database errors
propagate to the caller; `goald.db.pool.transient(e)` says whether a retry can help.

An occurrence is (job, period_at): the nominal instant of its period, before the stagger offset;
`scheduled_at` is when it was due (period_at + offset_s) and `offset_s` the offset used. Two
instances whose offsets differ therefore still meet on the same row (UNIQUE (job, period_at),
sql/0005).

Every write of an occurrence's row is an `INSERT ... ON CONFLICT DO NOTHING`, so no writer can
fail on another's concurrent insert:
- `claim` calls `goald_claim_occurrence` (sql/0004): under a transaction-scoped advisory lock on
  the job (taken and released on one connection, so it cannot leak as the original system's
  session locks did) it answers `running` (this instance runs it), `skipped_disabled` (the job's
  flag, read in the same transaction, or the configured default), `skipped_overlap` (another run
  of the job is running with a fresh heartbeat, on any instance) or `skipped_lock` (the period
  already had a row; a `job_lock_skips` row counts it);
- `record_missed` writes `missed` rows for occurrences nobody claimed within the grace period
  (the clock's reaper, once that period has passed), many jobs in one statement.

While a run goes on, `heartbeat` touches the rows of all of a node's running runs in one
statement; a `running` row whose heartbeat is older than `stale_after_s` belongs to a dead
instance and `rescue_orphans` marks it `interrupted` (never one of the caller's own live runs).
"""
from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

import psycopg2.extras

from goald.db.pool import Pool

ORPHAN_HEARTBEATS = 3
# A lock-key namespace so goald's job locks never collide with other advisory locks in the database.
LOCK_NAMESPACE = 0x6A6F62  # "job"
FINAL_OUTCOMES = ("succeeded", "failed", "timed_out", "skipped_overlap", "skipped_lock",
                  "skipped_disabled", "missed", "interrupted")


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of a job: its period (the ledger key with `job`) and the offset it is due at."""

    job: str
    period_at: float           # epoch seconds (UTC): the nominal instant of the period
    offset_s: int = 0
    staggered: bool = False
    trigger: str = "schedule"  # schedule | manual

    @property
    def scheduled_at(self) -> float:
        """When the occurrence is due: its period plus the offset used."""
        return self.period_at + self.offset_s

    @property
    def period_dt(self) -> datetime:
        return _dt(self.period_at)

    @property
    def scheduled_dt(self) -> datetime:
        return _dt(self.scheduled_at)


@dataclass(frozen=True)
class Claim:
    outcome: str               # running | skipped_disabled | skipped_overlap | skipped_lock
    run_id: int | None = None
    holder: str | None = None   # the node that has the period, or the overlapping run
    existing: str | None = None  # skipped_lock: the outcome of the row that was there


def stale_after(cfg) -> float:
    """A running row silent for this long is an orphan: ORPHAN_HEARTBEATS missed beats, plus the
    time one beat may wait for a pool connection."""
    return ORPHAN_HEARTBEATS * cfg["jobs.heartbeat_s"] + cfg["database.pool_timeout_s"]


def lock_key(job: str) -> int:
    return (LOCK_NAMESPACE << 32) | zlib.crc32(job.encode())


def claim(pool: Pool, occ: Occurrence, *, node: str, overlap: str, stale_after_s: float, utilization: float,
          flag: str, enabled_default: bool, timeout_s: float | None = None) -> Claim:
    with pool.connection(timeout_s, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT * FROM goald_claim_occurrence(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (occ.job, occ.period_dt, occ.scheduled_dt, occ.trigger, node, occ.offset_s, occ.staggered, flag,
             enabled_default, overlap == "skip", stale_after_s, utilization, lock_key(occ.job)))
        outcome, run_id, holder, existing = cur.fetchone()
    return Claim(outcome, run_id, holder, existing)


def finish(pool: Pool, run_id: int, *, outcome: str, started_at: float | None, finished_at: float,
           error: str | None = None, rows_affected: int | None = None, queries_issued: int | None = None,
           db_spans: list[int] | None = None, timeout_s: float | None = None) -> bool:
    """Close a claimed run. False when the row was no longer `running` (rescued as an orphan
    meanwhile): the real outcome is written anyway, because it is the truth."""
    duration_ms = None if started_at is None else max(0, round((finished_at - started_at) * 1000))
    with pool.connection(timeout_s, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "WITH prev AS (SELECT id, outcome FROM job_runs WHERE id = %s FOR UPDATE) "
            "UPDATE job_runs j SET outcome = %s, started_at = COALESCE(j.started_at, %s), finished_at = %s, "
            "duration_ms = %s, error = %s, rows_affected = %s, queries_issued = %s, db_spans = %s, "
            "heartbeat_at = NULL FROM prev WHERE j.id = prev.id RETURNING prev.outcome",
            (run_id, outcome, _dt(started_at), _dt(finished_at), duration_ms, error, rows_affected, queries_issued,
             db_spans))
        previous = cur.fetchone()
    return previous is not None and previous[0] == "running"


def record_missed(pool: Pool, missed: Iterable[tuple[Occurrence, str]], *, node: str,
                  timeout_s: float | None = None) -> Counter:
    """Record occurrences nobody ran as `missed` (with their reasons) in one statement; returns
    how many rows were new, per job (an occurrence that already had a row is left as it is)."""
    rows = [(o.job, o.period_dt, o.scheduled_dt, o.trigger, "missed", node, o.offset_s, o.staggered, reason)
            for o, reason in missed]
    if not rows:
        return Counter()
    with pool.connection(timeout_s, autocommit=True) as conn, conn.cursor() as cur:
        inserted = psycopg2.extras.execute_values(
            cur,
            "INSERT INTO job_runs (job, period_at, scheduled_at, trigger, outcome, node, offset_s, staggered, error) "
            "VALUES %s ON CONFLICT DO NOTHING RETURNING job",
            rows, template="(%s, %s, %s, %s, %s, %s, %s, %s, %s)", page_size=len(rows), fetch=True)
    return Counter(job for (job,) in inserted)


def heartbeat(pool: Pool, runs: list[tuple[int, float]], *, timeout_s: float | None = None) -> int:
    """Touch the rows of this node's running runs, one statement for all: `runs` is
    (run_id, started_at); the first beat of a run also stamps its started_at, so a long run shows
    as started while it goes on. Returns how many rows were touched."""
    if not runs:
        return 0
    with pool.connection(timeout_s, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE job_runs j SET heartbeat_at = now(), started_at = COALESCE(j.started_at, b.started) "
            "FROM unnest(%s::bigint[], %s::timestamptz[]) AS b(id, started) "
            "WHERE j.id = b.id AND j.outcome = 'running'",
            ([r for r, _ in runs], [_dt(s) for _, s in runs]))
        return cur.rowcount


def rescue_orphans(pool: Pool, stale_after_s: float, keep: Iterable[int] = ()) -> list[tuple[str, datetime, str]]:
    """Mark `running` rows whose heartbeat stopped as `interrupted`, except the caller's own live
    runs (`keep`: a node never rescues what it is still running, even if its beats failed for a
    while); returns (job, scheduled_at, node)."""
    with pool.connection(autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE job_runs SET outcome = 'interrupted', finished_at = now(), heartbeat_at = NULL, "
            "duration_ms = CASE WHEN started_at IS NULL THEN NULL "
            "                   ELSE (extract(epoch FROM (heartbeat_at - started_at)) * 1000)::int END, "
            "error = 'orphaned: no heartbeat from ' || node || ' since ' || heartbeat_at::text "
            "WHERE outcome = 'running' AND heartbeat_at < now() - make_interval(secs => %s) "
            "AND NOT id = ANY(%s::bigint[]) RETURNING job, scheduled_at, node", (stale_after_s, list(keep)))
        return cur.fetchall()


def last_periods(pool: Pool) -> dict[str, datetime]:
    """The latest scheduled period in the ledger per job (start-up backfill of missed runs)."""
    with pool.connection(autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT job, max(COALESCE(period_at, scheduled_at - offset_s * interval '1 second')) "
                    "FROM job_runs WHERE trigger = 'schedule' GROUP BY job")
        return dict(cur.fetchall())


def prune(pool: Pool, retention_days: float) -> int:
    """Delete finished ledger rows and lock skips older than the retention; returns rows deleted."""
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM job_runs WHERE scheduled_at < now() - make_interval(secs => %s) "
                    "AND outcome <> 'running'", (retention_days * 86400.0,))
        n = cur.rowcount
        cur.execute("DELETE FROM job_lock_skips WHERE scheduled_at < now() - make_interval(secs => %s)",
                    (retention_days * 86400.0,))
        n += cur.rowcount
        conn.commit()
    return n


def _dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, tz=timezone.utc)
