"""APScheduler 3.x side of bench/tick_precision.py: the same schedule, "the Python default".

Started by tick_precision.py as a separate process WITHOUT gevent (plain threads), so it is the
stock set-up: a BackgroundScheduler with its default ThreadPoolExecutor (10 workers) and default
job settings (max_instances 1; coalesce on: of several run times of a job due at once, after a
stall, only the latest is run and the older ones are dropped without an event, as goald runs only
the latest due occurrence and records the older ones `missed`), in UTC, except
`misfire_grace_time`: goald's `jobs.grace_s` (passed in `grace_s`; APScheduler 3.x takes whole
seconds, so it is rounded, at least 1, and reported back), so that both drop a late run at the
same lateness. A run dropped that way is an EVENT_JOB_MISSED event, reported in "missed"; the
coalesced ones have no event (tick_precision.py finds them: due, but in no event at all).

The job body matches goald's (bench/tick_precision.py `_job_body`): timestamp first, a few µs of
arithmetic, then one `SELECT 1` on a connection of the worker thread's own (psycopg2, opened once
per thread, like a pool's warm connection). Lateness is exact, not inferred: the job body returns
time.time() taken as its first statement, and the EVENT_JOB_EXECUTED listener pairs it with the
event's `scheduled_run_time`.

The load phase's work, the same as goald's process carries (bench/_tick_load.py), with threads:
- a feeder thread renders each match's provider snapshot (bench/_tick_work.py `Provider`, the
  same seed) once a second at the match's own phase, on goald's feeder's schedule (`buckets`:
  1 % of the matches per 10-ms slot), and queues `Update(snapshot)` for the match;
- `load_threads` worker threads (each owns the matches i with i % load_threads == its index, so a
  match's updates are applied in order, one at a time, as by its actor) apply it with the same
  `apply_update`, put the delta in a shared dict (the cache) and every `db_every`-th message of a
  match write the same UPDATE through a blocking psycopg2 pool of goald's `database.pool_max`;
- an HTTP/1.1 keep-alive server (http.server.ThreadingHTTPServer, a thread per connection, up
  from the start like goald's console) answers GET /health/pool (the pool's counters as JSON, no
  database) and GET /api/health (one SELECT 1 through that pool, JSON as goald's): the parent
  points a second bench/_tick_http_load.py at it with goald's console load settings. Its
  responses leave in one send() with TCP_NODELAY set, as goald's console's do.

Protocol: argv[1] is a JSON object {"jobs": [...], "dsn", "grace_s", "pool_max", "matches",
"db_every", "load_threads"}; each job is {"name", "every_s" (None: cron), "offset_s"}. Prints
"ready <pid> <http port> <misfire_grace_time>" once the jobs are added. Then reads commands,
one a line, on its standard input: "load on" (answers "load on" once the feeder runs), "stats"
(answers one JSON line of counters), "load off" (stops the load, answers the counters). When its
standard input closes it shuts the scheduler down (waiting for running jobs) and prints one JSON line:
{"samples": [[job, scheduled_ts, started_ts], ...], "missed": [[job, scheduled_ts], ...],
"max_instances": [...], "errors": [...], "cpu_s": ..., "grace_s": the jobs' misfire_grace_time}.
"""
import json
import os
import queue
import random
import resource
import socket
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from _tick_work import Provider, apply_update, feed

_local = threading.local()


def tiny_work() -> int:
    """The same few µs of arithmetic as goald's job body."""
    return sum(i * i for i in range(50))


def make_body(dsn: str):
    def body() -> float:
        started = time.time()
        tiny_work()
        conn = getattr(_local, "conn", None)
        if conn is None:
            conn = _local.conn = psycopg2.connect(dsn, application_name="bench-apscheduler")
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        conn.rollback()
        return started
    return body


class BlockingPool:
    """At most `maxconn` psycopg2 connections; a checkout waits up to `timeout_s` for one (as
    goald's pool does; psycopg2's own pools raise at once instead)."""

    def __init__(self, dsn: str, maxconn: int):
        self.dsn, self.maxconn = dsn, maxconn
        self.slots = threading.BoundedSemaphore(maxconn)
        self.idle: list = []
        self.lock = threading.Lock()
        self.counts = Counter()

    @contextmanager
    def connection(self, timeout_s: float = 2.0):
        if not self.slots.acquire(timeout=timeout_s):
            self.counts["timeouts"] += 1
            raise TimeoutError("pool exhausted")
        try:
            with self.lock:
                conn = self.idle.pop() if self.idle else None
                self.counts["checkouts"] += 1
            if conn is None:
                conn = psycopg2.connect(self.dsn, application_name="bench-apscheduler-load")
                self.counts["opened"] += 1
            try:
                yield conn
                conn.rollback()
            except Exception:
                conn.close()
                self.counts["discarded"] += 1
                raise
            with self.lock:
                self.idle.append(conn)
        finally:
            self.slots.release()

    def stats(self) -> dict:
        with self.lock:
            return {"max": self.maxconn, "idle": len(self.idle), **self.counts}


class Load:
    """The match load (see the module docstring): a feeder thread and `threads` worker threads."""

    def __init__(self, pool: BlockingPool, matches: int, db_every: int, threads: int):
        self.pool, self.db_every = pool, db_every
        self.provider = Provider(matches)
        rng = random.Random()
        self.state = [{} for _ in range(matches)]
        self.n = [rng.randrange(db_every) if db_every else 0 for _ in range(matches)]
        self.cache: dict = {}
        self.queues = [queue.SimpleQueue() for _ in range(threads)]
        self.counts = [Counter() for _ in range(threads + 1)]   # per thread (no shared +=); last: feeder
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.worker, args=(k,), daemon=True) for k in range(threads)]
        self.threads.append(threading.Thread(target=self.feeder, daemon=True))
        for t in self.threads:
            t.start()

    def feeder(self, slots: int = 100, tick_s: float = 0.01) -> None:
        """goald's feeder (bench/_tick_work.py `feed`) with a thread: the same slots and targets."""
        qs = self.queues
        feed(len(self.state), lambda i, update: qs[i % len(qs)].put((i, update)), self.provider,
             self.counts[-1], time.sleep, running=lambda: not self.stop.is_set(), slots=slots, tick_s=tick_s)

    def worker(self, k: int) -> None:
        """MatchActor.handle (bench/_tick_load.py) for the matches of this thread."""
        q, c = self.queues[k], self.counts[k]
        while True:
            item = q.get()
            if item is None:
                return
            i, message = item
            delta = apply_update(self.state[i], message.payload)
            if delta is not None:
                self.cache[100000 + i] = delta
            self.n[i] += 1
            c["messages"] += 1
            if self.db_every and self.n[i] % self.db_every == 0:
                s = self.state[i]
                try:
                    with self.pool.connection(timeout_s=2.0) as conn, conn.cursor() as cur:
                        cur.execute("UPDATE bench_matches SET status = %s, minute = %s, home = %s, away = %s, "
                                    "updated_at = now() WHERE id = %s",
                                    (s["status"], s["minute"], s["score"]["home"], s["score"]["away"], 100000 + i))
                        conn.commit()
                    c["db_writes"] += 1
                except Exception:
                    c["db_errors"] += 1

    def totals(self) -> dict:
        return dict(sum(self.counts, Counter()))

    def close(self) -> dict:
        self.stop.set()
        self.threads[-1].join(timeout=10)
        for q in self.queues:
            q.put(None)
        for t in self.threads[:-1]:
            t.join(timeout=10)
        return self.totals()


def http_server(pool: BlockingPool, served: Counter) -> ThreadingHTTPServer:
    started = time.monotonic()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # keep-alive, as goald's console
        wbufsize = -1                   # buffered: headers and body leave in one send (flushed per request)

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args):
            pass

        def do_GET(self):
            t0 = time.monotonic()
            status = 200
            if self.path == "/health/pool":
                body = {"ok": True, "data": pool.stats()}
            elif self.path == "/api/health":
                try:
                    with pool.connection(timeout_s=2.0) as conn, conn.cursor() as cur:
                        cur.execute("SELECT 1")
                        cur.fetchone()
                    body = {"ok": True, "data": {"status": "up", "node": "bench-apscheduler",
                                                 "uptime_s": round(time.monotonic() - started, 1),
                                                 "database": {"ok": True, "embedded": False,
                                                              "latency_ms": round((time.monotonic() - t0) * 1e3, 1)}}}
                except Exception as e:
                    status, body = 503, {"ok": False, "error": {"code": "database_unavailable", "message": str(e)}}
            else:
                status, body = 404, {"ok": False, "error": {"code": "not_found", "message": self.path}}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            served[self.path] += 1

    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> int:
    spec = json.loads(sys.argv[1])
    samples, missed, max_inst, errors = [], [], [], []

    def listener(ev):
        at = ev.scheduled_run_time.timestamp()
        if ev.code == EVENT_JOB_EXECUTED:
            samples.append((ev.job_id, at, ev.retval))
        elif ev.code == EVENT_JOB_MISSED:
            missed.append((ev.job_id, at))
        elif ev.code == EVENT_JOB_ERROR:
            errors.append((ev.job_id, at, repr(ev.exception)))

    def on_max_instances(ev):
        for t in ev.scheduled_run_times:
            max_inst.append((ev.job_id, t.timestamp()))

    grace_s = max(1, round(spec["grace_s"]))   # APScheduler 3.x takes whole seconds only
    sched = BackgroundScheduler(timezone=timezone.utc, job_defaults={"misfire_grace_time": grace_s})
    sched.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    sched.add_listener(on_max_instances, EVENT_JOB_MAX_INSTANCES)
    body = make_body(spec["dsn"])
    for job in spec["jobs"]:
        if job.get("every_s"):
            # Multiples of the interval since the epoch, plus the offset: goald's grid exactly.
            trigger = IntervalTrigger(seconds=job["every_s"], timezone=timezone.utc,
                                      start_date=datetime.fromtimestamp(job["offset_s"], tz=timezone.utc))
        else:  # a 5-field "* * * * *" cron job with a second offset
            trigger = CronTrigger(second=job["offset_s"], timezone=timezone.utc)
        sched.add_job(body, trigger, id=job["name"], name=job["name"])
    pool = BlockingPool(spec["dsn"], spec["pool_max"])
    served: Counter = Counter()
    server = http_server(pool, served)
    sched.start()
    graces = sorted({job.misfire_grace_time for job in sched.get_jobs()})   # what the jobs really have
    print(f"ready {os.getpid()} {server.server_address[1]} {graces[0] if len(graces) == 1 else graces}", flush=True)
    load = None

    def counters() -> dict:
        return {"load": load.totals() if load else {}, "http": dict(served), "pool": pool.stats()}

    while True:
        line = sys.stdin.readline()
        if not line:         # the parent closed our standard input
            break
        cmd = line.strip()
        if cmd == "load on" and load is None:
            load = Load(pool, spec["matches"], spec["db_every"], spec["load_threads"])
            print("load on", flush=True)
        elif cmd == "stats":
            print(json.dumps(counters()), flush=True)
        elif cmd == "load off":
            out = counters()
            out["load"] = load.close() if load else {}
            load = None
            print(json.dumps(out), flush=True)
    if load is not None:
        load.close()
    sched.shutdown(wait=True)
    server.shutdown()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"samples": samples, "missed": missed, "max_instances": max_inst, "errors": errors,
                      "cpu_s": ru.ru_utime + ru.ru_stime,
                      "grace_s": graces[0] if len(graces) == 1 else graces}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
