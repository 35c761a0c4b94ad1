"""The run ledger (`job_runs`): one row per job occurrence, written through short transactions.

Every function runs in the caller's greenlet (a job actor's run greenlet, the clock's writer, a
runtime job), checks one connection out of the pool for one transaction and gives it back: no
connection is ever held idle across a run to keep a lock. Database errors propagate to the caller.

Claiming an occurrence (`claim`) is one transaction:
1. `pg_advisory_xact_lock(job)` serialises claims of the same job across every goald instance; the
   lock is transaction-scoped, so it is taken and released on the same connection and cannot leak
   (the original system took and released session locks on different pooled connections);
2. if the occurrence already has a row, another instance took it: a `job_lock_skips` row, answer
   `skipped_lock`;
3. if another run of the job is still `running` with a fresh heartbeat (on any instance) and the
   job's overlap policy is `skip`, the occurrence is recorded `skipped_overlap`;
4. otherwise a `running` row with `heartbeat_at = now()` is inserted and its id returned.
The UNIQUE (job, scheduled_at) constraint backs all of this: a second row for one occurrence is
impossible whatever the code does.

While a run goes on its row's heartbeat is touched every `heartbeat_s`; a `running` row whose
heartbeat is older than ORPHAN_HEARTBEATS heartbeats belongs to a dead instance and
`rescue_orphans` marks it `interrupted`.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timezone

import psycopg2.extras

from goald.db.pool import Pool

ORPHAN_HEARTBEATS = 3
# A lock-key namespace so goald's job locks never collide with other advisory locks in the database.
LOCK_NAMESPACE = 0x6A6F62  # "job"
FINAL_OUTCOMES = ("succeeded", "failed", "timed_out", "skipped_overlap", "skipped_lock",
                  "skipped_disabled", "missed", "interrupted")


@dataclass(frozen=True)
class Occurrence:
    """One due occurrence of a job, as the clock dispatches it."""

    job: str
    scheduled_at: float       # epoch seconds (UTC); the ledger key with `job`
    offset_s: int = 0
    staggered: bool = False
    trigger: str = "schedule"  # schedule | manual

    @property
    def scheduled_dt(self) -> datetime:
        return datetime.fromtimestamp(self.scheduled_at, tz=timezone.utc)


@dataclass(frozen=True)
class Claim:
    outcome: str              # running | skipped_lock | skipped_overlap
    run_id: int | None = None
    holder: str | None = None  # the node that has the occurrence or the overlapping run


def lock_key(job: str) -> int:
    return (LOCK_NAMESPACE << 32) | zlib.crc32(job.encode())


def claim(pool: Pool, occ: Occurrence, *, node: str, overlap: str, stale_after_s: float,
          utilization: float) -> Claim:
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(occ.job),))
        cur.execute("SELECT node FROM job_runs WHERE job = %s AND scheduled_at = %s", (occ.job, occ.scheduled_dt))
        row = cur.fetchone()
        if row is not None:
            cur.execute("INSERT INTO job_lock_skips (job, scheduled_at, node) VALUES (%s, %s, %s)",
                        (occ.job, occ.scheduled_dt, node))
            conn.commit()
            return Claim("skipped_lock", holder=row[0])
        if overlap == "skip":
            cur.execute(
                "SELECT node FROM job_runs WHERE job = %s AND outcome = 'running' "
                "AND heartbeat_at > now() - make_interval(secs => %s) LIMIT 1", (occ.job, stale_after_s))
            busy = cur.fetchone()
            if busy is not None:
                cur.execute(
                    "INSERT INTO job_runs (job, scheduled_at, trigger, outcome, node, finished_at, duration_ms, "
                    "offset_s, staggered, error, pool_utilization_at_start) "
                    "VALUES (%s, %s, %s, 'skipped_overlap', %s, now(), 0, %s, %s, %s, %s)",
                    (occ.job, occ.scheduled_dt, occ.trigger, node, occ.offset_s, occ.staggered,
                     f"previous run still going on {busy[0]}", utilization))
                conn.commit()
                return Claim("skipped_overlap", holder=busy[0])
        cur.execute(
            "INSERT INTO job_runs (job, scheduled_at, trigger, outcome, node, heartbeat_at, offset_s, staggered, "
            "pool_utilization_at_start) VALUES (%s, %s, %s, 'running', %s, now(), %s, %s, %s) RETURNING id",
            (occ.job, occ.scheduled_dt, occ.trigger, node, occ.offset_s, occ.staggered, utilization))
        run_id = cur.fetchone()[0]
        conn.commit()
        return Claim("running", run_id=run_id)


def mark_started(pool: Pool, run_id: int, started_at: float) -> None:
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("UPDATE job_runs SET started_at = %s, heartbeat_at = now() WHERE id = %s",
                    (datetime.fromtimestamp(started_at, tz=timezone.utc), run_id))
        conn.commit()


def finish(pool: Pool, run_id: int, *, outcome: str, started_at: float | None, finished_at: float,
           error: str | None = None, rows_affected: int | None = None, queries_issued: int | None = None) -> bool:
    """Close a claimed run. False when the row was no longer `running` (rescued as an orphan
    meanwhile): the real outcome is written anyway, because it is the truth."""
    duration_ms = None if started_at is None else max(0, round((finished_at - started_at) * 1000))
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT outcome FROM job_runs WHERE id = %s FOR UPDATE", (run_id,))
        previous = cur.fetchone()
        cur.execute(
            "UPDATE job_runs SET outcome = %s, started_at = COALESCE(started_at, %s), finished_at = %s, "
            "duration_ms = %s, error = %s, rows_affected = %s, queries_issued = %s, heartbeat_at = NULL "
            "WHERE id = %s",
            (outcome, _dt(started_at), _dt(finished_at), duration_ms, error, rows_affected, queries_issued, run_id))
        conn.commit()
    return previous is not None and previous[0] == "running"


def record(pool: Pool, occ: Occurrence, *, outcome: str, node: str, error: str | None = None) -> bool:
    """Insert a finished row for an occurrence that did not run (skipped_disabled, missed). False
    when the occurrence already had a row (another instance dealt with it)."""
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO job_runs (job, scheduled_at, trigger, outcome, node, finished_at, offset_s, staggered, error) "
            "VALUES (%s, %s, %s, %s, %s, now(), %s, %s, %s) "
            "ON CONFLICT ON CONSTRAINT job_runs_once_per_occurrence DO NOTHING",
            (occ.job, occ.scheduled_dt, occ.trigger, outcome, node, occ.offset_s, occ.staggered, error))
        inserted = cur.rowcount == 1
        conn.commit()
    return inserted


def record_missed(pool: Pool, job: str, times: list[float], *, node: str, offset_s: int, staggered: bool,
                  reason: str) -> int:
    """Record many missed occurrences of one job in one statement; returns how many were new."""
    if not times:
        return 0
    rows = [(job, _dt(t), "schedule", "missed", node, offset_s, staggered, reason) for t in times]
    with pool.connection() as conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO job_runs (job, scheduled_at, trigger, outcome, node, offset_s, staggered, error) "
            "VALUES %s ON CONFLICT ON CONSTRAINT job_runs_once_per_occurrence DO NOTHING",
            rows, template="(%s, %s, %s, %s, %s, %s, %s, %s)", page_size=1000)
        n = cur.rowcount
        conn.commit()
    return max(n, 0)


def heartbeat(pool: Pool, run_ids: list[int]) -> None:
    if not run_ids:
        return
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("UPDATE job_runs SET heartbeat_at = now() WHERE id = ANY(%s) AND outcome = 'running'",
                    (run_ids,))
        conn.commit()


def rescue_orphans(pool: Pool, stale_after_s: float) -> list[tuple[str, datetime, str]]:
    """Mark `running` rows whose heartbeat stopped as `interrupted`; returns (job, scheduled_at, node)."""
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE job_runs SET outcome = 'interrupted', finished_at = now(), heartbeat_at = NULL, "
            "duration_ms = CASE WHEN started_at IS NULL THEN NULL "
            "                   ELSE (extract(epoch FROM (heartbeat_at - started_at)) * 1000)::int END, "
            "error = 'orphaned: no heartbeat from ' || node || ' since ' || heartbeat_at::text "
            "WHERE outcome = 'running' AND heartbeat_at < now() - make_interval(secs => %s) "
            "RETURNING job, scheduled_at, node", (stale_after_s,))
        rows = cur.fetchall()
        conn.commit()
    return rows


def last_scheduled(pool: Pool) -> dict[str, datetime]:
    """The latest scheduled occurrence in the ledger per job (start-up backfill of missed runs)."""
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT job, max(scheduled_at) FROM job_runs WHERE trigger = 'schedule' GROUP BY job")
        rows = cur.fetchall()
        conn.commit()
    return dict(rows)


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
