"""`goald check-db-capacity`: is it safe to raise the pool's maximum?

The seeds' guard against raising the pool blindly. Runs once, in the main greenlet, on one pooled
connection. It reads the server's max_connections, connections by state, queries running over
1 s, ungranted locks and idle-in-transaction sessions, and recommends a pool max of
min(max_connections - 23, 80). Unsafe when slow queries > 5, lock waits > 10, idle-in-transaction
sessions > 5 or connection utilization > 70 %.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

RESERVED_CONNECTIONS = 23        # superuser slots, replication, admin tools: never for the pool
POOL_MAX_CEILING = 80
SLOW_QUERY_S = 1.0
MAX_SLOW_QUERIES = 5
MAX_LOCK_WAITS = 10
MAX_IDLE_IN_TRANSACTION = 5
MAX_UTILIZATION_PCT = 70.0

QUERY = """
SELECT current_setting('max_connections')::int,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
       (SELECT coalesce(json_object_agg(state, n), '{}'::json) FROM (
            SELECT coalesce(state, 'unknown') AS state, count(*) AS n
            FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1) s),
       (SELECT count(*) FROM pg_stat_activity
         WHERE state = 'active' AND pid <> pg_backend_pid()
           AND now() - query_start > make_interval(secs => %(slow_s)s)),
       (SELECT count(*) FROM pg_locks WHERE NOT granted),
       (SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%%')
"""


@dataclass
class CapacityReport:
    pool_max: int
    max_connections: int
    connections: int
    by_state: dict[str, int]
    slow_queries: int
    lock_waits: int
    idle_in_transaction: int
    utilization_pct: float
    recommended_pool_max: int
    reasons: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict:
        return dict(asdict(self), safe=self.safe)


def check(conn, pool_max: int) -> CapacityReport:
    with conn.cursor() as cur:
        cur.execute(QUERY, {"slow_s": SLOW_QUERY_S})
        max_conn, total, by_state, slow, waits, idle_tx = cur.fetchone()
    util = round(100.0 * total / max_conn, 1) if max_conn else 100.0
    report = CapacityReport(
        pool_max=pool_max, max_connections=max_conn, connections=total, by_state=dict(by_state),
        slow_queries=slow, lock_waits=waits, idle_in_transaction=idle_tx, utilization_pct=util,
        recommended_pool_max=max(1, min(max_conn - RESERVED_CONNECTIONS, POOL_MAX_CEILING)))
    if slow > MAX_SLOW_QUERIES:
        report.reasons.append(f"{slow} queries running > {SLOW_QUERY_S:g}s (limit {MAX_SLOW_QUERIES}): "
                              f"optimize them before raising the pool")
    if waits > MAX_LOCK_WAITS:
        report.reasons.append(f"{waits} lock waits (limit {MAX_LOCK_WAITS}): investigate lock contention first")
    if idle_tx > MAX_IDLE_IN_TRANSACTION:
        report.reasons.append(f"{idle_tx} sessions idle in transaction (limit {MAX_IDLE_IN_TRANSACTION}): "
                              f"a transaction leak holds connections")
    if util > MAX_UTILIZATION_PCT:
        report.reasons.append(f"connection utilization {util:g}% of max_connections (limit "
                              f"{MAX_UTILIZATION_PCT:g}%): the server is already busy")
    return report


def render(r: CapacityReport) -> str:
    states = "\n".join(f"  {k}: {v}" for k, v in sorted(r.by_state.items())) or "  (none)"
    lines = [
        "=== DB CAPACITY CHECK ===",
        f"Current pool max: {r.pool_max}",
        "",
        "--- CONNECTION STATS ---",
        f"DB max_connections: {r.max_connections}",
        f"Current connections: {r.connections} ({r.utilization_pct:g}% of max_connections)",
        states,
        "",
        "--- PERFORMANCE METRICS ---",
        f"Slow queries (>{SLOW_QUERY_S:g}s): {r.slow_queries}",
        f"Lock waits: {r.lock_waits}",
        f"Idle in transaction: {r.idle_in_transaction}",
        "",
        "--- RECOMMENDATIONS ---",
        f"Recommended pool max: {r.recommended_pool_max}",
        f"Can increase pool? {'YES' if r.safe else 'NO'}",
    ]
    if r.safe:
        lines += ["", "All checks passed - safe to increase pool max",
                  f"Suggested: DB_MAX_CONNECTIONS={r.recommended_pool_max} (or database.pool_max in goald.toml)"]
    else:
        lines += ["", "--- WARNINGS ---", *(f"- {x}" for x in r.reasons), "",
                  "FIX WARNINGS BEFORE INCREASING POOL MAX"]
    return "\n".join(lines)
