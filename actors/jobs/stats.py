"""The team statistics jobs: the live stats sync and the data completeness validator.

| job | schedule | what |
| --- | --- | --- |
| `live_stats` | every minute at :45 | `match/team_stats/list` (the matches whose statistics changed in the last 120 s): merged per team into `match_team_stats`, known values never replaced by missing ones |
| `data_completeness` | every 10 minutes at :57 | ended matches whose half statistics are incomplete: `match/half/team_stats/detail` for each, `match.enricher_concurrency` at a time; stored, and `data_completeness` marked |

Both run in their job actor's run greenlet, on any node (they hold no match state: the match
actors never see these tables), and are idempotent: a second run writes nothing new. The live
sync makes one provider request per run (the list covers every changed match); the validator at
most COMPLETENESS_BATCH, in parallel up to the configured bound. A provider error fails the live
sync's run (the ledger says why; the next minute's list covers the same 120 s); in the validator
it skips that match, which is asked again at the next run.
"""
from __future__ import annotations

import time

import gevent.pool

from goald import logs
from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule
from goald.match import stats_store
from goald.provider.errors import ProviderError

COMPLETENESS_BATCH = 200            # matches asked about per run at most
COMPLETENESS_SINCE_S = 2 * 86400    # ended matches of the last two days
COMPLETENESS_RETRY_S = 1800         # a match the provider had nothing for is asked again after 30 min
COMPLETENESS_ATTEMPTS = 6           # ... at most this many times


def live_stats(ctx) -> dict:
    decoded = ctx.provider.team_stats()
    with ctx.connection() as conn:
        changed, unknown = stats_store.upsert_team_stats(conn, decoded.items)
        conn.commit()
    if changed and ctx.matches is not None:
        ctx.matches.changes.bump()
    return {"matches": len(decoded.items), "changed": len(changed), "unknown": unknown,
            "rejected": len(decoded.rejections)}


def data_completeness(ctx) -> dict:
    now = ctx.matches.clock() if ctx.matches is not None else time.time()
    with ctx.connection() as conn:
        ids = stats_store.completeness_candidates(conn, now, since_s=COMPLETENESS_SINCE_S,
                                                  retry_after_s=COMPLETENESS_RETRY_S,
                                                  max_attempts=COMPLETENESS_ATTEMPTS, limit=COMPLETENESS_BATCH)
        conn.rollback()
    halves: dict = {}
    failed = 0

    def one(mid: str) -> None:
        nonlocal failed
        ctx.check_cancelled()
        try:
            decoded = ctx.provider.half_team_stats(mid)
        except ProviderError as e:
            failed += 1
            logs.event("DEBUG", "stats.fetch_failed", f"Match {mid}: half statistics not fetched: {e}",
                       match_id=mid, reason=e.reason)
            return
        halves[mid] = decoded.items[0] if decoded.items else None

    group = gevent.pool.Pool(ctx.config["match.enricher_concurrency"])
    for mid in ids:
        group.spawn(one, mid)
    group.join(raise_error=True)
    written = completed = 0
    if halves:
        with ctx.connection() as conn:
            written, completed = stats_store.write_half_stats(conn, halves, now)
            conn.commit()
        if completed and ctx.matches is not None:
            ctx.matches.changes.bump()
    return {"candidates": len(ids), "fetched": len(halves), "fetch_failed": failed, "rows_written": written,
            "completeness_changed": completed}


JOBS = [
    JobSpec("live_stats", live_stats, Schedule(cron="* * * * *", offset_s=45), timeout_s=40,
            description="Team statistics of the matches whose statistics changed (match/team_stats/list)",
            timeout_env="LIVE_STATS_TIMEOUT_MS"),
    JobSpec("data_completeness", data_completeness, Schedule(cron="*/10 * * * *", offset_s=57), timeout_s=300,
            description="Ended matches missing half-time or full-time statistics: fetched and marked complete",
            timeout_env="DATA_COMPLETENESS_TIMEOUT_MS"),
]
