"""The `goald` command line as a user runs it: real subprocesses, real configuration files,
the real test PostgreSQL server for check-db-capacity."""
import json
import os
import re
import time

import psycopg2
import pytest
from support import goald

from goald import __version__, capacity, exitcodes

COMMANDS = ["run", "migrate", "validate-migrations", "config", "version", "check-db-capacity", "kpi", "jobs", "simulate"]
SECRET = "s3cretpw"






def config_rows(stdout):
    """`goald config` text output as {name: (value, source comment)}."""
    rows = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\S+)\s*=\s*(.*?)\s*# (.*)$", line)
        if m:
            value = m.group(2)
            if len(value) >= 2 and value[0] == value[-1] == '"':  # strings are shown quoted
                value = value[1:-1]
            rows[m.group(1)] = (value, m.group(3))
    return rows


# --- help, usage, version ---------------------------------------------------------------------

def test_help_lists_every_command(tmp_path):
    out = goald(["--help"], tmp_path)
    assert out.returncode == 0
    for cmd in COMMANDS:
        assert re.search(rf"^\s+{re.escape(cmd)}\b", out.stdout, re.M), f"{cmd} missing from --help"


@pytest.mark.parametrize("cmd", COMMANDS)
def test_each_command_has_help(cmd, tmp_path):
    out = goald([cmd, "--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"goald {cmd}" in out.stdout


def test_goald_without_a_command_is_a_usage_error(tmp_path):
    out = goald([], tmp_path)
    assert out.returncode == exitcodes.CONFIG
    assert "usage: goald" in out.stderr


def test_version(tmp_path):
    out = goald(["version"], tmp_path)
    assert out.returncode == 0
    assert out.stdout.startswith(f"goald {__version__}")
    out = goald(["--version"], tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == f"goald {__version__}"


# --- configuration errors stop `goald run` at once --------------------------------------------

def run_expecting_config_error(tmp_path, **env):
    data = tmp_path / "data"
    started = time.monotonic()
    out = goald(["run"], tmp_path, GOALD_DATABASE_DATA_DIR=str(data), GOALD_CONSOLE_PORT="0", **env)
    elapsed = time.monotonic() - started
    assert out.returncode == exitcodes.CONFIG, (out.stdout, out.stderr)
    assert elapsed < 10, f"a configuration error took {elapsed:.1f}s to report"
    assert not data.exists(), "a database was started despite the configuration error"
    assert "Traceback" not in out.stderr
    return out.stderr


def test_misspelt_key_in_goald_toml_stops_run(tmp_path):
    (tmp_path / "goald.toml").write_text("[database]\npool_mxa = 5\n")
    err = run_expecting_config_error(tmp_path)
    assert "database.pool_mxa" in err
    assert "goald.toml:2" in err
    assert "database.pool_max" in err


def test_negative_pool_size_stops_run(tmp_path):
    (tmp_path / "goald.toml").write_text("[database]\npool_max = -3\n")
    err = run_expecting_config_error(tmp_path)
    line = next(ln for ln in err.splitlines() if "out of range" in ln)
    assert "database.pool_max" in line
    assert "goald.toml:2" in line
    assert "1..500" in line


def test_unknown_goald_environment_variable_stops_run(tmp_path):
    err = run_expecting_config_error(tmp_path, GOALD_DATABSE_URL="postgresql://x@127.0.0.1/x")
    assert "GOALD_DATABSE_URL" in err
    assert "GOALD_DATABASE_URL" in err


def test_malformed_database_url_stops_run(tmp_path):
    err = run_expecting_config_error(tmp_path, GOALD_DATABASE_URL=f"postgresql://u:{SECRET}@h/db?bogus=1")
    assert "database.url" in err and "GOALD_DATABASE_URL" in err
    assert SECRET not in err


# --- goald config -----------------------------------------------------------------------------

def test_config_shows_sources_default_file_and_env(tmp_path):
    (tmp_path / "goald.toml").write_text(
        "[node]\nname = \"alpha\"\n\n[database]\npool_max = 30\n")
    out = goald(["config"], tmp_path, GOALD_CONSOLE_PORT="9999")
    assert out.returncode == 0, out.stderr
    rows = config_rows(out.stdout)
    assert rows["database.pool_max"] == ("30", "file (goald.toml:5)")
    assert rows["node.name"] == ("alpha", "file (goald.toml:2)")
    assert rows["console.port"] == ("9999", "env (GOALD_CONSOLE_PORT)")
    assert rows["log.level"] == ("INFO", "default")
    assert "goald.toml" in out.stdout.splitlines()[0]

    out = goald(["config", "--json"], tmp_path, GOALD_CONSOLE_PORT="9999")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    by_name = {r["name"]: r for r in doc["settings"]}
    assert (by_name["database.pool_max"]["value"], by_name["database.pool_max"]["source"],
            by_name["database.pool_max"]["origin"]) == (30, "file", "goald.toml:5")
    assert (by_name["console.port"]["value"], by_name["console.port"]["source"],
            by_name["console.port"]["origin"]) == (9999, "env", "GOALD_CONSOLE_PORT")
    assert by_name["log.level"]["source"] == "default"


def test_config_masks_the_dsn_password_in_text_and_json(tmp_path):
    dsn = f"postgresql://u:{SECRET}@h/db"
    for args in (["config"], ["config", "--json"]):
        out = goald(args, tmp_path, GOALD_DATABASE_URL=dsn)
        assert out.returncode == 0, out.stderr
        assert SECRET not in out.stdout + out.stderr
        assert "postgresql://u:***@h/db" in out.stdout

    # from the file too
    (tmp_path / "goald.toml").write_text(f'[database]\nurl = "{dsn}"\n')
    out = goald(["config"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert SECRET not in out.stdout + out.stderr
    assert config_rows(out.stdout)["database.url"] == ("postgresql://u:***@h/db", "file (goald.toml:2)")


def test_config_legacy_names_work_and_goald_names_win(tmp_path):
    out = goald(["config"], tmp_path, DB_MAX_CONNECTIONS="30")
    assert out.returncode == 0, out.stderr
    assert config_rows(out.stdout)["database.pool_max"] == ("30", "env (DB_MAX_CONNECTIONS)")

    out = goald(["config"], tmp_path, DB_MAX_CONNECTIONS="30", GOALD_DATABASE_POOL_MAX="40")
    assert out.returncode == 0, out.stderr
    assert config_rows(out.stdout)["database.pool_max"] == ("40", "env (GOALD_DATABASE_POOL_MAX)")


def test_config_warns_about_a_pool_max_above_the_threshold(tmp_path):
    out = goald(["config"], tmp_path, GOALD_DATABASE_POOL_MAX="90")
    assert out.returncode == 0, out.stderr
    warnings = [ln for ln in out.stdout.splitlines() if ln.startswith("# warning:")]
    assert any("database.pool_max = 90" in w and "80" in w for w in warnings), out.stdout

    out = goald(["config", "--json"], tmp_path, GOALD_DATABASE_POOL_MAX="90")
    assert any("database.pool_max = 90" in w for w in json.loads(out.stdout)["warnings"])

    out = goald(["config"], tmp_path, GOALD_DATABASE_POOL_MAX="80")
    assert "# warning:" not in out.stdout


# --- validate-migrations ----------------------------------------------------------------------

def test_validate_migrations_rejects_a_blocking_index(tmp_path):
    d = tmp_path / "migrations"
    d.mkdir()
    (d / "0002_bad.sql").write_text("CREATE INDEX foo ON some_table (x);\n")
    out = goald(["validate-migrations", str(d)], tmp_path)
    assert out.returncode == exitcodes.CHECK_FAILED
    assert re.search(r"\S*0002_bad\.sql:1:", out.stderr), out.stderr


def test_validate_migrations_accepts_the_shipped_migrations(tmp_path):
    out = goald(["validate-migrations"], tmp_path)
    assert out.returncode == 0, out.stderr
    repo_sql = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sql")
    out = goald(["validate-migrations", repo_sql], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


# --- check-db-capacity ------------------------------------------------------------------------

def max_connections(dsn):
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW max_connections")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def test_check_db_capacity_report(db_dsn, tmp_path):
    max_conn = max_connections(db_dsn)
    expected = max(1, min(max_conn - 23, 80))

    out = goald(["check-db-capacity"], tmp_path, GOALD_DATABASE_URL=db_dsn)
    assert out.returncode in (0, 1), out.stderr
    assert f"DB max_connections: {max_conn}" in out.stdout
    assert f"Recommended pool max: {expected}" in out.stdout
    m = re.search(r"^Can increase pool\? (YES|NO)$", out.stdout, re.M)
    assert m, out.stdout
    assert out.returncode == (0 if m.group(1) == "YES" else 1)

    out = goald(["check-db-capacity", "--json"], tmp_path, GOALD_DATABASE_URL=db_dsn)
    assert out.returncode in (0, 1), out.stderr
    doc = json.loads(out.stdout)
    for key in ("pool_max", "max_connections", "connections", "by_state", "slow_queries", "lock_waits",
                "idle_in_transaction", "utilization_pct", "recommended_pool_max", "reasons", "safe"):
        assert key in doc, key
    assert doc["max_connections"] == max_conn
    assert doc["recommended_pool_max"] == expected
    assert doc["pool_max"] == 20
    assert doc["safe"] == (not doc["reasons"])
    assert out.returncode == (0 if doc["safe"] else 1)


def test_check_db_capacity_with_unreachable_database_exits_3(tmp_path):
    out = goald(["check-db-capacity"], tmp_path, GOALD_DATABASE_URL=f"postgresql://u:{SECRET}@127.0.0.1:1/x")
    assert out.returncode == exitcodes.DATABASE
    assert out.stderr.strip().startswith("goald check-db-capacity: ")
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert SECRET not in out.stderr + out.stdout


def test_capacity_check_flags_sessions_idle_in_transaction(db_dsn):
    held = []
    try:
        for _ in range(capacity.MAX_IDLE_IN_TRANSACTION + 1):
            c = psycopg2.connect(db_dsn)
            with c.cursor() as cur:
                cur.execute("SELECT 1")  # opens a transaction that stays open: idle in transaction
            held.append(c)
        conn = psycopg2.connect(db_dsn)
        try:
            report = capacity.check(conn, 20)
        finally:
            conn.close()
    finally:
        for c in held:
            c.close()
    assert report.idle_in_transaction >= 6
    assert not report.safe
    assert any("idle in transaction" in r for r in report.reasons), report.reasons
    assert report.as_dict()["safe"] is False
    text = capacity.render(report)
    assert "Can increase pool? NO" in text and "FIX WARNINGS BEFORE INCREASING POOL MAX" in text


def test_a_reader_that_stops_early_ends_goald_config_quietly_with_exit_0(tmp_path):
    import subprocess
    import sys

    from support import goald_env

    proc = subprocess.Popen([sys.executable, "-m", "goald", "config"], cwd=tmp_path, env=goald_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before goald writes a line (`goald config | head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait(30) == exitcodes.OK, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "unexpected" not in err, err
