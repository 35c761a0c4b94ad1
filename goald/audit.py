"""The audit trail (table `audit_log`, and the view `audit_trail` that adds `flag_audit`).

Every change made through the console or `goald operator` (operators added, passwords changed,
operators removed, run now) and every login, failed login and logout is one row: who (`actor`),
when, on which node, what (`action`, `target`), old -> new, why, and from where (`remote`, the
client address). Flag changes are audited by goald/flags.py in `flag_audit`; `read` shows both.

Functions run in the caller's greenlet on the connection they are given; `record` does not
commit, so a change and its audit row land in one transaction (the caller commits both).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ACTIONS = ("login", "login_failed", "login_throttled", "logout", "operator_add", "operator_passwd",
           "operator_remove", "run_now", "flag")


def record(conn, *, actor: str, node: str, action: str, target: str | None = None, old: str | None = None,
           new: str | None = None, reason: str | None = None, remote: str | None = None) -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r} (one of {', '.join(ACTIONS)})")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO audit_log (actor, node, action, target, old_value, new_value, reason, remote) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (actor, node, action, target, old, new, reason, remote))


@dataclass(frozen=True)
class Entry:
    source: str           # audit | flag
    id: int
    at: datetime
    actor: str
    node: str
    action: str
    target: str | None
    old: str | None
    new: str | None
    reason: str | None
    remote: str | None

    def as_dict(self) -> dict:
        return {"source": self.source, "id": self.id, "at": self.at.isoformat(timespec="seconds"),
                "actor": self.actor, "node": self.node, "action": self.action, "target": self.target,
                "old": self.old, "new": self.new, "reason": self.reason, "remote": self.remote}


def read(conn, *, limit: int = 100, before: datetime | None = None, actor: str | None = None,
         action: str | None = None) -> list[Entry]:
    """The newest entries first (at most `limit`), older than `before` when given (paging)."""
    where, args = [], []
    if before is not None:
        where.append("at < %s")
        args.append(before)
    if actor:
        where.append("actor = %s")
        args.append(actor)
    if action:
        where.append("action = %s")
        args.append(action)
    sql = ("SELECT source, id, at, actor, node, action, target, old_value, new_value, reason, remote "
           "FROM audit_trail" + (" WHERE " + " AND ".join(where) if where else "") +
           " ORDER BY at DESC, id DESC LIMIT %s")
    with conn.cursor() as cur:
        cur.execute(sql, (*args, limit))
        return [Entry(*r) for r in cur.fetchall()]
