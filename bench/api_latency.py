"""The public read endpoints at 100 concurrent clients: goald with its memory cache, with Redis, and
with the standings and h2h caches switched off (uncached), against the FastAPI peer, in one run.

`goald simulate` (a day of `--world-matches` at 18:30) feeds three `goald run` nodes on one fresh
database on the local PostgreSQL: `mem` (the default memory cache; it leads the ingest, as a
single node would), `redis` (`cache.use_redis` on the local Redis, a prefix of its own) and
`nocache` (`cache.standings` and `cache.h2h` off: every request builds from the database). Once
the day is in, the bench runs goald's own standings and h2h syncs (actors/jobs/tables.py) against
the simulator and ANALYZEs the tables (as autovacuum would within its first minute), then the peer
(bench/_fastapi_api.py: FastAPI on uvicorn, one process, a psycopg2 pool, the same queries and
answer shapes, no cache, GZipMiddleware) serves the same database. The match endpoints (live,
diary, one match) are served from goald's shared bodies on every node (they are the live
pipeline's: bench/live_endpoint.py); `nocache` only changes standings and h2h.

Each server gets, per endpoint, two runs of `wrk -t1 -c100` (one load thread: the machine has two
cores and the server needs one) with `Accept-Encoding: gzip`, cycling through `--ids` different
seasons / competitions / matches (a Lua script):
- **saturated**: every client sends its next request as soon as it has the answer. This measures
  capacity (requests/s). Latency here is bounded below by throughput (Little's law: mean = 100 /
  requests per second), so a p95 of 5 ms at 100 saturating clients needs some 20,000 requests/s:
  more than the server itself can do. The `floor` row (bench/_pywsgi_floor.py: goald's WSGI server
  with one fixed body and no application) shows the most any endpoint can reach on this machine.
- **paced**: each of the 100 clients waits a random think time (uniform over 0 to twice
  `--think-ms`, 250 ms on average) after an answer before it sends its next request: at most 400
  requests/s offered, arriving independently (a fixed think time would keep the 100 clients in
  step, bursts of 100 at once). This measures latency under load: the regime of the seeds'
  production p95 figures, where the latency targets are judged.

Printed per endpoint and server: requests/s and latency p50 / p95 / p99 of both runs (a server
that completes no request shows 0; `errors` are wrk's: timeouts, resets, non-2xx). Targets, at
100 paced clients: cached standings p95 < 5 ms (mem and redis; the seed's bar was 200 ms),
uncached standings and uncached h2h p95 < 50 ms (the seed's: 300 ms for h2h); and goald (mem)
ahead of the peer on every endpoint: higher requests/s saturated, lower p95 in both runs.

Run:  python bench/api_latency.py [--world-matches 3000] [--seconds 10] [--ids 30] [--think-ms 250] [--json]
      (needs wrk, fastapi, uvicorn and a Redis on 127.0.0.1:6379)
Exit status 1 when a target is missed, 2 when a tool is missing.
"""
from gevent import monkey

monkey.patch_all()
from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent.event  # noqa: E402
import psycopg2  # noqa: E402
import requests  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _wrk  # noqa: E402
from _goald import Stack  # noqa: E402

TARGET_CACHED_STANDINGS_P95_MS = 5.0
TARGET_UNCACHED_P95_MS = 50.0
SERVERS = ("mem", "redis", "nocache", "fastapi")


def wrk(base, paths, seconds, workdir, think_ms=0):
    """One wrk run of 100 clients over `paths` with gzip; `think_ms` > 0: paced, 0: saturated."""
    return _wrk.run(base, paths, seconds, workdir, connections=100, headers={"Accept-Encoding": "gzip"},
                    think_ms=think_ms)


def run_syncs(dsn, sim_url):
    """goald's standings and h2h syncs, in this process, against the simulator."""
    from goald import config
    from goald.actors.context import JobContext
    from goald.actors.jobs import tables
    from goald.actors.ledger import Occurrence
    from goald.db.pool import Pool
    from goald.provider.client import ProviderClient

    # The local simulator has no per-minute budget for match/analysis: h2h_sync unpaced.
    cfg = config.load(None, {"GOALD_H2H_BATCH_SIZE": "400", "GOALD_H2H_CALLS_PER_MINUTE": "0"}, search=False)
    pool = Pool(dsn, maxconn=4)
    client = ProviderClient(sim_url, "demo", "demo")
    try:
        out = {}
        for body in (tables.standings_sync, tables.h2h_sync):
            ctx = JobContext(occurrence=Occurrence(body.__name__, time.time()), pool=pool, config=cfg, node="bench",
                             cancel=gevent.event.Event(), provider=client)
            out[body.__name__] = body(ctx)
        return out
    finally:
        client.close()
        pool.close()


def ids(dsn, n):
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        cur.execute("SELECT season_id, competition_id FROM standings ORDER BY season_id LIMIT %s", (n,))
        seasons = cur.fetchall()
        cur.execute("SELECT match_id FROM match_h2h ORDER BY match_id LIMIT %s", (n,))
        h2h = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT id FROM matches ORDER BY id LIMIT %s", (n,))
        matches = [r[0] for r in cur.fetchall()]
    return seasons, h2h, matches


def slowest(r):
    """A run's p95, where a server that completed no request counts as infinitely slow."""
    return r["p95_ms"] if r["rps"] > 0 else float("inf")


def analyze(dsn):
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        cur.execute("ANALYZE")


def start_floor(stack, port, gz_body):
    path = os.path.join(stack.workdir, "floor-body.gz")
    Path(path).write_bytes(gz_body)
    stack.spawn([sys.executable, str(Path(__file__).with_name("_pywsgi_floor.py")), str(port), path],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=stack.workdir)
    wait_for(f"http://127.0.0.1:{port}/")


def wait_for(url):
    for _ in range(150):
        try:
            if requests.get(url, timeout=30).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    sys.exit(f"nothing answers 200 at {url}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world-matches", type=int, default=3000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--ids", type=int, default=30)
    ap.add_argument("--think-ms", type=int, default=250)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        print("fastapi and uvicorn are not installed (pip install -e '.[bench]')", file=sys.stderr)
        return 2
    maintenance = os.environ.get("GOALD_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with Stack(maintenance, "api") as stack:
        sim_url = stack.simulator(matches=args.world_matches, seed=3, day_time="18:30")
        ports = {"mem": stack.goald(sim_url, tag="mem")}
        deadline = time.monotonic() + 120
        while requests.get(f"http://127.0.0.1:{ports['mem']}/api/matches/live", timeout=30).json().get("count", 0) < 50:
            if time.monotonic() > deadline:
                sys.exit("goald did not ingest the day's live matches within 120 s")
            time.sleep(1)
        ports["redis"] = stack.goald(sim_url, tag="redis", GOALD_CACHE_USE_REDIS="true",
                                     GOALD_CACHE_PREFIX=f"bench{uuid.uuid4().hex[:8]}")
        ports["nocache"] = stack.goald(sim_url, tag="nocache", GOALD_CACHE_STANDINGS="false", GOALD_CACHE_H2H="false")
        synced = run_syncs(stack.dsn, sim_url)
        analyze(stack.dsn)
        seasons, h2h, matches = ids(stack.dsn, args.ids)
        if not seasons or not h2h:
            sys.exit(f"no standings or h2h to serve after the syncs: {synced}")
        ports["fastapi"] = 18000 + os.getpid() % 1000
        stack.spawn([sys.executable, str(Path(__file__).with_name("_fastapi_api.py")), stack.dsn, str(ports["fastapi"])],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=stack.workdir)
        wait_for(f"http://127.0.0.1:{ports['fastapi']}/api/standings/{seasons[0][0]}")
        today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        endpoints = {
            "standings": [f"/api/standings/{s}" for s, _ in seasons],
            "standings_by_competition": sorted({f"/api/standings/competition/{c}" for _, c in seasons if c}),
            "h2h": [f"/api/matches/{m}/h2h" for m in h2h],
            "match": [f"/api/matches/{m}" for m in matches],
            "live": ["/api/matches/live"],
            "diary": [f"/api/matches/diary?date={today}"],
        }
        for who, port in ports.items():       # every answer is a 200 before anything is timed
            for name, paths in endpoints.items():
                r = requests.get(f"http://127.0.0.1:{port}{paths[0]}", timeout=30)
                if r.status_code != 200:
                    sys.exit(f"{who} answers {r.status_code} to {paths[0]}: {r.text[:200]}")
        gz_body = requests.get(f"http://127.0.0.1:{ports['mem']}{endpoints['standings'][0]}",
                               headers={"Accept-Encoding": "gzip"}, stream=True, timeout=30).raw.read()
        gz_size = len(gz_body)
        ports["floor"] = ports["fastapi"] + 1
        start_floor(stack, ports["floor"], gz_body)
        results = {}
        for who in SERVERS:                   # a server at a time (see bench/live_endpoint.py on why)
            for name, paths in endpoints.items():
                for regime, think in (("saturated", 0), ("paced", args.think_ms)):
                    results[(who, name, regime)] = wrk(f"http://127.0.0.1:{ports[who]}", paths, args.seconds,
                                                       stack.workdir, think)
        for regime, think in (("saturated", 0), ("paced", args.think_ms)):
            results[("floor", "standings", regime)] = wrk(f"http://127.0.0.1:{ports['floor']}",
                                                          endpoints["standings"], args.seconds, stack.workdir, think)
        misses = []

        def check(ok, what):
            if not ok:
                misses.append(what)
        for who in ("mem", "redis"):
            check(results[(who, "standings", "paced")]["p95_ms"] < TARGET_CACHED_STANDINGS_P95_MS,
                  f"{who}: cached standings p95 < {TARGET_CACHED_STANDINGS_P95_MS:g} ms (paced)")
        for name in ("standings", "h2h"):
            check(results[("nocache", name, "paced")]["p95_ms"] < TARGET_UNCACHED_P95_MS,
                  f"uncached {name} p95 < {TARGET_UNCACHED_P95_MS:g} ms (paced)")
        for name in endpoints:
            g, f = results[("mem", name, "saturated")], results[("fastapi", name, "saturated")]
            gp, fp = results[("mem", name, "paced")], results[("fastapi", name, "paced")]
            check(g["p95_ms"] < slowest(f) and g["rps"] > f["rps"] and gp["p95_ms"] < slowest(fp),
                  f"goald ahead of FastAPI on {name}")
        errors = sum(r["errors"] for (who, _, _), r in results.items() if who not in ("fastapi", "floor"))
        check(errors == 0, "no errors from goald")
        out = {"/".join(k): r for k, r in results.items()}
        if args.json:
            print(json.dumps({"results": out, "synced": synced, "misses": misses, "ok": not misses}, indent=2))
        else:
            print(f"public read endpoints, wrk -t1 -c100 -d{args.seconds}s, gzip, cycling {args.ids} ids; saturated "
                  f"and paced (a random think time of {args.think_ms} ms on average); {args.world_matches} simulated "
                  f"matches; syncs: {synced}")
            print(f"{'':<36}{'--------- saturated ----------':>38}{'----------- paced ------------':>38}")
            cols = f"{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'err':>6}"
            print(f"{'endpoint':<26}{'server':<10}{cols}{cols}")
            for name in endpoints:
                for who in SERVERS + (("floor",) if name == "standings" else ()):
                    line = f"{name:<26}{who:<10}"
                    for regime in ("saturated", "paced"):
                        r = results[(who, name, regime)]
                        line += (f"{r['rps']:>8}{r['p50_ms']:>8.2f}{r['p95_ms']:>8.2f}{r['p99_ms']:>8.2f}"
                                 f"{r['errors']:>6}")
                    print(line)
            print(f"floor: goald's WSGI server answering one fixed {gz_size}-byte body with no application "
                  f"(bench/_pywsgi_floor.py): the most any endpoint can reach on this machine")
            print(f"targets (paced): cached standings p95 < {TARGET_CACHED_STANDINGS_P95_MS:g} ms (seed: 200 ms); "
                  f"uncached standings and h2h p95 < {TARGET_UNCACHED_P95_MS:g} ms (seed h2h: 300 ms); goald (mem) "
                  f"ahead of FastAPI on every endpoint (req/s saturated, p95 in both runs)")
            print("OK" if not misses else "TARGET MISSED: " + "; ".join(misses))
        return 0 if not misses else 1


if __name__ == "__main__":
    sys.exit(main())
