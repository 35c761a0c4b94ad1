"""How precisely goald's clock starts jobs on time, idle and under load, next to APScheduler 3.x.

Lateness = actual start − scheduled start, per run, in milliseconds (negative: started early).

Schedule (the same for both schedulers, firing at the same instants on the epoch grid): 20 jobs:
8 every second (+0 s), 4 every 2 s (+0/+1 s), 3 every 5 s (+0/+2/+4 s), 2 every 10 s (+3/+7 s)
and 3 five-field cron jobs "* * * * *" (+15/+30/+45 s): about 10.9 runs/s, up to 12 at the same
instant. Job body (both): `t = time.time()` as the first statement, a few µs of arithmetic, then one
`SELECT 1` (goald: through `ctx.connection()`, i.e. goald's pool; APScheduler: a psycopg2
connection per worker thread).

goald: this process, set up as `goald run` does it (gevent monkey-patching, psycogreen, loguru JSON
at INFO into a log file, the pool from Database.open with the default settings) running goald's own
actor tree (goald/tree.py `Tree`: root → pool_monitor, jobs supervisor with one JobActor per job,
clock, console on a free port). Lateness is `time.time()` at the top of the job function minus
`ctx.occurrence.scheduled_at`: it includes everything the runtime does (clock wake-up, the `Due`
tell, the ledger claim, the sleep to the exact instant, the `job.started` log line, and the runs
due at the same instant that went first). Cross-checked against the ledger (`job_runs.started_at −
scheduled_at`, stamped by the runtime just before that log line): the "goald (ledger)" row.

APScheduler: a separate process without gevent (bench/_tick_apscheduler.py): BackgroundScheduler
with its default ThreadPoolExecutor and job defaults, IntervalTrigger(start_date=epoch+offset) and
CronTrigger(second=offset), running during the same window; its job returns its start time and the
EVENT_JOB_EXECUTED listener pairs it with the event's exact `scheduled_run_time`. Both run on the
same machine at the same instants, so each one's burst competes with the other's for the CPUs (and
PostgreSQL): the comparison is fair, not isolated.

Phases (each `--phase-s`, default 75 s, measured after `--settle-s` of warm-up; runs count in the
phase their *scheduled* time falls in):
1. idle: goald's runtime alone in its process (console up, not used); APScheduler concurrently;
2. load: the same plus, in goald's process, 2,000 match-like actors (bench/_tick_load.py: one
   pykka actor per match under a `matches` supervisor, each told a ~2.5 KB provider snapshot once
   a second at its own random phase by a feeder greenlet, parsing and diffing it at ~30-55 µs of
   CPU per message (measured and printed; pykka's own cost comes on top), one UPDATE through goald's pool every 50th message) and
   a loaded console: bench/_tick_http_load.py, a separate process with `--console-clients` (32)
   keep-alive clients sending GET /health/pool and /api/health (one SELECT 1) at `--console-rps`
   (500 req/s in total; 0 = closed loop, as fast as goald answers). Why paced and 32 clients: as
   shipped, gevent.pywsgi writes a response's headers and body in two send()s and the console does
   not set TCP_NODELAY, so every keep-alive request after the first waits ~40 ms for the client's
   delayed ACK (Nagle); a closed loop would then measure that stall, not load (8 clients: ~175
   req/s, 40 % of a core). `--console-nodelay` sets TCP_NODELAY on the listener (the proposed fix)
   and, with `--console-rps 0`, saturates goald's core (~3,000 req/s).
`--repeat N` runs the idle/load pair N times; the table then shows the median over repeats of each
figure (and each repeat's own figures).

Targets (from the issue): idle, goald no worse than APScheduler: goald's p50 and p99 each at most
APScheduler's + 0.5 ms (measurement tolerance; the max, a single sample on a shared machine, is
shown but not judged); under load, goald's p99 < 10 ms and max < 50 ms. In every phase goald must
also have started every expected occurrence (a dropped run would flatter the percentiles).

Diagnostics (goald, per phase; p50 / p99 / max): the clock's dispatch lead (scheduled − when it
told `Due`: CLAIM_LEAD_S), the ledger claim's duration and the slack it leaves (negative: the claim
itself made the run late), when each run greenlet's sleep returned (`woke_late`) and the time from
there to the job function (`prologue`), the first start of each instant (the wake-up alone) and the
gaps between starts of runs due at the same instant (the serial cost per run), the event loop's lag
(a 10 ms sleeper's overshoot) with and without the time goald's thread waited for a CPU
(/proc/thread-self/schedstat: the machine's share), Python GC pauses per generation, pool
connections opened/discarded, CPU (goald's process in % of one core, the load generator's,
APScheduler's, the machine's in % of all cores), the console rate achieved and the actors' message
rate. APScheduler's first-of-instant and burst gaps are shown for comparison. The instrumentation
wraps Clock._dispatch, JobActor._on_due, JobActor._execute and ledger.claim in this process to
note a timestamp; behaviour is unchanged.

Run:  python bench/tick_precision.py [--dsn URL] [--phase-s 75] [--settle-s 5] [--repeat 1]
          [--matches 2000] [--console-clients 32] [--console-rps 500] [--console-nodelay] [--json]
(default: about 3 minutes: 2 × (5 s settle + 75 s) plus set-up and tear-down.)
--dsn is a maintenance database URL (default $GOALD_BENCH_DATABASE_URL, else
postgresql://postgres@127.0.0.1:5432/postgres); the bench creates goald_bench_tick_<pid>, migrates
it and drops it at the end. Exit status 1 when a target fails.
"""
from gevent import monkey

monkey.patch_all()

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

import gevent  # noqa: E402
import psutil  # noqa: E402

from _db import admin  # noqa: E402
from _stats import percentile as pct  # noqa: E402

from goald import config as config_mod, logs  # noqa: E402
from goald.actors import ledger  # noqa: E402
from goald.actors.base import Start  # noqa: E402
from goald.actors.catalog import JobSpec  # noqa: E402
from goald.actors.clock import Clock  # noqa: E402
from goald.actors.job_actor import JobActor  # noqa: E402
from goald.actors.runtime import Runtime  # noqa: E402
from goald.actors.schedule import Schedule  # noqa: E402
from goald.actors.supervisor import ChildSpec, Supervisor  # noqa: E402
from goald.tree import Tree  # noqa: E402
from goald.console.app import AppContext, make_app  # noqa: E402
from goald.db.database import Database  # noqa: E402
from goald.migrations.runner import migrate  # noqa: E402
from goald.redact import mask_dsn  # noqa: E402

import _tick_load  # noqa: E402  (bench/ is sys.path[0] when run as a script)

HERE = os.path.dirname(os.path.abspath(__file__))
IDLE_TOLERANCE_MS = 0.5
LOAD_P99_MS = 10.0
LOAD_MAX_MS = 50.0

# (name, every_s, offset_s) or (name, "cron", offset_s): 20 jobs, see the module docstring.
JOBS = ([(f"every1s_{c}", 1, 0) for c in "abcdefgh"]
        + [("every2s_a", 2, 0), ("every2s_b", 2, 1), ("every2s_c", 2, 0), ("every2s_d", 2, 1)]
        + [("every5s_a", 5, 0), ("every5s_b", 5, 2), ("every5s_c", 5, 4)]
        + [("every10s_a", 10, 3), ("every10s_b", 10, 7)]
        + [("cron_a", "cron", 15), ("cron_b", "cron", 30), ("cron_c", "cron", 45)])

SAMPLES: list = []                 # (job, scheduled_at, started) from the job function
DIAG: dict = defaultdict(dict)     # (job, scheduled_at) -> dispatch / due_rx / claim0 / claim1


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- goald side ------------------------------------------------------------------------------

def tiny_work() -> int:
    return sum(i * i for i in range(50))


def _job_body(ctx):
    started = time.time()
    SAMPLES.append((ctx.job, ctx.occurrence.scheduled_at, started))
    tiny_work()
    with ctx.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
    return 1


def schedule_of(every, offset) -> Schedule:
    return Schedule(cron="* * * * *", offset_s=offset) if every == "cron" else Schedule(every_s=every, offset_s=offset)


# Diagnostics: the clock's dispatch and the job actor's receipt of `Due`, timed by wrapping the
# methods in this process only (behaviour unchanged; the tree is goald's own, goald/tree.py).
_dispatch, _on_due, _execute = Clock._dispatch, JobActor._on_due, JobActor._execute


def _timed_dispatch(self, e, t):
    DIAG[(e.job, t)]["dispatch"] = time.time()
    return _dispatch(self, e, t)


def _timed_on_due(self, due):
    DIAG[(self.job, due.occurrence.scheduled_at)]["due_rx"] = time.time()
    return _on_due(self, due)


def _timed_execute(self, spec, occ, run_id):
    DIAG[(occ.job, occ.scheduled_at)]["woke"] = time.time()  # the run greenlet's sleep has returned
    return _execute(self, spec, occ, run_id)


Clock._dispatch, JobActor._on_due, JobActor._execute = _timed_dispatch, _timed_on_due, _timed_execute

_claim = ledger.claim


def _timed_claim(pool, occ, **kw):
    t0 = time.time()
    try:
        return _claim(pool, occ, **kw)
    finally:
        d = DIAG[(occ.job, occ.scheduled_at)]
        d["claim0"], d["claim1"] = t0, time.time()


ledger.claim = _timed_claim  # job_actor calls ledger.claim through the module: timed, unchanged


GC_PAUSES: list = []   # (time, generation, wall ms, CPU ms): Python's cyclic GC stops every greenlet
_gc_t0 = [0.0, 0.0]


def _gc_callback(phase, info):
    # Wall and thread CPU time: a collection whose wall time far exceeds its CPU time was
    # preempted by the OS, not slow.
    if phase == "start":
        _gc_t0[0], _gc_t0[1] = time.perf_counter(), time.thread_time()
    else:
        GC_PAUSES.append((time.time(), info["generation"], (time.perf_counter() - _gc_t0[0]) * 1000,
                          (time.thread_time() - _gc_t0[1]) * 1000))


gc.callbacks.append(_gc_callback)


def runq_wait_ms() -> float:
    """Time this thread (the hub's: every greenlet runs on it) has spent runnable but not running,
    waiting for a CPU (/proc/thread-self/schedstat, field 2): the OS's share of any lateness."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e6
    except (OSError, ValueError, IndexError):
        return 0.0


def loop_lag_probe(out: list, period_s: float = 0.01) -> None:
    """How late a 10 ms sleeper wakes (the event loop's responsiveness), and how much of that
    the thread spent waiting for a CPU."""
    while True:
        t0, q0 = time.perf_counter(), runq_wait_ms()
        gevent.sleep(period_s)
        out.append((time.time(), (time.perf_counter() - t0 - period_s) * 1000, runq_wait_ms() - q0))


class CpuSampler:
    """Once a second: this process's CPU (% of one core) and the machine's (% of all cores)."""

    def __init__(self):
        self.proc = psutil.Process()
        self.samples: list = []
        psutil.cpu_percent(None)

    def run(self) -> None:
        last_t, last_c = time.time(), sum(self.proc.cpu_times()[:2])
        while True:
            gevent.sleep(1.0)
            t, c = time.time(), sum(self.proc.cpu_times()[:2])
            self.samples.append((t, 100.0 * (c - last_c) / (t - last_t), psutil.cpu_percent(None)))
            last_t, last_c = t, c


def proc_cpu_s(pid: int) -> float | None:
    try:
        return sum(psutil.Process(pid).cpu_times()[:2])
    except psutil.Error:
        return None


# --- helpers ---------------------------------------------------------------------------------

def summary(ms: list) -> dict:
    return {"n": len(ms), "p50": _r(pct(ms, 0.5)), "p99": _r(pct(ms, 0.99)), "max": _r(max(ms) if ms else None),
            "min": _r(min(ms) if ms else None), "early": sum(1 for x in ms if x < 0)}


def _r(x, nd=3):
    return None if x is None else round(x, nd)


def first_of_instant(rows) -> list:
    """Per scheduled instant, the lateness of the run that started first: the wake-up alone."""
    first = {}
    for _, s, t in rows:
        first[s] = min(first.get(s, t), t)
    return [(t - s) * 1000 for s, t in first.items()]


def burst_gaps(rows) -> list:
    """Gaps between consecutive starts of runs due at the same instant: the per-run cost in a burst."""
    by = defaultdict(list)
    for _, s, t in rows:
        by[s].append(t)
    return [(b - a) * 1000 for ts in by.values() for a, b in zip(sorted(ts), sorted(ts)[1:])]


def expected_runs(start: float, end: float) -> int:
    return sum(len(schedule_of(ev, off).occurrences(start - 1e-6, end - 1e-6)) for _, ev, off in JOBS)


def with_db(dsn: str, db: str) -> str:
    p = urlsplit(dsn)
    return urlunsplit((p.scheme, p.netloc, "/" + db, p.query, p.fragment))


def start_child(args: list) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("ready"):
        p.kill()
        raise RuntimeError(f"{args[0]} did not start: {line!r}")
    return p


def finish_child(p: subprocess.Popen, timeout: float = 60) -> dict:
    out, _ = p.communicate(input="", timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])


# --- the run ---------------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.windows: list = []      # (repeat, phase, start, end, info)
        self.lag: list = []
        self.cpu = CpuSampler()

    def run(self) -> dict:
        a = self.args
        self.dbname = f"goald_bench_tick_{os.getpid()}"
        self.dsn = with_db(a.dsn, self.dbname)
        admin(a.dsn, f"CREATE DATABASE {self.dbname}")
        tmp = tempfile.TemporaryDirectory(prefix="goald-bench-tick-")
        self.log_path = a.log_file or os.path.join(tmp.name, "goald.log")
        db = root = aps = None
        try:
            cfg = config_mod.load(None, environ={"GOALD_DATABASE_URL": self.dsn, "GOALD_NODE_NAME": "bench",
                                                 "GOALD_CONSOLE_HOST": "127.0.0.1",
                                                 "GOALD_CONSOLE_PORT": "0"}, search=False)
            self.log_stream = open(self.log_path, "a", buffering=1)
            logs.setup(cfg["log.level"], "json", stream=self.log_stream)
            migrate(self.dsn, node="bench")
            db = Database.open(cfg)
            self.pool = db.pool
            with self.pool.connection() as conn, conn.cursor() as cur:
                cur.execute("CREATE TABLE bench_matches (id int PRIMARY KEY, status text, minute int, home int, "
                            "away int, updated_at timestamptz)")
                cur.execute("INSERT INTO bench_matches (id) SELECT 100000 + g FROM generate_series(0, %s) g",
                            (a.matches,))
                conn.commit()
            specs = {name: JobSpec(name=name, run=_job_body, schedule=schedule_of(ev, off), timeout_s=10.0,
                                   description="tick precision bench job") for name, ev, off in JOBS}
            self.rt = Runtime(pool=self.pool, node="bench", cfg=cfg, specs=specs)
            app = make_app(AppContext(pool=self.pool, node="bench", database=mask_dsn(self.dsn), embedded=False,
                                      actors=lambda: tree.describe()))
            tree = Tree(self.rt, app=app)
            tree.start()
            root = tree
            self.console_port = tree.console_address()[1]
            if a.console_nodelay:  # the proposed console fix (see --help); accepted sockets inherit it
                tree.services["console"]._server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            log(f"goald runtime up: {len(specs)} jobs, console on 127.0.0.1:{self.console_port}, "
                f"pool max {self.pool.maxconn}, log {self.log_path}")
            aps = start_child([os.path.join(HERE, "_tick_apscheduler.py"), json.dumps({
                "dsn": self.dsn,
                "jobs": [{"name": n, "every_s": None if ev == "cron" else ev, "offset_s": off}
                         for n, ev, off in JOBS]})])
            log(f"APScheduler subprocess up (pid {aps.pid})")
            gevent.spawn(loop_lag_probe, self.lag)
            gevent.spawn(self.cpu.run)
            for rep in range(a.repeat):
                for name in a.phases.split(","):
                    self.phase(rep, name, aps)
            gevent.sleep(2.0)  # the last window's runs finish
            self.aps = finish_child(aps)
            aps = None
            self.ledger_rows = self.read_ledger()
        finally:
            if aps is not None:
                aps.kill()
            if root is not None:
                try:
                    root.stop()  # goald's warm shutdown (jobs.shutdown_timeout_s)
                except Exception as e:
                    log(f"stopping the tree: {e!r}")
            if db is not None:
                db.close()
            if getattr(self, "log_stream", None) is not None:
                logs.setup("INFO", "json")  # back to stderr before the file goes
                self.log_stream.close()
            try:
                admin(a.dsn, f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
            except Exception as e:
                log(f"could not drop {self.dbname}: {e}")
            tmp.cleanup()
        return self.report()

    def phase(self, rep: int, name: str, aps) -> None:
        a = self.args
        info: dict = {}
        load = None
        if name == "load":
            load = self.start_load(info)
        gevent.sleep(a.settle_s)
        start = float(int(time.time()) + 1)
        end = start + a.phase_s
        gevent.sleep(start - time.time())
        cpu0 = {"self": proc_cpu_s(os.getpid()), "aps": proc_cpu_s(aps.pid)}
        q0 = runq_wait_ms()
        pool0 = self.pool.stats()
        if load is not None:
            cpu0["http"] = proc_cpu_s(load["http"].pid)
            msgs0 = load["counters"]["messages"]
        log(f"repeat {rep + 1}/{a.repeat}: {name} phase, {a.phase_s:g} s")
        gevent.sleep(end - time.time())
        wall = time.time() - start
        info["cpu_wait_ms_per_s"] = round((runq_wait_ms() - q0) / wall, 1)
        pool1 = self.pool.stats()
        info["pool"] = {k: getattr(pool1, k) - getattr(pool0, k)
                        for k in ("checkouts", "opened", "discarded", "timeouts")}
        for key, pid in (("self", os.getpid()), ("aps", aps.pid), ("http", load and load["http"].pid)):
            if key in cpu0 and cpu0[key] is not None:
                c1 = proc_cpu_s(pid)
                info[f"cpu_{key}_pct"] = None if c1 is None else round(100.0 * (c1 - cpu0[key]) / wall, 1)
        if load is not None:
            info["match_msgs_per_s"] = round((load["counters"]["messages"] - msgs0) / wall, 1)
            self.stop_load(load, info)
        self.windows.append((rep, name, start, end, info))

    def start_load(self, info: dict) -> dict:
        a = self.args
        counters = defaultdict(int)
        cache: dict = {}
        provider = _tick_load.Provider(a.matches)
        mdir: dict = {}
        t0 = time.time()
        children = [ChildSpec(f"match_{i}", lambda parent, n, i=i: _tick_load.MatchActor.start(
            name=n, parent=parent, match_id=100000 + i, pool=self.pool, db_every=a.match_db_every,
            counters=counters, cache=cache)) for i in range(a.matches)]
        sup = Supervisor.start(name="matches", children=children, directory=mdir)
        sup.ask(Start(), timeout=120)
        refs = [mdir[f"match_{i}"] for i in range(a.matches)]
        log(f"{a.matches} match actors started in {time.time() - t0:.1f} s")
        feeder = gevent.spawn(_tick_load.feeder, refs, provider, counters)
        http_args = [os.path.join(HERE, "_tick_http_load.py"), "--port", str(self.console_port),
                     "--clients", str(a.console_clients), "--rps", str(a.console_rps)]
        http = start_child(http_args) if a.console_clients > 0 else None
        log(f"load on: feeder 2,000 tells/s, console load {a.console_clients} clients"
            f"{f' paced at {a.console_rps:g} req/s' if a.console_rps else ' (closed loop)'}")
        return {"sup": sup, "feeder": feeder, "http": http, "counters": counters}

    def stop_load(self, load: dict, info: dict) -> None:
        if load["http"] is not None:
            info["http"] = finish_child(load["http"])
        load["feeder"].kill()
        c = load["counters"]
        info.update(match_db_writes=c["db_writes"], match_db_errors=c["db_errors"], feeder_behind=c["feeder_behind"])
        t0 = time.time()
        load["sup"].stop(block=True, timeout=120)
        log(f"load off ({time.time() - t0:.1f} s to stop the match actors)")

    def read_ledger(self) -> list:
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT job, extract(epoch FROM scheduled_at)::float8, "
                        "extract(epoch FROM started_at)::float8, outcome FROM job_runs")
            rows = cur.fetchall()
            conn.commit()
        return rows

    # --- figures ---------------------------------------------------------------------------

    def report(self) -> dict:
        a = self.args
        aps_samples = [(j, s, t) for j, s, t in self.aps["samples"]]
        phases = []
        for rep, name, start, end, info in self.windows:
            def inwin(rows, start=start, end=end):
                return [r for r in rows if start <= r[1] < end]
            g = inwin(SAMPLES)
            ap = inwin(aps_samples)
            led = [r for r in inwin(self.ledger_rows) if r[2] is not None]
            outcomes = defaultdict(int)
            for r in inwin(self.ledger_rows):
                outcomes[r[3]] += 1
            diag = [DIAG.get((j, s), {}) for j, s, _ in g]
            d = {
                "dispatch_lead_ms": summary([(s - x["dispatch"]) * 1000 for (j, s, _), x in zip(g, diag)
                                             if "dispatch" in x]),
                "claim_ms": summary([(x["claim1"] - x["claim0"]) * 1000 for x in diag if "claim1" in x]),
                "slack_after_claim_ms": summary([(s - x["claim1"]) * 1000 for (j, s, _), x in zip(g, diag)
                                                 if "claim1" in x]),
                "woke_late_ms": summary([(x["woke"] - s) * 1000 for (j, s, _), x in zip(g, diag) if "woke" in x]),
                "prologue_ms": summary([(t - x["woke"]) * 1000 for (j, s, t), x in zip(g, diag) if "woke" in x]),
                "first_of_instant_ms": summary(first_of_instant(g)),
                "burst_gap_ms": summary(burst_gaps(g)),
                "aps_first_of_instant_ms": summary(first_of_instant(ap)),
                "aps_burst_gap_ms": summary(burst_gaps(ap)),
                "loop_lag_ms": summary([ms for t, ms, _q in self.lag if start <= t < end]),
                "loop_lag_minus_cpu_wait_ms": summary([ms - q for t, ms, q in self.lag if start <= t < end]),
            }
            gcs = [(gen, ms, cpu) for t, gen, ms, cpu in GC_PAUSES if start <= t < end]
            d["gc"] = {f"gen{n}": {"count": sum(1 for x in gcs if x[0] == n),
                                   "max_ms": _r(max((x[1] for x in gcs if x[0] == n), default=0.0)),
                                   "max_cpu_ms": _r(max((x[2] for x in gcs if x[0] == n), default=0.0))}
                       for n in (0, 1, 2)}
            cpu = [(c, m) for t, c, m in self.cpu.samples if start < t <= end]
            info["cpu_self_max_1s_pct"] = round(max(c for c, _ in cpu), 1) if cpu else None
            info["cpu_machine_pct"] = round(statistics.mean(m for _, m in cpu), 1) if cpu else None
            phases.append({
                "repeat": rep + 1, "phase": name, "start": start, "end": end, "expected": expected_runs(start, end),
                "goald": summary([(t - s) * 1000 for _, s, t in g]),
                "goald_ledger": summary([(t - s) * 1000 for _, s, t, _o in led]),
                "apscheduler": summary([(t - s) * 1000 for _, s, t in ap]),
                "apscheduler_missed": sum(1 for _, s in self.aps["missed"] if start <= s < end),
                "ledger_outcomes": dict(outcomes), "diagnostics": d, "info": info,
            })
        res = {"jobs": len(JOBS), "phase_s": a.phase_s, "repeat": a.repeat, "matches": a.matches,
               "console_clients": a.console_clients, "console_rps": a.console_rps,
               "match_work": _tick_load.calibrate(), "phases": phases}
        res["summary"], res["targets"] = self.judge(phases)
        res["pass"] = all(t["pass"] for t in res["targets"])
        return res

    def judge(self, phases: list):
        def med(name, who, key):
            vals = [p[who][key] for p in phases if p["phase"] == name and p[who][key] is not None]
            return statistics.median(vals) if vals else None

        summ = {name: {who: {k: _r(med(name, who, k)) for k in ("p50", "p99", "max", "min")}
                       | {"n": sum(p[who]["n"] for p in phases if p["phase"] == name)}
                       for who in ("goald", "goald_ledger", "apscheduler")}
                for name in ("idle", "load")}
        for name in ("idle", "load"):
            summ[name]["expected"] = sum(p["expected"] for p in phases if p["phase"] == name)
        t = []
        gi, ai = summ["idle"]["goald"], summ["idle"]["apscheduler"]
        for k in ("p50", "p99"):
            limit = None if ai[k] is None else _r(ai[k] + IDLE_TOLERANCE_MS)
            t.append({"phase": "idle", "what": f"goald {k} <= APScheduler {k} + {IDLE_TOLERANCE_MS:g} ms",
                      "value": gi[k], "target": limit, "pass": None not in (gi[k], limit) and gi[k] <= limit})
        gl = summ["load"]["goald"]
        t.append({"phase": "load", "what": f"goald p99 < {LOAD_P99_MS:g} ms", "value": gl["p99"],
                  "target": LOAD_P99_MS, "pass": gl["p99"] is not None and gl["p99"] < LOAD_P99_MS})
        t.append({"phase": "load", "what": f"goald max < {LOAD_MAX_MS:g} ms", "value": gl["max"],
                  "target": LOAD_MAX_MS, "pass": gl["max"] is not None and gl["max"] < LOAD_MAX_MS})
        for name in ("idle", "load"):
            n, exp = summ[name]["goald"]["n"], summ[name]["expected"]
            t.append({"phase": name, "what": "goald started every expected run", "value": n, "target": exp,
                      "pass": n == exp})
        return summ, t


def print_table(res: dict) -> None:
    w = res["match_work"]
    print(f"tick precision: {res['jobs']} jobs (8×1s, 4×2s, 3×5s, 2×10s, 3×cron), {res['phase_s']:g} s per phase, "
          f"{res['repeat']} repeat(s); lateness = actual start − scheduled start")
    print(f"load phase: {res['matches']} match actors × 1 update/s (payload {w['payload_bytes']} B, "
          f"{w['apply_us']:g} µs/msg to apply, {w['snapshot_us']:g} µs/msg to render by the feeder), "
          f"console {res['console_clients']} clients " + (f"paced {res['console_rps']:g} req/s" if res['console_rps']
                                                         else "closed loop"))
    print()
    hdr = (f"{'phase':5s}  {'scheduler':16s} {'runs/expected':>13s} "
           f"{'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'min ms':>8s}")
    label = {"goald": "goald", "goald_ledger": "goald (ledger)", "apscheduler": "APScheduler 3.x"}
    multi = res["repeat"] > 1
    print(hdr + ("   (median of repeats)" if multi else ""))
    for name in ("idle", "load"):
        s = res["summary"][name]
        for who in ("goald", "goald_ledger", "apscheduler"):
            x = s[who]
            print(f"{name:5s}  {label[who]:16s} {x['n']:>6d}/{s['expected']:<6d} "
                  + " ".join(f"{x[k]:8.2f}" if x[k] is not None else f"{'-':>8s}"
                             for k in ("p50", "p99", "max", "min")))
    if multi:
        print("\nper repeat (goald | APScheduler: p50 / p99 / max ms)")
        for p in res["phases"]:
            g, ap = p["goald"], p["apscheduler"]
            print(f"  #{p['repeat']} {p['phase']:5s} goald {g['p50']:.2f} / {g['p99']:.2f} / {g['max']:.2f}   "
                  f"APScheduler {ap['p50']:.2f} / {ap['p99']:.2f} / {ap['max']:.2f}")
    print("\ntargets")
    for t in res["targets"]:
        v, tg = t["value"], t["target"]
        print(f"  {t['phase']:5s} {t['what']:42s} {v!s:>9} vs {tg!s:<9} {'PASS' if t['pass'] else 'FAIL'}")
    print("\nper phase (goald diagnostics: p50 / p99 / max ms; min for the slack)")
    for p in res["phases"]:
        d, i = p["diagnostics"], p["info"]
        print(f"  #{p['repeat']} {p['phase']}: ledger outcomes {dict(sorted(p['ledger_outcomes'].items()))}; "
              f"APScheduler missed {p['apscheduler_missed']}")
        for k in ("dispatch_lead_ms", "claim_ms", "slack_after_claim_ms", "woke_late_ms", "prologue_ms",
                  "first_of_instant_ms", "burst_gap_ms", "loop_lag_ms", "loop_lag_minus_cpu_wait_ms",
                  "aps_first_of_instant_ms", "aps_burst_gap_ms"):
            x = d[k]
            if x["n"]:
                print(f"      {k:27s} {x['p50']:8.2f} {x['p99']:8.2f} {x['max']:8.2f}   "
                      f"min {x['min']:.2f}  (n={x['n']})")
        print("      Python GC pauses: " + ", ".join(
            f"{k} {v['count']}× (max {v['max_ms']:.1f} ms wall, {v['max_cpu_ms']:.1f} ms CPU)"
            for k, v in d["gc"].items()))
        cpu = (f"      CPU: goald process {i.get('cpu_self_pct')} % of a core "
               f"(max 1-s {i.get('cpu_self_max_1s_pct')} %), APScheduler {i.get('cpu_aps_pct')} %, "
               f"machine {i.get('cpu_machine_pct')} % of {psutil.cpu_count()} cores")
        if "cpu_http_pct" in i:
            cpu += f", load generator {i['cpu_http_pct']} %"
        print(cpu + f"; goald's thread waited for a CPU {i.get('cpu_wait_ms_per_s')} ms/s")
        print(f"      goald's pool during the phase: {i['pool']}")
        if "http" in i:
            h = i["http"]
            lat = ", ".join(f"{k} p50 {v['p50']} / p99 {v['p99']} ms" for k, v in h["latency_ms"].items())
            print(f"      console: {h['rps']} req/s over {h['elapsed_s']} s ({h['clients']} clients, "
                  f"{h['errors']} errors; {lat})")
            print(f"      match actors: {i['match_msgs_per_s']} msgs/s handled, {i['match_db_writes']} DB writes "
                  f"({i['match_db_errors']} errors), feeder behind {i['feeder_behind']}×")
    print(f"\n{'PASS' if res['pass'] else 'FAIL'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default=os.environ.get("GOALD_BENCH_DATABASE_URL",
                                                    "postgresql://postgres@127.0.0.1:5432/postgres"),
                    help="maintenance database URL; the bench creates and drops its own database")
    ap.add_argument("--phase-s", type=float, default=75.0, help="measured seconds per phase (default 75)")
    ap.add_argument("--settle-s", type=float, default=5.0, help="warm-up before each measured window")
    ap.add_argument("--repeat", type=int, default=1, help="idle/load pairs (medians are reported)")
    ap.add_argument("--matches", type=int, default=2000)
    ap.add_argument("--match-db-every", type=int, default=50, help="one UPDATE per N messages per match (0: none)")
    ap.add_argument("--console-clients", type=int, default=32, help="keep-alive console clients (default 32)")
    ap.add_argument("--console-rps", type=float, default=500.0,
                    help="total console requests/s (default 500; 0: closed loop, as fast as goald answers)")
    ap.add_argument("--console-nodelay", action="store_true",
                    help="set TCP_NODELAY on the console's listener first (not what goald ships: gevent.pywsgi "
                         "sends headers and body in two writes, so keep-alive clients wait ~40 ms per request "
                         "for a delayed ACK without it)")
    ap.add_argument("--phases", default="idle,load", help=argparse.SUPPRESS)
    ap.add_argument("--log-file", help="keep goald's JSON log here (default: a temporary file)")
    ap.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = ap.parse_args(argv)
    res = Bench(args).run()
    print_table(res)
    if args.json:
        print(json.dumps(res))
    return 0 if res["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
