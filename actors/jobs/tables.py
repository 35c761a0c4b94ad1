"""The standings and head-to-head syncs: what the public API's standings and h2h endpoints serve.

| job | schedule | what |
| --- | --- | --- |
| `standings_sync` | every 2 minutes at :33 | while any match is live, `table/live` (every season whose table moved in the last 10 minutes, live scores counted); then `season/recent/table/detail` for the seasons of nearby matches whose standings are missing, older than `standings.refresh_s`, or older than the end of one of their matches |
| `h2h_sync` | every 30 minutes at :53 | `match/analysis` for not-started matches kicking off within `h2h.horizon_s` whose head-to-head is missing or older than `h2h.refresh_s` |

Both run in their job actor's run greenlet, on any node (they hold no match state), at most
`match.enricher_concurrency` provider calls at a time and a bounded batch per run. They are
idempotent: unchanged content writes nothing and invalidates no cache entry; changed seasons and
matches have their cached answers invalidated (`ctx.cache`, goald/cache/), on this node and, through
the cache's listener, on the others. A provider error for one season or match skips it (asked
again at the next run, as it is still due); a run in which every call failed fails, so the ledger
shows an outage.
"""
from __future__ import annotations

import time

import gevent.pool

from goald import logs
from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule
from goald.match import tables_store
from goald.match.state import LIVE_STATUSES
from goald.provider.errors import ProviderError

STANDINGS_WINDOW_S = 86400      # seasons with a match within a day of now are kept up to date


def _now(ctx) -> float:
    return ctx.matches.clock() if ctx.matches is not None else time.time()


def _fetch_each(ctx, ids: list[str], fetch, per_minute: int = 0) -> tuple[dict, list[ProviderError]]:
    """`fetch(id)` for each id, `match.enricher_concurrency` at a time, and with `per_minute` at
    most that many started a minute (evenly spaced; 0: no pacing): (answers by id, errors). A
    cancelled run stops starting new calls."""
    got: dict = {}
    errors: list[ProviderError] = []

    def one(i: str) -> None:
        ctx.check_cancelled()
        try:
            got[i] = fetch(i)
        except ProviderError as e:
            errors.append(e)
            logs.event("DEBUG", "tables.fetch_failed", f"{ctx.job}: {i} not fetched: {e}", job=ctx.job, id=i,
                       reason=e.reason)

    interval = 60.0 / per_minute if per_minute else 0.0
    group = gevent.pool.Pool(ctx.config["match.enricher_concurrency"])
    try:
        for k, i in enumerate(ids):
            if k and interval:
                gevent.sleep(interval)
                ctx.check_cancelled()
            group.spawn(one, i)
        group.join(raise_error=True)
    finally:
        group.kill()
    return got, errors


def _invalidate(ctx, kind: str, scopes) -> None:
    if ctx.cache is not None:
        for scope in scopes:
            ctx.cache.invalidate(kind, scope)


def standings_sync(ctx) -> dict:
    cfg = ctx.config
    now = _now(ctx)
    with ctx.connection() as conn:
        live_seasons = tables_store.seasons_with_live_matches(conn, LIVE_STATUSES)
        due = tables_store.standings_due(conn, now, refresh_s=cfg["standings.refresh_s"],
                                         window_s=STANDINGS_WINDOW_S, limit=cfg["standings.batch_size"])
        conn.rollback()
    docs: list[dict] = []
    errors: list[ProviderError] = []
    calls = rejected = 0
    if live_seasons:
        calls += 1
        try:
            live = ctx.provider.table_live()
        except ProviderError as e:
            errors.append(e)
        else:
            rejected += len(live.rejections)
            docs += [tables_store.season_doc(t.season_id, t.tables, t.promotions, "live", t.updated_at)
                     for t in live.items]
    covered = {d["season_id"] for d in docs}
    wanted = [s for s in due if s not in covered]
    calls += len(wanted)
    fetched, failed = _fetch_each(ctx, wanted, ctx.provider.season_table)
    errors += failed
    for sid, decoded in fetched.items():
        if decoded.rejections:          # a table left out would be a table that lies: keep what is stored
            rejected += len(decoded.rejections)
            continue
        docs.append(tables_store.season_doc(sid, decoded.items, decoded.extra or (), "season"))
    if calls and len(errors) == calls:
        raise errors[0]
    changed: list = []
    if docs:
        with ctx.connection() as conn:
            changed = tables_store.write_standings(conn, docs)
            conn.commit()
    _invalidate(ctx, "standings", [sid for sid, _ in changed] + sorted({f"competition-{c}" for _, c in changed if c}))
    return {"live_seasons": live_seasons, "due": len(due), "calls": calls, "fetch_failed": len(errors),
            "seasons": len(docs), "changed": len(changed), "rejected": rejected}


def h2h_paced_limit(ctx) -> int:
    """h2h.batch_size, or fewer when the paced calls (h2h.calls_per_minute) would not fit in 80 %
    of the run's time: a run that times out writes nothing it fetched."""
    limit, per_minute = ctx.config["h2h.batch_size"], ctx.config["h2h.calls_per_minute"]
    if per_minute and ctx.deadline is not None:
        limit = min(limit, max(1, int((ctx.deadline - time.time()) * 0.8 * per_minute / 60)))
    return limit


def h2h_sync(ctx) -> dict:
    cfg = ctx.config
    now = _now(ctx)
    with ctx.connection() as conn:
        due = tables_store.h2h_due(conn, now, horizon_s=cfg["h2h.horizon_s"], refresh_s=cfg["h2h.refresh_s"],
                                   limit=h2h_paced_limit(ctx))
        conn.rollback()
    fetched, errors = _fetch_each(ctx, due, ctx.provider.analysis, cfg["h2h.calls_per_minute"])
    if due and len(errors) == len(due):
        raise errors[0]
    docs = [tables_store.h2h_doc(mid, d.items[0]) for mid, d in fetched.items() if d.items]
    changed: list[str] = []
    if docs:
        with ctx.connection() as conn:
            changed = tables_store.write_h2h(conn, docs)
            conn.commit()
    _invalidate(ctx, "h2h", changed)
    return {"due": len(due), "fetched": len(docs), "empty": len(fetched) - len(docs), "fetch_failed": len(errors),
            "changed": len(changed)}


JOBS = [
    JobSpec("standings_sync", standings_sync, Schedule(cron="*/2 * * * *", offset_s=33), timeout_s=100,
            description="Standings: the live table while matches are live, season tables that are due "
                        "(table/live, season/recent/table/detail)",
            timeout_env="STANDINGS_SYNC_TIMEOUT_MS"),
    JobSpec("h2h_sync", h2h_sync, Schedule(cron="*/30 * * * *", offset_s=53), timeout_s=600,
            description="Head-to-head and recent form of upcoming matches (match/analysis)",
            timeout_env="H2H_SYNC_TIMEOUT_MS"),
]
