"""The migration runner against a real PostgreSQL: order, bookkeeping, locking, failures, drift.

`migrate()` is called in-process where the behaviour is the runner's own; the `goald migrate`
command is run as a real subprocess for the race between two processes, --dry-run and a bad DSN.
"""
import io
import subprocess
import sys

import psycopg2
import pytest
from conftest import create_database, drop_database
from support import TIMEOUT_S, goald, goald_env, json_log_lines

from goald import exitcodes, logs
from goald.migrations.runner import MigrationError, default_dir, migrate
from goald.migrations.sqlfile import discover

# --- helpers ----------------------------------------------------------------------------------

def query(dsn, sql, args=None):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def table_exists(dsn, name):
    return query(dsn, "SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0]


def index_exists(dsn, name):
    return bool(query(dsn, "SELECT 1 FROM pg_indexes WHERE indexname = %s", (name,)))


def recorded(dsn):
    return query(dsn, "SELECT version, name, checksum, duration_ms, applied_by FROM schema_migrations "
                      "ORDER BY version")






def write(directory, name, text):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


@pytest.fixture
def capture_logs():
    stream = io.StringIO()
    logs.setup("DEBUG", "json", False, stream=stream)
    try:
        yield stream
    finally:
        logs.setup("DEBUG", "text")


def events(stream):
    return json_log_lines(stream.getvalue())


# --- the shipped migrations -------------------------------------------------------------------

def test_migrate_applies_every_shipped_migration_in_order_once(empty_db_dsn):
    files = discover(default_dir())
    assert files, "no shipped migration found"

    applied = migrate(empty_db_dsn, node="node-a")

    assert [(a.version, a.name) for a in applied] == [(f.version, f.name) for f in files]
    rows = recorded(empty_db_dsn)
    assert [(v, n, c) for v, n, c, _, _ in rows] == [(f.version, f.name, f.checksum) for f in files]
    assert all(d >= 0 for _, _, _, d, _ in rows)
    assert {by for *_, by in rows} == {"node-a"}
    assert table_exists(empty_db_dsn, "pool_samples") and table_exists(empty_db_dsn, "job_runs")

    assert migrate(empty_db_dsn, node="node-b") == []
    assert recorded(empty_db_dsn) == rows


def test_two_goald_migrate_processes_at_once_apply_each_migration_once(server_dsn, tmp_path):
    files = discover(default_dir())
    for attempt in range(3):
        name, dsn = create_database(server_dsn)
        procs = []
        try:
            for i in range(2):
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "goald", "migrate"], cwd=tmp_path,
                    env=goald_env(GOALD_DATABASE_URL=dsn, GOALD_NODE_NAME=f"racer-{i}"),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            results = [p.communicate(timeout=TIMEOUT_S) for p in procs]
            for p, (out, err) in zip(procs, results):
                assert p.returncode == 0, f"attempt {attempt}: goald migrate exited {p.returncode}\n{out}\n{err}"
            rows = recorded(dsn)
            assert [(v, n, c) for v, n, c, _, _ in rows] == [(f.version, f.name, f.checksum) for f in files]
            assert {by for *_, by in rows} <= {"racer-0", "racer-1"}
            assert table_exists(dsn, "pool_samples") and table_exists(dsn, "job_runs")
            # together the two processes report every file applied exactly once
            lines = [ln for out, _ in results for ln in out.splitlines() if ln.startswith("applied ")]
            assert sorted(ln.split()[1] for ln in lines) == sorted(f.path.name.removesuffix(".sql") for f in files)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=10)
            drop_database(server_dsn, name)


def test_a_migrator_waiting_for_the_lock_does_not_deadlock_a_concurrent_index_build(empty_db_dsn, tmp_path):
    import gevent

    from goald.migrations.runner import LOCK_KEY

    write(tmp_path, "0001_t.sql", "CREATE TABLE waited (x int);\n")
    holder = psycopg2.connect(empty_db_dsn)
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("CREATE TABLE busy (x int)")
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))   # as a migrator applying a file
            waiter = gevent.spawn(migrate, empty_db_dsn, tmp_path, node="waiter", lock_wait_s=30)
            gevent.sleep(0.5)                                          # the waiter is waiting now
            # The holder's CONCURRENTLY build waits for every older snapshot of the database: a
            # waiter parked inside pg_advisory_lock would be one, and PostgreSQL would report a
            # deadlock (after deadlock_timeout) between the two.
            cur.execute("SET lock_timeout = '10s'")
            cur.execute("CREATE INDEX CONCURRENTLY busy_x ON busy (x)")
            cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        assert [a.version for a in waiter.get(timeout=30)] == [1]
    finally:
        holder.close()
    assert index_exists(empty_db_dsn, "busy_x") and table_exists(empty_db_dsn, "waited")


# --- custom directories -----------------------------------------------------------------------

def test_failing_statement_names_file_and_line_and_rolls_the_file_back(empty_db_dsn, tmp_path):
    d = tmp_path / "sql"
    write(d, "0001_first.sql", "CREATE TABLE first_t (id int);\n")
    bad = write(d, "0002_broken.sql",
                "-- a table, then a statement that fails\n"
                "CREATE TABLE second_t (id int);\n"
                "\n"
                "INSERT INTO no_such_table VALUES (1);\n")
    write(d, "0003_later.sql", "CREATE TABLE third_t (id int);\n")

    with pytest.raises(MigrationError) as exc:
        migrate(empty_db_dsn, d, node="t")

    message = str(exc.value)
    assert f"{bad}:4:" in message
    assert "no_such_table" in message
    assert "rolled back" in message
    assert table_exists(empty_db_dsn, "first_t")
    assert not table_exists(empty_db_dsn, "second_t"), "the failing file's first statement was not rolled back"
    assert not table_exists(empty_db_dsn, "third_t"), "a file after the failing one was applied"
    assert [r[0] for r in recorded(empty_db_dsn)] == [1]


def test_connection_lost_during_a_migration_is_a_migration_error_and_releases_the_lock(empty_db_dsn, tmp_path):
    d = tmp_path / "sql"
    path = write(d, "0001_first.sql",
                 "CREATE TABLE first_t (id int);\nSELECT pg_terminate_backend(pg_backend_pid());\n")

    with pytest.raises(MigrationError) as exc:
        migrate(empty_db_dsn, d, node="t", lock_wait_s=5)
    assert f"{path}:2:" in str(exc.value)
    assert not table_exists(empty_db_dsn, "first_t")

    # the advisory lock went with the session: a fixed file applies at once
    path.write_text("CREATE TABLE first_t (id int);\n")
    assert [a.version for a in migrate(empty_db_dsn, d, node="t", lock_wait_s=5)] == [1]
    assert table_exists(empty_db_dsn, "first_t")


def test_non_transactional_file_is_applied_and_recorded(empty_db_dsn, tmp_path):
    d = tmp_path / "sql"
    write(d, "0001_table.sql", "CREATE TABLE things (x int);\nINSERT INTO things VALUES (1), (2);\n")
    write(d, "0002_index.sql", "CREATE INDEX CONCURRENTLY IF NOT EXISTS things_x ON things (x);\n")
    files = discover(d)
    assert [f.transactional for f in files] == [True, False]

    applied = migrate(empty_db_dsn, d, node="t")

    assert [a.version for a in applied] == [1, 2]
    assert index_exists(empty_db_dsn, "things_x")
    valid = query(empty_db_dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'things_x'::regclass")
    assert valid == [(True,)]
    assert [(v, n, c) for v, n, c, _, _ in recorded(empty_db_dsn)] == [
        (f.version, f.name, f.checksum) for f in files]
    assert migrate(empty_db_dsn, d, node="t") == []


def test_a_failed_concurrent_index_is_never_recorded_as_applied(empty_db_dsn, tmp_path):
    write(tmp_path, "0001_t.sql", "CREATE TABLE dup (x int);\nINSERT INTO dup VALUES (1), (1);\n")
    write(tmp_path, "0002_idx.sql", "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS dup_x ON dup (x);\n")
    with pytest.raises(MigrationError, match=r"0002_idx.sql:1: could not create unique index .*is duplicated"):
        migrate(empty_db_dsn, tmp_path)
    # The failed build left an INVALID index; IF NOT EXISTS would skip it on a re-run.
    with pytest.raises(MigrationError, match=r"0002_idx.sql:1: index dup_x is INVALID .*DROP INDEX CONCURRENTLY dup_x"):
        migrate(empty_db_dsn, tmp_path)
    assert [v for v, *_ in recorded(empty_db_dsn)] == [1]


def test_file_changed_after_apply_is_reported_and_not_reapplied(empty_db_dsn, tmp_path, capture_logs):
    d = tmp_path / "sql"
    path = write(d, "0001_first.sql", "CREATE TABLE first_t (id int);\n")
    migrate(empty_db_dsn, d, node="t")
    before = recorded(empty_db_dsn)

    path.write_text("CREATE TABLE first_t (id int);\nCREATE TABLE sneaky_t (id int);\n")
    assert migrate(empty_db_dsn, d, node="t") == []

    warnings = [e for e in events(capture_logs) if e.get("event") == "migrations.changed_after_apply"]
    assert len(warnings) == 1, capture_logs.getvalue()
    assert warnings[0]["level"] == "WARNING"
    assert warnings[0]["version"] == 1
    assert "0001_first.sql" in warnings[0]["msg"]
    assert not table_exists(empty_db_dsn, "sneaky_t")
    assert recorded(empty_db_dsn) == before


# --- `goald migrate` --------------------------------------------------------------------------

def test_goald_migrate_dry_run_lists_pending_and_applies_nothing(empty_db_dsn, tmp_path):
    files = discover(default_dir())
    out = goald(["migrate", "--dry-run"], tmp_path, GOALD_DATABASE_URL=empty_db_dsn)
    assert out.returncode == 0, out.stderr
    for f in files:
        assert f"pending {f.path.name}" in out.stdout
    assert f"{len(files)} pending migration(s)" in out.stdout
    assert not table_exists(empty_db_dsn, "schema_migrations")
    assert not table_exists(empty_db_dsn, "pool_samples")

    # and the real run afterwards applies them, after which nothing is pending
    out = goald(["migrate"], tmp_path, GOALD_DATABASE_URL=empty_db_dsn)
    assert out.returncode == 0, out.stderr
    assert len(recorded(empty_db_dsn)) == len(files)
    out = goald(["migrate", "--dry-run"], tmp_path, GOALD_DATABASE_URL=empty_db_dsn)
    assert out.returncode == 0 and "0 pending migration(s)" in out.stdout


@pytest.mark.parametrize("dsn", [
    "postgresql://goald:s3cretpw@127.0.0.1:1/goald",  # nothing listens on port 1
])
def test_goald_migrate_with_unreachable_database_exits_3_with_one_line(dsn, tmp_path):
    out = goald(["migrate"], tmp_path, GOALD_DATABASE_URL=dsn)
    assert out.returncode == exitcodes.DATABASE, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("goald migrate: ")
    assert "127.0.0.1:1" in lines[0]
    assert "s3cretpw" not in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


def test_goald_migrate_with_missing_database_exits_3(server_dsn, tmp_path):
    dsn = psycopg2.extensions.make_dsn(server_dsn, dbname="goald_test_no_such_database")
    out = goald(["migrate"], tmp_path, GOALD_DATABASE_URL=dsn)
    assert out.returncode == exitcodes.DATABASE, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "goald_test_no_such_database" in lines[0], out.stderr


def test_goald_migrate_with_malformed_dsn_is_a_config_error_not_a_crash(tmp_path):
    out = goald(["migrate"], tmp_path, GOALD_DATABASE_URL="postgresql://u:s3cretpw@h/db?bogus=1")
    assert out.returncode == exitcodes.CONFIG, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "database.url" in lines[0] and "GOALD_DATABASE_URL" in lines[0]
    assert "s3cretpw" not in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
