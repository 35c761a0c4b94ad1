"""Job actors and the clock against a real database: one ledger row per occurrence, whatever happens."""
import time

import gevent
import pytest
from runtime_support import count_job, counted, counter_table, job, periods, running_tree, runs
from support import fetch, wait_for

from goald import flags as flagnames


def ok_job(ctx):
    with ctx.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.execute("SELECT 2")
    return {"touched": 3, "other": 4}


def boom(ctx):
    raise ValueError("the provider sent nonsense")


def outcomes(dsn, name):
    return [r["outcome"] for r in runs(dsn, name)]


def test_a_run_is_recorded_succeeded_with_its_duration_counts_and_queries(db_dsn, log_lines):
    with running_tree(db_dsn, [job("ok", ok_job)]):
        wait_for(lambda: "succeeded" in outcomes(db_dsn, "ok"), what="a succeeded run")
    row = next(r for r in runs(db_dsn, "ok") if r["outcome"] == "succeeded")
    assert row["rows_affected"] == 7 and row["queries_issued"] == 2
    assert row["node"] == "test-node" and row["trigger"] == "schedule" and row["error"] is None
    assert row["started_at"] >= row["scheduled_at"] and row["finished_at"] >= row["started_at"]
    assert (row["started_at"] - row["scheduled_at"]).total_seconds() < 0.5
    assert row["duration_ms"] is not None and row["pool_utilization_at_start"] is not None
    assert row["scheduled_at"].microsecond == 0  # occurrences are whole seconds
    msgs = [r["msg"] for r in log_lines()]
    assert "Job started: ok" in msgs
    assert any(m.startswith("Job completed: ok (") and m.endswith("ms)") for m in msgs)


def test_a_job_that_raises_is_recorded_failed_and_runs_again_next_time(db_dsn, log_lines):
    with running_tree(db_dsn, [job("boom", boom)]):
        wait_for(lambda: outcomes(db_dsn, "boom").count("failed") >= 2, what="two failed runs")
    failed = [r for r in runs(db_dsn, "boom") if r["outcome"] == "failed"]
    assert failed[0]["error"] == "ValueError: the provider sent nonsense"
    assert (failed[1]["scheduled_at"] - failed[0]["scheduled_at"]).total_seconds() == 1
    assert "Job failed: boom: ValueError: the provider sent nonsense" in [r["msg"] for r in log_lines()]


def test_a_run_past_its_timeout_is_cancelled_recorded_timed_out_and_its_connection_discarded(db_dsn):
    def slow_query(ctx):
        with ctx.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(5)")

    with running_tree(db_dsn, [job("slow", slow_query, every_s=3, timeout_s=0.3)]) as tree:
        wait_for(lambda: "timed_out" in outcomes(db_dsn, "slow"), what="a timed_out run")
        assert tree.rt.pool.stats().discarded >= 1
        assert tree.rt.pool.stats().active == 0
    row = next(r for r in runs(db_dsn, "slow") if r["outcome"] == "timed_out")
    assert row["error"] == "timed out after 0.3s" and 250 <= row["duration_ms"] < 1500


def test_an_occurrence_due_while_the_previous_run_is_going_is_skipped_overlap(db_dsn):
    with running_tree(db_dsn, [job("long", lambda ctx: gevent.sleep(2.2))]):
        wait_for(lambda: "succeeded" in outcomes(db_dsn, "long") and "skipped_overlap" in outcomes(db_dsn, "long"),
                 timeout_s=10, what="a run and an overlap skip")
    rows = runs(db_dsn, "long")
    skipped = [r for r in rows if r["outcome"] == "skipped_overlap"]
    assert skipped[0]["error"].startswith("previous run still going on test-node")
    done = [r for r in rows if r["outcome"] in ("succeeded", "running")]
    for a, b in zip(done, done[1:]):  # runs never overlapped
        assert a["finished_at"] is None or b["started_at"] is None or b["started_at"] >= a["finished_at"]


def test_a_disabled_job_records_skipped_disabled_and_enabling_it_takes_effect_without_restart(db_dsn):
    with running_tree(db_dsn, [job("ok", ok_job)]) as tree:
        conn = tree.rt.pool
        with conn.connection() as c:
            flagnames.set_flag(c, flagnames.job_enabled("ok"), False, by="test", node="n")
        wait_for(lambda: outcomes(db_dsn, "ok")[-2:] == ["skipped_disabled"] * 2, what="disabled skips")
        with conn.connection() as c:
            flagnames.set_flag(c, flagnames.job_enabled("ok"), True, by="test", node="n")
        wait_for(lambda: outcomes(db_dsn, "ok")[-1:] == ["succeeded"], what="runs again once enabled")
    audit = fetch(db_dsn, "SELECT name, old_value, new_value, changed_by FROM flag_audit ORDER BY id")
    assert audit == [("job.ok.enabled", None, False, "test"), ("job.ok.enabled", False, True, "test")]


def test_two_instances_run_each_occurrence_once_and_count_the_others_as_lock_skips(db_dsn):
    counter_table(db_dsn)
    with running_tree(db_dsn, [job("count", count_job)], node="a"), \
            running_tree(db_dsn, [job("count", count_job)], node="b"):
        gevent.sleep(4.5)
    rows = runs(db_dsn, "count")
    ps = periods(rows)
    assert len(ps) >= 4 and [b - a for a, b in zip(ps, ps[1:])] == [1.0] * (len(ps) - 1)  # none left out
    succeeded = [r for r in rows if r["outcome"] == "succeeded"]
    assert counted(db_dsn) == len(succeeded)
    skips = fetch(db_dsn, "SELECT count(*) FROM job_lock_skips WHERE job = 'count'")[0][0]
    assert skips >= len(succeeded) - 2  # the loser of (nearly) every occurrence records a lock skip


def test_a_late_tick_within_grace_runs_and_a_pause_never_causes_a_burst_of_catch_up_runs(db_dsn):
    starts = []

    def stamp(ctx):
        starts.append(time.time())

    with running_tree(db_dsn, [job("tick", stamp)], GOALD_JOBS_GRACE_S="0.5") as tree:
        wait_for(lambda: len(starts) >= 1, what="a first run")
        end = time.time() + 3.2
        while time.time() < end:  # block the hub: the clock cannot tick for 3.2 s
            pass
        gevent.sleep(2.5)
        del tree
    rows = runs(db_dsn, "tick")
    assert [r["outcome"] for r in rows].count("missed") >= 2
    missed = [r for r in rows if r["outcome"] == "missed"]
    assert "late" in missed[0]["error"]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) > 0.5, gaps  # no two runs back to back after the pause
    ps = periods(rows)   # every second of the pause is explained: a run or a missed row
    assert [b - a for a, b in zip(ps, ps[1:])] == [1.0] * (len(ps) - 1)


def test_occurrences_missed_while_goald_was_down_are_recorded_at_start(db_dsn):
    fetch(db_dsn, "INSERT INTO job_runs (job, scheduled_at, outcome, node) "
                  "VALUES ('ok', date_trunc('second', now()) - interval '20 seconds', 'succeeded', 'old')")
    with running_tree(db_dsn, [job("ok", ok_job, every_s=5)]):
        wait_for(lambda: "missed" in outcomes(db_dsn, "ok"), what="missed rows")
    missed = [r for r in runs(db_dsn, "ok") if r["outcome"] == "missed"]
    assert 2 <= len(missed) <= 4 and all(r["error"] == "goald was not running" for r in missed)


def test_a_run_orphaned_by_a_dead_instance_is_marked_interrupted_by_orphan_rescue(db_dsn):
    fetch(db_dsn, "INSERT INTO job_runs (job, scheduled_at, outcome, node, started_at, heartbeat_at) "
                  "VALUES ('gone', now() - interval '1 minute', 'running', 'dead-node', "
                  "now() - interval '1 minute', now() - interval '50 seconds')")
    from goald.actors.jobs.runtime import orphan_rescue

    with running_tree(db_dsn, [job("orphan_rescue", orphan_rescue)]):
        wait_for(lambda: outcomes(db_dsn, "gone") == ["interrupted"], what="rescue")
    row = runs(db_dsn, "gone")[0]
    assert row["error"].startswith("orphaned: no heartbeat from dead-node") and row["finished_at"] is not None


def test_warm_shutdown_lets_a_running_job_finish_and_records_it_succeeded(db_dsn):
    started = []

    def two_seconds(ctx):
        started.append(time.time())
        gevent.sleep(2)

    with running_tree(db_dsn, [job("two", two_seconds, every_s=10)]):
        wait_for(lambda: started, timeout_s=12, what="the run to start")
    assert time.time() - started[0] >= 1.9  # stop waited for it
    assert "succeeded" in outcomes(db_dsn, "two") and "running" not in outcomes(db_dsn, "two")


def test_cold_shutdown_cancels_a_running_job_and_records_it_interrupted(db_dsn):
    started = []

    def cooperative(ctx):
        started.append(time.time())
        for _ in range(100):
            ctx.check_cancelled()
            gevent.sleep(0.1)

    with running_tree(db_dsn, [job("coop", cooperative, every_s=10)]) as tree:
        wait_for(lambda: started, timeout_s=12, what="the run to start")
        tree.rt.shutdown.begin_warm(5)
        tree.rt.shutdown.begin_cold()
    row = [r for r in runs(db_dsn, "coop") if r["outcome"] != "missed"][-1]
    assert row["outcome"] == "interrupted" and "shutting down" in row["error"]   # ctx.check_cancelled raised


def test_a_job_actor_whose_ledger_cannot_be_written_crashes_and_is_restarted(db_dsn, log_lines):
    fetch(db_dsn, "ALTER TABLE job_runs RENAME TO job_runs_gone")
    with running_tree(db_dsn, [job("ok", ok_job)], GOALD_SUPERVISOR_MAX_RESTARTS="50") as tree:
        wait_for(lambda: (n := next(c for c in tree.describe()["children"] if c["name"] == "jobs"))
                 and n["children"][0]["restarts"] >= 1, timeout_s=10, what="a restart")
        node = next(c for c in tree.describe()["children"] if c["name"] == "jobs")["children"][0]
        assert node["last_failure"]["type"] == "LedgerUnavailable"
        fetch(db_dsn, "ALTER TABLE job_runs_gone RENAME TO job_runs")
        wait_for(lambda: "succeeded" in outcomes(db_dsn, "ok"), timeout_s=10, what="recovery")
    assert any(r["msg"].startswith("Job failed: ok: run ledger unavailable") for r in log_lines())


@pytest.mark.parametrize("stagger", ["true", "false"])
def test_stagger_moves_a_job_to_its_offset_and_logs_whether_it_is_on(db_dsn, log_lines, stagger):
    with running_tree(db_dsn, [job("ok", ok_job, every_s=10, offset_s=3)], GOALD_JOBS_STAGGER_ENABLED=stagger) \
            as tree:
        plan = tree.root_directory["clock"].proxy().plan().get(timeout=2)
    assert plan[0]["offset_s"] == (3 if stagger == "true" else 0)
    assert int(plan[0]["next_due"]) % 10 == (3 if stagger == "true" else 0)
    msgs = [r["msg"] for r in log_lines()]
    assert ("Job stagger enabled (ok +3s)" if stagger == "true" else "Job stagger disabled") in msgs


def test_the_stagger_flag_changes_offsets_of_a_running_clock(db_dsn, log_lines):
    with running_tree(db_dsn, [job("ok", ok_job, every_s=10, offset_s=3)]) as tree:
        with tree.rt.pool.connection() as c:
            flagnames.set_flag(c, flagnames.STAGGER, False, by="test", node="n")
        clock = tree.root_directory["clock"]
        wait_for(lambda: clock.proxy().plan().get(timeout=2)[0]["offset_s"] == 0, what="re-plan")
    assert "Job stagger disabled" in [r["msg"] for r in log_lines()]


def test_staggered_runs_log_the_seeds_staggered_annotation(db_dsn, log_lines):
    with running_tree(db_dsn, [job("ok", ok_job, every_s=2, offset_s=1)]):
        wait_for(lambda: "succeeded" in outcomes(db_dsn, "ok"), what="a run")
    assert "Job started: ok (staggered +1s)" in [r["msg"] for r in log_lines()]
    row = next(r for r in runs(db_dsn, "ok") if r["outcome"] == "succeeded")
    assert row["staggered"] is True and row["offset_s"] == 1 and row["scheduled_at"].second % 2 == 1


def test_the_clock_counts_a_job_actor_being_restarted_as_alive_for_the_watchdog(db_dsn):
    with running_tree(db_dsn, [job("ok", ok_job, every_s=10)]) as tree:
        clock = tree.root_directory["clock"]
        assert clock.proxy().check_children().get(timeout=2) is None
        job_ref = tree.jobs_directory["ok"]
        job_ref.stop()  # a permanent child: its supervisor is restarting it, which is fine
        assert clock.proxy().check_children().get(timeout=2) is None
        wait_for(lambda: tree.jobs_directory.get("ok") not in (None, job_ref), what="restart")


def test_the_clock_withholds_the_watchdog_when_a_job_actor_is_dead_and_not_restarted(db_dsn):
    with running_tree(db_dsn, [job("ok", ok_job, every_s=10)]) as tree:
        clock = tree.root_directory["clock"]
        jobs = tree.root_directory["jobs"]
        jobs._actor_weakref().children["ok"].state = "failed"   # as after giving up on it
        tree.jobs_directory.pop("ok").stop()
        assert clock.proxy().check_children().get(timeout=2) == "job actors not alive: ok"


def test_a_dead_tick_loop_crashes_the_clock_which_is_restarted_and_shows_why(db_dsn):
    with running_tree(db_dsn, [job("ok", ok_job, every_s=10)]) as tree:
        clock = tree.root_directory["clock"]
        clock._actor_weakref()._loop_g.kill()  # reach in: nothing public kills the loop
        wait_for(lambda: tree.root_directory.get("clock") not in (None, clock), what="the clock's restart")
        node = next(c for c in tree.describe()["children"] if c["name"] == "clock")
        assert node["restarts"] == 1 and node["last_failure"]["type"] == "HelperDied"
        assert "_tick_loop ended" in node["last_failure"]["message"]
        assert tree.root_directory["clock"].proxy().check_children().get(timeout=2) is None


def test_the_clock_paces_the_garbage_collector_while_it_runs_and_restores_it_when_it_stops(db_dsn):
    import gc

    assert gc.isenabled()
    with running_tree(db_dsn, [job("ok", ok_job, every_s=10)]):
        wait_for(lambda: not gc.isenabled(), what="the pacer to take over")
        gen0 = gc.get_stats()[0]["collections"]
        wait_for(lambda: gc.get_stats()[0]["collections"] > gen0, timeout_s=3, what="a paced collection")
    assert gc.isenabled()
