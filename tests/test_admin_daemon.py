"""The operator console in a real `goald run`: the first start's operator, a disabled job's next
occurrence, and run now through the job actor's claim (tests/jobs_for_tests.py's jobs)."""
import re
import time
from pathlib import Path

import gevent
import requests

from daemon_support import Goald
from support import sql

TESTS_DIR = str(Path(__file__).parent)


def env(db_dsn, **extra):
    return {"GOALD_DATABASE_URL": db_dsn, "GOALD_JOBS_MODULES": "jobs_for_tests", "PYTHONPATH": TESTS_DIR,
            "GOALD_PROVIDER_DEMO_MATCHES": "20", "GOALD_JOB_TEST_COUNT_ENABLED": "true",
            "GOALD_JOB_TEST_SLEEP_ENABLED": "true", "GOALD_TEST_SLEEP_S": "0", "GOALD_TEST_SLEEP_EVERY_S": "3600",
            **extra}


def printed_password(g):
    m = re.search(r"name admin, password (\S+) \(shown only now", g.stdout)
    return m.group(1) if m else None


def logged_in(g, password):
    s = requests.Session()
    r = s.post(g.url("/admin/login"), data={"name": "admin", "password": password}, timeout=10)
    assert r.status_code == 200 and r.url.endswith("/admin/jobs"), r.text[:300]
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    return s, token


def wait_for(check, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    return check()


def test_the_first_start_prints_an_operator_password_once_and_it_logs_in(db_dsn, tmp_path):
    sql(db_dsn, "CREATE TABLE test_counter (n int)")
    first = Goald(tmp_path, "first", **env(db_dsn))
    try:
        first.wait_ready()
        password = printed_password(first)
        assert password and password not in first.stderr      # the log says it was printed, never what
        assert any(e.get("event") == "console.operator_created" for e in first.events())
        stored = sql(db_dsn, "SELECT password_hash FROM operators WHERE name = 'admin'")[0][0]
        assert password not in stored
        logged_in(first, password)
    finally:
        first.cleanup()
    again = Goald(tmp_path, "again", **env(db_dsn))
    try:
        again.wait_ready()
        assert printed_password(again) is None and "password" not in again.stdout
    finally:
        again.cleanup()


def test_a_job_disabled_in_the_console_records_skipped_disabled_and_run_now_makes_one_manual_row(db_dsn, tmp_path):
    sql(db_dsn, "CREATE TABLE test_counter (n int)")
    sql(db_dsn, "INSERT INTO test_counter VALUES (0)")
    g = Goald(tmp_path, "console", **env(db_dsn, GOALD_JOBS_FLAG_POLL_S="0.5"))
    try:
        g.wait_ready()
        s, token = logged_in(g, printed_password(g))
        assert wait_for(lambda: sql(db_dsn, "SELECT count(*) FROM job_runs WHERE job = 'test_count' "
                                            "AND outcome = 'succeeded'")[0][0] > 0)
        r = s.post(g.url("/admin/jobs/test_count/disable"), data={"csrf_token": token}, timeout=10)
        assert r.status_code == 200 and "test_count disabled" in r.text
        changed_at = time.time()
        assert wait_for(lambda: sql(db_dsn, "SELECT count(*) FROM job_runs WHERE job = 'test_count' AND outcome = "
                                            "'skipped_disabled' AND scheduled_at > to_timestamp(%s)",
                                    (changed_at,))[0][0] > 0)
        page = s.get(g.url("/admin/jobs.json"), timeout=10).json()
        assert next(j for j in page["jobs"] if j["name"] == "test_count")["enabled"] is False

        r = s.post(g.url("/admin/jobs/test_sleep/run"), data={"csrf_token": token},
                   headers={"Accept": "application/json"}, timeout=15)
        assert r.status_code == 200 and r.json()["state"] == "claimed", r.text
        rows = wait_for(lambda: sql(db_dsn, "SELECT trigger, outcome FROM job_runs WHERE job = 'test_sleep' "
                                            "AND outcome <> 'running'"))
        assert rows == [("manual", "succeeded")]          # one run, and its row says who asked: manual
        audit = sql(db_dsn, "SELECT actor, action, target FROM audit_log WHERE action = 'run_now'")
        assert audit == [("admin", "run_now", "test_sleep")]
        jobs = s.get(g.url("/admin/jobs.json"), timeout=10).json()["jobs"]
        sleep = next(j for j in jobs if j["name"] == "test_sleep")
        assert sleep["last_trigger"] == "manual" and sleep["last_outcome"] == "succeeded"
    finally:
        g.cleanup()


PAGES = ["/admin/jobs", "/admin/timeline", "/admin/runs", "/admin/pool", "/admin/actors", "/admin/provider",
         "/admin/matches",
         "/admin/config", "/admin/audit"]


def test_every_console_page_and_its_twin_needs_a_login_and_then_shows_the_running_daemon(db_dsn, tmp_path):
    sql(db_dsn, "CREATE TABLE test_counter (n int)")
    g = Goald(tmp_path, "pages", **env(db_dsn))
    try:
        g.wait_ready()
        for path in PAGES:
            r = requests.get(g.url(path), allow_redirects=False, timeout=10)
            assert r.status_code == 303 and "/admin/login?next=" in r.headers["Location"], path
            assert requests.get(g.url(path + ".json"), timeout=10).status_code == 401, path
        s, _ = logged_in(g, printed_password(g))
        for path in PAGES:
            page, twin = s.get(g.url(path), timeout=10), s.get(g.url(path + ".json"), timeout=10)
            assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), path
            assert twin.status_code == 200 and twin.json()["ok"] is True, path
        tree = s.get(g.url("/admin/actors.json"), timeout=10).json()["tree"]
        assert tree["state"] == "running" and {"jobs", "clock", "console"} <= {c["name"] for c in tree["children"]}
        assert 'id="actor-clock"' in s.get(g.url("/admin/actors"), timeout=10).text
        provider = s.get(g.url("/admin/provider.json"), timeout=10).json()["provider"]
        assert provider["groups"]["live"]["state"] == "closed" and provider["endpoints"]
        report = s.get(g.url("/admin/config.json"), timeout=10).json()["doctor"]
        names = [c["name"] for c in report["checks"]]
        assert names == ["migrations", "pool", "provider", "operator", "secrets", "systemd", "clock", "cache"]
        assert next(c for c in report["checks"] if c["name"] == "operator")["ok"] is True
        assert 'id="doctor"' in s.get(g.url("/admin/config"), timeout=10).text
        fragment = s.get(g.url("/admin/jobs?fragment=1"), timeout=10).text
        assert fragment.lstrip().startswith('<section id="jobs"') and "<html" not in fragment
    finally:
        g.cleanup()


def test_the_matches_page_lists_live_matches_and_a_match_shows_its_actors_last_updates(db_dsn, tmp_path):
    sql(db_dsn, "CREATE TABLE test_counter (n int)")
    g = Goald(tmp_path, "matches", **env(db_dsn, GOALD_PROVIDER_DEMO_MATCHES="60"))
    try:
        g.wait_ready()
        s, _ = logged_in(g, printed_password(g))
        doc = wait_for(lambda: (d := s.get(g.url("/admin/matches.json"), timeout=10).json())["count"] and d)
        assert doc["count"] > 0 and {"minute_text", "stale_reason", "score"} <= doc["matches"][0].keys()
        mid = doc["matches"][0]["id"]
        detail = wait_for(lambda: (d := s.get(g.url(f"/admin/matches/{mid}.json"), timeout=10).json())["recent"] and d)
        assert detail["tracked_here"] is True and detail["recent"][0]["kind"] in ("applied", "rejected_older")
        assert detail["match"]["id"] == mid
        html = s.get(g.url(f"/admin/matches/{mid}"), timeout=10).text
        assert 'id="recent"' in html
        assert s.get(g.url("/admin/matches/no-such-match.json"), timeout=10).status_code == 404
        assert s.get(g.url("/admin/matches/bad%20id.json"), timeout=10).status_code == 400
    finally:
        g.cleanup()


def test_run_now_pressed_on_two_nodes_at_once_runs_the_job_once(db_dsn, tmp_path):
    sql(db_dsn, "CREATE TABLE test_counter (n int)")
    sql(db_dsn, "INSERT INTO test_counter VALUES (0)")
    nodes = [Goald(tmp_path, f"n{i}", GOALD_NODE_NAME=f"n{i}",
                   **env(db_dsn, GOALD_TEST_SLEEP_S="3", GOALD_JOB_TEST_COUNT_ENABLED="false"))
             for i in (1, 2)]
    try:
        for n in nodes:
            n.wait_ready()
        password = next(p for p in (printed_password(n) for n in nodes) if p)
        sessions = [logged_in(n, password) for n in nodes]
        answers = [g.value for g in gevent.joinall([
            gevent.spawn(s.post, n.url("/admin/jobs/test_sleep/run"), data={"csrf_token": token},
                         headers={"Accept": "application/json"}, timeout=15)
            for n, (s, token) in zip(nodes, sessions)])]
        assert [a.status_code for a in answers] == [200, 200]
        rows = wait_for(lambda: (r := sql(db_dsn, "SELECT node, outcome FROM job_runs WHERE job = 'test_sleep' "
                                                  "AND trigger = 'manual' ORDER BY outcome"))
                        and all(o != "running" for _, o in r) and r)
        outcomes = sorted(o for _, o in rows)
        assert outcomes == ["skipped_overlap", "succeeded"], rows     # one ran; the other saw it running
    finally:
        for n in nodes:
            n.cleanup()
