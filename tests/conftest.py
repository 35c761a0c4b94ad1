"""Test set-up shared by every test: gevent first, then real PostgreSQL and Redis.

gevent's monkey-patching and psycogreen come before any other import, as in the `goald` entry
point, so tests run the code the way the daemon does.

Databases: the server is `GOALD_TEST_DATABASE_URL` (CI points it at this machine's PostgreSQL),
else an embedded PostgreSQL started once for the session in this process, exactly as goald starts
it (as root: run by nobody, behind a password, in a new 0755 directory under /tmp that nobody can
reach; removed at the end). A template database with every migration applied is built once per
session; each test that asks for `db_dsn` gets a fresh clone (`CREATE DATABASE ... TEMPLATE`),
dropped afterwards. Redis: `GOALD_TEST_REDIS_URL`, else redis://127.0.0.1:6379/0. Fixtures from
other modules: `processes` (goald processes), `workdir` (a directory for data directories),
`user_dir` (a directory the test user owns), `owned_pg` (a server one test owns).
"""
from gevent import monkey

monkey.patch_all()

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

import os  # noqa: E402
import shutil  # noqa: E402
import uuid  # noqa: E402

import psycopg2  # noqa: E402
import psycopg2.extensions  # noqa: E402
import pytest  # noqa: E402

from goald import logs  # noqa: E402

from daemon_support import processes  # noqa: E402,F401  (fixture: `goald run` processes)
from owned_pg import owned_pg  # noqa: E402,F401  (fixture: a PostgreSQL server one test owns)
from unprivileged import user_dir, workdir  # noqa: E402,F401  (fixtures: test directories)

DB_PREFIX = "goald_test_"


def with_dbname(dsn: str, dbname: str) -> str:
    """The same server and credentials as `dsn`, another database."""
    return psycopg2.extensions.make_dsn(dsn, dbname=dbname)


def admin_execute(server_dsn: str, sql: str) -> None:
    conn = psycopg2.connect(server_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def create_database(server_dsn: str, template: str | None = None) -> tuple[str, str]:
    name = f"{DB_PREFIX}{uuid.uuid4().hex[:12]}"
    tmpl = f" TEMPLATE {template}" if template else ""
    admin_execute(server_dsn, f"CREATE DATABASE {name}{tmpl}")
    return name, with_dbname(server_dsn, name)


def drop_database(server_dsn: str, name: str) -> None:
    admin_execute(server_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session", autouse=True)
def _test_logging():
    """Readable logs in test output; level DEBUG so failures show what happened."""
    logs.setup("DEBUG", "text")


@pytest.fixture(scope="session")
def server_dsn():
    """DSN of the PostgreSQL server the tests use (its maintenance database)."""
    dsn = os.environ.get("GOALD_TEST_DATABASE_URL")
    if dsn:
        yield dsn
        return
    from goald.db.embedded import EmbeddedPostgres, EmbeddedPostgresError
    from unprivileged import make_workdir

    base = make_workdir("goald-test-pg-")
    embedded = EmbeddedPostgres(base / "data")
    try:
        try:
            dsn = embedded.start()
        except EmbeddedPostgresError as e:
            pytest.fail(f"set GOALD_TEST_DATABASE_URL to a PostgreSQL server the tests may use (e.g. "
                        f"postgresql://postgres@127.0.0.1:5432/postgres): the embedded fallback did not start ({e})",
                        pytrace=False)
        yield dsn
    finally:
        embedded.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(server_dsn):
    """Name of a database holding every migration, cloned by `db_dsn`."""
    from goald.migrations.runner import migrate

    name, dsn = create_database(server_dsn)
    migrate(dsn, node="tests")
    yield name
    drop_database(server_dsn, name)


@pytest.fixture
def db_dsn(server_dsn, template_db):
    """A fresh database with every migration applied, for this test only."""
    name, dsn = create_database(server_dsn, template=template_db)
    yield dsn
    drop_database(server_dsn, name)


@pytest.fixture
def empty_db_dsn(server_dsn):
    """A fresh database with nothing in it (no migrations), for this test only."""
    name, dsn = create_database(server_dsn)
    yield dsn
    drop_database(server_dsn, name)


@pytest.fixture
def pool(db_dsn):
    """A small pool on a fresh migrated database, closed after the test."""
    from goald.db.pool import Pool

    p = Pool(db_dsn, maxconn=4, timeout_s=5)
    yield p
    p.close()


@pytest.fixture(scope="session")
def redis_url():
    return os.environ.get("GOALD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def log_lines():
    """The JSON log lines written while the test runs (logging restored afterwards)."""
    import io

    from support import json_log_lines

    stream = io.StringIO()
    logs.setup("DEBUG", "json", False, stream)
    try:
        yield lambda: json_log_lines(stream.getvalue())
    finally:
        logs.setup("DEBUG", "text")
