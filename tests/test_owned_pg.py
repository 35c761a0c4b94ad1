"""The `owned_pg` fixture (tests/owned_pg.py): a PostgreSQL server one test stops and restarts."""
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from daemon_support import postgres_processes
from support import fetch, goald_env

TESTS_DIR = Path(__file__).resolve().parent


def test_an_owned_server_stops_refuses_queries_and_starts_again_with_its_data_on_the_same_dsn(owned_pg):
    dsn = owned_pg.start()
    assert dsn == owned_pg.dsn and f"127.0.0.1:{owned_pg.port}" in dsn
    assert fetch(dsn, "SELECT 1") == [(1,)]
    fetch(dsn, "CREATE TABLE kept (x int)")
    fetch(dsn, "INSERT INTO kept VALUES (7)")

    owned_pg.stop()
    assert not owned_pg.running
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(dsn, connect_timeout=3).close()

    assert owned_pg.start() == dsn
    assert fetch(dsn, "SELECT x FROM kept") == [(7,)]


def test_an_owned_server_is_stopped_and_removed_even_when_its_test_fails(tmp_path):
    (tmp_path / "test_inner.py").write_text(
        "import os\n"
        "def test_fails(owned_pg):\n"
        "    owned_pg.start()\n"
        "    open(os.environ['WHERE'], 'w').write(str(owned_pg.base))\n"
        "    assert False, 'this test fails on purpose'\n")
    where = tmp_path / "where"
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                          "test_inner.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=goald_env(WHERE=str(where), PYTHONPATH=str(TESTS_DIR),
                                       GOALD_TEST_DATABASE_URL=os.environ.get("GOALD_TEST_DATABASE_URL", "")))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "this test fails on purpose" in out.stdout
    base = Path(where.read_text())
    assert not base.exists(), "the owned server's directory was left behind"
    assert not postgres_processes(base), "the owned server was left running"
