"""A PostgreSQL restart under a running `goald run` (a server this test owns; the suite's shared
server is left alone): goald stays up, nothing escalates, the occurrences that fell during the
outage get `missed` rows saying why, and jobs run again within seconds of the database's return."""
import time
from pathlib import Path

import requests
from support import fetch, wait_for

TESTS_DIR = str(Path(__file__).parent)
OUTAGE_S = 8


def test_goald_rides_out_a_postgresql_restart_and_explains_every_occurrence(owned_pg, processes):
    dsn = owned_pg.start()
    fetch(dsn, "CREATE TABLE test_counter (n int NOT NULL); INSERT INTO test_counter VALUES (0)")
    g = processes("outage", GOALD_DATABASE_URL=dsn, GOALD_JOBS_MODULES="jobs_for_tests", PYTHONPATH=TESTS_DIR,
                  GOALD_JOB_TEST_COUNT_ENABLED="true", GOALD_JOBS_HEARTBEAT_S="1", GOALD_JOBS_GRACE_S="1",
                  GOALD_DATABASE_POOL_TIMEOUT_S="1", GOALD_DATABASE_CONNECT_TIMEOUT_S="1")
    g.wait_ready()
    wait_for(lambda: fetch(dsn, "SELECT n FROM test_counter")[0][0] >= 3, timeout_s=15, what="runs before")
    owned_pg.stop(mode="fast")
    down = time.time()
    time.sleep(OUTAGE_S)
    assert g.proc.poll() is None, "goald exited while the database was down"
    owned_pg.start()
    up = time.time()
    first_after = wait_for(
        lambda: fetch(dsn, "SELECT min(started_at) FROM job_runs WHERE job = 'test_count' AND outcome = 'succeeded' "
                           "AND scheduled_at > to_timestamp(%s)", (up,))[0][0], timeout_s=10,
        what="a run after the database came back")
    assert first_after.timestamp() - up < 5
    time.sleep(3)   # the outage's last occurrences: their grace ends, the reaper writes them
    health = requests.get(g.url("/health/actors"), timeout=5).json()
    assert g.stop() == 0
    events = g.events()
    assert not [e for e in events if e.get("event") in ("supervisor.escalated", "goald.escalated")]
    assert health["healthy"] is True
    rows = fetch(dsn, "SELECT period_at, outcome, error FROM job_runs WHERE job = 'test_count' ORDER BY period_at")
    ps = [r[0].timestamp() for r in rows]
    assert [q - p for p, q in zip(ps, ps[1:])] == [1.0] * (len(ps) - 1), "an occurrence has no row"
    during = [r for r in rows if down + 1 < r[0].timestamp() < up - 1]
    assert len(during) >= OUTAGE_S - 3
    assert {r[1] for r in during} == {"missed"} and all(r[2].startswith("database unavailable") for r in during)
    assert fetch(dsn, "SELECT n FROM test_counter")[0][0] == len([r for r in rows if r[1] == "succeeded"])
