"""How much goald's connection pool adds to a trivial query.

Measures `checkout + SELECT 1 + checkin` through goald.db.pool.Pool against the same `SELECT 1` on
one raw psycopg2 connection held open, both under the daemon's set-up (gevent monkey-patching and
psycogreen), so the difference is the pool's own work: semaphore, idle list, liveness check,
transaction-status checks, query counting, the context manager. Both sides send the same
statements: psycopg2's implicit BEGIN, SELECT 1, ROLLBACK (the pool's check-in rolls back; the raw
side calls rollback() itself). Both use the same connection, fresh each round: the raw side calls
it directly, with a plain cursor, while it sits idle in the pool, so socket, server process and
session settings are identical (with two connections, how well each server process happens to be
scheduled moves the result by more than the pool costs).

Interleaved: in each round (default 15 x 2000 iterations) every iteration runs one pool and one raw
operation back to back, pool first in even rounds, raw first in odd ones. Reported: the median over
rounds of each round's median per-operation time, the p99 of single-operation latency, and the
overhead (pool - raw) / raw against the target (< 10 %).

Run:  python bench/pool_overhead.py [--dsn URL] [--rounds N] [--iterations N] [--json]
The DSN is --dsn, else $GOALD_BENCH_DATABASE_URL, else $GOALD_TEST_DATABASE_URL, else an embedded
PostgreSQL started in a temporary directory (and stopped at the end). Exit status 1 on FAIL.
"""
from gevent import monkey

monkey.patch_all()

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from time import perf_counter_ns  # noqa: E402

import psycopg2.extensions as ext  # noqa: E402

from goald.db.pool import Pool  # noqa: E402
from goald.redact import mask_dsn  # noqa: E402

TARGET_PCT = 10.0


def pool_op(pool: Pool) -> None:
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()


def raw_op(conn) -> None:
    with conn.cursor(cursor_factory=ext.cursor) as cur:  # a plain psycopg2 cursor: no counting
        cur.execute("SELECT 1")
        cur.fetchone()
    conn.rollback()


def run_round(first, second, iterations: int, lat: dict) -> dict:
    """`iterations` pairs, the two operations back to back; each latency (µs) goes to `lat`.

    Returns each side's median for the round: the median, not the mean, because on a shared
    machine a few operations are preempted for milliseconds, which would swamp a few µs."""
    got = {first[0]: [], second[0]: []}
    for _ in range(iterations):
        for name, op, arg in (first, second):
            t0 = perf_counter_ns()
            op(arg)
            got[name].append((perf_counter_ns() - t0) / 1000)
    for name, values in got.items():
        lat[name].extend(values)
    return {name: statistics.median(values) for name, values in got.items()}


def p99(values: list) -> float:
    return statistics.quantiles(values, n=100)[98]


def measure(dsn: str, rounds: int, iterations: int) -> dict:
    medians, lat = {"pool": [], "raw": []}, {"pool": [], "raw": []}
    discarded = 0
    for r in range(rounds):
        # One connection per round serves both sides: the pool checks it out and in, the raw side
        # uses it directly (plain cursor) while it sits idle in the pool. Same socket, same server
        # process, same session settings: the difference is the pool alone. A fresh connection
        # each round, so that no one server process's scheduling weighs on the whole run.
        pool = Pool(dsn, maxconn=1, application_name="goald-bench")
        raw = pool._open()  # opened exactly as the pool opens its own
        pool._idle.append(raw)
        try:
            for _ in range(100):  # warm-up
                pool_op(pool)
                raw_op(raw)
            sides = [("pool", pool_op, pool), ("raw", raw_op, raw)]
            first, second = sides if r % 2 == 0 else sides[::-1]
            for name, median in run_round(first, second, iterations, lat).items():
                medians[name].append(median)
            discarded += pool.stats().discarded
        finally:
            pool.close()
    pool_us, raw_us = statistics.median(medians["pool"]), statistics.median(medians["raw"])
    overhead = 100.0 * (pool_us - raw_us) / raw_us
    return {
        "rounds": rounds, "iterations": iterations,
        "pool_us": round(pool_us, 2), "raw_us": round(raw_us, 2),
        "pool_p99_us": round(p99(lat["pool"]), 2), "raw_p99_us": round(p99(lat["raw"]), 2),
        "overhead_us": round(pool_us - raw_us, 2), "overhead_pct": round(overhead, 2),
        "target_pct": TARGET_PCT, "pass": overhead < TARGET_PCT,
        "pool_discarded": discarded,  # must be 0: the pool kept the one connection
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", help="PostgreSQL URL (default: env, else an embedded server)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    dsn = args.dsn or os.environ.get("GOALD_BENCH_DATABASE_URL") or os.environ.get("GOALD_TEST_DATABASE_URL")
    embedded = tmp = None
    if not dsn:
        from goald.db.embedded import EmbeddedPostgres

        tmp = tempfile.TemporaryDirectory(prefix="goald-bench-")
        os.chmod(tmp.name, 0o755)   # as root the embedded server runs as nobody, who must reach it
        embedded = EmbeddedPostgres(tmp.name)
        dsn = embedded.start()
    try:
        res = measure(dsn, args.rounds, args.iterations)
    finally:
        if embedded is not None:
            embedded.stop()
            tmp.cleanup()
    res["server"] = "embedded" if embedded is not None else mask_dsn(dsn)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"server: {res['server']}  ({res['rounds']} rounds x {res['iterations']} iterations, "
              f"interleaved)")
        for side, label in (("raw", "raw   SELECT 1 + rollback"),
                            ("pool", "pool  checkout + SELECT 1 + checkin")):
            print(f"  {label:37s} median {res[side + '_us']:7.1f} µs/op   "
                  f"p99 {res[side + '_p99_us']:7.1f} µs")
        print(f"  overhead {res['overhead_us']:+.1f} µs = {res['overhead_pct']:+.1f} %   "
              f"target: < {TARGET_PCT:g} %   {'PASS' if res['pass'] else 'FAIL'}")
    return 0 if res["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
