"""gevent and psycogreen are in place: queries wait cooperatively."""
import time

import gevent
import psycopg2


def test_ten_greenlets_sleeping_half_a_second_in_postgres_finish_together(db_dsn):
    def sleeper():
        conn = psycopg2.connect(db_dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_sleep(0.5)")
        finally:
            conn.close()

    started = time.monotonic()
    gevent.joinall([gevent.spawn(sleeper) for _ in range(10)], raise_error=True)
    elapsed = time.monotonic() - started
    # Serial execution would take 5 s; cooperative waits take about 0.5 s plus connection set-up.
    assert elapsed < 2.5, f"10 x pg_sleep(0.5) took {elapsed:.2f}s: queries are blocking the hub"


def test_the_goald_entry_point_patches_gevent_before_anything_else():
    import subprocess
    import sys

    code = ("import goald.main, socket, gevent.monkey, psycopg2.extensions as e; "
            "print(gevent.monkey.is_module_patched('socket'), e.get_wait_callback() is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
