"""The operator console's pages with a 1,000,000-row run ledger: p50 / p95 per page.

A fresh database on the local PostgreSQL gets a real `goald run` (fed by `goald simulate`, so the
actor tree, provider and matches pages have live data), then `--rows` ledger rows (default one
million) spread over the catalog's jobs across the last 29 days (1 % failed, with errors), 29
days of pool samples every 10 s for this node, and 10,000 audit rows; then ANALYZE. An operator
logs in (`goald operator add`), and each page and its JSON twin gets `wrk -t1 -c4 -d<seconds>s`
with the session cookie (a few operators looking at once), cycling through its variants (run
history filters, run details, pool chart spans).

Printed per page: requests/s and latency p50 / p95 / p99 beside the target: p95 < 100 ms.

Run:  python bench/console.py [--rows 1000000] [--seconds 8] [--json]   (needs wrk)
Exit status 1 when a target is missed, 2 when a tool is missing.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _wrk  # noqa: E402
from _goald import Stack, goald_env  # noqa: E402

TARGET_P95_MS = 100.0
PASSWORD = "bench password 1234"
FILL_LEDGER = """
INSERT INTO job_runs (job, period_at, scheduled_at, trigger, outcome, node, started_at, finished_at, heartbeat_at,
                      duration_ms, offset_s, staggered, rows_affected, queries_issued, pool_utilization_at_start, error)
SELECT j.name, t, t, 'schedule', CASE WHEN r < 0.01 THEN 'failed' ELSE 'succeeded' END, 'bench-old', t,
       t + make_interval(secs => r * 2), t, (r * 2000)::int, 0, false, (r * 1000)::int, 1 + (r * 9)::int, r * 80,
       CASE WHEN r < 0.01 THEN 'OperationalError: server closed the connection unexpectedly' END
FROM unnest(%(jobs)s::text[]) AS j(name)
CROSS JOIN LATERAL generate_series(now() - interval '29 days', now() - interval '10 minutes',
                                   make_interval(secs => %(step)s)) AS t
CROSS JOIN LATERAL (SELECT random() AS r WHERE t IS NOT NULL) AS x   -- correlated: one draw per row
ORDER BY t, j.name                                 -- ids in time order, jobs interleaved, as goald writes them
ON CONFLICT DO NOTHING
"""
FILL_SAMPLES = """
INSERT INTO pool_samples (sampled_at, node, active, idle, waiting, total, max, utilization, peak_utilization)
SELECT t, %(node)s, (r * 5)::int, 2, 0, 7, 10, r * 50, r * 80
FROM generate_series(now() - interval '29 days', now() - interval '1 minute', interval '10 seconds') AS t
CROSS JOIN LATERAL (SELECT random() AS r WHERE t IS NOT NULL) AS x   -- correlated: one draw per row
"""
FILL_AUDIT = """
INSERT INTO audit_log (at, actor, node, action, target, reason)
SELECT now() - make_interval(secs => i * 60), 'op' || (i % 7), 'bench', 'login', NULL, NULL
FROM generate_series(1, 10000) AS i
"""


def wrk(base, paths, cookie, seconds, workdir):
    """A few operators at once: 4 connections with the session cookie, cycling through `paths`."""
    return _wrk.run(base, paths, seconds, workdir, connections=4, headers={"Cookie": cookie})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    maintenance = os.environ.get("GOALD_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with Stack(maintenance, "console") as stack:
        sim_url = stack.simulator(matches=1500, seed=4, day_time="18:30")
        port = stack.goald(sim_url, tag="console")
        base = f"http://127.0.0.1:{port}"
        added = subprocess.run([sys.executable, "-m", "goald", "operator", "add", "bench", "--password-stdin"],
                               input=PASSWORD + "\n", capture_output=True, text=True,
                               env=goald_env(GOALD_DATABASE_URL=stack.dsn), timeout=60)
        if added.returncode != 0:
            sys.exit(f"goald operator add failed: {added.stderr}")
        session = requests.Session()
        r = session.post(base + "/admin/login", data={"name": "bench", "password": PASSWORD}, timeout=30)
        if "/admin/jobs" not in r.url:
            sys.exit(f"login failed: {r.status_code} {r.text[:200]}")
        jobs = [j["name"] for j in session.get(base + "/admin/jobs.json", timeout=30).json()["jobs"]]
        started = time.monotonic()
        with psycopg2.connect(stack.dsn) as c, c.cursor() as cur:
            step = 29 * 86400 / max(1, args.rows / len(jobs))
            cur.execute(FILL_LEDGER, {"jobs": jobs, "step": step})
            cur.execute(FILL_SAMPLES, {"node": "console"})
            cur.execute(FILL_AUDIT)
        c = psycopg2.connect(stack.dsn)
        c.autocommit = True                         # VACUUM runs outside a transaction
        try:
            with c.cursor() as cur:
                cur.execute("VACUUM ANALYZE job_runs")
                cur.execute("VACUUM ANALYZE pool_samples")
                cur.execute("ANALYZE audit_log")
                cur.execute("SELECT count(*) FROM job_runs")
                ledger_rows = cur.fetchone()[0]
                cur.execute("SELECT min(id), max(id) FROM job_runs WHERE node = 'bench-old'")
                lo, hi = cur.fetchone()
                cur.execute("SELECT id FROM job_runs WHERE outcome = 'failed' ORDER BY id DESC LIMIT 1")
                failed_id = cur.fetchone()[0]
        finally:
            c.close()
        filled_s = time.monotonic() - started
        cookie = f"goald_session={session.cookies['goald_session']}"
        mid = session.get(base + "/admin/matches.json", timeout=30).json()["matches"]
        match_paths = [f"/admin/matches/{m['id']}" for m in mid[:10]] or ["/admin/matches"]
        rare = jobs[0]
        pages = {
            "jobs": ["/admin/jobs", "/admin/jobs?q=sync"],
            "timeline": ["/admin/timeline"],
            "runs": ["/admin/runs", f"/admin/runs?before={hi - 5000}"],
            "runs?job": [f"/admin/runs?job={j}" for j in jobs],
            "runs?outcome=failed": ["/admin/runs?outcome=failed", f"/admin/runs?outcome=failed&before={failed_id}"],
            "runs?since,until": ["/admin/runs?since=2026-01-01T00:00:00&until=2026-01-02T00:00:00",
                                 f"/admin/runs?job={rare}&outcome=failed"],
            "run detail": [f"/admin/runs/{i}" for i in range(lo, hi, max(1, (hi - lo) // 50))],
            "pool": ["/admin/pool?hours=1", "/admin/pool?hours=24", "/admin/pool?hours=72"],
            "actors": ["/admin/actors"],
            "provider": ["/admin/provider"],
            "matches": ["/admin/matches", "/admin/matches?stale=1"],
            "match detail": match_paths,
            "config": ["/admin/config"],
            "audit": ["/admin/audit", "/admin/audit?action=login"],
        }
        for name, paths in pages.items():          # every answer is a 200 before anything is timed
            for p in paths[:2] + [paths[0].replace("?", ".json?", 1) if "?" in paths[0] else paths[0] + ".json"]:
                got = session.get(base + p, timeout=60, allow_redirects=False)
                if got.status_code != 200:
                    sys.exit(f"{p} answered {got.status_code}: {got.text[:300]}")
        results = {}
        for name, paths in pages.items():
            results[name] = wrk(base, paths, cookie, args.seconds, stack.workdir)
            twins = [re.sub(r"^(/admin/[^?]*)", r"\1.json", p) for p in paths]
            results[name + " (json)"] = wrk(base, twins, cookie, args.seconds, stack.workdir)
        misses = [n for n, r in results.items() if r["p95_ms"] >= TARGET_P95_MS or r["errors"] or not r["requests"]]
        if args.json:
            print(json.dumps({"ledger_rows": ledger_rows, "fill_s": round(filled_s, 1), "results": results,
                              "misses": misses, "ok": not misses}, indent=2))
        else:
            print(f"console pages, wrk -t1 -c4 -d{args.seconds}s with a session cookie; ledger {ledger_rows:,} rows "
                  f"(filled in {filled_s:.0f} s), 29 days of pool samples, 10,000 audit rows")
            print(f"{'page':<26}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}   target p95")
            for name, r in results.items():
                print(f"{name:<26}{r['rps']:>8}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['errors']:>8}"
                      f"   < {TARGET_P95_MS:g} ms {'ok' if name not in misses else 'MISSED'}")
            print("OK" if not misses else "TARGET MISSED: " + ", ".join(misses))
        return 0 if not misses else 1


if __name__ == "__main__":
    sys.exit(main())
