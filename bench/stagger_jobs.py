"""The seeds' eight-job mix as goald jobs, for bench/stagger_effect.py.

Loaded by `goald run` with jobs.modules = "stagger_jobs" (PYTHONPATH points at bench/). Offsets are
the seeds' (001 "OFFSET DISTRIBUTION"); durations are the seeds' where they give them (000 "Average
Job Duration"), ~40-50 ms chosen for the others:

  job                       offset  seeds' cadence   duration  body
  referral_tier2            :00     every minute     46 ms     DB: one UPDATE + pg_sleep, one transaction
  badge_auto_unlock         :05     every 5 minutes  45 ms *   DB
  stuck_match_finisher      :10     every 10 minutes 44 ms *   DB
  referral_tier3            :15     every minute     42 ms     DB
  prediction_matcher        :25     every 5 minutes  48 ms *   DB
  scheduled_notifications   :30     every minute     39 ms     DB
  telegram_settlement       :40     every 10 minutes 50 ms *   DB
  live_stats_sync           :45     every minute     19.4 s    API calls (gevent.sleep), no connection
  (* not in the seeds: chosen)

A DB job checks a connection out through `ctx.connection()` (so the ledger's queries_issued counts
its statements and `goald kpi` sees a DB job), bumps its own row of `bench_stagger_work` and holds
the connection and the transaction open for the rest of its duration with `pg_sleep`, then commits:
the connection is busy for the job's whole duration, as a real 46 ms batch would keep it.

live_stats_sync calls a (simulated) provider API: 20 calls of duration/20 each, a `gevent.sleep`
apiece, checking for cancellation in between, and holds no database connection at all, so its
run has queries_issued = 0 and is not a "DB job" for `goald kpi`.

Environment (set by the bench):
- STAGGER_BENCH_CADENCE: `compressed` (default) runs every job every minute, so that each job fires in
  every minute of a short bench; `seeds` uses the seeds' */5 and */10 cadences (10+ minute phases);
- STAGGER_BENCH_LIVE_STATS_S: live_stats_sync's duration in seconds (default 19.4);
- STAGGER_BENCH_LIVE_STATS_DB: `1` makes live_stats_sync write its results at the end (one short
  UPDATE after the API calls): the run then counts as a DB job for its whole 19.4 s in `goald kpi`.
"""
import os

import gevent

from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule

CADENCE = os.environ.get("STAGGER_BENCH_CADENCE", "compressed")
LIVE_STATS_S = float(os.environ.get("STAGGER_BENCH_LIVE_STATS_S", "19.4"))
LIVE_STATS_DB = os.environ.get("STAGGER_BENCH_LIVE_STATS_DB", "0") == "1"
API_CALLS = 20
if CADENCE not in ("compressed", "seeds"):
    raise ValueError(f"STAGGER_BENCH_CADENCE must be compressed or seeds, not {CADENCE!r}")

# name, offset (s), seeds' cron, duration (ms), description
MIX = (
    ("referral_tier2", 0, "* * * * *", 46, "Referral Tier 2 Processor"),
    ("badge_auto_unlock", 5, "*/5 * * * *", 45, "Badge Auto-Unlock"),
    ("stuck_match_finisher", 10, "*/10 * * * *", 44, "Stuck Match Finisher"),
    ("referral_tier3", 15, "* * * * *", 42, "Referral Tier 3 Processor"),
    ("prediction_matcher", 25, "*/5 * * * *", 48, "Prediction Matcher"),
    ("scheduled_notifications", 30, "* * * * *", 39, "Scheduled Notifications"),
    ("telegram_settlement", 40, "*/10 * * * *", 50, "Telegram Settlement"),
)
LIVE_STATS = ("live_stats_sync", 45, "* * * * *", "Live Stats Sync")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_stagger_work (
    job text PRIMARY KEY,
    runs integer NOT NULL DEFAULT 0,
    last_run timestamptz
)"""


def _db_job(name: str, duration_ms: int):
    seconds = duration_ms / 1000.0

    def run(ctx) -> int:
        with ctx.connection() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO bench_stagger_work (job, runs, last_run) VALUES (%s, 1, now()) "
                        "ON CONFLICT (job) DO UPDATE SET runs = bench_stagger_work.runs + 1, last_run = now()",
                        (name,))
            n = cur.rowcount
            cur.execute("SELECT pg_sleep(%s)", (seconds,))   # the rest of the batch, connection held
            conn.commit()
            return n

    run.__name__ = name
    return run


def live_stats_sync(ctx) -> int:
    for _ in range(API_CALLS):
        ctx.check_cancelled()
        gevent.sleep(LIVE_STATS_S / API_CALLS)     # one provider API call
    if not LIVE_STATS_DB:
        return 0
    with ctx.connection() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO bench_stagger_work (job, runs, last_run) VALUES ('live_stats_sync', 1, now()) "
                    "ON CONFLICT (job) DO UPDATE SET runs = bench_stagger_work.runs + 1, last_run = now()")
        conn.commit()
        return cur.rowcount


def _cron(seeds_cron: str) -> str:
    return seeds_cron if CADENCE == "seeds" else "* * * * *"


JOBS = [
    JobSpec(name, _db_job(name, ms), Schedule(cron=_cron(cron), offset_s=offset), timeout_s=30,
            description=f"bench: {title} ({ms} ms holding a connection)")
    for name, offset, cron, ms, title in MIX
] + [
    JobSpec(LIVE_STATS[0], live_stats_sync, Schedule(cron=_cron(LIVE_STATS[2]), offset_s=LIVE_STATS[1]),
            timeout_s=max(60.0, 3 * LIVE_STATS_S),
            description=f"bench: {LIVE_STATS[3]} ({LIVE_STATS_S:g} s of API calls, no connection held)"),
]
