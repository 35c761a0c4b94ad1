"""Jobs for the process-level tests, loaded by `goald run` with jobs.modules = "jobs_for_tests"
(PYTHONPATH points at tests/). Real bodies against the test database; all disabled by default, a
test enables the ones it needs with GOALD_JOB_<NAME>_ENABLED=true.

- test_count: every GOALD_TEST_COUNT_EVERY_S seconds (default 1), increments test_counter.n (the
  table is created by the test);
- test_sleep: every GOALD_TEST_SLEEP_EVERY_S seconds (default 20), sleeps GOALD_TEST_SLEEP_S
  (default 5) seconds and then increments test_counter.n;
- test_stubborn: every 20 s (+1), sleeps for an hour and swallows every exception, cancellation and
  kill included: the worst a job can do to a stop;
- test_bump_standings: every second, for each season a test queued in test_bump (created by the
  test), adds a point to its standing rows and invalidates its cached answer, as standings_sync
  does when a table changed.
"""
import os
import time

import gevent

from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule


def _increment(ctx) -> int:
    with ctx.connection() as conn, conn.cursor() as cur:
        cur.execute("UPDATE test_counter SET n = n + 1")
        conn.commit()
        return cur.rowcount


def count(ctx) -> int:
    return _increment(ctx)


def sleep_then_count(ctx) -> int:
    gevent.sleep(float(os.environ.get("GOALD_TEST_SLEEP_S", "5")))
    return _increment(ctx)


def stubborn(ctx) -> None:
    deadline = time.time() + 3600
    while time.time() < deadline:
        try:
            gevent.sleep(1)
        except BaseException:  # noqa: B036 - on purpose: a job that ignores its cancellation
            pass


def bump_standings(ctx) -> int:
    with ctx.connection() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM test_bump RETURNING season_id")
        seasons = [r[0] for r in cur.fetchall()]
        cur.execute("UPDATE standing_rows SET points = points + 1 WHERE season_id = ANY(%s)", (seasons,))
        conn.commit()
    for season in seasons:
        ctx.cache.invalidate("standings", season)
    return len(seasons)


JOBS = [
    JobSpec("test_count", count, Schedule(every_s=int(os.environ.get("GOALD_TEST_COUNT_EVERY_S", "1"))),
            timeout_s=5, enabled=False, description="test: increment test_counter"),
    JobSpec("test_sleep", sleep_then_count,
            Schedule(every_s=int(os.environ.get("GOALD_TEST_SLEEP_EVERY_S", "20")), offset_s=1),
            timeout_s=60, enabled=False, description="test: sleep, then increment test_counter"),
    JobSpec("test_stubborn", stubborn, Schedule(every_s=20, offset_s=1), timeout_s=7200, enabled=False,
            description="test: ignore every cancellation"),
    JobSpec("test_bump_standings", bump_standings, Schedule(every_s=1), timeout_s=5, enabled=False,
            description="test: change queued standings and invalidate their cached answers"),
]
