"""`goald run` with jobs, end to end: real processes, signals, kill -9, two instances, systemd notify.

Test jobs come from tests/jobs_for_tests.py (jobs.modules); they touch test_counter.
"""
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import requests
from support import fetch, goald, wait_for

from goald import exitcodes

TESTS_DIR = str(Path(__file__).parent)


def job_env(db_dsn, **extra):
    return {"GOALD_DATABASE_URL": db_dsn, "GOALD_JOBS_MODULES": "jobs_for_tests", "PYTHONPATH": TESTS_DIR,
            "GOALD_JOBS_HEARTBEAT_S": "1", "GOALD_JOBS_FLAG_POLL_S": "0.5",
            # The stop budget (drain + 19 s) fits in the tests' 30-s stop deadline even when SIGTERM
            # lands while an ingest job of the demo feed is running; tests of the drain set their own.
            "GOALD_JOBS_SHUTDOWN_TIMEOUT_S": "5", **extra}


@pytest.fixture
def counter(db_dsn):
    fetch(db_dsn, "CREATE TABLE test_counter (n int NOT NULL); INSERT INTO test_counter VALUES (0)")
    return lambda: fetch(db_dsn, "SELECT n FROM test_counter")[0][0]


def rows(db_dsn, job):
    return fetch(db_dsn, "SELECT scheduled_at, outcome, node, error FROM job_runs WHERE job = %s "
                         "ORDER BY scheduled_at", (job,))


def test_two_goald_processes_with_different_offsets_run_every_period_exactly_once(db_dsn, counter, processes):
    """node-a runs test_count at offset 0, node-b at offset 1 of each 2-second period (stagger seen
    differently, configuration drift). While both run, a always claims first and b finds each
    period taken; then a stops and b runs every period from the next one on."""
    duration_s = float(os.environ.get("GOALD_TEST_TWO_INSTANCES_S", "180"))
    env = job_env(db_dsn, GOALD_JOB_TEST_COUNT_ENABLED="true", GOALD_TEST_COUNT_EVERY_S="2")
    a = processes("a", GOALD_NODE_NAME="node-a", GOALD_JOB_TEST_COUNT_OFFSET_S="0", **env)
    b = processes("b", GOALD_NODE_NAME="node-b", GOALD_JOB_TEST_COUNT_OFFSET_S="1", **env)
    a.wait_ready()
    b.wait_ready()
    time.sleep(duration_s * 2 / 3)
    assert a.stop() == 0
    a_stopped = time.time()
    time.sleep(duration_s / 3)
    assert b.stop() == 0
    runs = fetch(db_dsn, "SELECT period_at, outcome, node, offset_s, scheduled_at FROM job_runs "
                         "WHERE job = 'test_count' ORDER BY period_at")
    ps = [r[0].timestamp() for r in runs]
    assert len(ps) >= duration_s / 2 - 5
    assert [q - p for p, q in zip(ps, ps[1:])] == [2.0] * (len(ps) - 1), "a period has no row"
    assert {r[1] for r in runs} == {"succeeded"}, {r[1] for r in runs}
    assert counter() == len(runs)  # each period's effect happened exactly once
    by_a = [r for r in runs if r[2] == "node-a"]
    by_b = [r for r in runs if r[2] == "node-b"]
    assert {r[3] for r in by_a} == {0} and {r[3] for r in by_b} == {1}
    assert len(by_a) >= duration_s / 3 - 5 and len(by_b) >= duration_s / 6 - 5
    assert all(r[4].timestamp() > a_stopped - 3 for r in by_b[1:])   # b took over when a stopped
    skips = fetch(db_dsn, "SELECT count(*) FROM job_lock_skips WHERE job = 'test_count' AND node = 'node-b'")[0][0]
    assert skips >= len(by_a) - 2  # b found (nearly) every period of a's time already taken


def test_kill_9_during_a_long_job_then_restart_marks_it_interrupted_and_the_next_occurrence_runs(
        db_dsn, counter, processes):
    # stale after 3 beats + one pool wait: 3 × 1 s + 1 s
    env = job_env(db_dsn, GOALD_JOB_TEST_SLEEP_ENABLED="true", GOALD_TEST_SLEEP_S="10",
                  GOALD_TEST_SLEEP_EVERY_S="20", GOALD_DATABASE_POOL_TIMEOUT_S="1")
    first = processes("first", **env)
    first.wait_ready()
    wait_for(lambda: [r for r in rows(db_dsn, "test_sleep") if r[1] == "running"], timeout_s=30,
             interval_s=0.2, what="the 10 s job to start")
    time.sleep(2)
    first.proc.kill()
    first.wait()
    orphan_at = [r for r in rows(db_dsn, "test_sleep") if r[1] == "running"][0][0]
    second = processes("second", **env)
    second.wait_ready()
    wait_for(lambda: [r for r in rows(db_dsn, "test_sleep") if r[0] > orphan_at and r[1] == "succeeded"],
             timeout_s=60, interval_s=0.5, what="the next occurrence to succeed")
    wait_for(lambda: [r for r in rows(db_dsn, "test_sleep") if r[0] == orphan_at and r[1] == "interrupted"],
             timeout_s=40, interval_s=0.5, what="orphan rescue")
    assert second.stop() == 0
    by_time = {r[0]: r for r in rows(db_dsn, "test_sleep")}
    assert by_time[orphan_at][1] == "interrupted" and "no heartbeat" in by_time[orphan_at][3]
    succeeded = [r for r in by_time.values() if r[1] == "succeeded"]
    assert counter() == len(succeeded)  # the killed run never incremented; nothing ran twice


def test_sigterm_during_a_5_second_job_lets_it_finish_and_exits_0(db_dsn, counter, processes):
    env = job_env(db_dsn, GOALD_JOB_TEST_SLEEP_ENABLED="true", GOALD_TEST_SLEEP_S="5",
                  GOALD_JOBS_SHUTDOWN_TIMEOUT_S="20")
    g = processes(**env)
    g.wait_ready()
    wait_for(lambda: [r for r in rows(db_dsn, "test_sleep") if r[1] == "running"], timeout_s=30,
             interval_s=0.2, what="the 5 s job to start")
    t0 = time.monotonic()
    assert g.stop(signal.SIGTERM) == exitcodes.OK
    assert time.monotonic() - t0 < 20
    outcomes = [r[1] for r in rows(db_dsn, "test_sleep") if r[1] != "missed"]
    assert outcomes[-1] == "succeeded" and counter() == 1


def test_a_second_sigterm_cancels_the_running_job_and_records_it_interrupted(db_dsn, counter, processes):
    env = job_env(db_dsn, GOALD_JOB_TEST_SLEEP_ENABLED="true", GOALD_TEST_SLEEP_S="30")
    g = processes(**env)
    g.wait_ready()
    wait_for(lambda: [r for r in rows(db_dsn, "test_sleep") if r[1] == "running"], timeout_s=30,
             interval_s=0.2, what="the job to start")
    g.proc.send_signal(signal.SIGTERM)
    time.sleep(1)
    g.proc.send_signal(signal.SIGTERM)
    assert g.wait(timeout=15) == exitcodes.OK
    last = [r for r in rows(db_dsn, "test_sleep") if r[1] != "missed"][-1]
    assert last[1] == "interrupted" and counter() == 0
    assert any(e.get("event") == "goald.cold_shutdown" for e in g.events())


def test_sighup_with_a_broken_goald_toml_keeps_running_on_the_old_settings(db_dsn, tmp_path, processes):
    cfg = tmp_path / "goald.toml"
    cfg.write_text("[jobs]\nstagger_enabled = true\n")
    g = processes(GOALD_CONFIG=str(cfg), **job_env(db_dsn))
    g.wait_ready()
    cfg.write_text("[jobs]\nstagger_enabled = maybe\n")
    g.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: [e for e in g.events() if e.get("event") == "config.reload_rejected"], what="rejection")
    assert requests.get(g.url("/api/health"), timeout=5).json()["ok"] is True
    cfg.write_text("[jobs]\nstagger_enabled = false\n")
    g.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: [e for e in g.events() if e.get("event") == "config.reloaded"], what="reload")
    assert g.stop() == 0
    msgs = [e["msg"] for e in g.events()]
    assert "Job stagger disabled" in msgs  # the valid reload applied at runtime
    assert g.proc.returncode == 0


def test_health_actors_shows_the_live_tree(db_dsn, processes):
    g = processes(**job_env(db_dsn))
    g.wait_ready()
    body = requests.get(g.url("/health/actors"), timeout=5).json()
    assert body["ok"] is True and body["healthy"] is True
    tree = body["tree"]
    assert [c["name"] for c in tree["children"]] == ["pool_monitor", "heartbeat", "match_writer", "match_ticker", "change_feed",
                                                     "matches", "jobs", "clock", "console"]
    jobs = next(c for c in tree["children"] if c["name"] == "jobs")
    assert {c["name"] for c in jobs["children"]} >= {"orphan_rescue", "ledger_prune", "pool_samples_prune",
                                                     "detail_live", "daily_diary"}
    matches = next(c for c in tree["children"] if c["name"] == "matches")
    assert matches["kind"] == "dynamic_supervisor" and matches["state"] == "running"
    assert all(c["state"] == "running" and c["restarts"] == 0 for c in jobs["children"])
    assert g.stop() == 0


def test_a_crash_storm_escalates_to_the_root_and_goald_exits_6(db_dsn, counter, processes):
    env = job_env(db_dsn, GOALD_JOB_TEST_COUNT_ENABLED="true", GOALD_SUPERVISOR_MAX_RESTARTS="2",
                  GOALD_SUPERVISOR_BACKOFF_BASE_S="0.05", GOALD_SUPERVISOR_BACKOFF_MAX_S="0.1")
    g = processes(**env)
    g.wait_ready()
    wait_for(lambda: counter() > 0, what="a first run")
    fetch(db_dsn, "ALTER TABLE job_runs RENAME TO job_runs_gone")  # every claim now fails
    assert g.wait(timeout=90) == exitcodes.ESCALATED
    events = [e.get("event") for e in g.events()]
    assert "actor.restarted" in events and "supervisor.escalated" in events and "goald.escalated" in events
    tree_restarts = [e for e in g.events() if e.get("event") == "actor.restarting" and e.get("child") == "jobs"]
    assert tree_restarts, "the jobs supervisor escalated to the root, which restarted it first"


def test_systemd_notify_ready_watchdog_and_stopping_through_a_real_socket(db_dsn, tmp_path, processes):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    try:
        g = processes(NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000", **job_env(db_dsn))
        got = []
        while not any("READY=1" in m for m in got):
            got.append(sock.recv(4096).decode())
        assert any(m.startswith("STATUS=applying migrations") or "STATUS=" in m for m in got[:-1])
        ready = got[-1]
        assert f"MAINPID={g.proc.pid}" in ready and "STATUS=ready:" in ready
        watchdogs = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and watchdogs < 2:
            if sock.recv(4096).decode() == "WATCHDOG=1":
                watchdogs += 1
        assert watchdogs >= 2  # every half WATCHDOG_USEC, from the clock after its children check
        g.proc.send_signal(signal.SIGTERM)
        rest = []
        while not any("STOPPING=1" in m for m in rest):
            rest.append(sock.recv(4096).decode())
        assert g.wait() == 0
    finally:
        sock.close()


def test_goald_jobs_collisions_reports_a_pair_configured_at_the_same_second(db_dsn, tmp_path):
    env = job_env(db_dsn, GOALD_JOB_TEST_COUNT_ENABLED="true", GOALD_JOB_ORPHAN_RESCUE_OFFSET_S="0")
    out = goald(["jobs", "--collisions"], cwd=tmp_path, **env)
    assert out.returncode == exitcodes.CHECK_FAILED, out.stderr
    assert ("collision: orphan_rescue and test_count both start at :00" in out.stdout
            or "collision: orphan_rescue and test_count both start at :30" in out.stdout), out.stdout
    clean = goald(["jobs", "--collisions"], cwd=tmp_path, **job_env(db_dsn))
    assert clean.returncode == 0 and "no collisions" in clean.stdout


def test_goald_jobs_lists_offsets_enabled_timeouts_and_the_next_three_starts(db_dsn, tmp_path):
    out = goald(["jobs", "--json"], cwd=tmp_path, **job_env(db_dsn))
    assert out.returncode == 0, out.stderr
    import json

    body = json.loads(out.stdout)
    rescue = next(j for j in body["jobs"] if j["name"] == "orphan_rescue")
    assert rescue["offset_s"] == 7 and rescue["enabled"] is True and rescue["timeout_s"] == 20
    assert len(rescue["next_starts"]) == 3 and all(t[17:19] in ("07", "37") for t in rescue["next_starts"])
    assert next(j for j in body["jobs"] if j["name"] == "test_count")["enabled"] is False


def test_goald_jobs_disable_is_audited_and_a_running_goald_applies_it_without_restart(db_dsn, counter, tmp_path,
                                                                                      processes):
    env = job_env(db_dsn, GOALD_JOB_TEST_COUNT_ENABLED="true")
    g = processes(**env)
    g.wait_ready()
    wait_for(lambda: counter() >= 2, what="runs")
    out = goald(["jobs", "disable", "test_count", "--reason", "incident 42"], cwd=tmp_path, **env)
    assert out.returncode == 0, out.stderr
    assert "job.test_count.enabled: on -> off" in out.stdout
    wait_for(lambda: [r for r in rows(db_dsn, "test_count") if r[1] == "skipped_disabled"], what="disabled skip")
    n = counter()
    time.sleep(2)
    assert counter() == n
    audit = fetch(db_dsn, "SELECT name, old_value, new_value, reason FROM flag_audit")
    assert audit == [("job.test_count.enabled", None, False, "incident 42")]
    typo = goald(["jobs", "disable", "test_cuont"], cwd=tmp_path, **env)
    assert typo.returncode == exitcodes.CONFIG and "did you mean 'test_count'" in typo.stderr
    assert g.stop() == 0


def test_goald_jobs_stagger_off_is_the_30_second_rollback_and_is_audited(db_dsn, tmp_path, processes):
    g = processes(**job_env(db_dsn))
    g.wait_ready()
    out = goald(["jobs", "stagger", "off", "--reason", "rollback drill"], cwd=tmp_path, **job_env(db_dsn))
    assert out.returncode == 0 and "stagger.enabled: on -> off" in out.stdout, out.stderr
    wait_for(lambda: "Job stagger disabled" in [e.get("msg") for e in g.events()], what="the running goald")
    listed = goald(["jobs", "--json"], cwd=tmp_path, **job_env(db_dsn))
    import json

    assert {j["offset_s"] for j in json.loads(listed.stdout)["jobs"]} == {0}
    again = goald(["jobs", "stagger", "off"], cwd=tmp_path, **job_env(db_dsn))
    assert "already off; nothing changed" in again.stdout
    bad = goald(["jobs", "stagger", "sideways"], cwd=tmp_path, **job_env(db_dsn))
    assert bad.returncode == exitcodes.CONFIG and "usage: goald jobs stagger on|off" in bad.stderr
    assert fetch(db_dsn, "SELECT name, old_value, new_value, reason FROM flag_audit") == [
        ("stagger.enabled", None, False, "rollback drill")]
    assert g.stop() == 0


def test_a_collision_is_a_warning_at_start_or_a_refusal_with_exit_2_when_configured(db_dsn, processes):
    env = job_env(db_dsn, GOALD_JOB_TEST_COUNT_ENABLED="true", GOALD_JOB_ORPHAN_RESCUE_OFFSET_S="0")
    warned = processes("warn", **env)
    warned.wait_ready()
    collisions = [e for e in warned.events() if e.get("event") == "jobs.collision"]
    assert collisions and {c["level"] for c in collisions} == {"WARNING"}
    msgs = [c["msg"] for c in collisions]  # an every-second job collides with every other sub-minute poller
    assert any(m.startswith(("Job collision: orphan_rescue and test_count both start at :00",
                             "Job collision: orphan_rescue and test_count both start at :30")) for m in msgs), msgs
    assert any(m.startswith("Job collision: detail_live and test_count both start at :") for m in msgs), msgs
    # ... but not with the jobs of a minute or longer: pollers are judged among themselves
    assert not any("ledger_prune" in m for m in msgs), msgs
    assert warned.stop() == 0
    refused = processes("refuse", GOALD_JOBS_COLLISIONS="refuse", **env)
    assert refused.wait() == exitcodes.CONFIG
    assert any(e.get("event") == "jobs.collision_refused" for e in refused.events())


def test_a_bad_console_address_stops_goald_before_it_touches_the_database(empty_db_dsn, tmp_path):
    from support import json_log_lines

    out = goald(["run"], cwd=tmp_path, GOALD_DATABASE_URL=empty_db_dsn, GOALD_CONSOLE_HOST="192.0.2.1",
                GOALD_LOG_FORMAT="json")
    assert out.returncode == exitcodes.STARTUP, out.stderr
    errors = [e["msg"] for e in json_log_lines(out.stderr) if e.get("level") == "ERROR"]
    assert len(errors) == 1 and "set console.host" in errors[0], errors
    assert "Traceback" not in out.stderr
    assert fetch(empty_db_dsn, "SELECT to_regclass('schema_migrations')") == [(None,)]   # no migration ran


def test_a_job_that_ignores_cancellation_cannot_make_goald_outlast_its_stop_budget(db_dsn, processes):
    from goald.tree import UNIT_TIMEOUT_STOP_S, stop_budget_s
    from runtime_support import make_config

    env = job_env(db_dsn, GOALD_JOB_TEST_STUBBORN_ENABLED="true", GOALD_JOBS_SHUTDOWN_TIMEOUT_S="2")
    g = processes(**env)
    g.wait_ready()
    wait_for(lambda: [r for r in rows(db_dsn, "test_stubborn") if r[1] == "running"], timeout_s=30,
             interval_s=0.2, what="the stubborn job to start")
    t0 = time.monotonic()
    assert g.stop(signal.SIGTERM) == exitcodes.OK
    took = time.monotonic() - t0
    budget = stop_budget_s(make_config(GOALD_JOBS_SHUTDOWN_TIMEOUT_S="2"))
    assert took < budget <= UNIT_TIMEOUT_STOP_S, (took, budget)
    last = [r for r in rows(db_dsn, "test_stubborn") if r[1] != "missed"][-1]
    assert last[1] == "interrupted" and last[3].endswith("ignored the cancellation and was abandoned"), last
