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
  live_stats_sync           :45     every minute     19.4 s    provider calls, an upsert after each
  (* not in the seeds: chosen)

A DB job checks a connection out through `ctx.connection()` (so the ledger's queries_issued counts
its statements and db_spans its connection-held time), bumps its own row of `bench_stagger_work`
and holds the connection and the transaction open for the rest of its duration with `pg_sleep`,
then commits: the connection is busy for the job's whole duration, as a real 46 ms batch would
keep it.

live_stats_sync does what production's Live Stats Sync does (DOMAIN "Live stats sync"): for each
of LIVE_MATCHES live matches it fetches the team statistics that changed from the (simulated)
provider, at most PROVIDER_CONCURRENCY calls in flight (a gevent pool), and upserts them per match
into `bench_live_stats` through `ctx.connection()`, one short transaction per match, keeping known
values where the provider sent none (`coalesce(EXCLUDED.x, x)`). A provider call is a
`gevent.sleep` of duration x concurrency / LIVE_MATCHES, so the run takes the seeds' 19.4 s; the
run holds connections only for its upserts (a few ms each), so db_spans has many short stretches
spread over its 19.4 s and `goald kpi` counts it as a DB job only while one is held.

Environment (set by the bench):
- STAGGER_BENCH_CADENCE: `compressed` (default) runs every job every minute, so that each job fires in
  every minute of a short bench; `seeds` uses the seeds' */5 and */10 cadences (10+ minute phases);
- STAGGER_BENCH_LIVE_STATS_S: live_stats_sync's duration in seconds (default 19.4);
- STAGGER_BENCH_PROVIDER_CONCURRENCY: live_stats_sync's bound on provider calls in flight (default 2).
"""
import os
import time

import gevent
import gevent.pool

from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule

CADENCE = os.environ.get("STAGGER_BENCH_CADENCE", "compressed")
LIVE_STATS_S = float(os.environ.get("STAGGER_BENCH_LIVE_STATS_S", "19.4"))
PROVIDER_CONCURRENCY = int(os.environ.get("STAGGER_BENCH_PROVIDER_CONCURRENCY", "2"))
LIVE_MATCHES = 20                  # one provider call and one upsert each, per run
if CADENCE not in ("compressed", "seeds"):
    raise ValueError(f"STAGGER_BENCH_CADENCE must be compressed or seeds, not {CADENCE!r}")
if not 1 <= PROVIDER_CONCURRENCY <= LIVE_MATCHES:
    raise ValueError(f"STAGGER_BENCH_PROVIDER_CONCURRENCY must be 1-{LIVE_MATCHES}, not {PROVIDER_CONCURRENCY}")

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
);
CREATE TABLE IF NOT EXISTS bench_live_stats (
    match_id integer NOT NULL,
    team text NOT NULL CHECK (team IN ('home', 'away')),
    possession integer,
    shots integer,
    corners integer,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (match_id, team)
)"""

UPSERT_MATCH = """
INSERT INTO bench_live_stats AS s (match_id, team, possession, shots, corners, updated_at)
VALUES (%(m)s, 'home', %(hp)s, %(hs)s, %(hc)s, now()), (%(m)s, 'away', %(ap)s, %(as)s, %(ac)s, now())
ON CONFLICT (match_id, team) DO UPDATE SET
    possession = coalesce(EXCLUDED.possession, s.possession),
    shots = coalesce(EXCLUDED.shots, s.shots),
    corners = coalesce(EXCLUDED.corners, s.corners),
    updated_at = EXCLUDED.updated_at"""


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
    """Fetch and upsert every live match's changed statistics (module docstring); rows upserted."""
    minute = int(time.time() // 60)
    calls = gevent.pool.Pool(PROVIDER_CONCURRENCY)
    try:
        return sum(calls.imap_unordered(lambda match: _sync_match(ctx, match, minute), range(LIVE_MATCHES)))
    finally:
        calls.kill()                # a run killed (timeout, shutdown) takes its calls with it


def _sync_match(ctx, match: int, minute: int) -> int:
    ctx.check_cancelled()
    stats = _provider_changed_stats(match, minute)
    with ctx.connection() as conn, conn.cursor() as cur:
        cur.execute(UPSERT_MATCH, stats)
        conn.commit()
        return cur.rowcount


def _provider_changed_stats(match: int, minute: int) -> dict:
    """One provider call: the match's statistics that changed this minute (None: unchanged)."""
    gevent.sleep(LIVE_STATS_S * PROVIDER_CONCURRENCY / LIVE_MATCHES)
    home = 35 + (7 * match + minute) % 31
    changed = (match + minute) % 3 == 0                      # shots and corners move less often
    return {"m": match, "hp": home, "ap": 100 - home,
            "hs": (match + minute) % 17 if changed else None, "as": (2 * match + minute) % 13 if changed else None,
            "hc": (match + 2 * minute) % 9 if changed else None,
            "ac": (3 * match + minute) % 9 if changed else None}


def _cron(seeds_cron: str) -> str:
    return seeds_cron if CADENCE == "seeds" else "* * * * *"


JOBS = [
    JobSpec(name, _db_job(name, ms), Schedule(cron=_cron(cron), offset_s=offset), timeout_s=30,
            description=f"bench: {title} ({ms} ms holding a connection)")
    for name, offset, cron, ms, title in MIX
] + [
    JobSpec(LIVE_STATS[0], live_stats_sync, Schedule(cron=_cron(LIVE_STATS[2]), offset_s=LIVE_STATS[1]),
            timeout_s=max(60.0, 3 * LIVE_STATS_S),
            description=f"bench: {LIVE_STATS[3]} ({LIVE_STATS_S:g} s of provider calls, {LIVE_MATCHES} upserts)"),
]
