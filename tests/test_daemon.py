"""`goald run` end to end: a real goald process, the embedded PostgreSQL or the test server,
real HTTP, real signals. Readiness is the `goald.ready` JSON log line (it carries the port).
goald runs as the tests do (as root: its embedded PostgreSQL as nobody), with the data directory
in the test's `workdir` (see unprivileged.py)."""
import json
import signal
import socket
import time

import psutil
import psycopg2
import pytest
import requests
from daemon_support import READY_DEADLINE_S, postgres_processes
from unprivileged import run_goald, run_python

from goald import exitcodes


def assert_no_postgres_left(data_dir):
    deadline = time.monotonic() + 5
    while postgres_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = postgres_processes(data_dir)
    assert not left, f"embedded PostgreSQL still running: {[p.info['cmdline'] for p in left]}"
    assert not (data_dir / "pg" / "postmaster.pid").exists()


def postmaster_pid(data_dir):
    return int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])


# --- embedded PostgreSQL ----------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_with_embedded_postgres_serves_health_and_stops_cleanly(sig, workdir, processes):
    data = workdir / "data"
    g = processes(data_dir=data)
    g.wait_ready()

    r = requests.get(g.url("/health/pool"), timeout=5)
    assert r.status_code == 200
    pool = r.json()
    assert pool["ok"] is True
    for key in ("active", "idle", "waiting", "total", "utilization"):
        assert isinstance(pool[key], (int, float)), (key, pool)
    assert 0 <= pool["utilization"] <= 100

    r = requests.get(g.url("/api/health"), timeout=5)
    assert r.status_code == 200
    health = r.json()
    assert health["ok"] is True
    assert health["database"]["ok"] is True and health["database"]["embedded"] is True

    r = requests.get(g.url("/no/such/endpoint"), timeout=5)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["ok"] is False and body["error"]["code"] == "not_found"

    assert postgres_processes(data), "the embedded PostgreSQL is not running in the data dir"
    assert g.stop(sig) == 0, g.stderr
    names = [e.get("event") for e in g.events()]
    assert "goald.stopping" in names and names[-1] == "goald.stopped"
    stopping = next(e for e in g.events() if e.get("event") == "goald.stopping")
    assert stopping["signal"] == sig.name
    assert_no_postgres_left(data)


def test_console_port_in_use_exits_5_before_the_embedded_postgres_is_ever_started(workdir, processes):
    data = workdir / "data"
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        g = processes(data_dir=data, GOALD_CONSOLE_PORT=str(port))
        rc = g.wait(timeout=READY_DEADLINE_S)
    finally:
        blocker.close()
    assert rc == exitcodes.STARTUP, g.stderr
    errors = [e for e in g.events() if e.get("level") == "ERROR"]
    assert len(errors) == 1, g.stderr
    msg = errors[0]["msg"]
    assert f"127.0.0.1:{port}" in msg and "in use" in msg and "console.port" in msg
    assert "\n" not in msg
    assert "Traceback" not in g.stderr
    assert not (data / "pg").exists(), "the embedded PostgreSQL was started before the console port was bound"
    assert not postgres_processes(data)


def test_a_start_up_failure_after_the_database_opened_stops_the_embedded_postgres(workdir, processes):
    data = workdir / "data"
    g = processes(data_dir=data, GOALD_JOBS_MODULES="no_such_module")  # the job catalog: after migrations
    assert g.wait(timeout=READY_DEADLINE_S) == exitcodes.CONFIG, g.stderr
    names = [e.get("event") for e in g.events()]
    assert "database.ready" in names and "migrations.done" in names, g.stderr
    errors = [e for e in g.events() if e.get("level") == "ERROR"]
    assert len(errors) == 1 and "no_such_module" in errors[0]["msg"], g.stderr
    assert "Traceback" not in g.stderr
    assert (data / "pg" / "PG_VERSION").exists(), "the embedded PostgreSQL was never started"
    assert_no_postgres_left(data)


def test_kill_9_leaves_postgres_running_and_the_next_run_reuses_and_stops_it(workdir, processes):
    data = workdir / "data"
    first = processes("first", data_dir=data)
    first.wait_ready()
    pid = postmaster_pid(data)

    first.proc.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    time.sleep(0.5)
    assert psutil.pid_exists(pid) and postgres_processes(data), "the embedded PostgreSQL died with goald"

    second = processes("second", data_dir=data)
    second.wait_ready()
    assert postmaster_pid(data) == pid, "the orphaned embedded PostgreSQL was not reused"
    r = requests.get(second.url("/api/health"), timeout=5)
    assert r.status_code == 200 and r.json()["ok"] is True

    # another goald process on the same data dir finishing does not stop the server under `run`
    out = run_goald(["migrate"], workdir, GOALD_DATABASE_DATA_DIR=str(data))
    assert out.returncode == 0, out.stderr
    assert "0 migration(s) applied" in out.stdout
    assert postmaster_pid(data) == pid and psutil.pid_exists(pid)
    r = requests.get(second.url("/api/health"), timeout=5)
    assert r.status_code == 200 and r.json()["ok"] is True

    assert second.stop() == 0, second.stderr
    assert_no_postgres_left(data)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_embedded_postgres_starts_again_after_a_stop_in_the_same_process(workdir):
    data = workdir / "data"
    out = run_python(f"""
import json, psycopg2
from goald.db.embedded import EmbeddedPostgres
for _ in range(2):
    embedded = EmbeddedPostgres({str(data)!r})
    conn = psycopg2.connect(embedded.start())
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        answer = cur.fetchone()[0]
    conn.close()
    print(json.dumps({{"answer": answer, "stopped": embedded.stop()}}))
""", workdir)
    assert out.returncode == 0, out.stderr
    assert [json.loads(line) for line in out.stdout.splitlines()] == [{"answer": 1, "stopped": True}] * 2
    assert_no_postgres_left(data)


# --- an external server -----------------------------------------------------------------------

def test_run_on_an_external_server_records_pool_samples(db_dsn, tmp_path, processes):
    g = processes(GOALD_DATABASE_URL=db_dsn, GOALD_POOL_MONITOR_INTERVAL_S="0.5", GOALD_NODE_NAME="ext-node")
    g.wait_ready()

    conn = psycopg2.connect(db_dsn)
    conn.autocommit = True
    try:
        deadline = time.monotonic() + 10
        rows = []
        while time.monotonic() < deadline:
            with conn.cursor() as cur:
                cur.execute("SELECT node, active, idle, waiting, total, max, utilization FROM pool_samples")
                rows = cur.fetchall()
            if len(rows) >= 3:
                break
            time.sleep(0.2)
    finally:
        conn.close()
    assert len(rows) >= 3, f"only {len(rows)} pool samples after 10 s:\n{g.stderr}"
    assert {r[0] for r in rows} == {"ext-node"}
    assert all(r[5] == 20 for r in rows)

    health = requests.get(g.url("/api/health"), timeout=5).json()
    assert health["ok"] is True and health["database"]["embedded"] is False

    assert g.stop() == 0, g.stderr
    assert "PoolMonitor utilization" in g.stderr
    samples = [e for e in g.events() if e.get("event") == "pool_monitor.sample"]
    assert len(samples) >= 3
