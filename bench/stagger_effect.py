"""What staggering does to the seeds' eight-job mix: concurrency and pool utilization, off vs on.

The mix (bench/stagger_jobs.py): the seeds' eight jobs at the seeds' offsets (:00 Referral Tier 2,
:05 Badge Auto-Unlock, :10 Stuck Match Finisher, :15 Referral Tier 3, :25 Prediction Matcher,
:30 Scheduled Notifications, :40 Telegram Settlement, :45 Live Stats Sync) with the seeds'
durations: seven DB jobs that hold a pooled connection and a transaction for 39-50 ms (an UPDATE,
then pg_sleep for the rest: 46/42/39 ms from the seeds, 45/44/48/50 ms chosen for the four whose
duration the seeds do not give) and Live Stats Sync, 19.4 s that write to the database as in
production: 20 live matches, for each a (simulated) provider call for the statistics that changed
(at most --provider-concurrency calls in flight) and a short upsert through the pool that keeps
known values. It runs from :45 to :04 of the next minute, overlapping Referral Tier 2 at :00, but
holds a connection only for its upserts (a few ms each; with the defaults none falls in Referral
Tier 2's 46 ms), so `goald kpi`, which counts concurrent DB jobs from the connection-held time each
run records (job_runs.db_spans), sees one DB job at a time with stagger on. (Before db_spans, the
kpi counted a run that queried at all as a DB job for its whole length: this mix then read 2.)

CADENCE IS COMPRESSED: the seeds run Badge Auto-Unlock and Prediction Matcher every 5 minutes and
Stuck Match Finisher and Telegram Settlement every 10, so a faithful phase would need 10 minutes
for all eight to fire once. Here every job runs every minute (cron "* * * * *" + its offset), so
each minute of a phase is the seeds' worst minute (the top of the 10 minutes, when all eight are
due). Offsets and durations are the seeds'. `--cadence seeds` uses the seeds' cadences (then give
`--minutes 10` or more).

Method: one fresh database (goald_bench_stagger_<pid>, dropped at the end unless --keep), two
`goald run` processes one after the other, the same pool in both (database.pool_max = --pool-max,
default 8; pool_min 1; pool_monitor.interval_s 0.5, its samples keep the pool's high-water mark
between samples, so a 50 ms burst is seen):
1. stagger off (GOALD_JOBS_STAGGER_ENABLED=false): every offset becomes 0, all eight start at :00;
2. stagger on (GOALD_JOBS_STAGGER_ENABLED=true): each job at its offset.
Each process runs from its `goald.ready` log line; its phase is the window [since, until) of
--minutes whole minutes from the first minute boundary at least --settle-s after ready, and it is
stopped with SIGTERM one second before `until`, once every occurrence of the window has started
(warm stop: a Live Stats Sync in flight finishes, exit code 0 is checked). Whole minutes, because
goald runs each job once per period (the minute, before its offset): a minute the first phase ran
at :00 with stagger off is not run again at its offsets by the second (skipped_lock), so the first
phase stops before the minute after its window and the second starts at a later minute. goald's
own maintenance jobs (orphan_rescue, ledger_prune, pool_samples_prune) are disabled, so the ledger
holds the eight-job mix only. Each phase is then read back with `goald kpi --since <since> --until <until>
--json` (a subprocess, as an operator would run it): runs, peak concurrent jobs, peak concurrent DB
jobs (runs holding a connection at the same instant), pool utilization max (high-water marks) and
mean (samples), distinct start seconds, success rate and the seven DB jobs' mean duration (weighted
by runs). The ledger is read directly too, as a cross-check of the kpi: every expected occurrence
ran and succeeded, the peaks recomputed from started_at/finished_at and db_spans, how late each run
started (started_at - scheduled_at), and how long and in how many stretches Live Stats Sync held
connections.

Targets (the issue), with stagger on: peak concurrent DB jobs <= 1 and peak pool utilization < 40 %.
What the pool figures count: every connection checked out of goald's pool, not only the jobs'.
A DB job takes two at its start (its own, and the ledger's started_at stamp written by the run's
heartbeat greenlet at the same moment), so one DB job alone shows as 2/pool_max; Live Stats Sync's
heartbeat (every 5 s) or upserts (up to --provider-concurrency at once) can add to it when they
land on a job. The pool monitor's own sample INSERT is also counted in the next sample's high-water
mark (see the report), so the kpi's max is never below 1/pool_max. With pool_max 8, stagger on measures 2/8 = 25 % and 3/8 = 37.5 % is still under
the target. The baseline's burst at :00 wants about 11 connections (measured with --pool-max 20:
55 %), so with 8 it saturates the pool (100 %, greenlets wait); the seeds' 80-95 % peaks
correspond to a pool of 12-13.

The bench also fails when a phase is not a valid measurement (a job missing an occurrence or not
succeeding, goald not exiting 0), since a run that did not happen would flatter the figures. The
baseline is shown against the seeds' (80-95 % pool peaks, 8 concurrent jobs) for context.

Run:  python bench/stagger_effect.py [--dsn URL] [--minutes 3] [--pool-max 8] [--settle-s 2]
          [--cadence compressed|seeds] [--live-stats-s 19.4] [--provider-concurrency 2] [--keep] [--json]
--dsn is a maintenance database URL (default $GOALD_BENCH_DATABASE_URL, else
postgresql://postgres@127.0.0.1:5432/postgres). About 2 x (--minutes + 1) minutes in all.
Exit status 1 when a target fails or a phase is invalid, 2 when the bench itself cannot run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _db import create_database, drop_database
import stagger_jobs  # the mix's names, offsets and cadences (bench/; no gevent patching needed)
from goald.actors.schedule import Schedule
from goald.redact import mask_dsn
from goald.settings import BY_ENV

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_DB_CONCURRENT = 1        # peak concurrent DB jobs <= 1
TARGET_POOL_MAX_PCT = 40.0      # peak pool utilization < 40 %
SEEDS_BASELINE = {"pool_peak": (80.0, 95.0), "concurrent": 8}
MAINTENANCE_JOBS = ("orphan_rescue", "ledger_prune", "pool_samples_prune")
READY_TIMEOUT_S = 90.0
STARTED = ("succeeded", "failed", "timed_out", "interrupted")

DB_JOBS = [m[0] for m in stagger_jobs.MIX]
ALL_JOBS = DB_JOBS + [stagger_jobs.LIVE_STATS[0]]
OFFSETS = {m[0]: m[1] for m in stagger_jobs.MIX} | {stagger_jobs.LIVE_STATS[0]: stagger_jobs.LIVE_STATS[1]}
SEEDS_CRON = {m[0]: m[2] for m in stagger_jobs.MIX} | {stagger_jobs.LIVE_STATS[0]: stagger_jobs.LIVE_STATS[2]}


class BenchError(Exception):
    """The bench could not run (goald did not start or stop, the database is unreachable)."""


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def hms(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%H:%M:%S")


def db_url(maintenance_dsn: str, dbname: str) -> str:
    """The maintenance DSN with its database replaced (URL or key=value form)."""
    params = psycopg2.extensions.parse_dsn(maintenance_dsn)
    params["dbname"] = dbname
    return psycopg2.extensions.make_dsn(**params)


# --- database ------------------------------------------------------------------------------------

def prepare_schema(dsn: str) -> None:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(stagger_jobs.CREATE_TABLE)
        conn.commit()
    finally:
        conn.close()


# --- goald processes -----------------------------------------------------------------------------

def child_env(args, dsn: str, stagger: bool, config_path: str) -> dict:
    """The environment of `goald run` / `goald kpi`: ours only, nothing inherited that configures goald."""
    drop = set(BY_ENV) | {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}
    env = {k: v for k, v in os.environ.items()
           if k not in drop and not k.startswith(("GOALD_", "JOB_STAGGER_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (HERE, os.environ.get("PYTHONPATH")) if p)
    env.update({
        "GOALD_CONFIG": config_path,                        # an empty file: defaults + this env
        "GOALD_DATABASE_URL": dsn,
        "GOALD_DATABASE_POOL_MAX": str(args.pool_max),
        "GOALD_DATABASE_POOL_MIN": "1",
        "GOALD_POOL_MONITOR_INTERVAL_S": "0.5",
        "GOALD_JOBS_STAGGER_ENABLED": "true" if stagger else "false",
        "GOALD_JOBS_COLLISIONS": "warn",                    # stagger off: everything collides at :00
        "GOALD_JOBS_SHUTDOWN_TIMEOUT_S": str(max(30.0, args.live_stats_s + 15)),
        "GOALD_JOBS_MODULES": "stagger_jobs",
        "GOALD_CONSOLE_PORT": "0",
        "GOALD_LOG_FORMAT": "json",
        "GOALD_LOG_LEVEL": "INFO",
        "GOALD_NODE_NAME": f"bench-stagger-{'on' if stagger else 'off'}",
        "STAGGER_BENCH_CADENCE": args.cadence,
        "STAGGER_BENCH_LIVE_STATS_S": str(args.live_stats_s),
        "STAGGER_BENCH_PROVIDER_CONCURRENCY": str(args.provider_concurrency),
    })
    for job in MAINTENANCE_JOBS:
        env[f"GOALD_JOB_{job.upper()}_ENABLED"] = "false"
    return env


def read_events(path: str) -> list[dict]:
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
    return out


def tail(path: str, n: int = 15) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(f.readlines()[-n:])


def wait_ready(proc: subprocess.Popen, log_path: str) -> dict:
    deadline = time.time() + READY_TIMEOUT_S
    while time.time() < deadline:
        for doc in read_events(log_path):
            if doc.get("event") == "goald.ready":
                return doc
        if proc.poll() is not None:
            raise BenchError(f"goald exited with {proc.returncode} before it was ready; its log ends:\n"
                             f"{tail(log_path)}")
        time.sleep(0.1)
    raise BenchError(f"goald not ready within {READY_TIMEOUT_S:g} s; its log ends:\n{tail(log_path)}")


def sleep_until(t: float) -> None:
    while (left := t - time.time()) > 0:
        time.sleep(min(left, 1.0))


def run_phase(args, label: str, stagger: bool, dsn: str, workdir: str) -> dict:
    """One `goald run` for one phase; returns its window and what its log says."""
    config_path = os.path.join(workdir, "goald.toml")
    log_path = os.path.join(workdir, f"goald-stagger-{label}.log")
    env = child_env(args, dsn, stagger, config_path)
    with open(log_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "goald", "run"], env=env, cwd=workdir,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, log_path)
        since = math.ceil((time.time() + args.settle_s) / 60) * 60    # a whole period (module doc)
        until = since + args.minutes * 60
        log(f"stagger {label}: goald (pid {proc.pid}) ready; window {hms(since)}-{hms(until)} UTC "
            f"({args.minutes} min), stopping at {hms(until - 1)}")
        sleep_until(until - 1)
        if proc.poll() is not None:
            raise BenchError(f"goald exited with {proc.returncode} during the phase; its log ends:\n{tail(log_path)}")
        stop_at = time.time()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=max(30.0, args.live_stats_s + 15) + 30)
        except subprocess.TimeoutExpired:
            raise BenchError(f"goald did not stop within the shutdown timeout; its log ends:\n{tail(log_path)}")
        log(f"stagger {label}: goald stopped (exit {rc}) after {time.time() - stop_at:.1f} s")
    finally:
        if proc.poll() is None:          # an error or ^C above: do not leave our goald behind
            proc.kill()
            proc.wait()
    events = read_events(log_path)
    stagger_lines = [e.get("msg", "") for e in events if e.get("event") == "clock.stagger"]
    # Expected, not problems: collision warnings with stagger off (everything at :00) and, at the
    # second start, the occurrences that fell between the two processes recorded `missed`.
    expected = [e for e in events if e.get("event") == "jobs.collision"
                or (e.get("event") == "job.missed" and "goald was not running" in e.get("msg", ""))]
    problems = [f"{e.get('level')} {e.get('event')}: {e.get('msg')}" for e in events
                if e.get("level") in ("WARNING", "ERROR", "CRITICAL") and e not in expected]
    return {"label": label, "stagger": stagger, "since": since, "until": until, "exit_code": rc,
            "log": log_path, "stagger_log": stagger_lines[-1] if stagger_lines else None,
            "collision_warnings": sum(1 for e in expected if e.get("event") == "jobs.collision"),
            "log_problems": problems}


def goald_kpi(dsn: str, since: float, until: float, workdir: str, args) -> dict:
    env = child_env(args, dsn, True, os.path.join(workdir, "goald.toml"))
    cmd = [sys.executable, "-m", "goald", "kpi", "--since", iso(since), "--until", iso(until), "--json"]
    res = subprocess.run(cmd, check=False, env=env, cwd=workdir, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise BenchError(f"goald kpi exited with {res.returncode}: {res.stderr.strip()[-2000:]}")
    return json.loads(res.stdout)


# --- the ledger, read directly (cross-check) -----------------------------------------------------

def expected_runs(job: str, stagger: bool, cadence: str, since: float, until: float) -> int:
    cron = SEEDS_CRON[job] if cadence == "seeds" else "* * * * *"
    sched = Schedule(cron=cron, offset_s=OFFSETS[job] if stagger else 0)
    return len(sched.occurrences(since - 1e-6, until - 1e-6))      # [since, until)


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals [s, e) open at one instant (checked at every start; touching = no overlap)."""
    best = 0
    for s, _ in intervals:
        best = max(best, sum(1 for s2, e2 in intervals if s2 <= s < e2))
    return best


def held_stretches(row) -> list[tuple[float, float]]:
    """When a ledger row's run held a connection, in epoch seconds: its db_spans, or (a row without
    them) the whole run when it issued queries, as `goald kpi` counts them."""
    if row[9] is None:
        return [(row[3], row[4])] if row[5] > 0 else []
    return [(row[9][i] / 1e6, row[9][i + 1] / 1e6) for i in range(0, len(row[9]) - 1, 2)]


def ledger_check(dsn: str, phase: dict, args) -> dict:
    since, until = phase["since"], phase["until"]
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT job, outcome, extract(epoch FROM scheduled_at)::float8, extract(epoch FROM started_at)::float8,"
                "       extract(epoch FROM finished_at)::float8, coalesce(queries_issued, 0), duration_ms, offset_s, staggered, "
                "       db_spans "
                "FROM job_runs WHERE scheduled_at >= %s AND scheduled_at < %s ORDER BY scheduled_at, job",
                (datetime.fromtimestamp(since, tz=UTC), datetime.fromtimestamp(until, tz=UTC)))
            rows = cur.fetchall()
            cur.execute(
                "SELECT count(*), max(active), max(greatest(utilization, coalesce(peak_utilization, 0))), "
                "       max(round(coalesce(peak_utilization, 0) * max / 100.0)), avg(utilization), max(waiting) "
                "FROM pool_samples WHERE sampled_at >= %s AND sampled_at < %s",
                (datetime.fromtimestamp(since, tz=UTC), datetime.fromtimestamp(until, tz=UTC)))
            samples, max_active, util_max, peak_conns, util_mean, waiting = cur.fetchone()
        conn.rollback()
    finally:
        conn.close()
    started = [r for r in rows if r[1] in STARTED and r[3] is not None]
    per_job = {}
    for job in sorted({r[0] for r in rows} | set(ALL_JOBS)):
        mine = [r for r in rows if r[0] == job]
        ok = [r for r in mine if r[1] == "succeeded"]
        late = [(r[3] - r[2]) * 1000 for r in mine if r[3] is not None]
        per_job[job] = {
            "expected": expected_runs(job, phase["stagger"], args.cadence, since, until) if job in ALL_JOBS else 0,
            "rows": len(mine), "succeeded": len(ok),
            "outcomes": sorted({r[1] for r in mine}),
            "offsets": sorted({r[7] for r in mine}),
            "db_runs": sum(1 for r in mine if r[5] > 0),
            "duration_ms_mean": round(statistics.fmean(r[6] for r in ok), 1) if ok else None,
            "late_ms_max": round(max(late), 1) if late else None,
        }
    spans = [(r[3], r[4]) for r in started if r[4] is not None]
    held = [h for r in started if r[4] is not None for h in held_stretches(r)]
    live = [held_stretches(r) for r in started if r[0] == stagger_jobs.LIVE_STATS[0] and r[9] is not None]
    late_all = [(r[3] - r[2]) * 1000 for r in started]
    db_durations = [r[6] for r in started if r[0] in DB_JOBS and r[6] is not None]   # the seven, as the table
    missing = {j: v["expected"] - v["succeeded"] for j, v in per_job.items()
               if j in ALL_JOBS and v["succeeded"] != v["expected"]}
    unexpected = sorted({r[0] for r in started} - set(ALL_JOBS))     # disabled ones leave skipped rows
    return {
        "rows": len(rows), "runs": len(started),
        "expected_runs": sum(v["expected"] for j, v in per_job.items() if j in ALL_JOBS),
        "succeeded": sum(1 for r in started if r[1] == "succeeded"),
        "not_succeeded": missing, "unexpected_jobs": unexpected,
        "peak_concurrent": peak_overlap(spans), "peak_db_concurrent": peak_overlap(held),
        "distinct_start_seconds": len({math.floor(r[3]) % 60 for r in started}),
        "db_duration_ms_mean": round(statistics.fmean(db_durations), 1) if db_durations else None,
        "late_ms": {"median": round(statistics.median(late_all), 1) if late_all else None,
                    "max": round(max(late_all), 1) if late_all else None},
        "live_stats_held": {"runs": len(live),
                            "ms_mean": round(statistics.fmean(sum(e - s for s, e in h) * 1000 for h in live), 1)
                            if live else None,
                            "stretches_mean": round(statistics.fmean(len(h) for h in live), 1) if live else None},
        "pool": {"samples": samples, "max_active": max_active, "peak_connections": int(peak_conns or 0),
                 "utilization_max": float(util_max) if util_max is not None else None,
                 "utilization_mean": round(float(util_mean), 1) if util_mean is not None else None,
                 "waiting_max": waiting},
        "jobs": per_job,
    }


# --- figures, checks, table ----------------------------------------------------------------------

def figures(kpi: dict) -> dict:
    """The kpi's figures the table shows (keys of `goald kpi --json`)."""
    jobs = {j["job"]: j for j in kpi["jobs"]}
    db = [(jobs[j]["runs"], jobs[j]["duration_ms"]["mean"]) for j in DB_JOBS
          if j in jobs and jobs[j]["runs"] and jobs[j]["duration_ms"]["mean"] is not None]
    n = sum(r for r, _ in db)
    return {
        "runs": kpi["totals"]["runs"],
        "success_rate": kpi["totals"]["success_rate"],
        "peak_concurrent": kpi["concurrency"]["peak_concurrent"],
        "peak_db_concurrent": kpi["concurrency"]["peak_db_concurrent"],
        "pool_utilization_max": kpi["pool"]["utilization_max"],
        "pool_utilization_mean": kpi["pool"]["utilization_mean"],
        "pool_samples": kpi["pool"]["samples"],
        "pool_waiting_max": kpi["pool"]["waiting_max"],
        "distinct_start_seconds": kpi["distinct_start_seconds"],
        "start_seconds": kpi["start_seconds"],
        "db_duration_ms_mean": round(sum(r * m for r, m in db) / n, 1) if n else None,
        "job_duration_ms_mean": {j: jobs[j]["duration_ms"]["mean"] if j in jobs else None for j in ALL_JOBS},
    }


def validity(phase: dict, led: dict) -> list[str]:
    """Why a phase is not a valid measurement (empty: it is)."""
    why = []
    if phase["exit_code"] != 0:
        why.append(f"goald exited with {phase['exit_code']}, not 0")
    for job in led["not_succeeded"]:
        j = led["jobs"][job]
        why.append(f"{job}: {j['succeeded']} of {j['expected']} expected runs succeeded (outcomes {', '.join(j['outcomes']) or '-'})")
    if led["unexpected_jobs"]:
        why.append(f"runs of jobs outside the mix: {', '.join(led['unexpected_jobs'])}")
    want = "enabled" if phase["stagger"] else "disabled"
    if not (phase["stagger_log"] or "").startswith(f"Job stagger {want}"):
        why.append(f"goald did not log 'Job stagger {want}' (it logged {phase['stagger_log']!r})")
    return why


def cross_check(fig: dict, led: dict) -> list[str]:
    """Where `goald kpi` and the ledger read directly disagree."""
    pairs = [("runs", fig["runs"], led["runs"]),
             ("peak concurrent jobs", fig["peak_concurrent"], led["peak_concurrent"]),
             ("peak concurrent DB jobs", fig["peak_db_concurrent"], led["peak_db_concurrent"]),
             ("distinct start seconds", fig["distinct_start_seconds"], led["distinct_start_seconds"]),
             ("pool samples", fig["pool_samples"], led["pool"]["samples"]),
             ("pool utilization max", fig["pool_utilization_max"], led["pool"]["utilization_max"])]
    out = [f"{name}: kpi {a} vs ledger {b}" for name, a, b in pairs if a != b]
    if fig["db_duration_ms_mean"] is not None and led["db_duration_ms_mean"] is not None \
            and abs(fig["db_duration_ms_mean"] - led["db_duration_ms_mean"]) > 0.2:
        out.append(f"DB jobs' mean duration: kpi {fig['db_duration_ms_mean']} vs ledger {led['db_duration_ms_mean']}")
    return out


def pct(v) -> str:
    return "-" if v is None else f"{v:.1f} %"


def ms(v) -> str:
    return "-" if v is None else f"{v:.1f} ms"


def held_line(h: dict) -> str:
    """Live Stats Sync's mean connection-held time per run and its stretches (db_spans pairs)."""
    return "-" if h["ms_mean"] is None else f"{h['ms_mean']:.1f} ms / {h['stretches_mean']:g} str."


def render(res: dict) -> str:
    c, off, on = res["config"], res["phases"]["off"], res["phases"]["on"]
    fo, fn, lo, ln = off["figures"], on["figures"], off["ledger"], on["ledger"]
    cadence = ("COMPRESSED: every job every minute (seeds: 4 every minute, 2 every 5 min, 2 every 10 min)"
               if c["cadence"] == "compressed" else "the seeds' (every minute / */5 / */10)")
    lines = [
        f"stagger effect: the seeds' 8-job mix, stagger off then on, {c['minutes']} min each, server {c['server']}",
        f"  cadence {cadence}; offsets and durations the seeds'",
        (f"  pool_max {c['pool_max']} (pool_min 1), pool sampled every 0.5 s (peak = high-water mark between "
         f"samples); Live Stats Sync {c['live_stats_s']:g} s: {stagger_jobs.LIVE_MATCHES} provider calls "
         f"({c['provider_concurrency']} in flight), an upsert after each"),
        "",
        f"  {'read back with goald kpi':34s} {'stagger off':>18s} {'stagger on':>18s}",
    ]

    def row(label, a, b):
        lines.append(f"  {label:34s} {a:>18s} {b:>18s}")

    row("window (UTC)", f"{hms(off['since'])}-{hms(off['until'])}", f"{hms(on['since'])}-{hms(on['until'])}")
    row("runs (expected)", f"{fo['runs']} ({lo['expected_runs']})", f"{fn['runs']} ({ln['expected_runs']})")
    row("success rate", pct(fo["success_rate"]), pct(fn["success_rate"]))
    row("peak concurrent jobs", str(fo["peak_concurrent"]), str(fn["peak_concurrent"]))
    row("peak concurrent DB jobs", str(fo["peak_db_concurrent"]), str(fn["peak_db_concurrent"]))
    row("pool utilization peak (conns)", f"{pct(fo['pool_utilization_max'])} ({lo['pool']['peak_connections']}/{c['pool_max']})",
        f"{pct(fn['pool_utilization_max'])} ({ln['pool']['peak_connections']}/{c['pool_max']})")
    row("pool utilization mean", pct(fo["pool_utilization_mean"]), pct(fn["pool_utilization_mean"]))
    row("pool waiting (max, at a sample)", str(fo["pool_waiting_max"]), str(fn["pool_waiting_max"]))
    row("distinct start seconds", str(fo["distinct_start_seconds"]), str(fn["distinct_start_seconds"]))
    row("the 7 DB jobs' mean duration", ms(fo["db_duration_ms_mean"]), ms(fn["db_duration_ms_mean"]))
    row("start lateness median / max (ledger)", f"{lo['late_ms']['median']} / {lo['late_ms']['max']} ms",
        f"{ln['late_ms']['median']} / {ln['late_ms']['max']} ms")
    row("Live Stats Sync holding (ledger)", held_line(lo["live_stats_held"]), held_line(ln["live_stats_held"]))
    lines += ["", "  start seconds: off " + "  ".join(f":{int(s):02d}×{n}" for s, n in fo["start_seconds"].items())
              + " | on " + "  ".join(f":{int(s):02d}×{n}" for s, n in fn["start_seconds"].items()), ""]
    lines.append(f"  {'job (mean duration, kpi)':34s} {'off':>18s} {'on':>18s}")
    for job in sorted(ALL_JOBS, key=lambda j: OFFSETS[j]):
        a, b = fo["job_duration_ms_mean"][job], fn["job_duration_ms_mean"][job]
        row(f":{OFFSETS[job]:02d} {job}", ms(a), ms(b))
    lines += ["", "targets (stagger on):"]
    for t in res["targets"]:
        lines.append(f"  {t['name']:34s} {t['shown']:>10s}   {'PASS' if t['pass'] else 'FAIL'}")
    lo_, hi_ = SEEDS_BASELINE["pool_peak"]
    lines += ["", (f"baseline (stagger off) vs the seeds' baseline: peak concurrent jobs {fo['peak_concurrent']} "
                   f"(seeds: {SEEDS_BASELINE['concurrent']}), pool utilization peak {pct(fo['pool_utilization_max'])} "
                   f"(seeds: {lo_:g}-{hi_:g} % peaks)")]
    for key, label in (("off", "stagger off"), ("on", "stagger on")):
        p = res["phases"][key]
        lines.append(f"{label}: " + ("valid (every expected run succeeded, exit 0)" if not p["invalid"]
                                     else "INVALID: " + "; ".join(p["invalid"])))
        lines.append("  kpi vs ledger: " + ("agree" if not p["kpi_vs_ledger"] else "DIFFER: " + "; ".join(p["kpi_vs_ledger"])))
        if p["log_problems"]:
            lines.append(f"  goald warnings/errors ({len(p['log_problems'])}): " + " | ".join(p["log_problems"][:5]))
    lines.append(f"result: {'PASS' if res['pass'] else 'FAIL'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", help="maintenance database URL (default $GOALD_BENCH_DATABASE_URL, else "
                                  f"{DEFAULT_DSN})")
    ap.add_argument("--minutes", type=int, default=3, help="length of each phase in minutes (default 3)")
    ap.add_argument("--pool-max", type=int, default=8, help="database.pool_max in both phases (default 8)")
    ap.add_argument("--settle-s", type=int, default=2, help="seconds after goald.ready before a phase's window")
    ap.add_argument("--cadence", choices=("compressed", "seeds"), default="compressed",
                    help="compressed: every job every minute (default); seeds: */5 and */10 as in the seeds")
    ap.add_argument("--live-stats-s", type=float, default=19.4, help="Live Stats Sync's duration (default 19.4)")
    ap.add_argument("--provider-concurrency", type=int, default=2,
                    help=f"Live Stats Sync's provider calls in flight, 1-{stagger_jobs.LIVE_MATCHES} (default 2)")
    ap.add_argument("--keep", action="store_true", help="keep the bench database and goald's logs")
    ap.add_argument("--json", action="store_true", help="print one JSON object (raw numbers, kpi reports)")
    args = ap.parse_args(argv)
    if args.minutes < 1:
        ap.error("--minutes must be at least 1")
    if not 1 <= args.provider_concurrency <= stagger_jobs.LIVE_MATCHES:
        ap.error(f"--provider-concurrency must be 1-{stagger_jobs.LIVE_MATCHES}")
    if args.cadence == "seeds" and args.minutes < 10:
        log("warning: --cadence seeds with fewer than 10 minutes: some jobs may not fire in a phase")
    maintenance = args.dsn or os.environ.get("GOALD_BENCH_DATABASE_URL") or DEFAULT_DSN
    dbname = f"goald_bench_stagger_{os.getpid()}"
    dsn = db_url(maintenance, dbname)
    workdir = tempfile.mkdtemp(prefix="goald-bench-stagger-")
    open(os.path.join(workdir, "goald.toml"), "w").close()
    created = False
    try:
        create_database(maintenance, dbname)
        created = True
        prepare_schema(dsn)
        log(f"database {dbname} created; logs in {workdir}; about {2 * (args.minutes + 1):.0f} minutes")
        phases = {}
        for key, stagger in (("off", False), ("on", True)):
            phase = run_phase(args, key, stagger, dsn, workdir)
            phase["kpi"] = goald_kpi(dsn, phase["since"], phase["until"], workdir, args)
            phase["figures"] = figures(phase["kpi"])
            phase["ledger"] = ledger_check(dsn, phase, args)
            phase["invalid"] = validity(phase, phase["ledger"])
            phase["kpi_vs_ledger"] = cross_check(phase["figures"], phase["ledger"])
            phases[key] = phase
    except (BenchError, psycopg2.Error, subprocess.TimeoutExpired) as e:
        print(f"stagger_effect: {e}", file=sys.stderr)
        return 2
    finally:
        if created and not args.keep:
            try:
                drop_database(maintenance, dbname)
            except psycopg2.Error as e:
                print(f"stagger_effect: could not drop {dbname}: {e}", file=sys.stderr)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept: database {dbname}, logs in {workdir}")
    on = phases["on"]["figures"]
    targets = [
        {"name": f"peak concurrent DB jobs <= {TARGET_DB_CONCURRENT}", "value": on["peak_db_concurrent"],
         "shown": str(on["peak_db_concurrent"]), "pass": on["peak_db_concurrent"] <= TARGET_DB_CONCURRENT},
        {"name": f"peak pool utilization < {TARGET_POOL_MAX_PCT:g} %", "value": on["pool_utilization_max"],
         "shown": pct(on["pool_utilization_max"]),
         "pass": on["pool_utilization_max"] is not None and on["pool_utilization_max"] < TARGET_POOL_MAX_PCT},
    ]
    valid = not phases["off"]["invalid"] and not phases["on"]["invalid"]
    res = {
        "config": {"minutes": args.minutes, "pool_max": args.pool_max, "cadence": args.cadence,
                   "live_stats_s": args.live_stats_s, "provider_concurrency": args.provider_concurrency,
                   "pool_monitor_interval_s": 0.5, "server": mask_dsn(maintenance), "database": dbname,
                   "kept": args.keep},
        "phases": {k: {kk: vv for kk, vv in p.items() if kk != "log" or args.keep} for k, p in phases.items()},
        "targets": targets, "valid": valid,
        "pass": valid and all(t["pass"] for t in targets),
    }
    print(json.dumps(res, indent=2) if args.json else render(res))
    return 0 if res["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
