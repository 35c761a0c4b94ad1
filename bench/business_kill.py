"""`kill -9` of goald at random moments while two instances run the business jobs, `--kills`
(50) times, restarting the killed one each time: afterwards every balance equals the sum of its
ledger, and no grant, badge, reminder, notification or reply is duplicated or lost.

A fresh database with `goald seed-demo --users N`, `goald simulate` for matches, a local push
gateway and Telegram Bot API (bench/_outbound.py), and two `goald run` nodes, a and b. Each node
runs every business job every second (bench/_business_jobs.py: the real bodies under names of
its own, so both nodes work on the same rows at the same moments) with small batches, so every
run is part of the work and a kill lands in the middle of one. The app keeps adding work
(bench/_business_check.py `Traffic`). Each round: wait 0.5-4 s, SIGKILL node a, b or (one round
in ten) both, start them again. After the last round the traffic stops, the nodes catch up, and
bench/_business_check.py `verify` checks the tables and what reached the gateway and Telegram.

Run:  python bench/business_kill.py [--kills 50] [--users 3000] [--json]
      (GOALD_BENCH_DATABASE_URL: a maintenance DSN, default postgresql://postgres@127.0.0.1:5432/postgres)
Exit status 1 when anything is found.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _business_check import Traffic, runs, verify, wait_drained  # noqa: E402
from _business_jobs import business_jobs  # noqa: E402
from _goald import Stack, goald_env  # noqa: E402
from _outbound import PushGateway, TelegramApi  # noqa: E402

from goald import settings  # noqa: E402

MAINTENANCE = os.environ.get("GOALD_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
HERE = os.path.dirname(os.path.abspath(__file__))


def node_env(push: PushGateway, telegram: TelegramApi, suffix: str) -> dict:
    """The bench's jobs on, the production business jobs off, outbound channels local, batches small,
    leases short (a killed node's claims come back within seconds)."""
    env = {"GOALD_JOBS_MODULES": "_business_jobs", "PYTHONPATH": HERE, "BENCH_JOB_SUFFIX": suffix,
           "GOALD_PUSH_GATEWAY_URL": push.url}
    wanted = {"business.batch_size": "40", "push.batch_size": "60", "push.lease_s": "10",
              "push.notifications_per_run": "2", "badges.batch_size": "200", "predictions.batch_size": "50",
              "telegram.batch_size": "5", "telegram.lease_s": "60", "telegram.bot_token": "123:bench",
              "telegram.timeout_s": "2", "telegram.retries": "0",     # a send fits in the bench jobs' 30 s
              "telegram.api_url": telegram.url}
    known = {s.name: s for s in settings.SETTINGS}
    for name, value in wanted.items():
        if name in known:
            env[known[name].env] = value
    for spec in business_jobs():
        env[f"GOALD_JOB_{spec.name.upper()}_ENABLED"] = "false"
    return env


def goald_cli(dsn: str, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "goald", *args], capture_output=True, text=True,
                         env=goald_env(GOALD_DATABASE_URL=dsn), cwd="/")
    if out.returncode:
        sys.exit(f"goald {' '.join(args)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return out.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--drain-s", type=float, default=180)
    ap.add_argument("--latency-ms", type=float, default=80, help="the gateway's and Telegram's answer time")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    push, telegram = PushGateway(args.latency_ms / 1000), TelegramApi(args.latency_ms / 1000)
    restarts_s: list[float] = []
    with Stack(MAINTENANCE, "bizkill") as stack:
        sim = stack.simulator(matches=300, seed=3, day_time="18:30")
        goald_cli(stack.dsn, "migrate")
        seeded = goald_cli(stack.dsn, "seed-demo", "--users", str(args.users), "--seed", str(args.seed))
        envs = {s: node_env(push, telegram, s) for s in ("a", "b")}
        for s in envs:
            stack.goald(sim, tag=s, **envs[s])
        traffic = Traffic(stack.dsn, args.seed)
        traffic.start()
        killed = {"a": 0, "b": 0}
        for i in range(args.kills):
            time.sleep(rng.uniform(0.5, 4.0))
            victims = ["a", "b"] if rng.random() < 0.1 else [rng.choice("ab")]
            for v in victims:
                proc, _ = stack.nodes[v]
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                killed[v] += 1
            t = time.monotonic()
            for v in victims:
                stack.goald(sim, tag=v, **envs[v])
            restarts_s.append(time.monotonic() - t)
        traffic.stop_event.set()
        traffic.join(10)
        left = wait_drained(stack.dsn, args.drain_s)
        for v in ("a", "b"):
            proc, _ = stack.nodes[v]
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        figures, problems = verify(stack.dsn, push, telegram)
        if traffic.error:
            problems.append(f"the app traffic stopped after {traffic.rounds} rounds: {traffic.error}")
        by_job = runs(stack.dsn)
    push.stop()
    telegram.stop()
    restarts_s.sort()
    out = {"kills": args.kills, "killed": killed, "seeded": seeded, "traffic_rounds": traffic.rounds,
           "left_after_drain": left, "figures": figures, "runs": by_job, "problems": problems,
           "restart_to_ready_s_median": round(restarts_s[len(restarts_s) // 2], 1) if restarts_s else None}
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print(f"{args.kills} rounds of kill -9 with two nodes (a killed {killed['a']}x, b {killed['b']}x; "
              f"restart to ready: median {out['restart_to_ready_s_median']} s); {seeded}; "
              f"{traffic.rounds} rounds of app traffic")
        print("  runs by job, both nodes (running: cut short by a kill): " + "; ".join(
            f"{job} " + ", ".join(f"{k} {n}" for k, n in o.items()) for job, o in by_job.items()))
        print("  " + ", ".join(f"{k}: {v}" for k, v in figures.items()))
        print(f"  problems: {len(problems)}   target 0" + ("" if problems else " (problems: none)"))
        for p in problems[:30]:
            print(f"    {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
