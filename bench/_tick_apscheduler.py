"""APScheduler 3.x side of bench/tick_precision.py: the same schedule, "the Python default".

Started by tick_precision.py as a separate process WITHOUT gevent (plain threads), so it is the
stock set-up: a BackgroundScheduler with its default ThreadPoolExecutor (10 workers) and default
job settings (misfire_grace_time 1 s, max_instances 1, coalesce off), in UTC.

Protocol: argv[1] is a JSON object {"jobs": [...], "dsn": "..."}; each job is
{"name", "every_s" | "cron_offset_s", "offset_s"}. Prints "ready <pid>" once the jobs are added,
runs until its standard input closes, then shuts the scheduler down (waiting for running jobs) and
prints one JSON line: {"samples": [[job, scheduled_ts, started_ts], ...], "missed": [[job,
scheduled_ts], ...], "max_instances": [...], "errors": [...], "cpu_s": ...}.

Lateness is exact, not inferred: the job body returns time.time() taken as its first statement,
and the EVENT_JOB_EXECUTED listener pairs it with the event's `scheduled_run_time`.

The job body matches goald's (bench/tick_precision.py `_job_body`): timestamp first, a few µs of
arithmetic, then one `SELECT 1` on a connection of the worker thread's own (psycopg2, opened once
per thread, like a pool's warm connection).
"""
import json
import os
import resource
import sys
import threading
import time
from datetime import datetime, timezone

import psycopg2
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

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

    sched = BackgroundScheduler(timezone=timezone.utc)
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
    sched.start()
    print(f"ready {os.getpid()}", flush=True)
    sys.stdin.read()  # until the parent closes our standard input
    sched.shutdown(wait=True)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"samples": samples, "missed": missed, "max_instances": max_inst, "errors": errors,
                      "cpu_s": ru.ru_utime + ru.ru_stime}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
