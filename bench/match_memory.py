"""goald's memory with 2,000 and with 10,000 tracked matches (one match actor each).

For each size: `goald simulate` (its own process, not counted) serves a day whose matches mostly lie
ahead (`--day-time 00:30`: today's matches are tracked until they end), and a real `goald run` on a
fresh database on the local PostgreSQL ingests it: the diary, the tracked set, detail_live every
2 s, the minute engine, the writer, as in production. Once the `matches` supervisor's child count
has held steady for 10 s, goald's RSS (psutil) is sampled every second for `--seconds`.
Reported per size: tracked matches, RSS median and max, and per tracked match.
Targets: < 150 MB with 2,000 tracked, < 400 MB with 10,000.

Run:  python bench/match_memory.py [--sizes 2000,10000] [--seconds 20] [--json]
Exit status 1 when a target is missed.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _goald import Stack  # noqa: E402

TARGETS_MB = {2000: 150.0, 10000: 400.0}
WORLD_PER_TRACKED = 1.12   # the evening-before matches of a day are not today's: a little more


def tracked(url):
    try:
        tree = requests.get(url + "/health/actors", timeout=30).json()["tree"]
    except (requests.RequestException, ValueError, KeyError):
        return 0
    node = next((c for c in tree["children"] if c["name"] == "matches"), None)
    return 0 if node is None else node["counts"]["children"]


def measure(size, seconds, maintenance):
    with Stack(maintenance, "mem") as stack:
        sim_url = stack.simulator(matches=int(size * WORLD_PER_TRACKED), seed=5, day_time="00:30")
        url = f"http://127.0.0.1:{stack.goald(sim_url)}"
        last, steady_since = -1, time.monotonic()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            n = tracked(url)
            if n != last:
                last, steady_since = n, time.monotonic()
            elif n > 0 and time.monotonic() - steady_since >= 10:
                break
            time.sleep(1)
        proc = psutil.Process(stack.goald_proc.pid)
        rss = []
        for _ in range(seconds):
            rss.append(proc.memory_info().rss / 2**20)
            time.sleep(1)
        n = tracked(url)
        return {"size": size, "tracked": n, "rss_median_mb": round(statistics.median(rss), 1),
                "rss_max_mb": round(max(rss), 1), "kb_per_match": round(statistics.median(rss) * 1024 / max(n, 1), 1),
                "target_mb": TARGETS_MB.get(size)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000,10000")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    maintenance = os.environ.get("GOALD_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    out = [measure(int(s), args.seconds, maintenance) for s in args.sizes.split(",")]
    ok = all(r["tracked"] >= r["size"] and (r["target_mb"] is None or r["rss_max_mb"] < r["target_mb"]) for r in out)
    if args.json:
        print(json.dumps({"sizes": out, "ok": ok}, indent=2))
    else:
        print(f"{'wanted':>7}{'tracked':>9}{'RSS median':>12}{'RSS max':>10}{'KB/match':>10}{'target':>9}")
        for r in out:
            print(f"{r['size']:>7}{r['tracked']:>9}{r['rss_median_mb']:>10.1f}MB{r['rss_max_mb']:>8.1f}MB"
                  f"{r['kb_per_match']:>10.1f}{'< %d MB' % r['target_mb'] if r['target_mb'] else '':>9}")
        print("OK" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
