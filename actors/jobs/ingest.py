"""The ingest jobs: the provider's match data into the match tables and the match actors.

Each body runs in its job actor's run greenlet (actors/job_actor.py) and uses `ctx.provider` (the
client: a ProviderError fails the run, and the ledger says why) and `ctx.matches` (the match
pipeline's router, actors/matches.py). An update for a match an actor tracks goes to that actor;
the rest is written here, set-based (goald/match/store.py), guarded like the actors' writes.

| job | schedule | what |
| --- | --- | --- |
| `detail_live` | every 2 s (even seconds) | `match/detail_live` → the match actors; a known match not tracked yet starts being tracked |
| `data_update` | every 20 s (+1 s) | `data/update`: a changed match the database does not know is fetched through the recent list at once |
| `recent_sync` | every minute at :35 | `match/recent/list` since the stored cursor, paging until an empty page (at most `match.recent_max_pages`) |
| `daily_diary` | every 10 minutes at :20 | `match/diary` for today and tomorrow (UTC) with its competitions, teams and seasons; the tracked set |
| `reference_sync` | every 30 minutes at :48 | `competition/additional/list` and `team/additional/list` since their cursors, `match.enricher_concurrency` pages at once |

The tracked set (one actor per match) is today's matches (UTC) that are not final, plus every
live match (2, 3, 4, 5, 7): `daily_diary` sets it, `detail_live` and the syncs add what becomes
live; an actor retires itself after its match ends (actors/match_actor.py).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import gevent.pool

from goald import logs
from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule
from goald.match import rows as match_rows, store
from goald.match.state import FINAL_STATUSES, LIVE_STATUSES

RECENT_CURSOR = "recent_list"
RECENT_FIRST_LOOKBACK_S = 3600     # the first recent sync reads the last hour (the diary has the days)
PAGE_SIZE = 1000
BOOTSTRAP_EVERY_S = 60.0           # detail_live fetches diaries for unknown live matches at most this often


def day_bounds(now: float) -> tuple[int, int]:
    start = int(now) - int(now) % 86400
    return start, start + 86400


def _trackable(m, day_start: int, day_end: int) -> bool:
    return m.status_id in LIVE_STATUSES or (day_start <= m.match_time < day_end and m.status_id not in FINAL_STATUSES)


def ingest_objects(ctx, matches: list, now: float) -> dict:
    """Match objects (diary, recent list): to their actors, or upserted here when untracked; the
    untracked ones that are live or today's start being tracked."""
    untracked = ctx.matches.route_objects(matches, now)
    inserted = updated = 0
    older: list[str] = []
    if untracked:
        with ctx.connection() as conn:
            inserted, updated, older = store.upsert_objects(conn, [match_rows.object_row(m, now) for m in untracked])
            conn.commit()
        if inserted or updated:
            ctx.matches.changes.bump()
    for mid in older:
        ctx.matches.sampler.log("INFO", "match.update_rejected", (mid,),
                                f"Match {mid}: match object older than the stored state; rejected", match_id=mid)
    ctx.matches.counts["older"] += len(older)
    day_start, day_end = day_bounds(now)
    started = ctx.matches.track([m.id for m in untracked if _trackable(m, day_start, day_end)])
    return {"routed": len(matches) - len(untracked), "inserted": inserted, "updated": updated,
            "rejected_older": len(older), "started": started}


def detail_live(ctx) -> dict:
    """`match/detail_live` → the match actors. Holds no database connection unless a match must
    start being tracked (its row is loaded); a match the database does not know yet is counted
    and comes with the next recent list or data/update."""
    decoded = ctx.provider.detail_live()
    now = ctx.matches.clock()
    provider_time = decoded.server_time or int(now)
    untracked = ctx.matches.route_live(decoded.items, provider_time, now)
    started = unknown = 0
    if untracked:
        with ctx.connection() as conn:
            found = store.load(conn, [i.id for i in untracked])
            conn.rollback()
        if found:
            started = ctx.matches.track(found.keys(), found)
            ctx.matches.route_live([i for i in untracked if i.id in found], provider_time, now)
        unknown_ids = [i for i in untracked if i.id not in found]
        last = ctx.matches.bootstrap_at
        if unknown_ids and (last is None or now - last >= BOOTSTRAP_EVERY_S):
            ctx.matches.bootstrap_at = now
            # Live matches the database does not know (a fresh start, a new day): the days' diaries now,
            # at most once a minute, instead of waiting for the next daily_diary / recent_sync.
            for day in (0, -1):
                ingest_day(ctx, now, day)
                still = ctx.matches.route_live(unknown_ids, provider_time, now)
                started += len(unknown_ids) - len(still)
                unknown_ids = still
                if not unknown_ids:
                    break
        unknown = len(unknown_ids)
        if unknown:
            ctx.matches.counts["unknown"] += unknown
            ctx.matches.sampler.log("INFO", "match.unknown", ("detail_live",),
                                    f"detail_live: {unknown} match(es) not in the database yet; the recent "
                                    f"list brings them", count=unknown)
    return {"items": len(decoded.items), "started": started, "unknown": unknown}


def data_update(ctx) -> dict:
    """`data/update`: what changed in the last 120 s. A changed match the database does not hold
    yet is fetched through the recent list now instead of at the next recent_sync. (Standings
    changes, types 2 and 3, are the standings sync's; line-ups, type 1, are not stored yet.)"""
    decoded = ctx.provider.data_update()
    changed = {c.match_id: c.update_time for c in decoded.items if c.match_id}
    synced = 0
    if changed:
        with ctx.connection() as conn:
            known = store.load(conn, list(changed))
            conn.rollback()
        missing = {mid: t for mid, t in changed.items() if mid not in known}
        if missing:
            synced = recent(ctx, since=min(missing.values()) - 1, move_cursor=False)["matches"]
    return {"changes": len(decoded.items), "matches_changed": len(changed), "synced": synced}


def recent(ctx, since: int, move_cursor: bool) -> dict:
    pages = matches = 0
    newest = since
    totals: dict = {}
    for page in range(1, ctx.config["match.recent_max_pages"] + 1):
        ctx.check_cancelled()
        decoded = ctx.provider.recent_list(since, page)
        if not decoded.items:
            break
        pages += 1
        matches += len(decoded.items)
        newest = max(newest, max(m.updated_at for m in decoded.items))
        for k, v in ingest_objects(ctx, decoded.items, ctx.matches.clock()).items():
            totals[k] = totals.get(k, 0) + v
        if len(decoded.items) + len(decoded.rejections) < PAGE_SIZE:
            break
    if move_cursor and newest > since:
        with ctx.connection() as conn:
            store.cursor_set(conn, RECENT_CURSOR, newest)   # inclusive: the last second is read again
            conn.commit()
    return {"pages": pages, "matches": matches, **totals}


def recent_sync(ctx) -> dict:
    """`match/recent/list?time=<cursor>`, paging until an empty page; the cursor (ingest_cursors)
    moves to the newest `updated_at` read."""
    with ctx.connection() as conn:
        since = store.cursor_get(conn, RECENT_CURSOR)
        conn.rollback()
    if since is None:
        since = int(ctx.matches.clock()) - RECENT_FIRST_LOOKBACK_S
    return recent(ctx, since, move_cursor=True)


def daily_diary(ctx) -> dict:
    """`match/diary` for today and tomorrow (UTC): reference records, matches, and the tracked
    set. Idempotent: a second run in a row writes nothing."""
    now = ctx.matches.clock()
    totals: dict = {}
    for day in (0, 1):
        ctx.check_cancelled()
        for k, v in ingest_day(ctx, now, day).items():
            totals[k] = totals.get(k, 0) + v
    day_start, day_end = day_bounds(now)
    with ctx.connection() as conn:
        ids = store.tracked_ids(conn, day_start, day_end, sorted(LIVE_STATUSES))
        conn.rollback()
    totals["started"] = totals.get("started", 0) + ctx.matches.track(ids)
    return totals


def ingest_day(ctx, now: float, day: int) -> dict:
    """One day's diary (`day` days from today, UTC): its reference records and matches."""
    date = (datetime.fromtimestamp(now, tz=timezone.utc) + timedelta(days=day)).strftime("%Y%m%d")
    decoded = ctx.provider.diary(date=date)
    counts = {**_diary_reference(ctx, decoded.extra), **ingest_objects(ctx, decoded.items, now)}
    counts["matches"] = len(decoded.items)
    return counts


def _diary_reference(ctx, extra) -> dict:
    if extra is None:
        return {}
    competitions = [{"id": c.id, "name": c.name, "logo": c.logo or None} for c in extra.competition]
    teams = [{"id": t.id, "name": t.name, "logo": t.logo or None, "country_logo": t.country_logo or None}
             for t in extra.team]
    seasons = [{"id": s.id, "competition_id": s.competition_id, "year": s.year} for s in extra.season
               if s.competition_id]
    written = 0
    with ctx.connection() as conn:
        for table, rows in (("competitions", competitions), ("teams", teams), ("seasons", seasons)):
            written += sum(store.upsert_reference(conn, table, rows))
        conn.commit()
    return {"reference_written": written}


def reference_sync(ctx) -> dict:
    """Competitions and teams changed since their cursors, `match.enricher_concurrency` pages at
    a time until an empty page; a competition's current season is recorded too."""
    out = {}
    for name, fetch, to_rows in (("competitions", ctx.provider.competitions, _competition_rows),
                                 ("teams", ctx.provider.teams, _team_rows)):
        with ctx.connection() as conn:
            since = store.cursor_get(conn, name) or 0
            conn.rollback()
        written, newest, page = 0, since, 1
        width = ctx.config["match.enricher_concurrency"]
        while True:
            ctx.check_cancelled()
            group = gevent.pool.Group()
            pages = group.map(lambda n: fetch(time=since, page=n), range(page, page + width))
            items = [i for d in pages for i in d.items]
            if items:
                newest = max(newest, max(i.updated_at for i in items))
                with ctx.connection() as conn:
                    for table, rows in to_rows(items):
                        written += sum(store.upsert_reference(conn, table, rows))
                    conn.commit()
            if any(not d.items and not d.rejections for d in pages):
                break
            page += width
        if newest > since:
            with ctx.connection() as conn:
                store.cursor_set(conn, name, newest)
                conn.commit()
        out[f"{name}_written"] = written
    if ctx.cache is not None and any(out.values()):
        # Standings and head-to-head answers carry team and competition names and logos.
        ctx.cache.invalidate_kind("standings")
        ctx.cache.invalidate_kind("h2h")
    return out


def _competition_rows(items) -> list:
    comps = [{"id": c.id, "name": c.name, "short_name": c.short_name or None, "logo": c.logo or None,
              "country_id": c.country_id or None, "category_id": c.category_id or None, "type": c.type,
              "provider_updated_at": c.updated_at} for c in items]
    seasons = [{"id": c.cur_season_id, "competition_id": c.id, "is_current": True} for c in items if c.cur_season_id]
    return [("competitions", comps), ("seasons", seasons)]


def _team_rows(items) -> list:
    return [("teams", [{"id": t.id, "name": t.name, "short_name": t.short_name or None, "logo": t.logo or None,
                        "competition_id": t.competition_id or None, "country_id": t.country_id or None,
                        "national": bool(t.national), "country_logo": t.country_logo or None,
                        "provider_updated_at": t.updated_at} for t in items])]


def log_started(specs: dict, cfg) -> None:
    """The seeds' observability contract: each ingest job says it started, with its interval and
    batch size (at goald's start, from the effective catalog)."""
    batch = {"detail_live": cfg["match.max_updates_per_tick"], "recent_sync": PAGE_SIZE,
             "daily_diary": None, "data_update": None, "reference_sync": cfg["match.enricher_concurrency"]}
    for spec in JOBS:
        if spec.name in specs:
            s = specs[spec.name].schedule
            logs.event("INFO", "ingest.started", f"Ingest job started: {spec.name} ({s.describe()}"
                       + (f", batch {batch[spec.name]}" if batch.get(spec.name) else "") + ")",
                       job=spec.name, interval=s.describe(), batch_size=batch.get(spec.name))


JOBS = [
    JobSpec("detail_live", detail_live, Schedule(every_s=2, offset_s=0), timeout_s=10,
            description="Live matches from match/detail_live to their match actors",
            timeout_env="DETAIL_LIVE_TIMEOUT_MS", log_runs="DEBUG", leader_only=True),
    JobSpec("data_update", data_update, Schedule(every_s=20, offset_s=1), timeout_s=15,
            description="data/update: matches changed in the last 120 s that the database lacks",
            timeout_env="DATA_UPDATE_TIMEOUT_MS", log_runs="DEBUG", leader_only=True),
    JobSpec("recent_sync", recent_sync, Schedule(cron="* * * * *", offset_s=35), timeout_s=50,
            description="match/recent/list since the stored cursor, paging until an empty page", leader_only=True),
    JobSpec("daily_diary", daily_diary, Schedule(cron="*/10 * * * *", offset_s=20), timeout_s=300,
            description="match/diary for today and tomorrow, their teams and competitions; the tracked set",
            timeout_env="DAILY_DIARY_TIMEOUT_MS", leader_only=True),
    JobSpec("reference_sync", reference_sync, Schedule(cron="*/30 * * * *", offset_s=48), timeout_s=600,
            description="Competitions and teams changed since the last sync (bounded concurrency)", leader_only=True),
]
