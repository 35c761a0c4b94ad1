"""Runs that hold: heartbeats that survive a bad beat, timeouts that really stop work, transient
database trouble that is retried instead of crashing, restarts that leave runs alone."""
import time

import gevent
import psycopg2
from runtime_support import database_outage, job, running_tree, runs, soon
from support import fetch, wait_for

from goald.actors import heartbeat as heartbeat_mod, ledger
from goald.actors.base import loop_greenlet
from goald.actors.jobs.runtime import orphan_rescue


def outcomes(dsn, name):
    return [r["outcome"] for r in runs(dsn, name)]


def job_node(tree, name):
    jobs = next(c for c in tree.describe()["children"] if c["name"] == "jobs")
    return next(c for c in jobs["children"] if c["name"] == name)


def test_one_failed_heartbeat_is_logged_and_the_next_beats_keep_a_long_run_alive(db_dsn, log_lines, monkeypatch):
    real, calls = ledger.heartbeat, []

    def flaky(pool, beats, **kw):
        calls.append(time.time())
        if len(calls) == 1:
            raise psycopg2.OperationalError("server closed the connection unexpectedly")
        return real(pool, beats, **kw)

    monkeypatch.setattr(ledger, "heartbeat", flaky)
    specs = [job("long", lambda ctx: gevent.sleep(5), every_s=60, offset_s=soon(60)),
             job("orphan_rescue", orphan_rescue, every_s=1)]
    # stale after 3 beats of 0.5 s + a pool wait of 0.5 s: 2 s; the run lasts 5 s
    with running_tree(db_dsn, specs, GOALD_DATABASE_POOL_TIMEOUT_S="0.5"):
        wait_for(lambda: "succeeded" in outcomes(db_dsn, "long"), timeout_s=10, what="the long run")
    assert len(calls) >= 5   # beats went on after the failed first one
    assert outcomes(db_dsn, "long") == ["succeeded"]
    events = [r.get("event") for r in log_lines()]
    assert "job.heartbeat_failed" in events and "job.heartbeat_recovered" in events
    assert "job.orphan_rescued" not in events and "job.rescued_meanwhile" not in events


def test_the_beats_of_one_node_go_out_as_one_statement_for_all_its_running_runs(db_dsn, monkeypatch):
    real, beats = ledger.heartbeat, []
    monkeypatch.setattr(ledger, "heartbeat", lambda pool, runs_, **kw: (beats.append(len(runs_)),
                                                                          real(pool, runs_, **kw))[1])
    specs = [job(name, lambda ctx: gevent.sleep(3), every_s=60, offset_s=soon(60)) for name in ("a", "b", "c")]
    with running_tree(db_dsn, specs):
        wait_for(lambda: sum(outcomes(db_dsn, n).count("succeeded") for n in "abc") == 3, timeout_s=10,
                 what="three runs")
    assert beats and max(beats) == 3 and beats.count(3) >= 3, beats


def test_a_heartbeat_that_waits_for_the_pool_does_not_make_a_live_run_an_orphan_elsewhere(db_dsn, log_lines):
    # node a's pool is exhausted for 2 s, so its beat waits; node b's orphan rescue looks every
    # second. Stale = 3 beats of 0.5 s + one pool wait of 2.5 s: a's silence of ~2.5 s is no orphan.
    env = {"GOALD_DATABASE_POOL_TIMEOUT_S": "2.5"}
    with running_tree(db_dsn, [job("long", lambda ctx: gevent.sleep(5), every_s=60, offset_s=soon(60))],
                      node="a", pool_max=2, **env) as a, \
            running_tree(db_dsn, [job("orphan_rescue", orphan_rescue, every_s=1)], node="b", **env):
        wait_for(lambda: "running" in outcomes(db_dsn, "long"), timeout_s=10, what="the long run")
        gevent.sleep(0.6)
        with a.rt.pool.connection(), a.rt.pool.connection():   # nothing free on a: its beat waits
            gevent.sleep(2.0)
        wait_for(lambda: "running" not in outcomes(db_dsn, "long"), timeout_s=10, what="the end of the run")
    assert outcomes(db_dsn, "long") == ["succeeded"]
    events = [r.get("event") for r in log_lines()]
    assert "job.orphan_rescued" not in events and "job.rescued_meanwhile" not in events


def test_a_timeout_is_not_swallowed_by_except_exception_and_the_servers_query_is_cancelled(db_dsn):
    def stubborn(ctx):
        while True:
            try:
                with ctx.connection() as conn, conn.cursor() as cur:
                    cur.execute("SELECT pg_sleep(60) /* stubborn */")
            except Exception:
                pass

    with running_tree(db_dsn, [job("stubborn", stubborn, every_s=60, offset_s=soon(60), timeout_s=2)]):
        wait_for(lambda: "timed_out" in outcomes(db_dsn, "stubborn"), timeout_s=10, what="the timeout")
        gevent.sleep(0.5)
        still = fetch(db_dsn, "SELECT pid FROM pg_stat_activity WHERE query LIKE '%%pg_sleep(60) /* stubborn */%%' "
                              "AND state = 'active' AND pid <> pg_backend_pid()")
    row = runs(db_dsn, "stubborn")[-1]
    assert row["error"] == "timed out after 2s" and 1900 <= row["duration_ms"] < 4000, row
    assert still == []


def test_a_body_that_swallows_its_first_kill_is_killed_again_until_it_dies(db_dsn):
    ended = []

    def swallows_once(ctx):
        try:
            try:
                gevent.sleep(60)
            except BaseException:  # noqa: B036 - on purpose: the first JobTimedOut is swallowed
                pass
            while True:
                gevent.sleep(0.1)
        finally:
            ended.append(time.monotonic())

    with running_tree(db_dsn, [job("swallows", swallows_once, every_s=60, offset_s=soon(60), timeout_s=1)]):
        wait_for(lambda: "timed_out" in outcomes(db_dsn, "swallows"), timeout_s=10, what="the timeout")
        wait_for(lambda: ended, timeout_s=5, what="the abandoned body to be killed again")
    row = runs(db_dsn, "swallows")[-1]
    assert row["error"].endswith("ignored the cancellation and was abandoned"), row


def test_a_loop_that_retries_on_a_closed_pool_still_lets_other_greenlets_run(db_dsn):
    from goald.db.pool import Pool

    pool = Pool(db_dsn, maxconn=1)
    pool.close()
    order = []

    def retries_everything():
        for _ in range(50):
            try:
                with pool.connection():
                    pass
            except Exception:
                pass
        order.append("loop")

    spinning = gevent.spawn(retries_everything)
    other = gevent.spawn(order.append, "other")
    gevent.joinall([spinning, other], timeout=10)
    assert order == ["other", "loop"]


def test_a_runs_statements_carry_a_statement_timeout_no_longer_than_the_job(db_dsn):
    seen = []

    def show(ctx):
        with ctx.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT current_setting('statement_timeout')")
            seen.append(cur.fetchone()[0])

    with running_tree(db_dsn, [job("show", show, every_s=60, offset_s=soon(60), timeout_s=1.5)]) as tree:
        wait_for(lambda: seen, timeout_s=10, what="a run")
        with tree.rt.pool.connection() as conn, conn.cursor() as cur:   # the next user gets 30 s back
            cur.execute("SELECT current_setting('statement_timeout')")
            after = cur.fetchone()[0]
    value = seen[0]
    ms = int(value[:-2]) if value.endswith("ms") else int(float(value[:-1]) * 1000)
    assert 1000 <= ms <= 1500, value
    assert after == "30s"


def test_a_pool_timeout_while_claiming_is_retried_within_the_grace_and_crashes_nothing(db_dsn, log_lines):
    seen = []
    with running_tree(db_dsn, [job("tick", lambda ctx: seen.append(time.time()), every_s=2)], pool_max=2,
                      GOALD_DATABASE_POOL_TIMEOUT_S="0.3", GOALD_JOBS_GRACE_S="3") as tree:
        wait_for(lambda: seen, what="a first run")
        while time.time() % 2 < 1.0 or time.time() % 2 > 1.5:   # hold the pool across the next claim
            gevent.sleep(0.02)
        with tree.rt.pool.connection(), tree.rt.pool.connection():
            gevent.sleep(2.0)
        wait_for(lambda: len(seen) >= 3, timeout_s=8, what="runs after the pool was free again")
        assert job_node(tree, "tick")["restarts"] == 0
    assert "job.claim_retrying" in [r.get("event") for r in log_lines()]
    assert "missed" not in outcomes(db_dsn, "tick")   # the held occurrence ran, within its grace


def test_a_runs_outcome_is_recorded_after_an_outage_longer_than_a_few_retries(db_dsn, server_dsn):
    with running_tree(db_dsn, [job("slow", lambda ctx: gevent.sleep(1), every_s=60, offset_s=soon(60))]) as tree:
        wait_for(lambda: "running" in outcomes(db_dsn, "slow"), timeout_s=10, what="the run")
        with database_outage(server_dsn, db_dsn):
            gevent.sleep(8)          # the run ends during the outage; closing its row is retried
        wait_for(lambda: outcomes(db_dsn, "slow") == ["succeeded"], timeout_s=10, what="its row closed")
        assert job_node(tree, "slow")["restarts"] == 0


def test_a_failing_claim_does_not_kill_the_runs_of_other_occurrences(db_dsn, server_dsn):
    with running_tree(db_dsn, [job("many", lambda ctx: gevent.sleep(3), every_s=1, overlap="allow")],
                      GOALD_DATABASE_POOL_TIMEOUT_S="0.5", GOALD_JOBS_GRACE_S="0.5") as tree:
        wait_for(lambda: outcomes(db_dsn, "many").count("running") >= 2, timeout_s=10, what="runs in flight")
        in_flight = len(tree.rt.runs)
        with database_outage(server_dsn, db_dsn):
            gevent.sleep(1.5)        # claims fail meanwhile; the runs already going must go on
        gevent.sleep(4)
    rows = runs(db_dsn, "many")
    assert in_flight >= 2
    assert "interrupted" not in [r["outcome"] for r in rows]
    assert [r["outcome"] for r in rows].count("succeeded") >= in_flight


def test_a_job_actor_restarted_by_its_supervisor_leaves_its_run_going(db_dsn):
    with running_tree(db_dsn, [job("five", lambda ctx: gevent.sleep(3), every_s=60, offset_s=soon(60))]) as tree:
        wait_for(lambda: "running" in outcomes(db_dsn, "five"), timeout_s=10, what="the run")
        first = tree.jobs_directory["five"]
        loop_greenlet(first).kill(block=False)   # the actor dies while its run goes on
        wait_for(lambda: tree.jobs_directory.get("five") not in (None, first), what="the restart")
        wait_for(lambda: outcomes(db_dsn, "five") != ["running"], timeout_s=10, what="the run's end")
    row = runs(db_dsn, "five")[0]
    assert row["outcome"] == "succeeded" and row["duration_ms"] >= 2900, row


def test_heartbeats_land_half_a_second_off_whole_seconds():
    class Rt:
        heartbeat_s = 5.0

    hb = heartbeat_mod.Heartbeat(Rt())
    assert hb.next_beat(100.2) == 105.5 and hb.next_beat(100.6) == 106.5 and hb.next_beat(100.5) == 105.5
