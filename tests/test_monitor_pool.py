"""`goald monitor-pool` (goald/cli_monitor.py): samples, the seeds' alerts, the summary and its exit code."""
import uuid

import psycopg2
import psycopg2.extensions

from goald.cli_monitor import Monitor
from support import goald



def monitor(db_dsn, *args):
    return goald(["monitor-pool", *args], timeout=120, GOALD_DATABASE_URL=db_dsn, GOALD_LOG_LEVEL="WARNING")


def test_a_healthy_goald_gives_sample_lines_a_summary_and_exit_0(db_dsn, processes):
    g = processes(GOALD_DATABASE_URL=db_dsn, GOALD_PROVIDER_DEMO_MATCHES="20")
    g.wait_ready()
    r = monitor(db_dsn, "--interval", "1", "--duration", "2.5", "--url", g.url(""))
    assert r.returncode == 0, r.stdout + r.stderr
    samples = [l for l in r.stdout.splitlines() if " pool " in l]
    assert len(samples) >= 2 and "db active" in samples[0] and "ALERT" not in r.stdout
    assert "Status: HEALTHY" in r.stdout and "Max utilization:" in r.stdout


def test_sustained_database_activity_over_the_threshold_alerts_with_its_recommendation(db_dsn, processes):
    g = processes(GOALD_DATABASE_URL=db_dsn, GOALD_PROVIDER_DEMO_MATCHES="20")
    g.wait_ready()
    r = monitor(db_dsn, "--interval", "1", "--duration", "2.5", "--url", g.url(""), "--db-active-threshold", "-1",
                "--sustain", "1")
    assert r.returncode == 1
    alerts = [l for l in r.stdout.splitlines() if " ALERT DB active connections high" in l]
    assert alerts and "(trigger: >-1 for 1s)" in alerts[0]
    assert "Status: ATTENTION" in r.stdout and "optimize slow queries" in r.stdout


def test_goald_not_answering_is_an_alert(db_dsn):
    r = monitor(db_dsn, "--interval", "1", "--duration", "1", "--url", "http://127.0.0.1:9", "--json")
    assert r.returncode == 1 and "ALERT goald at http://127.0.0.1:9 did not answer" in r.stdout
    assert '"goald_down": ' in r.stdout


def test_more_than_three_refused_connections_in_an_hour_alert(db_dsn):
    role = f"goald_refused_{uuid.uuid4().hex[:6]}"
    with psycopg2.connect(db_dsn) as c, c.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'refused-pw' CONNECTION LIMIT 0")
    try:
        t = [1000.0]
        dsn = psycopg2.extensions.make_dsn(db_dsn, user=role, password="refused-pw")
        m = Monitor("http://127.0.0.1:9", dsn, 45, 300, clock=lambda: t[0])
        lines = []
        for _ in range(4):
            lines += m.sample()
            t[0] += 60
        assert sum("refused: too many" in l for l in lines) == 4
        assert sum("Too many clients: 4 refusals in the last hour" in l for l in lines) == 1
        t[0] += 3600                                  # an hour later the old refusals no longer count
        assert not any("Too many clients" in l for l in m.sample())
        assert m.summary()["alerts"]["too_many_clients"] == 1
    finally:
        with psycopg2.connect(db_dsn) as c, c.cursor() as cur:
            cur.execute(f"DROP ROLE {role}")
