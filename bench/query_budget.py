"""The business jobs' queries and durations per run, at two population sizes, beside the seeds' figures.

For each size (default 1,000, 10,000 and 100,000 users), a fresh database on the local PostgreSQL
gets goald's migrations, as many matches as users (today's, ended, in the second half or the first,
with their teams and competitions: `MATCHES`) and `goald seed-demo --users N`, which also makes
one AI prediction per match; then each business job runs once, in this
process, on goald's own JobContext (the query counter the run ledger records), with a batch size
that takes every due row in that one run, and with a local push gateway and Telegram Bot API that
accept everything (the demo's Telegram posts settle on the ended matches).
The prediction jobs run last: `prediction_matcher` over the ~N predictions, then
`prediction_results` over those it matched. Before each job the database is ANALYZEd (outside the
job's count), as autovacuum would have done by then on a live database.

badge_auto_unlock runs three times, after the referral jobs (so referral badges are due too): at
its default batch size (`badges.batch_size`, 5,000 pairs: what a scheduled run does), then
`(rest)` with a batch that takes every pair still due (its pairs per second are printed), then
`(idle)` with nothing left: the cost of evaluating every condition for every user.

Printed per job and size: queries issued, rows it reports and the duration, then the seeds'
figure where the seeds have one. Targets: daily reward reminders ≤ 2 queries and < 0.5 s at
10,000 users (seed: 2 queries, 3.5 s); badge auto-unlock ≤ 10 queries and < 2 s at 100,000 users
for a run at its default batch size (seed: ~10 queries, 8.2 s); every job within 10 queries a run
(the seeds' rule); and every job's query count the same at every size.

Run:  python bench/query_budget.py [--sizes 1000,10000,100000] [--json]
Exit status 1 when a target is missed.
"""
from gevent import monkey

monkey.patch_all()
from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent.event  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _goald import Stack, goald_env  # noqa: E402

SEEDS = {"daily_reward_reminders": "2 queries, 3.5 s (10,000 users)",
         "badge_auto_unlock": "~10 queries, 8.2 s (100,000 users)"}
BADGES_MAX_QUERIES, BADGES_MAX_S = 10, 2.0
REMINDERS_MAX_QUERIES, REMINDERS_MAX_S = 2, 0.5
MAX_QUERIES = 10
BOT_TOKEN = "1:bench"


# N matches of the last four hours: a third ended, a third in the second half, a third in the first;
# team names with a distinctive first word ("x1b2c3d4 Rovers"), as real names have.
MATCHES = [
    "INSERT INTO competitions (id, name) SELECT 'bc' || i, 'Bench League ' || chr(65 + i) FROM generate_series(0, 19) i",
    "INSERT INTO teams (id, name) SELECT 'bt' || i, 'x' || substr(md5('t' || i), 1, 7) || ' ' "
    "|| (ARRAY['United', 'City', 'Rovers', 'Athletic', 'Town'])[1 + i %% 5] FROM generate_series(1, 2 * %(n)s) i",
    "INSERT INTO matches (id, home_team_id, away_team_id, competition_id, match_time, status_id, home_regular, "
    "away_regular, home_half_time, away_half_time) SELECT 'bm' || i, 'bt' || (2 * i - 1), 'bt' || (2 * i), "
    "'bc' || i %% 20, %(now)s - 1800 - (i %% 210) * 60, (ARRAY[8, 4, 2])[1 + i %% 3], i %% 3, i %% 2, i %% 2, 0 "
    "FROM generate_series(1, %(n)s) i",
]


def add_matches(dsn, n):
    import psycopg2

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        for statement in MATCHES:
            cur.execute(statement, {"n": n, "now": int(time.time())})
    conn.close()


class _NoDelay(WSGIHandler):
    def handle(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # no 40 ms Nagle wait a request
        super().handle()


def gateway():
    """The push gateway at /push and the Telegram Bot API at /bot<token>/sendMessage."""
    sent = []

    def app(environ, start):
        body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        start("200 OK", [("Content-Type", "application/json")])
        if environ["PATH_INFO"].endswith("/sendMessage"):
            sent.append(1)
            return [json.dumps({"ok": True, "result": {"message_id": len(sent)}}).encode()]
        return [json.dumps({"data": [{"status": "ok"} for _ in body]}).encode()]
    server = WSGIServer(("127.0.0.1", 0), app, log=None, handler_class=_NoDelay)
    server.start()
    return server


def analyze(dsn):
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("ANALYZE")
    finally:
        conn.close()


def measure(dsn, users, gateway_url):
    from goald import config
    from goald.actors.context import JobContext
    from goald.actors.jobs import badges, business, predictions, telegram
    from goald.actors.ledger import Occurrence
    from goald.db.pool import Pool

    env = {"GOALD_BUSINESS_BATCH_SIZE": str(users * 10), "GOALD_PUSH_BATCH_SIZE": str(min(users * 10, 100_000)),
           "GOALD_PREDICTIONS_BATCH_SIZE": str(users * 10),
           "GOALD_PUSH_GATEWAY_URL": gateway_url + "/push", "GOALD_PUSH_NOTIFICATIONS_PER_RUN": "10",
           "GOALD_TELEGRAM_BOT_TOKEN": BOT_TOKEN, "GOALD_TELEGRAM_API_URL": gateway_url,
           "GOALD_TELEGRAM_BATCH_SIZE": str(min(10_000, users))}
    cfg = config.load(None, env, search=False)
    every_pair = config.load(None, {**env, "GOALD_BADGES_BATCH_SIZE": str(min(users * 20, 1_000_000))}, search=False)
    pool = Pool(dsn, maxconn=4)
    out = {}
    try:
        nine = datetime.now(timezone.utc).replace(hour=9, minute=0, second=27, microsecond=0).timestamp()
        for label, job, job_cfg in (
                ("referral_tier2", business.referral_tier2, cfg), ("referral_tier3", business.referral_tier3, cfg),
                ("daily_reward_reminders", business.daily_reward_reminders, cfg),
                ("badge_auto_unlock", badges.badge_auto_unlock, cfg),                # default badges.batch_size
                ("badge_auto_unlock (rest)", badges.badge_auto_unlock, every_pair),
                ("badge_auto_unlock (idle)", badges.badge_auto_unlock, cfg),
                ("scheduled_notifications", business.scheduled_notifications, cfg),
                ("push_sender", business.push_sender, cfg),
                ("telegram_settlement", telegram.telegram_settlement, cfg),
                ("prediction_matcher", predictions.prediction_matcher, cfg),
                ("prediction_results", predictions.prediction_results, cfg)):
            analyze(dsn)        # fresh statistics before each job: see the module doc
            ctx = JobContext(occurrence=Occurrence(job.__name__, nine), pool=pool, config=job_cfg, node="bench",
                             cancel=gevent.event.Event())
            started = time.perf_counter()
            result = job(ctx)
            seconds = time.perf_counter() - started
            out[label] = {"queries": ctx.queries, "seconds": round(seconds, 3), "result": result}
            if label == "badge_auto_unlock (rest)" and result["unlocked"]:
                out[label]["pairs_per_s"] = round(result["unlocked"] / seconds)
    finally:
        pool.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    maintenance = os.environ.get("GOALD_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    gw = gateway()
    url = f"http://127.0.0.1:{gw.server_port}/push"
    results = {}
    try:
        for n in sizes:
            with Stack(maintenance, f"budget{n}") as stack:
                env = goald_env(GOALD_DATABASE_URL=stack.dsn, GOALD_LOG_LEVEL="WARNING")
                for cmd in (["migrate"], ["seed-demo", "--users", str(n)]):
                    if cmd[0] == "seed-demo":
                        add_matches(stack.dsn, n)
                    r = subprocess.run([sys.executable, "-m", "goald", *cmd], capture_output=True, text=True, env=env)
                    if r.returncode != 0:
                        sys.exit(f"goald {' '.join(cmd)} failed: {r.stderr}")
                results[n] = measure(stack.dsn, n, url)
    finally:
        gw.stop()
    misses = []
    jobs = list(results[sizes[0]])
    for job in jobs:
        counts = {n: results[n][job]["queries"] for n in sizes}
        if len(set(counts.values())) != 1:
            misses.append(f"{job}: queries differ by size {counts}")
        if max(counts.values()) > MAX_QUERIES:
            misses.append(f"{job}: more than {MAX_QUERIES} queries")
    big = max(sizes)
    at = 10_000 if 10_000 in results else big          # the reminders' target is for 10,000 users
    rem = results[at]["daily_reward_reminders"]
    if at >= 10_000 and (rem["queries"] > REMINDERS_MAX_QUERIES or rem["seconds"] >= REMINDERS_MAX_S):
        misses.append(f"daily_reward_reminders at {at:,} users: {rem['queries']} queries, {rem['seconds']} s "
                      f"(target ≤ {REMINDERS_MAX_QUERIES}, < {REMINDERS_MAX_S} s)")
    if big >= 100_000:
        b = results[big]["badge_auto_unlock"]
        if b["queries"] > BADGES_MAX_QUERIES or b["seconds"] >= BADGES_MAX_S:
            misses.append(f"badge_auto_unlock at {big:,} users: {b['queries']} queries, {b['seconds']} s "
                          f"(target ≤ {BADGES_MAX_QUERIES}, < {BADGES_MAX_S} s)")
    if args.json:
        print(json.dumps({"results": results, "misses": misses, "ok": not misses}, indent=2, default=str))
    else:
        print(f"business jobs, one run each after goald seed-demo; sizes {', '.join(f'{n:,}' for n in sizes)} users")
        head = "".join(f"{f'{n:,} users':>26}" for n in sizes)
        print(f"{'job':<26}{head}   seed")
        for job in jobs:
            cells = "".join(f"{str(results[n][job]['queries']) + ' q, ' + format(results[n][job]['seconds'], '.3f') + ' s':>26}"
                            for n in sizes)
            print(f"{job:<26}{cells}   {SEEDS.get(job, '')}")
        for job in jobs:
            print(f"  {job}: " + "; ".join(f"{n:,}: {results[n][job]['result']}"
                                           + (f" ({results[n][job]['pairs_per_s']:,} pairs/s)"
                                              if "pairs_per_s" in results[n][job] else "") for n in sizes))
        print("OK" if not misses else "TARGET MISSED: " + "; ".join(misses))
    return 0 if not misses else 1


if __name__ == "__main__":
    sys.exit(main())
