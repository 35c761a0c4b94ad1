"""The match pipeline's write throughput against raw psycopg2, and its freshness end to end.

1. **Throughput** (in this process, as goald runs: gevent + psycogreen, a fresh database on the
   local PostgreSQL). The simulator's day (`--world-matches`, at 18:30, its busiest hour) gives
   `--live` live matches: their detail_live items, decoded by goald's decoders, and their rows
   (from the day's diary). One actor per match is started (the real MatchPipeline, MatchActors
   under a DynamicSupervisor). Then `--rounds` rounds: in each, every match gets a new item (a
   yellow card more, a newer provider time); the round's time runs from routing the items to
   the actors until the writer's flush has committed every row (no round overlaps the next, so
   nothing coalesces: one update = one row written). Beside each round, in the same run and on
   the same rows, the **baseline**: a raw batched psycopg2 UPDATE (execute_values, 500 rows a
   statement, the same columns a detail_live item carries, the same provider_update_time guard)
   of the same changes, with no actors, no state and no decoding. Reported: updates/s of both
   (median of the rounds) and the ratio. Targets: >= 2,000 updates/s and >= 60 % of the baseline.
2. **Freshness** (real time): `goald simulate` (same seed and day, 18:30) and a real `goald run`
   polling it (detail_live every 2 s, the default), each in its own process. Once goald is past its
start-up catch-up (its first recent_sync has completed), for `--seconds` the
   bench reads `/api/matches/live` back to back (50 ms apart) and, for each match whose status, score, cards or
   corners changed, measures the time from the moment that state began in the simulator (its
   timeline, rebuilt here from the same seed) to the moment the API showed it. Reported: p50 /
   p95 / max and how many changes. Target: p95 < 2.5 s.

Run:  python bench/ingest.py [--live 2000] [--world-matches 12000] [--rounds 15] [--seconds 60] [--json]
      (GOALD_BENCH_DATABASE_URL: a maintenance DSN, default postgresql://postgres@127.0.0.1:5432/postgres)
Exit status 1 when a target is missed.
"""
from gevent import monkey

monkey.patch_all()

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import msgspec  # noqa: E402
import psycopg2  # noqa: E402
import psycopg2.extras  # noqa: E402
import requests  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _goald import Stack  # noqa: E402
from _stats import percentile  # noqa: E402

from goald import config, logs  # noqa: E402
from goald.actors.dynamic import DynamicSupervisor  # noqa: E402
from goald.actors.match_actor import Barrier  # noqa: E402
from goald.actors.matches import MatchPipeline  # noqa: E402
from goald.db.pool import Pool  # noqa: E402
from goald.match import rows as match_rows, store  # noqa: E402
from goald.match.changes import Changes  # noqa: E402
from goald.match.state import LIVE_STATUSES  # noqa: E402
from goald.migrations.runner import migrate  # noqa: E402
from goald.provider import decode  # noqa: E402
from goald.simulator.clock import ManualClock  # noqa: E402
from goald.simulator.world import World  # noqa: E402

TARGET_RATE = 2000.0
TARGET_RATIO = 0.60
TARGET_FRESH_P95_S = 2.5
DAY_TIME_S = 18 * 3600 + 30 * 60
SEED = 3
SAMPLE_GAP_S = 0.05   # between two reads of the live endpoint (each takes 0.1-0.2 s: 2,000 matches of JSON)
ENC = msgspec.json.Encoder()
SCORE_COLS = [f"{s}_{p}" for s in ("home", "away")
              for p in ("regular", "half_time", "overtime", "penalties", "red_cards", "yellow_cards", "corners")]
BASELINE_COLS = ["status_id", *SCORE_COLS, "provider_update_time", "last_event_ts"]


def live_items(world, n):
    now = world.clock.now()
    decoded = decode.detail_live(ENC.encode({"code": 0, "results": world.detail_live()}), now)
    items = [i for i in decoded.items if i.score.status_id in LIVE_STATUSES][:n]
    if len(items) < n:
        sys.exit(f"the simulator's day has {len(items)} live matches at 18:30, not {n}: raise --world-matches")
    return items


def seed_rows(pool, world, ids):
    wanted, found = set(ids), []
    for day in (world.day - 86400, world.day):
        results, extra = world.diary(day)
        decoded = decode.diary(ENC.encode({"code": 0, "results": results, "results_extra": extra}), world.clock.now())
        found += [m for m in decoded.items if m.id in wanted]
    with pool.connection() as conn:
        store.upsert_objects(conn, [match_rows.object_row(m) for m in found])
        conn.commit()
    return len(found)


def changed(items, k):
    """Round k's items: each match one yellow card more than in round k-1."""
    out = []
    for i in items:
        home = msgspec.structs.replace(i.score.home, yellow_cards=i.score.home.yellow_cards + k)
        out.append(msgspec.structs.replace(i, score=msgspec.structs.replace(i.score, home=home)))
    return out


def pipeline_round(pipeline, items, provider_time):
    started = time.perf_counter()
    applied = pipeline.counts["applied"]
    pipeline.route_live(items, provider_time, time.time())
    while pipeline.counts["applied"] - applied < len(items):
        gevent.sleep(0)
    written = pipeline.flush()
    took = time.perf_counter() - started
    if written < len(items):
        sys.exit(f"the pipeline wrote {written} of {len(items)} rows in a round")
    return len(items) / took


BASELINE_SQL = (f"UPDATE matches AS m SET {', '.join(f'{c} = v.{c}' for c in BASELINE_COLS)} "
                f"FROM (VALUES %s) AS v(id, {', '.join(BASELINE_COLS)}) WHERE m.id = v.id "
                f"AND (m.provider_update_time IS NULL OR m.provider_update_time <= v.provider_update_time)")
BASELINE_TEMPLATE = "(%s, " + ", ".join(["%s::smallint"] * (1 + len(SCORE_COLS)) + ["%s::bigint"] * 2) + ")"


def baseline_round(dsn, items, provider_time):
    rows = []
    now = int(time.time())
    for i in items:
        cols = match_rows.score_columns(i.score.home, i.score.away)
        rows.append((i.id, i.score.status_id, *[cols[c] for c in SCORE_COLS], provider_time, now))
    conn = psycopg2.connect(dsn)
    try:
        started = time.perf_counter()
        n = 0
        with conn.cursor() as cur:
            for k in range(0, len(rows), 500):   # 500 rows a statement, like goald's writer
                psycopg2.extras.execute_values(cur, BASELINE_SQL, rows[k:k + 500], template=BASELINE_TEMPLATE,
                                               page_size=500)
                n += cur.rowcount
        conn.commit()
        took = time.perf_counter() - started
    finally:
        conn.close()
    return len(items) / took, n


def throughput(args, maintenance, world):
    with Stack(maintenance, "ingest") as stack:     # its database only: this part runs in this process
        dsn = stack.dsn
        migrate(dsn, node="bench")
        cfg = config.load(None, {"GOALD_MATCH_RETIRE_AFTER_S": "86400"}, search=False)
        pool = Pool(dsn, maxconn=5)
        items = live_items(world, args.live)
        n_rows = seed_rows(pool, world, [i.id for i in items])
        pipeline = MatchPipeline(pool, lambda: cfg, Changes())
        sup = DynamicSupervisor.start(name="matches", registry=pipeline.registry)
        pipeline.supervisor = lambda: sup
        t0 = time.perf_counter()
        pipeline.track([i.id for i in items])
        while len(pipeline.registry) < n_rows:
            gevent.sleep(0.01)
        for ref in list(pipeline.registry.values()):
            ref.ask(Barrier())
        start_s = time.perf_counter() - t0
        pipeline.flush()
        base_time = int(world.clock.now())
        ours, theirs = [], []
        pipeline_round(pipeline, items, base_time)          # warm-up: first writes of every row
        for k in range(1, args.rounds + 1):   # interleaved; every round newer than the one before
            ours.append(pipeline_round(pipeline, changed(items, 2 * k - 1), base_time + 2 * k - 1))
            rate, n = baseline_round(dsn, changed(items, 2 * k), base_time + 2 * k)
            if n != len(items):
                sys.exit(f"the baseline wrote {n} of {len(items)} rows in a round")
            theirs.append(rate)
        sup.stop(block=True, timeout=30)
        pool.close()
        return {"live_matches": len(items), "rows": n_rows, "rounds": args.rounds, "actors_start_s": round(start_s, 2),
                "pipeline_updates_per_s": round(statistics.median(ours)),
                "baseline_updates_per_s": round(statistics.median(theirs)),
                "ratio": round(statistics.median(ours) / statistics.median(theirs), 3)}


def freshness(args, maintenance, world):
    with Stack(maintenance, "fresh") as stack:
        url = stack.simulator(matches=args.world_matches, seed=SEED, day_time="18:30")
        offset = requests.get(url + "/sim/state", timeout=60).json()["now"] - time.time()
        api = f"http://127.0.0.1:{stack.goald(url, GOALD_MATCH_RETIRE_AFTER_S='86400')}/api/matches/live"
        session = requests.Session()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            doc = session.get(api, timeout=30).json()
            if doc.get("count", 0) >= args.live * 0.9:
                break
            time.sleep(1)
        # Steady state: past the start-up catch-up (the first recent_sync reads the last hour's
        # changes of the whole day, thousands of matches, once).
        deadline = time.monotonic() + 120
        while '"job": "recent_sync", "duration_ms"' not in stack.log() and time.monotonic() < deadline:
            time.sleep(0.5)
        seen, latencies, written_lags = {}, [], []
        etag = None
        until = time.monotonic() + args.seconds
        while time.monotonic() < until:
            r = session.get(api, timeout=30, headers={"If-None-Match": etag} if etag else {})
            t_obs = time.time() + offset
            if r.status_code == 200:
                etag = r.headers.get("ETag")
                for m in r.json()["matches"]:
                    key = (m["status_id"], m["home"]["regular"], m["away"]["regular"], m["home"]["overtime"],
                           m["away"]["overtime"], m["home"]["penalties"], m["away"]["penalties"],
                           m["home"]["red_cards"], m["away"]["red_cards"], m["home"]["yellow_cards"],
                           m["away"]["yellow_cards"], m["home"]["corners"], m["away"]["corners"])
                    before = seen.get(m["id"])
                    seen[m["id"]] = key
                    if before is not None and before != key:
                        began = state_began(world, m["id"], key, t_obs)
                        if began is not None:
                            latencies.append(t_obs - began)
                            written = datetime.fromisoformat(m["updated_at"]).timestamp() + offset
                            written_lags.append(written - began)
            time.sleep(SAMPLE_GAP_S)
        return {"seconds": args.seconds, "changes": len(latencies), "matches_seen": len(seen),
                "p50_s": _r(percentile(latencies, 0.5)), "p95_s": _r(percentile(latencies, 0.95)),
                "max_s": _r(max(latencies) if latencies else None),
                "written_p50_s": _r(percentile(written_lags, 0.5)), "written_p95_s": _r(percentile(written_lags, 0.95))}


def state_began(world, mid, key, t_obs):
    """When the simulator's match began to show `key` (status, scores, cards, corners), looking
    back from t_obs; None when the timeline never showed it (a change the bench cannot place)."""
    tl = world.match(mid)
    if tl is None:
        return None
    k = tl.index_at(t_obs)
    began = None
    while k > 0:
        s = tl.snaps[k - 1]
        st = tl.state_at(s.t)
        h, a = st.home_scores, st.away_scores
        corners = (None if h[4] < 0 else h[4], None if a[4] < 0 else a[4])
        if (st.status_id, h[0], a[0], h[5], a[5], h[6], a[6], h[2], a[2], h[3], a[3], *corners) != key:
            break
        began = s.t
        k -= 1
    return began


def _r(v):
    return None if v is None else round(v, 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--live", type=int, default=2000)
    ap.add_argument("--world-matches", type=int, default=12000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    logs.setup("WARNING", "text")
    maintenance = os.environ.get("GOALD_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    today = int(time.time()) - int(time.time()) % 86400
    world = World(seed=SEED, matches=args.world_matches, clock=ManualClock(today + DAY_TIME_S), day=today)
    out = {"throughput": throughput(args, maintenance, world)}
    out["freshness"] = freshness(args, maintenance, world) if args.seconds > 0 else None
    t, f = out["throughput"], out["freshness"]
    ok = t["pipeline_updates_per_s"] >= TARGET_RATE and t["ratio"] >= TARGET_RATIO and (
        f is None or (f["p95_s"] is not None and f["p95_s"] < TARGET_FRESH_P95_S))
    if args.json:
        print(json.dumps({**out, "ok": ok}, indent=2))
    else:
        print(f"match pipeline, {t['live_matches']} live matches, {t['rounds']} rounds (median), "
              f"{t['actors_start_s']}s to start their actors")
        print(f"  goald (actors + batched guarded writes): {t['pipeline_updates_per_s']:>7} updates/s   "
              f"target >= {TARGET_RATE:.0f}")
        print(f"  raw psycopg2 execute_values baseline:    {t['baseline_updates_per_s']:>7} updates/s")
        print(f"  ratio goald / baseline:                  {t['ratio']:>7.2f}          target >= {TARGET_RATIO:.2f}")
        if f:
            print(f"freshness over {f['seconds']}s, {f['changes']} changes of {f['matches_seen']} matches: "
                  f"p50 {f['p50_s']}s, p95 {f['p95_s']}s, max {f['max_s']}s   target p95 < {TARGET_FRESH_P95_S}s")
            print(f"  of which until the row was written (its updated_at): p50 {f['written_p50_s']}s, "
                  f"p95 {f['written_p95_s']}s")
        print("OK" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
