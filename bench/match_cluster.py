"""Several goald nodes on one database, for `--minutes` (10): provider calls per ingest
occurrence, the nodes' answers for the same match at the same second, the audit; then the leader
is killed with -9 and the others carry on.

`goald simulate` (its busiest hour) and `--nodes` (3) `goald run` on one fresh database, each in
its own process. During the window, every second, one live match (in turn) is read from every
node at once (`/api/matches/<id>`, one thread per node) and the answers compared whole. At the
end: detail_live requests the simulator served / detail_live occurrences in the ledger (target
1.00: each occurrence polls the provider once across the cluster); identical answers (target:
all; a read that straddles a write can differ by one update, so the figure is quoted as it is);
`goald audit matches` (target: no violation). Then the leader gets SIGKILL and after
`--after-kill` seconds: the largest gap between two consecutive detail_live occurrences that ran
(target: one period, 2 s, i.e. no occurrence lost) and the node that took over.

Run:  python bench/match_cluster.py [--nodes 3] [--minutes 10] [--matches 1500] [--json]
      (GOALD_BENCH_DATABASE_URL: a maintenance DSN, default postgresql://postgres@127.0.0.1:5432/postgres)
Exit status 1 when a target is missed.
"""
import argparse
import json
import os
import signal
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psycopg2

sys.path.insert(0, os.path.dirname(__file__))
from _goald import Stack  # noqa: E402

MAINTENANCE = os.environ.get("GOALD_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def served(sim_url: str, path: str) -> int:
    return sum(get(f"{sim_url}/sim/state")["served"].get(path, {}).values())


def occurrences(dsn: str, since: float, until: float | None = None) -> list[tuple]:
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        cur.execute("SELECT extract(epoch FROM scheduled_at)::float8, node, outcome FROM job_runs "
                    "WHERE job = 'detail_live' AND scheduled_at >= to_timestamp(%s) "
                    "AND (%s::float8 IS NULL OR scheduled_at < to_timestamp(%s)) ORDER BY scheduled_at",
                    (since, until, until))
        return cur.fetchall()


def leader_of(stack: Stack) -> str | None:
    last = {}
    for tag, (_, log) in stack.nodes.items():
        for line in open(log).read().splitlines():
            if '"cluster.leader_acquired"' in line or '"cluster.leader_released"' in line:
                e = json.loads(line)
                last[tag] = (e["ts"], e["event"])
    held = [(ts, tag) for tag, (ts, ev) in last.items() if ev == "cluster.leader_acquired"]
    return max(held)[1] if held else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--matches", type=int, default=1500)
    ap.add_argument("--after-kill", type=float, default=60.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict = {}
    with Stack(MAINTENANCE, "cluster") as stack:
        sim = stack.simulator(matches=args.matches, seed=3, day_time="18:30")
        ports = {f"node{i + 1}": stack.goald(sim, tag=f"node{i + 1}") for i in range(args.nodes)}
        time.sleep(20)                                   # past the start-up catch-up
        start, polls0 = time.time(), served(sim, "match/detail_live")
        same = differ = 0
        examples = []
        pool = ThreadPoolExecutor(len(ports))
        k = 0
        while time.time() - start < args.minutes * 60:
            t = time.time()
            first = next(iter(ports.values()))
            live = get(f"http://127.0.0.1:{first}/api/matches/live")["matches"]
            if live:
                mid = live[k % len(live)]["id"]
                k += 1
                answers = list(pool.map(lambda p: get(f"http://127.0.0.1:{p}/api/matches/{mid}")["match"],
                                        ports.values()))
                if all(a == answers[0] for a in answers):
                    same += 1
                else:
                    differ += 1
                    if len(examples) < 3:
                        keys = sorted(k2 for k2 in answers[0] if any(a.get(k2) != answers[0].get(k2) for a in answers))
                        examples.append({"match": mid, "fields": keys})
            time.sleep(max(0.0, 1.0 - (time.time() - t)))
        end = time.time()
        polls = served(sim, "match/detail_live") - polls0
        occ = occurrences(stack.dsn, start, end)
        audit = stack.audit()
        leader = leader_of(stack)
        killed_at = time.time()
        stack.nodes[leader][0].send_signal(signal.SIGKILL)
        stack.nodes[leader][0].wait(10)
        time.sleep(args.after_kill)
        after = [r for r in occurrences(stack.dsn, killed_at - 10) if r[2] in ("succeeded", "failed")]
        gaps = [b[0] - a[0] for a, b in zip(after, after[1:])]
        successor = leader_of(stack)
        violations = [line for line in audit.stdout.splitlines() if line.startswith("match ")]
        out = {
            "nodes": args.nodes, "minutes": round((end - start) / 60, 1),
            "provider_calls": polls, "occurrences": len(occ), "occurrence_nodes": sorted({r[1] for r in occ}),
            "calls_per_occurrence": round(polls / len(occ), 3) if occ else None,
            "compared": same + differ, "identical": same, "differing": differ, "differing_examples": examples,
            "audit_exit": audit.returncode, "audit_summary": audit.stdout.strip().splitlines()[-1:],
            "audit_violations": violations[:10],
            "killed": leader, "took_over": successor, "max_gap_after_kill_s": max(gaps) if gaps else None,
            "occurrences_after_kill": len(after),
        }
    ok = (out["calls_per_occurrence"] == 1.0 and out["audit_exit"] == 0 and out["max_gap_after_kill_s"] is not None
          and out["max_gap_after_kill_s"] <= 2.0 + 0.5 and out["took_over"] not in (None, out["killed"]))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{out['nodes']} nodes, {out['minutes']} min on one database")
        print(f"  provider calls per ingest occurrence: {out['calls_per_occurrence']} "
              f"({out['provider_calls']} detail_live calls / {out['occurrences']} occurrences, run by "
              f"{', '.join(out['occurrence_nodes'])})   target 1.00")
        print(f"  same match, same second, every node: {out['identical']} of {out['compared']} identical "
              f"({out['differing']} differing{': ' + json.dumps(examples) if examples else ''})")
        print(f"  goald audit matches: exit {out['audit_exit']} {out['audit_summary']}   target: no violation")
        print(f"  kill -9 of the leader ({out['killed']}): {out['took_over']} took over; largest gap between "
              f"detail_live occurrences {out['max_gap_after_kill_s']} s over {out['occurrences_after_kill']} "
              f"occurrences   target <= one period (2 s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
