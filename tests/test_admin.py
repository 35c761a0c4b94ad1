"""The operator console's gate and actions (console/admin.py, console/auth.py), in this process:
the real app on a real listener, real sessions in the database, the real DaemonOps over a real
Runtime (no job actors here: tests/test_admin_daemon.py runs `run now` in a real goald)."""
import re
import time
from urllib.parse import urlsplit

import itsdangerous
import psycopg2
import pytest
import requests

from goald import config, operators
from goald.actors.catalog import JobSpec
from goald.actors.runtime import Runtime
from goald.actors.schedule import Schedule
from goald.console.app import AppContext, make_app
from goald.console.auth import Auth
from goald.console.server import HttpServer
from goald.console_ops import DaemonOps
from support import sql

PASSWORD = "correct horse battery"
SCRIPT = "<script>alert(1)</script>"


def noop(ctx):
    return 0


def served_console(pool, specs, environ=None):
    """The app with a real Auth and DaemonOps over a Runtime of `specs`, on a real listener, with
    the operators alice (admin) and rob (readonly); returns (base URL, auth, server)."""
    cfg = config.load(None, environ or {}, search=False)
    rt = Runtime(pool=pool, node="t1", cfg=cfg, specs=specs)
    auth = Auth(pool, "t1", lifetime_s=3600, free_failures=3)
    app = make_app(AppContext(pool=pool, node="t1", database="test", embedded=False, auth=auth,
                              ops=DaemonOps(rt, lambda name: None)))
    with pool.connection() as conn:
        operators.add(conn, "alice", operators.hash_password(PASSWORD), "admin", by="test", node="t1")
        operators.add(conn, "rob", operators.hash_password(PASSWORD), "readonly", by="test", node="t1")
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    return f"http://127.0.0.1:{server.port}", auth, server


@pytest.fixture
def console(pool, db_dsn):
    specs = {"tidy": JobSpec("tidy", noop, Schedule(cron="*/5 * * * *", offset_s=5), timeout_s=10,
                             description=f"tidies up {SCRIPT}"),
             "count": JobSpec("count", noop, Schedule(every_s=60), timeout_s=10, description="counts")}
    base, auth, server = served_console(pool, specs)
    yield base, auth, db_dsn
    server.stop()


def where(r):
    """A redirect's target as path?query (Bottle makes Location absolute)."""
    u = urlsplit(r.headers["Location"])
    return u.path + ("?" + u.query if u.query else "")


def login(base, name="alice", password=PASSWORD):
    s = requests.Session()
    r = s.post(base + "/admin/login", data={"name": name, "password": password, "next": "/admin/jobs"},
               allow_redirects=False, timeout=10)
    return s, r


def csrf_of(session, base, path="/admin/jobs"):
    html = session.get(base + path, timeout=10).text
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def flag(dsn, name):
    rows = sql(dsn, "SELECT enabled FROM flags WHERE name = %s", (name,))
    return rows[0][0] if rows else None


@pytest.mark.parametrize("path", ["/admin/jobs", "/admin/audit", "/admin/jobs?q=tidy"])
def test_an_anonymous_page_request_is_redirected_to_the_login_page_and_comes_back_after(console, path):
    base, _, _ = console
    r = requests.get(base + path, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and where(r).startswith("/admin/login?next=")
    s = requests.Session()
    r = s.post(base + "/admin/login", data={"name": "alice", "password": PASSWORD, "next": path},
               allow_redirects=False, timeout=10)
    assert r.status_code == 303 and where(r) == path


@pytest.mark.parametrize("path", ["/admin/jobs.json", "/admin/audit.json"])
def test_an_anonymous_json_twin_request_answers_401_in_the_envelope(console, path):
    base, _, _ = console
    r = requests.get(base + path, timeout=10)
    assert r.status_code == 401 and r.json()["ok"] is False and r.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("path", ["/admin/jobs/tidy/disable", "/admin/jobs/tidy/run", "/admin/stagger/off",
                                  "/admin/jobs/tidy/stagger/off"])
def test_an_anonymous_action_changes_nothing(console, path):
    base, _, dsn = console
    r = requests.post(base + path, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and where(r) == "/admin/login"
    r = requests.post(base + path, headers={"Accept": "application/json"}, timeout=10)
    assert r.status_code == 401
    assert sql(dsn, "SELECT count(*) FROM flags")[0][0] == 0
    assert sql(dsn, "SELECT count(*) FROM job_runs")[0][0] == 0


def test_a_login_sets_an_httponly_samesite_cookie_and_the_jobs_page_lists_the_catalog(console):
    base, _, dsn = console
    s, r = login(base)
    cookie = r.headers["Set-Cookie"]
    assert r.status_code == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    page = s.get(base + "/admin/jobs", timeout=10)
    assert page.status_code == 200 and 'id="job-tidy"' in page.text and 'id="job-count"' in page.text
    doc = s.get(base + "/admin/jobs.json", timeout=10).json()
    tidy = next(j for j in doc["jobs"] if j["name"] == "tidy")
    assert doc["ok"] and tidy["enabled"] is True and tidy["offset_s"] == 5 and len(tidy["next_starts"]) == 3
    assert [r[0] for r in sql(dsn, "SELECT action FROM audit_log WHERE actor = 'alice'")] == ["login"]


def test_the_session_cookie_holds_no_pickle_and_a_forged_one_is_refused(console):
    base, _, _ = console
    s, _ = login(base)
    value = s.cookies["goald_session"]
    assert not value.startswith("!")                  # Bottle's pickled cookies start with "!"
    forged = requests.get(base + "/admin/jobs.json", cookies={"goald_session": value[:-2] + "xx"}, timeout=10)
    assert forged.status_code == 401
    other = itsdangerous.URLSafeTimedSerializer(b"k" * 32, salt="goald.console.session").dumps("some-id")
    assert requests.get(base + "/admin/jobs.json", cookies={"goald_session": other}, timeout=10).status_code == 401
    assert s.get(base + "/admin/jobs.json", timeout=10).status_code == 200


def test_a_wrong_password_is_refused_and_audited_without_saying_which_part_was_wrong(console):
    base, _, dsn = console
    _, r = login(base, password="not the password")
    _, r2 = login(base, name="nobody", password="not the password")
    assert r.status_code == 401 and r2.status_code == 401
    assert "wrong name or password" in r.text and "wrong name or password" in r2.text
    assert "Set-Cookie" not in r.headers
    rows = sql(dsn, "SELECT actor, action, reason FROM audit_log WHERE action = 'login_failed' ORDER BY id")
    assert rows == [("alice", "login_failed", "wrong password"), ("nobody", "login_failed", "unknown operator")]


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(console):
    base, _, dsn = console
    s, _ = login(base)
    r = s.post(base + "/admin/jobs/tidy/disable", allow_redirects=False, timeout=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    r = s.post(base + "/admin/jobs/tidy/disable", data={"csrf_token": "guess"}, allow_redirects=False, timeout=10)
    assert r.status_code == 403
    assert flag(dsn, "job.tidy.enabled") is None


def test_a_post_from_another_origin_is_refused_even_with_the_token(console):
    base, _, dsn = console
    s, _ = login(base)
    token = csrf_of(s, base)
    r = s.post(base + "/admin/jobs/tidy/disable", data={"csrf_token": token},
               headers={"Origin": "https://evil.example"}, allow_redirects=False, timeout=10)
    assert r.status_code == 403 and flag(dsn, "job.tidy.enabled") is None


def test_an_admin_disables_and_enables_a_job_and_each_change_is_in_the_audit_trail(console):
    base, _, dsn = console
    s, _ = login(base)
    token = csrf_of(s, base)
    r = s.post(base + "/admin/jobs/tidy/disable", data={"csrf_token": token, "reason": "noisy tonight"},
               allow_redirects=False, timeout=10)
    assert r.status_code == 303 and "msg=disabled" in where(r)
    assert flag(dsn, "job.tidy.enabled") is False
    page = s.get(base + where(r), timeout=10).text
    assert "tidy disabled" in page
    r = s.post(base + "/admin/jobs/tidy/enable", data={"csrf_token": token}, headers={"Accept": "application/json"},
               timeout=10)
    assert r.status_code == 200 and r.json()["result"] == "enabled" and flag(dsn, "job.tidy.enabled") is True
    trail = s.get(base + "/admin/audit.json", timeout=10).json()["entries"]
    flags = [(e["target"], e["old"], e["new"], e["actor"]) for e in trail if e["action"] == "flag"]
    # old None: the flag had no row yet (its catalog default applied)
    assert flags == [("job.tidy.enabled", "false", "true", "alice"), ("job.tidy.enabled", None, "false", "alice")]


def test_stagger_goes_off_and_on_through_the_console(console):
    base, _, dsn = console
    s, _ = login(base)
    token = csrf_of(s, base)
    assert s.post(base + "/admin/stagger/off", data={"csrf_token": token}, timeout=10).status_code == 200
    assert flag(dsn, "stagger.enabled") is False
    assert s.post(base + "/admin/jobs/tidy/stagger/off", data={"csrf_token": token}, timeout=10).status_code == 200
    assert flag(dsn, "job.tidy.stagger") is False


def test_a_read_only_operator_may_look_but_every_post_of_theirs_is_refused(console):
    base, _, dsn = console
    s, _ = login(base, name="rob")
    page = s.get(base + "/admin/jobs", timeout=10).text
    assert 'id="job-tidy"' in page and "Run now" not in page and "Disable" not in page
    token = csrf_of(s, base)
    for path in ("/admin/jobs/tidy/disable", "/admin/jobs/tidy/run", "/admin/stagger/off"):
        r = s.post(base + path, data={"csrf_token": token}, allow_redirects=False, timeout=10)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert sql(dsn, "SELECT count(*) FROM flags")[0][0] == 0


def test_a_job_description_and_an_audit_reason_holding_markup_render_escaped(console):
    base, _, _ = console
    s, _ = login(base)
    token = csrf_of(s, base)
    s.post(base + "/admin/jobs/count/disable", data={"csrf_token": token, "reason": SCRIPT}, timeout=10)
    for path in ("/admin/jobs", "/admin/audit"):
        html = s.get(base + path, timeout=10).text
        assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_login_storm_is_slowed_down_and_the_right_password_waits_too(console):
    base, auth, dsn = console
    for _ in range(3):                                  # the free failures (console.login_free_failures)
        assert login(base, password="wrong password")[1].status_code == 401
    _, r = login(base)                                  # now even the right password must wait
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "too many failed logins" in r.text
    assert sql(dsn, "SELECT count(*) FROM audit_log WHERE action = 'login_throttled'")[0][0] == 1
    _, r = login(base, name="rob")                      # another name from the same address waits too
    assert r.status_code == 429
    auth.throttle.clock = lambda: time.monotonic() + 2  # the 1-s wait is over: checked again, and let in
    assert login(base)[1].status_code == 303


def test_logging_out_ends_the_session_for_good(console):
    base, _, _ = console
    s, _ = login(base)
    cookie = s.cookies["goald_session"]
    token = csrf_of(s, base)
    r = s.post(base + "/admin/logout", data={"csrf_token": token}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and "Max-Age=0" in r.headers["Set-Cookie"]
    again = requests.get(base + "/admin/jobs.json", cookies={"goald_session": cookie}, timeout=10)
    assert again.status_code == 401


def test_a_new_password_ends_the_operators_sessions(console, pool):
    base, _, _ = console
    s, _ = login(base)
    assert s.get(base + "/admin/jobs.json", timeout=10).status_code == 200
    with pool.connection() as conn:
        assert operators.set_password(conn, "alice", operators.hash_password("another long one"), by="t",
                                      node="t1") == 1
    assert s.get(base + "/admin/jobs.json", timeout=10).status_code == 401


def test_the_login_form_never_sends_the_operator_to_another_site_afterwards(console):
    base, _, _ = console
    for target in ("//evil.example/x", "https://evil.example", "/api/health", "/admin\\@evil"):
        r = requests.post(base + "/admin/login", data={"name": "alice", "password": PASSWORD, "next": target},
                          allow_redirects=False, timeout=10)
        assert r.status_code == 303 and where(r) == "/admin/jobs"


def test_run_now_without_a_job_actor_is_refused_with_a_reason_and_writes_no_row(console):
    base, _, dsn = console
    s, _ = login(base)
    token = csrf_of(s, base)
    r = s.post(base + "/admin/jobs/tidy/run", data={"csrf_token": token}, timeout=10)
    assert r.status_code == 409 and "not running right now" in r.json()["error"]["message"]
    r = s.post(base + "/admin/jobs/nope/run", data={"csrf_token": token}, timeout=10)
    assert r.status_code == 404
    assert sql(dsn, "SELECT count(*) FROM job_runs")[0][0] == 0


def test_the_audit_page_filters_and_pages(console):
    base, _, _ = console
    s, _ = login(base)
    token = csrf_of(s, base)
    for verb in ("disable", "enable", "disable"):
        s.post(base + f"/admin/jobs/count/{verb}", data={"csrf_token": token}, timeout=10)
        time.sleep(0.01)
    only_logins = s.get(base + "/admin/audit.json?action=login", timeout=10).json()["entries"]
    assert [e["action"] for e in only_logins] == ["login"]
    r = s.get(base + "/admin/audit.json?before=yesterday", timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


def insert_runs(dsn, rows):
    """Ledger rows: (job, seconds ago, outcome, duration_ms, pool utilization at start)."""
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        for job, ago, outcome, dur, util in rows:
            cur.execute("INSERT INTO job_runs (job, period_at, scheduled_at, started_at, finished_at, outcome, node, "
                        "duration_ms, pool_utilization_at_start, error) VALUES (%s, now() - make_interval(secs => %s), "
                        "now() - make_interval(secs => %s), now() - make_interval(secs => %s), now(), %s, 'n1', %s, %s, "
                        "%s)", (job, ago, ago, ago, outcome, dur, util, "boom <b>" if outcome == "failed" else None))


def test_the_run_history_filters_pages_and_shows_one_runs_detail(console):
    base, _, dsn = console
    insert_runs(dsn, [("tidy", 10 * i + 1, "failed" if i % 3 == 0 else "succeeded", 100 + i, 10.0) for i in range(60)]
                + [("count", 5, "succeeded", 7, 20.0)])
    s, _ = login(base)
    doc = s.get(base + "/admin/runs.json?job=tidy", timeout=10).json()
    assert len(doc["runs"]) == 50 and {r["job"] for r in doc["runs"]} == {"tidy"} and doc["older"]
    older = s.get(base + f"/admin/runs.json?job=tidy&before={doc['older']}", timeout=10).json()
    assert len(older["runs"]) == 10 and max(r["id"] for r in older["runs"]) < doc["older"]
    failed = s.get(base + "/admin/runs.json?outcome=failed", timeout=10).json()["runs"]
    assert len(failed) == 20 and all(r["outcome"] == "failed" for r in failed)
    assert s.get(base + "/admin/runs.json?outcome=exploded", timeout=10).status_code == 400
    assert s.get(base + "/admin/runs.json?since=last+week", timeout=10).status_code == 400
    html = s.get(base + "/admin/runs?outcome=failed", timeout=10).text
    assert 'id="runs"' in html and "boom &lt;b&gt;" in html
    one = failed[0]["id"]
    detail = s.get(base + f"/admin/runs/{one}.json", timeout=10).json()["run"]
    assert detail["error"] == "boom <b>" and detail["pool_utilization_at_start"] == 10.0
    assert "Run " + str(one) in s.get(base + f"/admin/runs/{one}", timeout=10).text
    assert s.get(base + "/admin/runs/999999.json", timeout=10).status_code == 404


def test_the_jobs_page_shows_the_last_run_and_the_p95_of_each_job(console):
    base, _, dsn = console
    insert_runs(dsn, [("tidy", 60 * i + 1, "succeeded", d, 5.0) for i, d in enumerate(range(100, 0, -1))])
    s, _ = login(base)
    tidy = next(j for j in s.get(base + "/admin/jobs.json", timeout=10).json()["jobs"] if j["name"] == "tidy")
    assert tidy["last_outcome"] == "succeeded" and tidy["last_duration_ms"] == 100
    assert tidy["p95_duration_ms"] == 95 and tidy["p50_duration_ms"] == 50


def test_the_pool_page_shows_the_pool_now_and_a_chart_of_its_samples(console):
    base, _, dsn = console
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        for i in range(30):
            cur.execute("INSERT INTO pool_samples (sampled_at, node, active, idle, waiting, total, max, utilization, "
                        "peak_utilization) VALUES (now() - make_interval(secs => %s), 't1', 1, 1, 0, 2, 10, %s, %s)",
                        (i * 60, 10.0 + i, 20.0 + i))
            cur.execute("INSERT INTO pool_samples (sampled_at, node, active, idle, waiting, total, max, utilization, "
                        "peak_utilization) VALUES (now(), 'other-node', 9, 1, 0, 10, 10, 90, 90)")
    s, _ = login(base)
    doc = s.get(base + "/admin/pool.json?hours=1", timeout=10).json()
    assert {"active", "idle", "waiting", "total", "utilization"} <= doc["now"].keys()
    assert 20 <= len(doc["samples"]) <= 30 and max(p["utilization"] for p in doc["samples"]) < 90   # this node's only
    html = s.get(base + "/admin/pool?hours=1", timeout=10).text
    assert 'id="pool-chart"' in html and "<polyline" in html
    assert s.get(base + "/admin/pool.json?hours=-3", timeout=10).status_code == 400


def test_the_timeline_draws_each_job_at_its_offset_and_marks_collisions(pool, db_dsn):
    specs = {n: JobSpec(n, noop, Schedule(cron="* * * * *", offset_s=off), timeout_s=10, description=n)
             for n, off in (("a_job", 15), ("b_job", 15), ("c_job", 40))}
    base, _, server = served_console(pool, specs)
    insert_runs(db_dsn, [("a_job", 30, "succeeded", 2500, 40.0)])
    try:
        s, _ = login(base)
        doc = s.get(base + "/admin/timeline.json", timeout=10).json()
        seconds = {j["name"]: j["seconds"] for j in doc["jobs"]}
        assert seconds == {"a_job": [15], "b_job": [15], "c_job": [40]}
        assert [(c["first"], c["second"], c["second_of_minute"]) for c in doc["collisions"]] == [("a_job", "b_job", 15)]
        assert sum(p["starts"] for p in doc["per_second"]) == 1
        html = s.get(base + "/admin/timeline", timeout=10).text
        assert 'id="timeline-chart"' in html and 'class="collide"' in html and "a_job and b_job both start at :15" in html
    finally:
        server.stop()


def test_the_configuration_page_shows_sources_and_masks_secrets(pool):
    base, _, server = served_console(pool, {}, {"GOALD_PROVIDER_SECRET": "supersecret-value",
                                                "GOALD_CACHE_REDIS_URL": "redis://:hunter2pw@cache.example:6379/0"})
    try:
        s, _ = login(base)
        doc = s.get(base + "/admin/config.json", timeout=10).json()
        by_name = {r["name"]: r for r in doc["settings"]}
        assert by_name["console.port"]["source"] == "default" and by_name["provider.secret"]["source"] == "env"
        html = s.get(base + "/admin/config", timeout=10).text
        for answer in (html, str(doc)):
            assert "supersecret-value" not in answer and "hunter2pw" not in answer
        assert "cache.example" in html                        # a DSN keeps its host visible
    finally:
        server.stop()
