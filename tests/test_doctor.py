"""`goald doctor` (goald/doctor.py): each check's go and no-go, and the command's exit code."""
import json
import os
import subprocess
import sys
from pathlib import Path


from goald import config, doctor, operators
from goald.migrations.runner import shipped
from support import OUTSIDE, goald


REPO = Path(__file__).resolve().parent.parent


def test_the_command_lists_one_line_per_reason_and_exits_1_on_a_no_go(db_dsn):
    r = goald(["doctor", "--no-provider-call"], GOALD_DATABASE_URL=db_dsn, GOALD_LOG_LEVEL="WARNING")
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert f"go    migrations: all {len(shipped())} applied" in lines
    assert any(l.startswith("NO-GO provider: provider.base_url is empty") for l in lines)
    assert any(l.startswith("NO-GO operator: no console operator") for l in lines)
    assert lines[-1].startswith("NO-GO (")
    doc = json.loads(goald(["doctor", "--json", "--no-provider-call"], GOALD_DATABASE_URL=db_dsn,
                           GOALD_LOG_LEVEL="WARNING").stdout)
    assert doc["go"] is False and any(r.startswith("operator: ") for r in doc["reasons"])


def test_migrations_not_applied_are_a_no_go(empty_db_dsn, db_dsn):
    ok, detail = doctor._migrations(empty_db_dsn)
    assert not ok and "not applied" in detail and "goald migrate" in detail
    assert doctor._migrations(db_dsn) == (True, f"all {len(shipped())} applied")


def test_a_pool_max_the_server_cannot_hold_is_a_no_go(pool):
    cfg = config.load(None, {"GOALD_DATABASE_POOL_MAX": "95"}, search=False)
    ok, detail = doctor._pool(cfg, pool)
    assert not ok and "database.pool_max 95 is above" in detail
    assert doctor._pool(config.load(None, {}, search=False), pool)[0] is True


def test_an_operator_must_exist(pool):
    assert doctor._operator(pool)[0] is False
    with pool.connection() as conn:
        operators.add(conn, "alice", operators.hash_password("correct horse battery"), "admin", by="t", node="n")
    assert doctor._operator(pool) == (True, "1 operator(s), 1 admin")


def test_a_configuration_file_holding_a_secret_must_be_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "goald.toml"
    path.write_text('[provider]\nsecret = "s3cret-value"\n')
    os.chmod(path, 0o644)
    cfg = config.load(str(path), {}, search=False)
    ok, detail = doctor._secrets(cfg)
    assert not ok and "provider.secret" in detail and "chmod 600" in detail and "s3cret-value" not in detail
    os.chmod(path, 0o600)
    assert doctor._secrets(config.load(str(path), {}, search=False))[0] is True
    path.write_text('[console]\nport = 8081\n')
    os.chmod(path, 0o644)
    assert doctor._secrets(config.load(str(path), {}, search=False))[0] is True     # no secret in it


def test_the_systemd_unit_must_notify_and_have_a_watchdog(tmp_path):
    ok, detail, *skipped = doctor._systemd((str(REPO / "systemd" / "goald.service"),))
    assert ok and "Type=notify" in detail and not skipped
    bad = tmp_path / "goald.service"
    bad.write_text("[Service]\nType=simple\nExecStart=/opt/goald/bin/goald run\n")
    ok, detail = doctor._systemd((str(bad),))
    assert not ok and "Type=simple" in detail and "WatchdogSec" in detail
    assert doctor._systemd((str(tmp_path / "none"),))[2] is True                       # skipped


def test_the_clock_check_reads_the_kernel_and_compares_with_the_database(pool):
    synced, err = doctor.kernel_clock()
    assert synced in (True, False, None)
    ok, detail = doctor._clock(pool)
    assert "database clock" in detail or "not synchronised" in detail
    assert ok is (synced is not False)


def test_the_provider_must_be_configured_answer_and_have_no_open_breaker(tmp_path):
    sim = subprocess.Popen([sys.executable, "-m", "goald", "simulate", "--port", "0", "--matches", "20"],
                           cwd=OUTSIDE,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = sim.stdout.readline().strip()
        cfg = config.load(None, {"GOALD_PROVIDER_BASE_URL": url, "GOALD_PROVIDER_USER": "demo",
                                 "GOALD_PROVIDER_SECRET": "demo"}, search=False)
        ok, detail = doctor._provider(cfg, None, True)
        assert ok and "answered match/detail_live" in detail
        ok, detail = doctor._provider(cfg, lambda: {"groups": {"live": {"state": "open"}}, "endpoints": {}}, False)
        assert not ok and "breaker open: live" in detail
    finally:
        sim.terminate()
        sim.wait(15)
    dead = config.load(None, {"GOALD_PROVIDER_BASE_URL": "http://127.0.0.1:9", "GOALD_PROVIDER_RETRIES": "0"},
                       search=False)
    ok, detail = doctor._provider(dead, None, True)
    assert not ok and "match/detail_live failed" in detail


def test_redis_must_answer_when_it_is_configured(redis_url):
    assert doctor._cache(config.load(None, {}, search=False))[2] is True               # memory: skipped
    up = config.load(None, {"GOALD_CACHE_USE_REDIS": "true", "GOALD_CACHE_REDIS_URL": redis_url}, search=False)
    assert doctor._cache(up)[0] is True
    down = config.load(None, {"GOALD_CACHE_USE_REDIS": "true", "GOALD_CACHE_REDIS_URL": "redis://127.0.0.1:9/0"},
                       search=False)
    ok, detail = doctor._cache(down)
    assert not ok and "does not answer" in detail


def test_a_check_that_raises_is_a_no_go_with_its_error_not_a_crash():
    check = doctor._guard("boom", lambda: 1 / 0)
    assert check.ok is False and "ZeroDivisionError" in check.detail
