"""Test support: running the `goald` command (clean environment, bounded) and reading its logs."""
import io
import json
import os
import socket
import subprocess
import sys
import tempfile

import psycopg2
import redis

from goald.settings import BY_ENV

TIMEOUT_S = 60


def goald_env(**extra):
    """os.environ without any goald setting (GOALD_* or legacy name), plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOALD_", "JOB_STAGGER_", "NOTIFY_SOCKET", "WATCHDOG_")) and k not in BY_ENV}
    env.update(extra)
    return env


# Out of the checkout by default: `python -m goald` from the repository root would import ./goald,
# which lacks the packages setup.py maps into the installed one (goald.sql, goald.actors, ...).
OUTSIDE = tempfile.gettempdir()


def goald(args, cwd=OUTSIDE, *, input=None, timeout=TIMEOUT_S, **env):
    """Run `goald ARGS` (as `python -m goald`) to completion; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "goald", *args], cwd=cwd, env=goald_env(**env), input=input,
                          capture_output=True, text=True, timeout=timeout)


def sql(dsn, query, args=()):
    """One statement on its own connection (committed): its rows, or None."""
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchall() if cur.description else None


def json_log_lines(text):
    """The JSON log lines in `text` (goald's stderr or a captured stream), skipping anything else."""
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def fetch(dsn, sql, args=None):
    """Run one statement on a fresh connection; the rows (or [] when it returns none)."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def wait_for(predicate, timeout_s=10.0, interval_s=0.05, what="condition"):
    """Poll `predicate` until it returns something truthy; that value, or AssertionError."""
    import time

    import gevent

    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        gevent.sleep(interval_s)


class OwnRedis:
    """A redis-server of one test, on a free port, without persistence: kill() and start() again."""

    def __init__(self, workdir):
        self.workdir = workdir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self, *extra):
        self.proc = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.admin()
        wait_for(lambda: _pings(client), timeout_s=10, what=f"redis-server on port {self.port}")
        client.close()

    def admin(self):
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _pings(client):
    try:
        return client.ping()
    except (redis.exceptions.RedisError, OSError):
        return False


def wsgi_get(app, path, headers=None):
    """(status, headers (lower-case names), body bytes) of a GET through a WSGI app, in-process."""
    path, _, query = path.partition("?")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "test",
               "SERVER_PORT": "80", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http",
               "SERVER_PROTOCOL": "HTTP/1.1"}
    for k, v in (headers or {}).items():
        environ["HTTP_" + k.upper().replace("-", "_")] = v
    out = {}

    def start_response(status, hdrs, exc_info=None):
        out["status"], out["headers"] = int(status.split()[0]), {k.lower(): v for k, v in hdrs}
    body = b"".join(app(environ, start_response))
    return out["status"], out["headers"], body
