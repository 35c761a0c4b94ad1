"""Test support: running the `goald` command (clean environment, bounded) and reading its logs."""
import json
import os
import subprocess
import sys

from goald.settings import BY_ENV

TIMEOUT_S = 60


def goald_env(**extra):
    """os.environ without any goald setting (GOALD_* or legacy name), plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOALD_", "JOB_STAGGER_", "NOTIFY_SOCKET", "WATCHDOG_")) and k not in BY_ENV}
    env.update(extra)
    return env


def goald(args, cwd, **env):
    """Run `goald ARGS` (as `python -m goald`) to completion; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "goald", *args], cwd=cwd, env=goald_env(**env),
                          capture_output=True, text=True, timeout=TIMEOUT_S)


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
