"""goald.db.pool.Pool against the real PostgreSQL: waiting, timeouts, discarding, counting."""
import time
from contextlib import ExitStack

import gevent
import psycopg2
import psycopg2.errors
import psycopg2.extensions as ext
import psycopg2.pool
import pytest

from goald.db.pool import DatabaseUnavailable, Pool, PoolTimeout


def backend_pid(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def count_samples(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pool_samples")
        return cur.fetchone()[0]


INSERT_SAMPLE = ("INSERT INTO pool_samples (node, active, idle, waiting, total, max, utilization) "
                 "VALUES ('t', 0, 0, 0, 0, 1, 0)")


@pytest.fixture
def admin(db_dsn):
    """A plain autocommit connection outside the pool, to look at or act on the server."""
    conn = psycopg2.connect(db_dsn)
    conn.autocommit = True
    yield conn
    conn.close()


def sample_stats_while(pool, running, every_s=0.01):
    """Greenlet body: record pool.stats() until `running()` turns false."""
    seen = []
    while running():
        seen.append(pool.stats())
        gevent.sleep(every_s)
    return seen


def test_two_connections_serve_ten_greenlets_that_wait_their_turn_without_errors(db_dsn):
    pool = Pool(db_dsn, maxconn=2, timeout_s=5)

    def worker(i):
        with pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(0.2), %s", (i,))
            return cur.fetchone()[1]

    started = time.monotonic()
    workers = [gevent.spawn(worker, i) for i in range(10)]
    sampler = gevent.spawn(sample_stats_while, pool, lambda: not all(w.ready() for w in workers))
    gevent.joinall(workers, timeout=10)
    seen = sampler.get(timeout=5)
    elapsed = time.monotonic() - started
    try:
        for w in workers:
            assert w.successful(), repr(w.exception)  # no PoolError, no PoolTimeout
            assert not isinstance(w.exception, (psycopg2.pool.PoolError, PoolTimeout))
        assert sorted(w.value for w in workers) == list(range(10))
        assert max(s.waiting for s in seen) > 0
        assert max(s.active for s in seen) == 2
        assert max(s.total for s in seen) <= 2
        assert elapsed >= 0.2 * 10 / 2 - 0.05  # two at a time, not ten
        s = pool.stats()
        assert (s.active, s.waiting, s.timeouts, s.checkouts) == (0, 0, 0, 10)
        assert s.opened <= 2
    finally:
        pool.close()


def test_an_exhausted_pool_makes_the_caller_wait_then_raises_pool_timeout_saying_what_to_do(db_dsn):
    pool = Pool(db_dsn, maxconn=1, timeout_s=0.3)
    try:
        with pool.connection():
            waiting = []
            sampler = gevent.spawn(lambda: [waiting.append(pool.stats().waiting) or gevent.sleep(0.05)
                                            for _ in range(4)])
            started = time.monotonic()
            with pytest.raises(PoolTimeout) as raised:
                with pool.connection():
                    pass
            waited = time.monotonic() - started
            sampler.join()
        assert 0.28 <= waited < 2
        assert max(waiting) == 1
        message = str(raised.value)
        assert "pool max 1" in message and "1 in use" in message
        assert "raise database.pool_max" in message and "what holds connections" in message
        s = pool.stats()
        assert (s.waiting, s.active, s.timeouts) == (0, 0, 1)
        with pool.connection() as conn:  # the pool still works afterwards
            assert backend_pid(conn)
    finally:
        pool.close()


def test_a_per_call_timeout_overrides_the_pool_default(pool):
    with pool.connection(), pool.connection(), pool.connection(), pool.connection():
        started = time.monotonic()
        with pytest.raises(PoolTimeout, match=r"within 0\.1 s \(pool max 4"):
            with pool.connection(timeout_s=0.1):
                pass
        assert time.monotonic() - started < 1  # not the pool's 5 s


def test_a_query_interrupted_by_gevent_timeout_discards_its_connection_and_frees_the_slot(pool):
    with pool.connection() as conn:
        first_pid = backend_pid(conn)
    started = time.monotonic()
    with pytest.raises(gevent.Timeout):
        with gevent.Timeout(0.2):
            with pool.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_sleep(5)")
    assert time.monotonic() - started < 2
    assert conn.closed
    s = pool.stats()
    assert (s.active, s.idle, s.discarded, s.opened) == (0, 0, 1, 1)
    with pool.connection() as conn2:
        assert conn2 is not conn and backend_pid(conn2) != first_pid
    s = pool.stats()
    assert (s.active, s.idle, s.opened) == (0, 1, 2)


def test_a_greenlet_killed_while_holding_a_connection_discards_it(pool):
    def hold():
        with pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(5)")

    g = gevent.spawn(hold)
    gevent.sleep(0.1)
    assert pool.stats().active == 1
    g.kill(block=True, timeout=2)
    s = pool.stats()
    assert (s.active, s.idle, s.discarded) == (0, 0, 1)


def test_a_connection_interrupted_during_its_check_in_rollback_is_discarded_not_leaked(pool):
    with pytest.raises(gevent.Timeout):
        with gevent.Timeout(0.1):
            with pool.connection() as conn, conn.cursor() as cur:
                cur.execute(INSERT_SAMPLE)
                real_rollback = conn.rollback
                conn.rollback = lambda: (gevent.sleep(1), real_rollback())  # a slow network
    assert conn.closed
    s = pool.stats()
    assert (s.active, s.idle, s.discarded) == (0, 0, 1)
    with pool.connection() as conn2:
        assert count_samples(conn2) == 0


def test_an_interruption_while_the_checkout_sets_its_statement_timeout_reaches_the_caller_as_itself(pool):
    """psycopg2 closes a connection whose wait callback is interrupted; restoring autocommit on it
    raised InterfaceError in place of the interruption, which a job's `except Exception` then
    swallowed: its own timeout (seen once in CI as a job that could not be killed)."""
    with pool.connection():
        pass
    conn = pool._idle[0]
    real_cursor = conn.cursor

    def cursor(*args, **kwargs):
        cur = real_cursor(*args, **kwargs)
        real_execute = cur.execute

        def execute(sql, params=None):
            if "set_config" in sql:
                try:
                    gevent.sleep(1)  # the query in flight when the interruption lands
                except BaseException:
                    conn.close()  # what psycopg2 does to a connection whose wait was interrupted
                    raise
            return real_execute(sql, params)
        cur.execute = execute
        return cur
    conn.cursor = cursor
    with pytest.raises(gevent.Timeout):
        with gevent.Timeout(0.1):
            with pool.connection(statement_timeout_ms=500):
                pass
    s = pool.stats()
    assert (s.active, s.idle, s.discarded) == (0, 0, 1)


def test_a_connection_killed_server_side_while_idle_is_discarded_not_handed_out_again(pool, admin):
    with pool.connection() as conn:
        pid = backend_pid(conn)
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        assert cur.fetchone()[0]
    with pool.connection() as conn2, conn2.cursor() as cur:
        cur.execute("SELECT 1")  # works: the broken connection was not handed out
        assert backend_pid(conn2) != pid
    s = pool.stats()
    assert (s.discarded, s.opened, s.idle) == (1, 2, 1)


def test_a_connection_killed_server_side_while_in_use_is_discarded_and_the_next_checkout_works(pool, admin):
    with pytest.raises(psycopg2.OperationalError):
        with pool.connection() as conn, conn.cursor() as cur:
            pid = backend_pid(conn)
            with admin.cursor() as acur:
                acur.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            cur.execute("SELECT 1")
    assert conn.closed
    assert pool.stats().discarded == 1
    with pool.connection() as conn2:
        assert backend_pid(conn2) != pid


def test_an_open_transaction_is_rolled_back_at_check_in_and_the_connection_reused(pool):
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute(INSERT_SAMPLE)  # no commit
        assert conn.info.transaction_status == ext.TRANSACTION_STATUS_INTRANS
    with pool.connection() as again:
        assert again is conn
        assert again.info.transaction_status == ext.TRANSACTION_STATUS_IDLE
        assert count_samples(again) == 0
    s = pool.stats()
    assert (s.discarded, s.opened, s.idle) == (0, 1, 1)


def test_committed_work_survives_check_in(pool):
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute(INSERT_SAMPLE)
        conn.commit()
    with pool.connection() as conn:
        assert count_samples(conn) == 1


def test_an_exception_in_the_with_block_rolls_back_and_reuses_the_connection(pool):
    with pytest.raises(ValueError):
        with pool.connection() as conn, conn.cursor() as cur:
            cur.execute(INSERT_SAMPLE)
            raise ValueError("boom")
    with pool.connection() as again:
        assert again is conn and count_samples(again) == 0
    assert pool.stats().discarded == 0


def test_a_failed_statement_rolls_back_the_aborted_transaction_and_reuses_the_connection(pool):
    with pytest.raises(psycopg2.errors.UndefinedTable):
        with pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT * FROM no_such_table")
    assert conn.info.transaction_status == ext.TRANSACTION_STATUS_IDLE
    with pool.connection() as again:
        assert again is conn and count_samples(again) == 0
    assert pool.stats().discarded == 0


def test_conn_queries_counts_this_checkouts_statements_and_stats_accumulate_them(pool):
    with pool.connection() as conn:
        assert conn.queries == 0
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.execute("SELECT 2")
        with conn.cursor() as other:
            other.executemany("SELECT %s", [(1,), (2,), (3,)])  # one call, one count
        assert conn.queries == 3
    with pool.connection() as again:
        assert again is conn and again.queries == 0  # reset at checkout
        with again.cursor() as cur:
            cur.execute("SELECT 1")
        assert again.queries == 1
    assert pool.stats().queries == 4


def test_stats_report_active_idle_total_max_and_utilization_while_connections_are_held(pool):
    assert pool.stats().as_dict() == dict(active=0, idle=0, waiting=0, total=0, max=4,
                                          utilization=0.0, peak_active=0, checkouts=0, timeouts=0,
                                          discarded=0, opened=0, queries=0)
    with ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(pool.connection())
        s = pool.stats()
        assert (s.active, s.idle, s.total, s.max, s.utilization) == (3, 0, 3, 4, 75.0)
        with ExitStack() as inner:
            inner.enter_context(pool.connection())
            assert pool.stats().utilization == 100.0
        s = pool.stats()
        assert (s.active, s.idle, s.total, s.utilization) == (3, 1, 4, 75.0)
    s = pool.stats()
    assert (s.active, s.idle, s.total, s.utilization, s.checkouts, s.opened) == (0, 4, 4, 0.0, 4, 4)


def test_take_peak_reports_the_most_connections_held_at_once_since_the_last_call(pool):
    with ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(pool.connection())
    with pool.connection():
        assert pool.take_peak() == 3  # the burst is gone, its high-water mark is not
        assert pool.take_peak() == 1  # reset to the level at the call: one still held
    assert pool.take_peak() == 1 and pool.take_peak() == 0


def test_statement_timeout_ms_cancels_a_long_query_on_the_server(db_dsn):
    pool = Pool(db_dsn, maxconn=1, statement_timeout_ms=100)
    try:
        with pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone()[0] == "100ms"
        started = time.monotonic()
        with pytest.raises(psycopg2.errors.QueryCanceled):
            with pool.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_sleep(1)")
        assert time.monotonic() - started < 0.9
        with pool.connection() as again, again.cursor() as cur:  # still usable, and reused
            cur.execute("SELECT 1")
            assert again is conn
    finally:
        pool.close()


def test_application_name_is_set_on_the_server(db_dsn, admin):
    pool = Pool(db_dsn, maxconn=1, application_name="goald-test-app")
    try:
        with pool.connection() as conn:
            pid = backend_pid(conn)
        with admin.cursor() as cur:
            cur.execute("SELECT application_name FROM pg_stat_activity WHERE pid = %s", (pid,))
            assert cur.fetchone()[0] == "goald-test-app"
    finally:
        pool.close()


def test_an_unreachable_server_raises_database_unavailable_with_the_password_masked():
    pool = Pool("postgresql://u:s3cretpw@127.0.0.1:1/x", maxconn=1, connect_timeout_s=2)
    for _ in range(2):  # the second try proves the slot was released (no PoolTimeout)
        with pytest.raises(DatabaseUnavailable) as raised:
            with pool.connection():
                pass
        message = str(raised.value)
        assert "s3cretpw" not in message and "u:***@127.0.0.1:1/x" in message
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
    s = pool.stats()
    assert (s.active, s.total, s.opened) == (0, 0, 0)


def test_minconn_opens_connections_at_construction(db_dsn, admin):
    pool = Pool(db_dsn, minconn=2, maxconn=3, application_name="goald-test-min")
    try:
        s = pool.stats()
        assert (s.idle, s.total, s.opened, s.active) == (2, 2, 2, 0)
        with admin.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'goald-test-min'")
            assert cur.fetchone()[0] == 2
    finally:
        pool.close()


def test_minconn_on_an_unreachable_server_fails_at_construction():
    with pytest.raises(DatabaseUnavailable):
        Pool("postgresql://u:pw@127.0.0.1:1/x", minconn=1, maxconn=1, connect_timeout_s=2)


@pytest.mark.parametrize("minconn, maxconn", [(3, 2), (0, 0), (-1, 2)])
def test_pool_rejects_bounds_that_cannot_work(minconn, maxconn):
    with pytest.raises(ValueError, match="minconn <= maxconn"):
        Pool("postgresql://u@127.0.0.1:1/x", minconn=minconn, maxconn=maxconn)


def test_close_refuses_later_checkouts_and_closes_connections_in_use_when_they_come_back(pool):
    with pool.connection() as held:
        with pool.connection() as idle:
            pass
        pool.close()
        assert idle.closed and not held.closed
        with held.cursor() as cur:  # the holder finishes its work
            cur.execute("SELECT 1")
        with pytest.raises(DatabaseUnavailable, match="closed"):
            with pool.connection():
                pass
    assert held.closed
    s = pool.stats()
    assert (s.active, s.idle, s.total) == (0, 0, 0)


def test_a_greenlet_waiting_when_the_pool_closes_gets_database_unavailable_not_a_new_connection(db_dsn):
    pool = Pool(db_dsn, maxconn=1, timeout_s=5)

    def wait_for_one():
        with pool.connection():
            pass

    with pool.connection():
        waiter = gevent.spawn(wait_for_one)
        gevent.sleep(0.05)
        assert pool.stats().waiting == 1
        pool.close()
    waiter.join(timeout=2)
    assert isinstance(waiter.exception, DatabaseUnavailable)
    s = pool.stats()
    assert (s.opened, s.active, s.waiting) == (1, 0, 0)
