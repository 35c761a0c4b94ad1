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
with its default ThreadPoolExecutor and job defaults except misfire_grace_time, which is set to
goald's `jobs.grace_s` (5 s by default; APScheduler's own default is 1 s), so both drop a late run
at the same lateness; IntervalTrigger(start_date=epoch+offset) and CronTrigger(second=offset),
running during the same window; its job returns its start time and the EVENT_JOB_EXECUTED
listener pairs it with the event's exact `scheduled_run_time`. Both run on the same machine at the
same instants, so each one's burst competes with the other's for the CPUs (and PostgreSQL): the
comparison is fair, not isolated.

Runs: "done/expected" counts the runs whose job function started, against the occurrences the
schedule has in the window; "missed" counts the runs each scheduler dropped as too late (goald: a
`missed` ledger row, written once jobs.grace_s has passed unclaimed, or for the older occurrences
when several fell due at once after a stall; APScheduler: an EVENT_JOB_MISSED event, a run later
than misfire_grace_time, plus the runs its default coalescing dropped when several fell due at once
after a stall, which have no event: due, but neither run nor reported). A dropped run counts
against its scheduler in the runs column (expected − done); the lateness percentiles are over the
runs done.

Phases (each `--phase-s`, default 75 s, measured after `--settle-s` of warm-up; runs count in the
phase their *scheduled* time falls in):
1. idle: each scheduler alone in its process (goald's console up, not used; APScheduler's HTTP
   endpoint up, not used);
2. load: both processes carry the same synthetic load at the same rate, started before the settle
   time and stopped after the window:
   - match updates: `--matches` (2,000) matches, each sent a ~2.5 KB provider snapshot (JSON) once a
     second at its own random phase (1 % of the matches per 10-ms slot: 2,000 updates/s, no
     synchronised burst), rendered by the process's feeder, then parsed and diffed against the
     match's state and a JSON delta rendered (bench/_tick_work.py `apply_update`, ~30-55 µs of CPU,
     measured and printed), and every `--match-db-every` (50th) update of a match one UPDATE of
     `bench_matches` (40 UPDATEs/s) through the process's pool. goald (bench/_tick_load.py): a
     feeder greenlet and one pykka actor per match under a `matches` supervisor, UPDATEs through
     goald's pool. APScheduler: a feeder thread and `--aps-load-threads` (4) worker threads, each
     owning a fixed share of the matches (a match's updates applied in order, as by its actor),
     UPDATEs through a blocking psycopg2 pool of goald's `database.pool_max` connections;
   - HTTP: one bench/_tick_http_load.py process per scheduler (separate processes, plain threads)
     with `--console-clients` (32) keep-alive clients sending GET /health/pool (no database) and
     /api/health (one SELECT 1 through the pool) alternately at `--console-rps` in total (500
     req/s each; 0 = closed loop, as fast as the server answers): against goald's console, and
     against an http.server ThreadingHTTPServer in APScheduler's process answering the same two
     paths with the same kind of JSON (one send() per response, TCP_NODELAY).
   The figures printed per phase say what each process carried (updates/s handled, UPDATEs,
   requests/s served) and its CPU (% of one core). Why paced and 32 clients: as first written,
   gevent.pywsgi wrote a response's headers and body in two send()s without TCP_NODELAY, so every
   keep-alive request after the first waited ~40 ms for the client's delayed ACK (Nagle); a closed
   loop would then measure that stall, not load. `--console-nodelay` sets TCP_NODELAY on the
   listener too (goald now sets it on accepted sockets) and, with `--console-rps 0`, saturates
   goald's core (~3,000 req/s).
`--repeat N` runs the idle/load pair N times; the table then shows the median over repeats of each
figure (and each repeat's own figures).

Targets (from the issue): idle, goald no worse than APScheduler: goald's p50 and p99 each at most
APScheduler's + 0.5 ms (measurement tolerance; the max, a single sample on a shared machine, is
shown but not judged); under load, goald's p99 < 10 ms and max < 50 ms. In every phase goald must
also have started every expected occurrence (a dropped run would flatter the percentiles);
APScheduler's count is shown beside it for reference, not judged.

Diagnostics (goald, per phase; p50 / p99 / max): the clock's dispatch lead (scheduled − when it
told `Due`: CLAIM_LEAD_S), the ledger claim's duration and the slack it leaves (negative: the claim
itself made the run late), when each run greenlet's sleep returned (`woke_late`) and the time from
there to the job function (`prologue`), the first start of each instant (the wake-up alone) and the
gaps between starts of runs due at the same instant (the serial cost per run), the event loop's lag
(a 10 ms sleeper's overshoot) with and without the time goald's thread waited for a CPU
(/proc/thread-self/schedstat: the machine's share), the five instants whose first start was
latest with the time goald's thread waited for a CPU and spent in GC from 20 ms before each instant
to that start (when the machine is short of CPU, that is where a load-phase p99 goes), Python GC
pauses per generation, pool
connections opened/discarded, CPU (goald's and APScheduler's processes and their load generators
in % of one core, the machine's in % of all cores), the HTTP rate achieved and the update rate
handled in each process, and APScheduler's runs skipped by max_instances. APScheduler's
first-of-instant and burst gaps are shown for comparison. The instrumentation
wraps Clock._dispatch, JobActor._on_due, JobActor._execute and ledger.claim in this process to
note a timestamp; behaviour is unchanged.

Run:  python bench/tick_precision.py [--dsn URL] [--phase-s 75] [--settle-s 5] [--repeat 1]
          [--matches 2000] [--match-db-every 50] [--aps-load-threads 4] [--console-clients 32]
          [--console-rps 500] [--console-nodelay] [--json]
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


def _timed_dispatch(self, occ):
    DIAG[(occ.job, occ.scheduled_at)]["dispatch"] = time.time()
    return _dispatch(self, occ)


def _timed_on_due(self, ticket):
    DIAG[(self.job, ticket.occurrence.scheduled_at)]["due_rx"] = time.time()
    return _on_due(self, ticket)


def _timed_execute(self, occ, live):
    DIAG[(occ.job, occ.scheduled_at)]["woke"] = time.time()  # the run greenlet's sleep has returned
    return _execute(self, occ, live)


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


def worst_instants(rows, lag: list, gc_pauses: list, k: int = 5) -> list:
    """The `k` instants whose first start was latest, each with the time goald's thread waited for a
    CPU (the lag probe's schedstat deltas) and the GC pauses overlapping [instant − 20 ms, first start]:
    the share of the lateness that was the machine's or the collector's, not the runtime's."""
    first = {}
    for _, s, t in rows:
        first[s] = min(first.get(s, t), t)
    out = []
    for s, t in sorted(first.items(), key=lambda x: x[0] - x[1])[:k]:
        lo, hi = s - 0.02, t
        # a lag sample covers its 10-ms sleep plus its overshoot, ending at `at`
        wait = sum(q for at, ms, q in lag if at >= lo and at - 0.01 - ms / 1000 <= hi)
        gcms = sum(ms for at, _gen, ms, _cpu in gc_pauses if at >= lo and at - ms / 1000 <= hi)
        out.append({"at": s, "first_ms": _r((t - s) * 1000, 2), "cpu_wait_ms": _r(wait, 2), "gc_ms": _r(gcms, 2)})
    return out


def burst_gaps(rows) -> list:
    """Gaps between consecutive starts of runs due at the same instant: the per-run cost in a burst."""
    by = defaultdict(list)
    for _, s, t in rows:
        by[s].append(t)
    return [(b - a) * 1000 for ts in by.values() for a, b in zip(sorted(ts), sorted(ts)[1:])]


def expected_set(start: float, end: float) -> set:
    """(job, scheduled time) of every occurrence in [start, end)."""
    return {(name, t) for name, ev, off in JOBS for t in schedule_of(ev, off).occurrences(start - 1e-6, end - 1e-6)}


def expected_runs(start: float, end: float) -> int:
    return len(expected_set(start, end))


def with_db(dsn: str, db: str) -> str:
    p = urlsplit(dsn)
    return urlunsplit((p.scheme, p.netloc, "/" + db, p.query, p.fragment))


def start_child(args: list) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("ready"):
        p.kill()
        raise RuntimeError(f"{args[0]} did not start: {line!r}")
    p.ready = line.split()[1:]   # what the child said after "ready" (APScheduler's: pid, HTTP port, grace)
    return p


def tell_child(p: subprocess.Popen, command: str) -> str:
    """One command line to APScheduler's process (bench/_tick_apscheduler.py); its one-line answer."""
    p.stdin.write(command + "\n")
    p.stdin.flush()
    return p.stdout.readline().strip()


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
            self.grace_s = cfg["jobs.grace_s"]
            aps = start_child([os.path.join(HERE, "_tick_apscheduler.py"), json.dumps({
                "dsn": self.dsn, "grace_s": self.grace_s, "pool_max": self.pool.maxconn, "matches": a.matches,
                "db_every": a.match_db_every, "load_threads": a.aps_load_threads,
                "jobs": [{"name": n, "every_s": None if ev == "cron" else ev, "offset_s": off}
                         for n, ev, off in JOBS]})])
            self.aps_port = int(aps.ready[1])
            if float(aps.ready[2]) != self.grace_s:
                raise RuntimeError(f"APScheduler's misfire_grace_time would be {aps.ready[2]} s, goald's jobs.grace_s "
                                   f"is {self.grace_s:g} s (APScheduler takes whole seconds): not the same grace")
            log(f"APScheduler subprocess up (pid {aps.pid}, misfire_grace_time {self.grace_s:g} s, "
                f"HTTP endpoint on 127.0.0.1:{self.aps_port})")
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
            load = self.start_load(info, aps)
        gevent.sleep(a.settle_s)
        start = float(int(time.time()) + 1)
        end = start + a.phase_s
        gevent.sleep(start - time.time())
        cpu0 = {"self": proc_cpu_s(os.getpid()), "aps": proc_cpu_s(aps.pid)}
        q0 = runq_wait_ms()
        pool0 = self.pool.stats()
        if load is not None:
            for key in ("http", "aps_http"):
                if load[key] is not None:
                    cpu0[key] = proc_cpu_s(load[key].pid)
            msgs0 = load["counters"]["messages"]
            aps0 = json.loads(tell_child(aps, "stats"))
        log(f"repeat {rep + 1}/{a.repeat}: {name} phase, {a.phase_s:g} s")
        gevent.sleep(end - time.time())
        wall = time.time() - start
        info["cpu_wait_ms_per_s"] = round((runq_wait_ms() - q0) / wall, 1)
        pool1 = self.pool.stats()
        info["pool"] = {k: getattr(pool1, k) - getattr(pool0, k)
                        for k in ("checkouts", "opened", "discarded", "timeouts")}
        if load is not None:
            aps1 = json.loads(tell_child(aps, "stats"))
        for key, pid in (("self", os.getpid()), ("aps", aps.pid), ("http", load and load["http"] and load["http"].pid),
                         ("aps_http", load and load["aps_http"] and load["aps_http"].pid)):
            if key in cpu0 and cpu0[key] is not None:
                c1 = proc_cpu_s(pid)
                info[f"cpu_{key}_pct"] = None if c1 is None else round(100.0 * (c1 - cpu0[key]) / wall, 1)
        if load is not None:
            info["match_msgs_per_s"] = round((load["counters"]["messages"] - msgs0) / wall, 1)
            def rate(key):
                return round((aps1["load"].get(key, 0) - aps0["load"].get(key, 0)) / wall, 1)
            info["aps_msgs_per_s"], info["aps_db_writes_per_s"] = rate("messages"), rate("db_writes")
            info["aps_served_per_s"] = round((sum(aps1["http"].values()) - sum(aps0["http"].values())) / wall, 1)
            self.stop_load(load, info, aps)
        self.windows.append((rep, name, start, end, info))

    def start_load(self, info: dict, aps) -> dict:
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
        # The same load in APScheduler's process: its feeder and worker threads, and its HTTP endpoint
        # loaded by a second load generator with the same settings.
        answer = tell_child(aps, "load on")
        if answer != "load on":
            raise RuntimeError(f"APScheduler's process did not start its load: {answer!r}")
        aps_http = start_child([http_args[0], "--port", str(self.aps_port), *http_args[3:]]) \
            if a.console_clients > 0 else None
        rate = f"{a.console_clients} clients" + (f" paced at {a.console_rps:g} req/s" if a.console_rps
                                                 else " (closed loop)")
        log(f"load on, in each process: {a.matches} match updates/s; HTTP {rate} "
            f"(goald's console :{self.console_port}, APScheduler's endpoint :{self.aps_port})")
        return {"sup": sup, "feeder": feeder, "http": http, "aps_http": aps_http, "counters": counters}

    def stop_load(self, load: dict, info: dict, aps) -> None:
        if load["http"] is not None:
            info["http"] = finish_child(load["http"])
        if load["aps_http"] is not None:
            info["aps_http"] = finish_child(load["aps_http"])
        off = json.loads(tell_child(aps, "load off"))
        info.update(aps_db_writes=off["load"].get("db_writes", 0), aps_db_errors=off["load"].get("db_errors", 0),
                    aps_feeder_behind=off["load"].get("feeder_behind", 0), aps_pool=off["pool"])
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
            misfired = sum(1 for _, s in self.aps["missed"] if start <= s < end)
            # coalesced: due, but neither run nor reported by any event (dropped with others due at once)
            accounted = {(j, s) for j, s, *_ in
                         ap + self.aps["missed"] + self.aps["errors"] + self.aps["max_instances"]}
            coalesced = len(expected_set(start, end) - accounted)
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
                "worst_instants": worst_instants(g, self.lag, GC_PAUSES),
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
                "goald_missed": outcomes.get("missed", 0),
                "apscheduler_misfired": misfired, "apscheduler_coalesced": coalesced,
                "apscheduler_missed": misfired + coalesced,
                "apscheduler_max_instances": sum(1 for _, s in self.aps["max_instances"] if start <= s < end),
                "apscheduler_errors": sum(1 for _, s, _e in self.aps["errors"] if start <= s < end),
                "ledger_outcomes": dict(outcomes), "diagnostics": d, "info": info,
            })
        res = {"jobs": len(JOBS), "phase_s": a.phase_s, "repeat": a.repeat, "matches": a.matches,
               "match_db_every": a.match_db_every, "aps_load_threads": a.aps_load_threads,
               "grace_s": self.grace_s, "aps_grace_s": self.aps.get("grace_s"),
               "console_clients": a.console_clients, "console_rps": a.console_rps,
               "match_work": _tick_load.calibrate(), "phases": phases}
        res["summary"], res["targets"] = self.judge(phases)
        res["pass"] = all(t["pass"] for t in res["targets"] if t.get("judged", True))
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
            for who, key in (("goald", "goald_missed"), ("apscheduler", "apscheduler_missed")):
                summ[name][who]["missed"] = sum(p[key] for p in phases if p["phase"] == name)
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
            n = summ[name]["apscheduler"]["n"]
            t.append({"phase": name, "what": "APScheduler started every expected run", "value": n, "target": exp,
                      "pass": n == exp, "judged": False})
        return summ, t


def print_table(res: dict) -> None:
    w = res["match_work"]
    print(f"tick precision: {res['jobs']} jobs (8×1s, 4×2s, 3×5s, 2×10s, 3×cron), {res['phase_s']:g} s per phase, "
          f"{res['repeat']} repeat(s); lateness = actual start − scheduled start; a run later than "
          f"{res['grace_s']:g} s is dropped as missed by both (goald jobs.grace_s, APScheduler misfire_grace_time "
          f"{res['aps_grace_s']:g} s)")
    http = (f"{res['console_clients']} keep-alive clients " + (f"paced at {res['console_rps']:g} req/s in total"
                                                             if res['console_rps'] else "in a closed loop"))
    db = f"every {res['match_db_every']}th update of a match one UPDATE" if res['match_db_every'] else "no UPDATEs"
    print(f"load phase, the same in both processes: {res['matches']} match updates/s ({res['matches']} matches × "
          f"1/s at random phases; {w['payload_bytes']} B JSON snapshot rendered by the process's feeder, "
          f"{w['snapshot_us']:g} µs; parsed, diffed and a delta rendered, {w['apply_us']:g} µs), {db} through the "
          f"process's pool; "
          f"HTTP /health/pool + /api/health (SELECT 1) from its own load generator, {http}")
    print(f"  goald: feeder greenlet + {res['matches']} pykka match actors, UPDATEs through goald's pool, "
          f"goald's console; APScheduler: feeder thread + {res['aps_load_threads']} worker threads, "
          f"UPDATEs through a psycopg2 pool, an http.server ThreadingHTTPServer")
    print()
    hdr = (f"{'phase':5s}  {'scheduler':16s} {'runs done/exp':>13s} {'missed':>6s} "
           f"{'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'min ms':>8s}   target")
    label = {"goald": "goald", "goald_ledger": "goald (ledger)", "apscheduler": "APScheduler 3.x"}
    multi = res["repeat"] > 1
    print(hdr + ("   (median of repeats)" if multi else ""))
    tg = {(t["phase"], t["what"].split()[1]): t for t in res["targets"]
          if t["what"].split()[:2] in (["goald", "p50"], ["goald", "p99"], ["goald", "max"])}
    for name in ("idle", "load"):
        s = res["summary"][name]
        for who in ("goald", "goald_ledger", "apscheduler"):
            x = s[who]
            missed = f"{x['missed']:>6d}" if "missed" in x else f"{'':6s}"
            note = ""
            if who == "goald":
                note = "; ".join(f"{k} {'<=' if name == 'idle' else '<'} {t['target']} "
                                 f"{'PASS' if t['pass'] else 'FAIL'}"
                                 for k in ("p50", "p99", "max") for t in [tg.get((name, k))] if t)
            print(f"{name:5s}  {label[who]:16s} {x['n']:>6d}/{s['expected']:<6d} {missed} "
                  + " ".join(f"{x[k]:8.2f}" if x[k] is not None else f"{'-':>8s}"
                             for k in ("p50", "p99", "max", "min")) + (f"   {note}" if note else ""))
    if multi:
        print("\nper repeat (goald | APScheduler: p50 / p99 / max ms)")
        for p in res["phases"]:
            g, ap = p["goald"], p["apscheduler"]
            print(f"  #{p['repeat']} {p['phase']:5s} goald {g['p50']:.2f} / {g['p99']:.2f} / {g['max']:.2f}   "
                  f"APScheduler {ap['p50']:.2f} / {ap['p99']:.2f} / {ap['max']:.2f}")
    print("\ntargets")
    for t in res["targets"]:
        v, tg = t["value"], t["target"]
        verdict = ('PASS' if t['pass'] else 'FAIL') if t.get("judged", True) else \
            f"({'yes' if t['pass'] else 'no'}: reference, not judged)"
        print(f"  {t['phase']:5s} {t['what']:42s} {v!s:>9} vs {tg!s:<9} {verdict}")
    print("\nper phase (goald diagnostics: p50 / p99 / max ms; min for the slack)")
    for p in res["phases"]:
        d, i = p["diagnostics"], p["info"]
        print(f"  #{p['repeat']} {p['phase']}: ledger outcomes {dict(sorted(p['ledger_outcomes'].items()))}; "
              f"APScheduler missed {p['apscheduler_missed']} ({p['apscheduler_misfired']} past misfire_grace_time, "
              f"{p['apscheduler_coalesced']} coalesced away), skipped by max_instances "
              f"{p['apscheduler_max_instances']}, failed {p['apscheduler_errors']}")
        for k in ("dispatch_lead_ms", "claim_ms", "slack_after_claim_ms", "woke_late_ms", "prologue_ms",
                  "first_of_instant_ms", "burst_gap_ms", "loop_lag_ms", "loop_lag_minus_cpu_wait_ms",
                  "aps_first_of_instant_ms", "aps_burst_gap_ms"):
            x = d[k]
            if x["n"]:
                print(f"      {k:27s} {x['p50']:8.2f} {x['p99']:8.2f} {x['max']:8.2f}   "
                      f"min {x['min']:.2f}  (n={x['n']})")
        print("      latest instants (first start; goald's thread waiting for a CPU / in GC from 20 ms "
              "before to it): " + ", ".join(f":{int(w['at']) % 60:02d} +{w['first_ms']} ms ({w['cpu_wait_ms']} / "
                                            f"{w['gc_ms']} ms)" for w in d["worst_instants"]))
        print("      Python GC pauses: " + ", ".join(
            f"{k} {v['count']}× (max {v['max_ms']:.1f} ms wall, {v['max_cpu_ms']:.1f} ms CPU)"
            for k, v in d["gc"].items()))
        cpu = (f"      CPU (% of one core): goald process {i.get('cpu_self_pct')} % "
               f"(max 1-s {i.get('cpu_self_max_1s_pct')} %), APScheduler process {i.get('cpu_aps_pct')} %")
        if "cpu_http_pct" in i or "cpu_aps_http_pct" in i:
            cpu += (f"; HTTP load generators: goald's {i.get('cpu_http_pct')} %, "
                    f"APScheduler's {i.get('cpu_aps_http_pct')} %")
        print(cpu + f"; machine {i.get('cpu_machine_pct')} % of {psutil.cpu_count()} cores; "
              f"goald's thread waited for a CPU {i.get('cpu_wait_ms_per_s')} ms/s")
        print(f"      goald's pool during the phase: {i['pool']}")
        if "http" in i:
            h = i["http"]
            lat = ", ".join(f"{k} p50 {v['p50']} / p99 {v['p99']} ms" for k, v in h["latency_ms"].items())
            print(f"      goald's console: {h['rps']} req/s over {h['elapsed_s']} s ({h['clients']} clients, "
                  f"{h['errors']} errors; {lat})")
        if "aps_http" in i:
            h = i["aps_http"]
            lat = ", ".join(f"{k} p50 {v['p50']} / p99 {v['p99']} ms" for k, v in h["latency_ms"].items())
            print(f"      APScheduler's HTTP endpoint: {h['rps']} req/s over {h['elapsed_s']} s ({h['clients']} "
                  f"clients, {h['errors']} errors; {lat}); served in the window {i['aps_served_per_s']} req/s")
        if "match_msgs_per_s" in i:
            print(f"      match updates, goald: {i['match_msgs_per_s']} /s handled, {i['match_db_writes']} UPDATEs "
                  f"({i['match_db_errors']} errors), feeder behind {i['feeder_behind']}×; APScheduler: "
                  f"{i['aps_msgs_per_s']} /s handled, {i['aps_db_writes']} UPDATEs ({i['aps_db_writes_per_s']} /s in "
                  f"the window, {i['aps_db_errors']} errors), feeder behind {i['aps_feeder_behind']}×; "
                  f"its pool {i['aps_pool']}")
    print(f"\n{'PASS' if res['pass'] else 'FAIL'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", default=os.environ.get("GOALD_BENCH_DATABASE_URL",
                                                    "postgresql://postgres@127.0.0.1:5432/postgres"),
                    help="maintenance database URL; the bench creates and drops its own database")
    ap.add_argument("--phase-s", type=float, default=75.0, help="measured seconds per phase (default 75)")
    ap.add_argument("--settle-s", type=float, default=5.0, help="warm-up before each measured window")
    ap.add_argument("--repeat", type=int, default=1, help="idle/load pairs (medians are reported)")
    ap.add_argument("--matches", type=int, default=2000,
                    help="load phase: matches in each process, one ~2.5 KB JSON update each per second (default 2000)")
    ap.add_argument("--match-db-every", type=int, default=50,
                    help="load phase: one UPDATE per N updates per match, in each process (default 50; 0: none)")
    ap.add_argument("--aps-load-threads", type=int, default=4,
                    help="load phase: worker threads applying the updates in APScheduler's process (default 4)")
    ap.add_argument("--console-clients", type=int, default=32,
                    help="load phase: keep-alive HTTP clients per process (goald's console, APScheduler's endpoint; "
                         "default 32; 0: no HTTP load)")
    ap.add_argument("--console-rps", type=float, default=500.0,
                    help="load phase: HTTP requests/s in total per process (default 500; 0: closed loop, as fast "
                         "as the server answers)")
    ap.add_argument("--console-nodelay", action="store_true",
                    help="also set TCP_NODELAY on the console's listener (goald sets it on each accepted "
                         "socket already: gevent.pywsgi sends headers and body in two writes, and keep-alive "
                         "clients would wait ~40 ms per request for a delayed ACK without it)")
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
