"""PoolMonitor: one sample is one log line and one pool_samples row; old rows are pruned."""
from contextlib import ExitStack

import gevent
from support import fetch

from goald.actors.base import Start
from goald.db.pool import Pool
from goald.actors.jobs import runtime as runtime_jobs
from goald.actors.service import ServiceActor
from goald.pool_monitor import PoolMonitor


SAMPLE_COLUMNS = "node, active, idle, waiting, total, max, utilization"


def test_sample_once_stores_the_pools_numbers_and_logs_the_utilization_line(pool, db_dsn, log_lines):
    monitor = PoolMonitor(pool, node="node-a", interval_s=10)
    with ExitStack() as held:
        held.enter_context(pool.connection())
        held.enter_context(pool.connection())
        with pool.connection():
            pass  # one idle connection: active 2, idle 1, total 3 of max 4
        s = monitor.sample_once()
    assert (s.active, s.idle, s.waiting, s.total, s.max, s.utilization) == (2, 1, 0, 3, 4, 50.0)
    assert monitor.last == s
    assert fetch(db_dsn, f"SELECT {SAMPLE_COLUMNS} FROM pool_samples") == [("node-a", 2, 1, 0, 3, 4, 50.0)]
    samples = [r for r in log_lines() if r.get("event") == "pool_monitor.sample"]
    assert len(samples) == 1
    line = samples[0]
    assert line["msg"] == "PoolMonitor utilization 50% (active 2, idle 1, waiting 0, total 3)"
    assert line["level"] == "INFO"
    assert {k: line[k] for k in ("active", "idle", "waiting", "total", "max", "utilization")} == dict(
        active=2, idle=1, waiting=0, total=3, max=4, utilization=50.0)


def test_sample_once_counts_greenlets_waiting_for_a_connection(db_dsn, log_lines):
    pool = Pool(db_dsn, maxconn=1, timeout_s=5)
    monitor = PoolMonitor(pool, node="node-a", interval_s=1)
    try:
        with pool.connection():
            blocked = gevent.spawn(_hold_briefly, pool)
            gevent.sleep(0.05)
            assert pool.stats().waiting == 1
            logged = gevent.spawn(monitor.sample_once)  # waits for its own slot too
            gevent.sleep(0.05)
        logged.join(timeout=5)
        blocked.join(timeout=5)
        assert logged.value.waiting == 1 and logged.value.utilization == 100.0
        msgs = [r["msg"] for r in log_lines() if r.get("event") == "pool_monitor.sample"]
        assert msgs == ["PoolMonitor utilization 100% (active 1, idle 0, waiting 1, total 1)"]
        assert fetch(db_dsn, "SELECT waiting, utilization FROM pool_samples") == [(1, 100.0)]
    finally:
        pool.close()


def _hold_briefly(pool):
    with pool.connection():
        gevent.sleep(0.01)


def test_the_pool_samples_prune_job_deletes_rows_older_than_the_retention(pool, db_dsn, log_lines):
    fetch(db_dsn, f"INSERT INTO pool_samples (sampled_at, {SAMPLE_COLUMNS}) VALUES "
                  "(now() - interval '8 days', 'old', 0, 0, 0, 0, 4, 0), "
                  "(now() - interval '6 days', 'recent', 0, 0, 0, 0, 4, 0)")
    PoolMonitor(pool, node="node-a").sample_once()
    assert runtime_jobs.prune_pool_samples(pool, retention_days=7) == 1
    assert sorted(r[0] for r in fetch(db_dsn, "SELECT node FROM pool_samples")) == ["node-a", "recent"]


def test_a_sample_that_cannot_be_stored_is_logged_as_a_warning_and_never_raises(empty_db_dsn, log_lines):
    pool = Pool(empty_db_dsn, maxconn=1)  # no migrations: no pool_samples table
    try:
        s = PoolMonitor(pool, node="node-a").sample_once()
        assert s.max == 1
        warnings = [r for r in log_lines() if r.get("event") == "pool_monitor.write_failed"]
        assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"
        assert "pool_samples" in warnings[0]["msg"]
        assert pool.stats().active == 0
    finally:
        pool.close()


def test_the_pool_monitor_actor_samples_every_interval_until_it_is_stopped(pool, db_dsn, log_lines):
    ref = ServiceActor.start(name="pool_monitor", parent=None, service=PoolMonitor(pool, node="node-a", interval_s=0.5))
    ref.ask(Start())
    try:
        gevent.sleep(1.3)  # samples at about 0, 0.5 and 1.0 s
    finally:
        ref.stop()
    rows = fetch(db_dsn, "SELECT sampled_at FROM pool_samples ORDER BY sampled_at")
    assert len(rows) == 3
    gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(rows, rows[1:])]
    assert all(0.3 <= g <= 0.7 for g in gaps), gaps
    gevent.sleep(0.6)
    assert len(fetch(db_dsn, "SELECT id FROM pool_samples")) == 3  # stopped: no more rows
    assert len([r for r in log_lines() if r.get("event") == "pool_monitor.sample"]) == 3


def test_the_monitors_own_sample_write_is_not_counted_in_the_next_samples_peak(pool, db_dsn):
    monitor = PoolMonitor(pool, node="node-a")
    monitor.sample_once()
    monitor.sample_once()
    with pool.connection():
        pass
    monitor.sample_once()
    peaks = [r[0] for r in fetch(db_dsn, "SELECT peak_utilization FROM pool_samples ORDER BY id")]
    assert peaks == [0.0, 0.0, 25.0]  # pool max 4: one real checkout between the 2nd and 3rd sample
