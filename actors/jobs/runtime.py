"""goald's own jobs: ledger pruning, pool-sample pruning and orphan rescue.

Offsets sit away from the seeds' business offsets (:00 :05 :10 :15 :25 :30 :40 :45), so the catalog
stays collision-free as those jobs land. Each body runs in its job actor's run greenlet.
"""
from __future__ import annotations

from goald import logs
from goald.actors import ledger
from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule
from goald.db.pool import Pool


def prune_pool_samples(pool: Pool, retention_days: float) -> int:
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM pool_samples WHERE sampled_at < now() - make_interval(secs => %s)",
                    (retention_days * 86400.0,))
        n = cur.rowcount
        conn.commit()
    return n


def ledger_prune(ctx) -> dict:
    """Delete ledger rows (and lock skips) older than jobs.ledger_retention_days."""
    return {"deleted": ledger.prune(ctx.pool, ctx.config["jobs.ledger_retention_days"])}


def pool_samples_prune(ctx) -> dict:
    """Delete pool samples older than pool_monitor.retention_days."""
    return {"deleted": prune_pool_samples(ctx.pool, ctx.config["pool_monitor.retention_days"])}


def orphan_rescue(ctx) -> dict:
    """Mark runs whose instance stopped heartbeating (killed, crashed, cut off) as interrupted;
    never this node's own runs in flight."""
    stale = ledger.stale_after(ctx.config)
    rows = ledger.rescue_orphans(ctx.pool, stale, keep=ctx.own_runs())
    for job, scheduled_at, node in rows:
        logs.event("WARNING", "job.orphan_rescued",
                   f"Job interrupted: {job} ({scheduled_at.isoformat()}) on {node}: no heartbeat for {stale:g}s",
                   job=job, node=node, scheduled_at=scheduled_at.isoformat())
    return {"rescued": len(rows)}


JOBS = [
    JobSpec("ledger_prune", ledger_prune, Schedule(cron="0 * * * *", offset_s=50), timeout_s=300,
            description="Delete run ledger rows older than jobs.ledger_retention_days"),
    JobSpec("pool_samples_prune", pool_samples_prune, Schedule(cron="0 * * * *", offset_s=55), timeout_s=300,
            description="Delete pool samples older than pool_monitor.retention_days"),
    JobSpec("orphan_rescue", orphan_rescue, Schedule(every_s=30, offset_s=7), timeout_s=20,
            description="Mark runs of dead instances (no heartbeat) as interrupted"),
]
