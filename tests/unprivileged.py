"""Who runs goald in the tests, and where its data goes.

goald runs as the tests do. This machine and CI run them as root, and so does a fresh container:
then goald runs the embedded PostgreSQL as `nobody` itself (goald/db/embedded.py), so its data
directory must be one nobody can reach. `workdir` is such a directory: new under /tmp, 0755,
made by the test, removed afterwards; /tmp/pytest-of-root (0700), where `tmp_path` lives, is not.

The non-root path (goald run by an ordinary user: PostgreSQL as that user, trust auth over the
0700 socket directory) is tested by running goald itself as the test user — `nobody`/`nogroup`
when the tests run as root, through subprocess' own `user=`/`group=`/`extra_groups=[]`, else the
current user — in a `user_dir` that user owns: `processes(..., unprivileged=True)`,
`run_goald(..., unprivileged=True)`, `run_python(..., unprivileged=True)`. Nothing the tests did not
create is ever chmod'ed or chown'ed.

To run goald as nobody, the interpreter must be runnable by nobody. When `sys.executable` is not
(a pyenv Python under a 0700 /root, say), an interpreter of the same version from the system
(/usr/bin/python3.X) is used instead, through a tiny virtual environment that adds this
environment's site-packages — the same goald, gevent and psycopg2 (the C extensions' ABI is the
same within one 3.X). If neither works the test fails saying what to do.
"""
import atexit
import functools
import grp
import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

AS_ROOT = os.geteuid() == 0
TEST_USER = "nobody"
TEST_GROUP = "nogroup"
PROBE = "import goald.db.embedded, gevent, psycopg2, psutil; goald.db.embedded.bin_dir()"


def user_ids():
    """(uid, gid) that PostgreSQL runs as in the tests: nobody's when they run as root (goald's
    default database.embedded_user, and the test user), else the current user's."""
    if not AS_ROOT:
        return os.getuid(), os.getgid()
    return pwd.getpwnam(TEST_USER).pw_uid, grp.getgrnam(TEST_GROUP).gr_gid


def popen_kwargs():
    """subprocess arguments that run the child as the test user (nothing when not root)."""
    if not AS_ROOT:
        return {}
    uid, gid = user_ids()
    return {"user": uid, "group": gid, "extra_groups": []}


def user_env(home, **extra):
    """goald_env(**extra) for a child running as the test user: root's runtime dir and home are not
    its own, so they are left out (unless `extra` names them)."""
    from support import goald_env

    env = goald_env()
    if AS_ROOT:
        env.pop("XDG_RUNTIME_DIR", None)
        env["HOME"] = str(home)
    env.update(extra)
    return env


def make_workdir(prefix="goald-test-"):
    """A new directory under /tmp, 0755, owned by whoever runs the tests: nobody may traverse it."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def make_user_dir(prefix="goald-test-user-"):
    """A new directory under /tmp owned by the test user (0700): its workdir, data dirs, sockets."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if AS_ROOT:
        os.chown(path, *user_ids())
    return path


@pytest.fixture
def workdir():
    """A per-test directory (0755, under /tmp) for data directories of goald run as the tests run;
    removed afterwards (after the processes fixture's cleanup)."""
    path = make_workdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def user_dir():
    """A per-test directory the test user owns, for goald run as that user; removed afterwards."""
    path = make_user_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _probe(python):
    try:
        return subprocess.run([str(python), "-c", PROBE], cwd="/", capture_output=True, text=True, timeout=60,
                              env=user_env("/"), **popen_kwargs())
    except OSError as e:  # the interpreter itself cannot be executed by the test user
        return subprocess.CompletedProcess([python], 126, "", f"{python}: {e.strerror}")


@functools.lru_cache(maxsize=None)
def user_python():
    """An interpreter the test user can run, with this environment's packages."""
    first = _probe(sys.executable)
    if first.returncode == 0:
        return sys.executable
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/{minor}", f"/usr/local/bin/{minor}"):
        if not os.access(candidate, os.X_OK) or os.path.realpath(candidate) == os.path.realpath(sys.executable):
            continue
        shim = Path(tempfile.mkdtemp(prefix="goald-test-python-", dir="/tmp"))
        atexit.register(shutil.rmtree, shim, True)
        (shim / "bin").mkdir()
        (shim / "bin" / "python").symlink_to(candidate)
        (shim / "pyvenv.cfg").write_text(f"home = {Path(candidate).parent}\ninclude-system-site-packages = false\n")
        packages = shim / "lib" / minor / "site-packages"
        packages.mkdir(parents=True)
        dirs = [d for d in site.getsitepackages() if os.path.isdir(d)]
        (packages / "_goald_tests.pth").write_text(
            "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dirs) + "\n")
        for d in (shim, shim / "bin", shim / "lib", packages.parent, packages):
            os.chmod(d, 0o755)
        python = shim / "bin" / "python"
        shimmed = _probe(python)
        if shimmed.returncode == 0:
            return str(python)
        first = shimmed
    pytest.fail(f"the non-root tests run goald as {TEST_USER}, but {TEST_USER} cannot run {sys.executable} with "
                f"goald ({' '.join(first.stderr.split()[-30:])}); make the interpreter and the virtualenv readable "
                f"by others (e.g. a venv made from /usr/bin/python3 in a 0755 directory) or run the tests as an "
                f"unprivileged user", pytrace=False)


def _how(cwd, unprivileged, env):
    """(python, subprocess arguments) for a child run as the tests run, or as the test user."""
    from support import goald_env

    if unprivileged:
        return user_python(), dict(cwd=cwd, env=user_env(cwd, **env), **popen_kwargs())
    return sys.executable, dict(cwd=cwd, env=goald_env(**env))


def run_python(code, cwd, timeout=120, unprivileged=False, **env):
    """Run Python `code` (gevent-patched first, like goald) to completion; the CompletedProcess."""
    prelude = "from gevent import monkey; monkey.patch_all()\n"
    python, how = _how(cwd, unprivileged, env)
    return subprocess.run([python, "-c", prelude + code], capture_output=True, text=True, timeout=timeout, **how)


def run_goald(args, cwd, timeout=120, unprivileged=False, **env):
    """`goald ARGS` to completion in `cwd` (a `user_dir` when `unprivileged`)."""
    python, how = _how(cwd, unprivileged, env)
    return subprocess.run([python, "-m", "goald", *args], capture_output=True, text=True, timeout=timeout, **how)
