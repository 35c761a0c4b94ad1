"""Running `goald run` as a real process in tests: start, wait for readiness, signal, clean up.

Readiness is the `goald.ready` JSON log line (it carries the port). Every process started through
the `processes` fixture is killed at the end of the test, with any embedded PostgreSQL it left.
goald runs as the tests do (as root: its embedded PostgreSQL as nobody, so the data directory goes
in the test's `workdir`); `unprivileged=True` runs it as the test user instead, in the directory
holding its data directory (a `user_dir`), see unprivileged.py.
"""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from support import goald_env, json_log_lines
from unprivileged import popen_kwargs, user_env, user_python

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

    def __init__(self, tmp_path, tag, as_user=None, **env):
        """`as_user`: a directory the test user owns; goald then runs as that user with it as cwd/HOME."""
        self.err_path = tmp_path / f"goald-{tag}.stderr"
        self.out_path = tmp_path / f"goald-{tag}.stdout"
        self._err = open(self.err_path, "w")
        self._out = open(self.out_path, "w")
        env = {"GOALD_CONSOLE_PORT": "0", "GOALD_LOG_FORMAT": "json", **env}
        if as_user is not None:
            how = dict(cwd=as_user, env=user_env(as_user, **env), **popen_kwargs())
            python = user_python()
        else:
            how = dict(cwd=tmp_path, env=goald_env(**env))
            python = sys.executable
        self.proc = subprocess.Popen(
            [python, "-m", "goald", "run"], stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
            start_new_session=True, **how)  # its own process group, as in a terminal (see stop())
        self.port = None

    @property
    def stderr(self):
        return self.err_path.read_text()

    @property
    def stdout(self):
        return self.out_path.read_text()

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
        self._out.close()


@pytest.fixture
def processes(tmp_path):
    """Start goald processes through this; every leftover (goald or embedded postgres) is killed.
    `data_dir` (an embedded database) lies in a `workdir`, or with `unprivileged=True` in a
    `user_dir`: goald then runs as the test user, with that directory as cwd and HOME."""
    started = []
    data_dirs = []

    def start(tag="main", data_dir=None, unprivileged=False, **env):
        if data_dir is not None:
            data_dirs.append(data_dir)
            env["GOALD_DATABASE_DATA_DIR"] = str(data_dir)
        g = Goald(tmp_path, tag, as_user=data_dir.parent if unprivileged else None, **env)
        started.append(g)
        return g

    yield start
    for g in started:
        g.cleanup()
    for d in data_dirs:
        stop_leftover_postgres(d)
