"""The HTTP side: health endpoints, the one JSON envelope, no tracebacks to clients."""
import json

import gevent
import pytest
import requests
from goald.console.app import AppContext, make_app
from goald.console.server import ConsoleStartError, HttpServer

from goald.db.pool import Pool


@pytest.fixture
def served(pool):
    """The app on a real listener (port 0 = a free port); yields (base_url, app)."""
    app = make_app(AppContext(pool=pool, node="test-node", database="test db", embedded=False))
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    yield f"http://127.0.0.1:{server.port}", app
    server.stop()


def get(url):
    # requests blocks cooperatively (gevent-patched sockets), the server runs in this process
    return requests.get(url, timeout=5)


def test_api_health_answers_ok_with_version_node_and_database(served):
    base, _ = served
    r = get(base + "/api/health")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    doc = r.json()
    assert doc["ok"] is True and doc["node"] == "test-node" and doc["database"]["ok"] is True


def test_health_pool_holds_active_idle_waiting_total_and_utilization(served, pool):
    base, _ = served
    with pool.connection():
        doc = get(base + "/health/pool").json()
    assert doc["ok"] is True
    assert {"active", "idle", "waiting", "total", "utilization", "max"} <= doc.keys()
    assert doc["active"] >= 1 and doc["utilization"] == pytest.approx(100.0 * doc["active"] / doc["max"])


def test_an_unknown_path_gets_a_404_in_the_envelope(served):
    base, _ = served
    r = get(base + "/nope")
    assert r.status_code == 404
    assert r.json() == {"ok": False, "error": {"code": "not_found", "message": "no such endpoint: /nope"}}


def test_a_wrong_method_gets_a_405_in_the_envelope(served):
    base, _ = served
    r = requests.post(base + "/health/pool", timeout=5)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_a_failing_handler_answers_500_in_the_envelope_without_a_traceback(served):
    base, app = served

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals at line 42")

    r = get(base + "/boom")
    assert r.status_code == 500
    doc = r.json()
    assert doc["ok"] is False and doc["error"]["code"] == "internal"
    assert "Traceback" not in r.text and "secret internals" not in r.text


def test_api_health_says_503_when_the_database_cannot_be_reached(db_dsn):
    dead = Pool("postgresql://nobody@127.0.0.1:1/none", maxconn=1, connect_timeout_s=1)
    app = make_app(AppContext(pool=dead, node="n", database="gone", embedded=False))
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    try:
        r = get(f"http://127.0.0.1:{server.port}/api/health")
    finally:
        server.stop()
    assert r.status_code == 503
    assert r.json()["ok"] is False and r.json()["error"]["code"] == "database_unavailable"


def test_a_busy_port_is_a_clear_start_error(pool):
    app = make_app(AppContext(pool=pool, node="n", database="d", embedded=False))
    first = HttpServer(app, "127.0.0.1", 0)
    first.start()
    try:
        with pytest.raises(ConsoleStartError, match=f"127.0.0.1:{first.port} is in use; set console.port"):
            HttpServer(app, "127.0.0.1", first.port).start()
    finally:
        first.stop()


def test_many_concurrent_requests_are_served_by_greenlets(served):
    base, _ = served
    jobs = [gevent.spawn(get, base + "/health/pool") for _ in range(50)]
    gevent.joinall(jobs, raise_error=True)
    assert all(j.value.status_code == 200 and json.loads(j.value.text)["ok"] for j in jobs)


def test_a_host_name_that_does_not_resolve_names_console_host_not_the_port():
    from goald.console.server import bind

    with pytest.raises(ConsoleStartError, match=r"console.host 'no-such-host.invalid' is not an address"):
        bind("no-such-host.invalid", 8080)


def test_an_address_this_machine_does_not_have_names_console_host():
    from goald.console.server import bind

    with pytest.raises(ConsoleStartError, match=r"192.0.2.1 is not an address of this machine; set console.host"):
        bind("192.0.2.1", 0)   # TEST-NET-1: never a local address


def test_health_pool_answers_utilization_in_percent_as_the_seeds_runbooks_read_it(served, pool):
    base, _ = served
    with pool.connection(), pool.connection():   # 2 of the fixture pool's 4 connections
        doc = get(base + "/health/pool").json()
    assert doc["utilization"] == 50.0 and doc["active"] == 2 and doc["max"] == 4
