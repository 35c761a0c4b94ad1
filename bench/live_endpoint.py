"""`GET /api/matches/live` with 2,000 live matches and 100 concurrent clients: goald against the
FastAPI app a Python team would otherwise write, in one run.

`goald simulate` (a day of `--world-matches` at 18:30, its busiest hour: over 2,000 live matches)
feeds a real `goald run` on a fresh database on the local PostgreSQL; once the live set is in,
the peer (bench/_fastapi_live.py: FastAPI on uvicorn, one process, a psycopg2 pool, the same query
and fields, GZipMiddleware) serves the same database. goald keeps ingesting all along (detail_live
every 2 s, the minute engine, the writer), as in production: its bodies are rebuilt whenever the
data change. Each server in turn gets `wrk -t2 -c100 -d<seconds>s` (Debian's wrk; a Lua `done`
hook prints the percentiles), `--rounds` rounds (goald's first, then the peer's), with and without `Accept-Encoding:
gzip` (what browsers and most clients send). Reported per server and encoding: requests/s and
latency p50 / p95 / p99 (median of the rounds; a server that completes no request within the run
shows 0), and first the latency of one client alone. Targets, with gzip (the clients' case): goald's
p95 < 50 ms, and goald ahead of the peer on both p95 and requests/s.

Run:  python bench/live_endpoint.py [--world-matches 12000] [--seconds 15] [--rounds 2] [--json]
      (needs wrk, fastapi and uvicorn: apt-get install wrk; pip install -e '.[bench]')
Exit status 1 when a target is missed, 2 when a tool is missing.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _goald import Stack  # noqa: E402

TARGET_P95_MS = 50.0
LIVE_WANTED = 2000
WRK_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format("requests %d\\nduration_us %d\\n", summary.requests, summary.duration))
  io.write(string.format("errors %d\\n", summary.errors.status + summary.errors.connect + summary.errors.read
                                        + summary.errors.write + summary.errors.timeout))
  for _, q in ipairs({50, 95, 99}) do io.write(string.format("p%d %d\\n", q, latency:percentile(q))) end
end
"""


def wrk(url, seconds, gzip, script):
    cmd = ["wrk", "-t2", "-c100", f"-d{seconds}s", "--timeout", "30s", "-s", script]
    if gzip:
        cmd += ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    got = dict(line.split() for line in out.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit())
    reqs, dur = int(got["requests"]), int(got["duration_us"]) / 1e6
    return {"rps": reqs / dur, "p50_ms": int(got["p50"]) / 1000, "p95_ms": int(got["p95"]) / 1000,
            "p99_ms": int(got["p99"]) / 1000, "errors": int(got["errors"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world-matches", type=int, default=12000)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=2)
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
    with Stack(maintenance, "live") as stack:
        script = os.path.join(stack.workdir, "pct.lua")
        Path(script).write_text(WRK_SCRIPT)
        sim_url = stack.simulator(matches=args.world_matches, seed=3, day_time="18:30")
        goald_url = f"http://127.0.0.1:{stack.goald(sim_url)}/api/matches/live"
        deadline = time.monotonic() + 120
        while (count := requests.get(goald_url, timeout=30).json().get("count", 0)) < LIVE_WANTED:
            if time.monotonic() > deadline:
                sys.exit(f"goald shows {count} live matches, not {LIVE_WANTED}: raise --world-matches")
            time.sleep(1)
        peer_port = 18000 + os.getpid() % 1000
        stack.spawn([sys.executable, str(Path(__file__).with_name("_fastapi_live.py")), stack.dsn, str(peer_port)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=stack.workdir)
        peer_url = f"http://127.0.0.1:{peer_port}/api/matches/live"
        for _ in range(100):
            try:
                if requests.get(peer_url, timeout=30).json()["count"] >= LIVE_WANTED:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        unloaded = {}
        for who, url in (("goald", goald_url), ("fastapi", peer_url)):
            times = []
            for _ in range(7):
                t = time.perf_counter()
                requests.get(url, timeout=60, headers={"Accept-Encoding": "gzip"}).content
                times.append((time.perf_counter() - t) * 1000)
            unloaded[who] = round(statistics.median(times), 1)
        results = {}
        # goald's rounds first, then the peer's: a saturated peer goes on answering the requests
        # wrk left queued long after wrk stopped, which would eat into goald's next round.
        for who, url in (("goald", goald_url), ("fastapi", peer_url)):
            for _ in range(args.rounds):
                for gz in (True, False):
                    results.setdefault((who, gz), []).append(wrk(url, args.seconds, gz, script))
        out = {f"{who}{'_gzip' if gz else ''}": {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0]}
               for (who, gz), rs in results.items()}
        out["live_matches"] = count
        out["one_client_ms"] = unloaded
        g, f = out["goald_gzip"], out["fastapi_gzip"]
        ok = g["p95_ms"] < TARGET_P95_MS and g["p95_ms"] < f["p95_ms"] and g["rps"] > f["rps"] and g["errors"] == 0
        if args.json:
            print(json.dumps({**out, "ok": ok}, indent=2))
        else:
            print(f"GET /api/matches/live, {count} live matches, wrk -t2 -c100 -d{args.seconds}s, "
                  f"median of {args.rounds} rounds")
            print(f"{'':<22}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
            for key in ("goald_gzip", "fastapi_gzip", "goald", "fastapi"):
                r = out[key]
                label = key.replace("_gzip", " (gzip)")
                print(f"{label:<22}{r['rps']:>9.0f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}"
                      f"{r['errors']:>8.0f}")
            print(f"one client alone, gzip, median of 7: goald {unloaded['goald']} ms, FastAPI {unloaded['fastapi']} ms")
            print(f"targets (gzip): goald p95 < {TARGET_P95_MS:.0f} ms; goald ahead of FastAPI on p95 and req/s")
            print("OK" if ok else "TARGET MISSED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
