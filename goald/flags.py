"""Runtime flags (table `flags`) and their audit trail (table `flag_audit`).

Flags: `stagger.enabled`, `job.<name>.enabled`, `job.<name>.stagger`. A flag without a row takes its
default from the configuration (`jobs.stagger_enabled`) or the job catalog. Changing a flag is one
transaction: the row is locked, upserted and the change (who, when, old → new, node, reason)
appended to `flag_audit`; setting a flag to the value it already has changes nothing and writes no
audit row. The clock re-reads the table every `jobs.flag_poll_s`, so a change takes effect without
a restart. Functions run in the caller's greenlet on the connection they are given.
"""
from __future__ import annotations

from dataclasses import dataclass

STAGGER = "stagger.enabled"


def job_enabled(job: str) -> str:
    return f"job.{job}.enabled"


def job_stagger(job: str) -> str:
    return f"job.{job}.stagger"


def known_names(job_names: list[str]) -> list[str]:
    return [STAGGER, *(f for j in job_names for f in (job_enabled(j), job_stagger(j)))]


@dataclass(frozen=True)
class Change:
    name: str
    old: bool | None
    new: bool

    @property
    def changed(self) -> bool:
        return self.old != self.new


def read(conn) -> dict[str, bool]:
    with conn.cursor() as cur:
        cur.execute("SELECT name, enabled FROM flags")
        rows = dict(cur.fetchall())
    conn.commit()
    return rows


def set_flag(conn, name: str, value: bool, *, by: str, node: str, reason: str | None = None,
             default: bool | None = None) -> Change:
    """Set one flag and audit it, in one transaction. `default` is what applied without a row."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('goald.flags'))")
        cur.execute("SELECT enabled FROM flags WHERE name = %s", (name,))
        row = cur.fetchone()
        old = row[0] if row else None
        effective_old = old if old is not None else default
        if old is not None and old == value:
            conn.commit()
            return Change(name, old, value)
        cur.execute(
            "INSERT INTO flags (name, enabled, updated_at, updated_by) VALUES (%s, %s, now(), %s) "
            "ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now(), "
            "updated_by = EXCLUDED.updated_by", (name, value, by))
        cur.execute(
            "INSERT INTO flag_audit (name, old_value, new_value, changed_by, node, reason) "
            "VALUES (%s, %s, %s, %s, %s, %s)", (name, old, value, by, node, reason))
    conn.commit()
    return Change(name, effective_old, value)


def audit(conn, limit: int = 50) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute("SELECT name, old_value, new_value, changed_at, changed_by, node, reason FROM flag_audit "
                    "ORDER BY changed_at DESC, id DESC LIMIT %s", (limit,))
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    conn.commit()
    return rows
