"""`goald run` end to end: a real goald process, the embedded PostgreSQL or the test server,
real HTTP, real signals. Readiness is the `goald.ready` JSON log line (it carries the port)."""
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import psycopg2
import pytest
import requests
from support import goald_env, json_log_lines

from goald import exitcodes

READY_DEADLINE_S = 60
STOP_DEADLINE_S = 30




def postgres_processes(data_dir):
    """Live processes whose command line mentions `data_dir` (the embedded postmaster)."""
    needle = str(data_dir.resolve())
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if needle in cmd and p.info["status"] != psutil.STATUS_ZOMBIE and "postgres" in cmd:
                found.append(p)
        except psutil.Error:
            pass
    return found


def stop_leftover_postgres(data_dir):
    for p in postgres_processes(data_dir):
        try:
            p.send_signal(signal.SIGQUIT)  # immediate shutdown; nothing to keep in a test cluster
            p.wait(10)
        except psutil.TimeoutExpired:
            p.kill()
        except psutil.Error:
            pass


class Goald:
    """One `goald run` process; stderr goes to a file we poll for JSON log lines."""

    def __init__(self, tmp_path, tag, **env):
        self.err_path = tmp_path / f"goald-{tag}.stderr"
        self._err = open(self.err_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "goald", "run"], cwd=tmp_path,
            env=goald_env(**{"GOALD_CONSOLE_PORT": "0", "GOALD_LOG_FORMAT": "json", **env}),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._err,
            start_new_session=True)  # its own process group, as in a terminal (see stop())
        self.port = None

    @property
    def stderr(self):
        return self.err_path.read_text()

    def events(self):
        return json_log_lines(self.stderr)

    def wait_ready(self):
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            ready = [e for e in self.events() if e.get("event") == "goald.ready"]
            if ready:
                self.port = ready[0]["port"]
                return self.port
            if self.proc.poll() is not None:
                pytest.fail(f"goald exited {self.proc.returncode} before it was ready:\n{self.stderr}")
            time.sleep(0.1)
        pytest.fail(f"goald not ready after {READY_DEADLINE_S}s:\n{self.stderr}")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self, sig=signal.SIGTERM):
        if sig == signal.SIGINT:
            os.killpg(self.proc.pid, sig)  # Ctrl-C: the terminal signals the whole foreground group
        else:
            self.proc.send_signal(sig)
        return self.wait()

    def wait(self, timeout=STOP_DEADLINE_S):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"goald did not exit within {timeout}s:\n{self.stderr}")

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._err.close()


@pytest.fixture
def processes(tmp_path):
    """Start goald processes through this; every leftover (goald or embedded postgres) is killed."""
    started = []
    data_dirs = []

    def start(tag="main", data_dir=None, **env):
        if data_dir is not None:
            data_dirs.append(data_dir)
            env["GOALD_DATABASE_DATA_DIR"] = str(data_dir)
        g = Goald(tmp_path, tag, **env)
        started.append(g)
        return g

    yield start
    for g in started:
        g.cleanup()
    for d in data_dirs:
        stop_leftover_postgres(d)


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
def test_run_with_embedded_postgres_serves_health_and_stops_cleanly(sig, tmp_path, processes):
    data = tmp_path / "data"
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


def test_console_port_in_use_exits_5_and_stops_the_embedded_postgres(tmp_path, processes):
    data = tmp_path / "data"
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
    assert f"127.0.0.1:{port}" in errors[0]["msg"] and "in use" in errors[0]["msg"]
    assert "\n" not in errors[0]["msg"]
    assert "Traceback" not in g.stderr
    assert (data / "pg" / "PG_VERSION").exists(), "the embedded PostgreSQL was never started"
    assert_no_postgres_left(data)


def test_kill_9_leaves_postgres_running_and_the_next_run_reuses_and_stops_it(tmp_path, processes):
    data = tmp_path / "data"
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
    out = subprocess.run([sys.executable, "-m", "goald", "migrate"], cwd=tmp_path,
                         env=goald_env(GOALD_DATABASE_DATA_DIR=str(data)), capture_output=True, text=True,
                         timeout=READY_DEADLINE_S)
    assert out.returncode == 0, out.stderr
    assert "0 migration(s) applied" in out.stdout
    assert postmaster_pid(data) == pid and psutil.pid_exists(pid)
    r = requests.get(second.url("/api/health"), timeout=5)
    assert r.status_code == 200 and r.json()["ok"] is True

    assert second.stop() == 0, second.stderr
    assert_no_postgres_left(data)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_embedded_postgres_starts_again_after_a_stop_in_the_same_process(tmp_path):
    from goald.db.embedded import EmbeddedPostgres

    data = tmp_path / "data"
    try:
        for _ in range(2):
            embedded = EmbeddedPostgres(data)
            dsn = embedded.start()
            conn = psycopg2.connect(dsn)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                    assert cur.fetchone() == (1,)
            finally:
                conn.close()
            assert embedded.stop() is True
            assert_no_postgres_left(data)
    finally:
        stop_leftover_postgres(data)


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
