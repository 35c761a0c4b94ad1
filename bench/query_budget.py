"""The business jobs' queries and durations per run, at two population sizes, beside the seeds' figures.

For each size (default 1,000 and 10,000 users), a fresh database on the local PostgreSQL gets
goald's migrations, as many matches as users (today's, ended, in the second half or the first,
with their teams and competitions: `MATCHES`) and `goald seed-demo --users N`, which also makes
one AI prediction per match; then each business job runs once, in this
process, on goald's own JobContext (the query counter the run ledger records), with a batch size
that takes every due row in that one run, and with a local push gateway and Telegram Bot API that
accept everything (the demo's Telegram posts settle on the ended matches).
The prediction jobs run last: `prediction_matcher` over the ~N predictions, then
`prediction_results` over those it matched.

Printed per job and size: queries issued, rows it reports and the duration, then the seeds'
figure where the seeds have one. Targets: daily reward reminders ≤ 2 queries and < 0.5 s at
10,000 users (seed: 2 queries, 3.5 s); every job within 10 queries a run (the seeds' rule); and
every job's query count the same at every size.

Run:  python bench/query_budget.py [--sizes 1000,10000] [--json]
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

SEEDS = {"daily_reward_reminders": "2 queries, 3.5 s (10,000 users)"}
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


def measure(dsn, users, gateway_url):
    from goald import config
    from goald.actors.context import JobContext
    from goald.actors.jobs import business, predictions, telegram
    from goald.actors.ledger import Occurrence
    from goald.db.pool import Pool

    env = {"GOALD_BUSINESS_BATCH_SIZE": str(users * 10), "GOALD_PUSH_BATCH_SIZE": str(users * 10),
           "GOALD_PREDICTIONS_BATCH_SIZE": str(users * 10),
           "GOALD_PUSH_GATEWAY_URL": gateway_url + "/push", "GOALD_PUSH_NOTIFICATIONS_PER_RUN": "10",
           "GOALD_TELEGRAM_BOT_TOKEN": BOT_TOKEN, "GOALD_TELEGRAM_API_URL": gateway_url,
           "GOALD_TELEGRAM_BATCH_SIZE": str(min(10_000, users))}
    cfg = config.load(None, env, search=False)
    pool = Pool(dsn, maxconn=4)
    out = {}
    try:
        nine = datetime.now(timezone.utc).replace(hour=9, minute=0, second=27, microsecond=0).timestamp()
        for job in (business.referral_tier2, business.referral_tier3, business.daily_reward_reminders,
                    business.scheduled_notifications, business.push_sender, telegram.telegram_settlement,
                    predictions.prediction_matcher, predictions.prediction_results):
            ctx = JobContext(occurrence=Occurrence(job.__name__, nine), pool=pool, config=cfg, node="bench",
                             cancel=gevent.event.Event())
            started = time.perf_counter()
            result = job(ctx)
            out[job.__name__] = {"queries": ctx.queries, "seconds": round(time.perf_counter() - started, 3),
                                 "result": result}
    finally:
        pool.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000")
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
    rem = results[big]["daily_reward_reminders"]
    if big >= 10_000 and (rem["queries"] > REMINDERS_MAX_QUERIES or rem["seconds"] >= REMINDERS_MAX_S):
        misses.append(f"daily_reward_reminders at {big:,} users: {rem['queries']} queries, {rem['seconds']} s "
                      f"(target ≤ {REMINDERS_MAX_QUERIES}, < {REMINDERS_MAX_S} s)")
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
            print(f"  {job}: " + "; ".join(f"{n:,}: {results[n][job]['result']}" for n in sizes))
        print("OK" if not misses else "TARGET MISSED: " + "; ".join(misses))
    return 0 if not misses else 1


if __name__ == "__main__":
    sys.exit(main())
