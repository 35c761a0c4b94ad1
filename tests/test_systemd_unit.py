"""The systemd unit (systemd/goald.service) agrees with goald: stop budget, secrets, hardening, docs.

systemd is not PID 1 where the tests run, so the unit is checked with `systemd-analyze` (security
score, verify, the system call groups) and against goald's own code and packaging.
"""
import functools
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import goald
from goald import tree
from goald.config import load
from goald.settings import BY_NAME

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "goald.service"
DOC_DIR = Path("share/doc/goald")

# Every system call made by `goald run` with its embedded PostgreSQL 18 (initdb, start, migrations,
# jobs, console requests, SIGTERM stop), as recorded by `strace -f` of goald and all its children.
SYSCALLS_SEEN = set("""
    accept accept4 access arch_prctl bind brk chdir chmod clock_nanosleep clone clone3 close connect
    dup dup2 epoll_create1 epoll_ctl epoll_wait eventfd2 execve exit exit_group fallocate fcntl
    fdatasync flock fstat fsync futex getcwd getdents64 getegid geteuid getgid getpid getppid
    getrandom getsockname getsockopt gettid getuid ioctl kill listen lseek lstat madvise mkdir mmap
    mprotect munmap newfstatat openat pipe2 poll prctl pread64 prlimit64 pwrite64 pwritev read
    readlink recvfrom rename restart_syscall rseq rt_sigaction rt_sigprocmask rt_sigreturn sendto
    set_robust_list set_tid_address setitimer setsid setsockopt shmat shmctl shmdt shmget signalfd4
    socket stat statfs sync_file_range sysinfo umask uname unlink vfork wait4 write
""".split())


def directives(text=None):
    """The unit's `Key=value` lines as {key: [values in order]} (comments and sections skipped)."""
    out = {}
    for line in (UNIT.read_text() if text is None else text).splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def seconds(span):
    """A systemd time span ("60s", "1min 30s", "90") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span)
    assert parts and "".join(n + u for n, u in parts) == span.replace(" ", ""), f"unparsed span {span!r}"
    return sum(float(n) * units[u] for n, u in parts)


def analyze(*args):
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60)


@functools.cache
def syscalls(group):
    """The system calls of a systemd group such as @system-service, nested groups expanded."""
    out = analyze("syscall-filter", group)
    assert out.returncode == 0, out.stderr
    names = set()
    for line in out.stdout.splitlines()[1:]:
        item = line.strip()
        if item and not item.startswith("#"):
            names |= syscalls(item) if item.startswith("@") else {item}
    return frozenset(names)


def test_the_systemd_unit_is_a_hardened_notify_service_with_watchdog_and_reload():
    unit = UNIT.read_text()
    lines = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in unit.splitlines()
             if "=" in line and not line.startswith("#")}
    assert lines["Type"] == "notify" and lines["Restart"] == "on-failure"
    assert lines["WatchdogSec"] and lines["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert "6" not in lines["RestartPreventExitStatus"].split()  # a crash storm (exit 6) is restarted
    assert lines["DynamicUser"] == "yes" and lines["StateDirectory"] == "goald"
    for key, value in [("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes")]:
        assert lines[key] == value


# --- stop budget ------------------------------------------------------------------------------

def test_the_units_stop_timeout_is_goalds_and_the_default_stop_fits_in_it():
    [timeout] = directives()["TimeoutStopSec"]
    assert seconds(timeout) == tree.UNIT_TIMEOUT_STOP_S
    assert tree.stop_budget_s(load(None, {}, search=False)) <= tree.UNIT_TIMEOUT_STOP_S


def test_a_drain_that_would_outlast_the_units_stop_timeout_starts_with_a_warning_naming_it():
    setting = BY_NAME["jobs.shutdown_timeout_s"]
    assert setting.warn_above == tree.UNIT_TIMEOUT_STOP_S - tree.STOP_OVERHEAD_S
    [timeout] = directives()["TimeoutStopSec"]
    assert f"TimeoutStopSec={timeout}" in setting.warn_reason
    assert f"plus {tree.STOP_OVERHEAD_S:g} s" in setting.help
    fits = setting.warn_above
    assert load(None, {"GOALD_JOBS_SHUTDOWN_TIMEOUT_S": f"{fits:g}"}, search=False).warnings == []
    [warning] = load(None, {"GOALD_JOBS_SHUTDOWN_TIMEOUT_S": f"{fits + 1:g}"}, search=False).warnings
    assert "TimeoutStopSec" in warning and "drop-in" in warning


# --- secrets ----------------------------------------------------------------------------------

def test_the_unit_loads_each_credential_under_the_name_of_a_secret_setting():
    loaded = [v.split(":", 1) for v in directives()["LoadCredential"]]
    assert loaded, "the unit passes no credential"
    for cred_id, path in loaded:
        assert BY_NAME[cred_id].secret, f"credential {cred_id} is not a secret setting"
        assert path == f"/etc/goald/{cred_id}"


def test_the_units_fallback_credential_leaves_the_embedded_default_in_charge(tmp_path):
    """Without /etc/goald/database.url, SetCredential= of the same id fills the credential."""
    fallback = {v.split(":", 1)[0]: v.split(":", 1)[1] for v in directives()["SetCredential"]}
    for cred_id, _ in (v.split(":", 1) for v in directives()["LoadCredential"]):
        content = fallback[cred_id].encode().decode("unicode_escape")  # systemd's C-style escapes
        (tmp_path / cred_id).write_text(content)
    cfg = load(None, {"CREDENTIALS_DIRECTORY": str(tmp_path)}, search=False)
    assert cfg["database.url"] == "" and cfg.sources["database.url"].kind == "default"


def test_the_unit_reads_an_optional_environment_file():
    assert directives()["EnvironmentFile"] == ["-/etc/goald/goald.env"]


# --- hardening --------------------------------------------------------------------------------

def test_systemd_analyze_security_rates_the_units_exposure_at_2_or_less():
    out = analyze("security", "--offline=yes", str(UNIT))
    m = re.search(r"Overall exposure level for goald\.service: (\d+\.\d+)", out.stdout)
    assert m, out.stdout + out.stderr
    assert float(m.group(1)) <= 2.0, out.stdout


def test_systemd_analyze_verify_finds_nothing_wrong_with_the_unit(tmp_path):
    # The one thing verify would rightly report here is that /opt/goald/bin/goald is not installed
    # on this machine: the copy points ExecStart at an executable stand-in, nothing else changes.
    stand_in = tmp_path / "goald"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    text = UNIT.read_text()
    assert text.count("ExecStart=/opt/goald/bin/goald ") == 1
    (tmp_path / "goald.service").write_text(text.replace("ExecStart=/opt/goald/bin/goald ", f"ExecStart={stand_in} "))
    out = analyze("verify", str(tmp_path / "goald.service"))
    assert (out.returncode, out.stdout + out.stderr) == (0, "")


def test_the_system_call_filter_allows_every_call_goald_and_its_postgresql_make():
    filters = directives()["SystemCallFilter"]
    allowed = set().union(*(syscalls(g) for f in filters if not f.startswith("~") for g in f.split()))
    denied = set().union(*(syscalls(g) for f in filters if f.startswith("~") for g in f[1:].split()))
    assert allowed, "no allow-list: the unit's filter changed shape"
    assert not SYSCALLS_SEEN - (allowed - denied), "the unit's SystemCallFilter= blocks calls goald makes"
    # PostgreSQL's shared memory and semaphores, and the console's listener, explicitly.
    assert {"shmget", "shmat", "semget", "semop", "memfd_create", "listen", "accept4"} <= allowed - denied
    assert directives()["SystemCallErrorNumber"] == ["EPERM"]


# --- documentation ----------------------------------------------------------------------------

def unit_prefix():
    """The install prefix the unit assumes: ExecStart is <prefix>/bin/goald."""
    [exec_start] = directives()["ExecStart"]
    return Path(exec_start.split()[0]).parent.parent


def test_documentation_points_at_operations_md_under_the_prefix_the_unit_runs_goald_from():
    assert directives()["Documentation"] == [f"file://{unit_prefix() / DOC_DIR / 'operations.md'}"]


def test_pip_install_of_the_built_wheel_puts_the_operator_docs_under_the_venvs_prefix(tmp_path):
    """What `pip install` into /opt/goald does, into a venv in tmp: <prefix>/share/doc/goald/."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for folder in ("goald", "actors", "console", "sql", "docs"):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(tmp_path / "wheel"), str(src)],
                   check=True, capture_output=True, timeout=120)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    # --python installs into that venv only; never `--prefix` here, which would uninstall this
    # environment's goald.
    [wheel] = (tmp_path / "wheel").glob("goald-*.whl")
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps", "--no-index",
                    "--no-compile", str(wheel)], check=True, capture_output=True, timeout=120)
    for doc in ("operations.md", "configuration.md", "observability.md"):
        assert (venv / DOC_DIR / doc).read_text() == (REPO / "docs" / doc).read_text()


def installed_goald():
    """(editable?, direct_url) of the goald distribution in this environment's site-packages."""
    found = list(importlib.metadata.distributions(name="goald", path=[sysconfig.get_path("purelib")]))
    assert len(found) == 1, f"expected one goald in {sysconfig.get_path('purelib')}, found {len(found)}"
    direct = json.loads(found[0].read_text("direct_url.json") or "{}")
    return bool(direct.get("dir_info", {}).get("editable")), direct


def test_this_environments_goald_has_operations_md_under_sys_prefix_unless_it_is_editable():
    editable, direct = installed_goald()
    installed = Path(sys.prefix) / DOC_DIR / "operations.md"
    if editable:
        # pip installs no data files for an editable install (a developer's venv): the documentation
        # is this clone's docs/, which the editable install runs from; the wheel test above covers
        # what a real install gets.
        assert direct["url"] == REPO.as_uri()
        assert Path(goald.__file__).resolve().is_relative_to(REPO)
    else:
        # CI's `pip install '.[test]'` into a fresh venv, like the documented /opt/goald.
        assert installed.read_text() == (REPO / "docs" / "operations.md").read_text()


def test_docs_operations_quotes_the_units_stop_timeout_credential_and_documentation_path():
    doc = " ".join((REPO / "docs" / "operations.md").read_text().split())
    unit = directives()
    [timeout] = unit["TimeoutStopSec"]
    assert f"TimeoutStopSec={timeout}" in doc
    assert f"plus {tree.STOP_OVERHEAD_S:g} s" in doc
    assert f"drains up to {BY_NAME['jobs.shutdown_timeout_s'].warn_above:g} s fit" in doc
    for value in unit["LoadCredential"]:
        assert f"LoadCredential={value}" in doc
    assert str(unit_prefix() / DOC_DIR / "operations.md") in doc
