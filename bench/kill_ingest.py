"""`kill -9` of goald at random moments during ingest, `--kills` (20) times, restarting it each
time: afterwards `goald audit matches` is clean, no kick-off timestamp was rewritten, and no
match's provider_update_time went backwards (no update applied twice out of order).

`goald simulate` (its busiest hour) and one `goald run` on a fresh database. Each round: goald
runs a random 3-15 s (detail_live every 2 s, writes every 0.1 s, the minute engine), the bench
reads every match's four kick-offs and provider_update_time, sends SIGKILL, starts goald again
and waits until it is ready and has polled again; then it reads them again and compares: a
kick-off once set must be the same, a provider_update_time must not be smaller. The database's
own guards (sql/0006: GD001 and GD002) would refuse either; the log is searched for them too.

Run:  python bench/kill_ingest.py [--kills 20] [--matches 1500] [--json]
      (GOALD_BENCH_DATABASE_URL: a maintenance DSN, default postgresql://postgres@127.0.0.1:5432/postgres)
Exit status 1 when anything is found.
"""
import argparse
import json
import os
import random
import signal
import sys
import time

import psycopg2

sys.path.insert(0, os.path.dirname(__file__))
from _goald import Stack  # noqa: E402

MAINTENANCE = os.environ.get("GOALD_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
KICKOFFS = ("first_half_kickoff_ts", "second_half_kickoff_ts", "overtime_kickoff_ts", "overtime_second_kickoff_ts")


def snapshot(dsn: str) -> dict:
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        cur.execute(f"SELECT id, {', '.join(KICKOFFS)}, provider_update_time FROM matches")
        return {r[0]: r[1:] for r in cur.fetchall()}


def compare(before: dict, after: dict) -> list[str]:
    problems = []
    for mid, old in before.items():
        new = after.get(mid)
        if new is None:
            problems.append(f"match {mid}: row gone")
            continue
        for name, a, b in zip(KICKOFFS, old[:4], new[:4]):
            if a is not None and b != a:
                problems.append(f"match {mid}: {name} {a} -> {b}")
        if old[4] is not None and (new[4] is None or new[4] < old[4]):
            problems.append(f"match {mid}: provider_update_time {old[4]} -> {new[4]}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--matches", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    problems, restarts_s, rows = [], [], 0
    with Stack(MAINTENANCE, "kill") as stack:
        sim = stack.simulator(matches=args.matches, seed=4, day_time="18:30")
        stack.goald(sim)
        time.sleep(15)
        for _ in range(args.kills):
            time.sleep(rng.uniform(3, 15))
            before = snapshot(stack.dsn)
            stack.goald_proc.send_signal(signal.SIGKILL)
            stack.goald_proc.wait(10)
            t = time.monotonic()
            stack.goald(sim)
            restarts_s.append(time.monotonic() - t)
            time.sleep(4)                                  # a couple of polls after the restart
            after = snapshot(stack.dsn)
            rows = len(after)
            problems += compare(before, after)
        log = stack.log()
        guard_errors = sum(log.count(code) for code in ("GD001", "GD002"))
        audit = stack.audit()
    restarts_s.sort()
    out = {"kills": args.kills, "matches_in_database": rows, "problems": problems[:20], "problem_count": len(problems),
           "guard_errors_in_log": guard_errors, "audit_exit": audit.returncode,
           "audit": audit.stdout.strip().splitlines()[-12:],
           "restart_to_ready_s_median": round(restarts_s[len(restarts_s) // 2], 1) if restarts_s else None}
    ok = not problems and guard_errors == 0 and audit.returncode == 0
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.kills} x kill -9 during ingest, restarted each time ({rows} matches in the database; "
              f"restart to ready: median {out['restart_to_ready_s_median']} s)")
        print(f"  kick-offs rewritten / provider times gone backwards: {len(problems)}   target 0"
              + (f": {problems[:5]}" if problems else ""))
        print(f"  GD001/GD002 refusals in the log: {guard_errors}   target 0")
        print(f"  goald audit matches: exit {audit.returncode}: {out['audit'][-1] if out['audit'] else ''}   "
              f"target: no violation")
        for line in out["audit"][:-1]:
            print(f"    {line}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
