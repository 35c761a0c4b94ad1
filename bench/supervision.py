"""goald's DynamicSupervisor with 10,000 children: start, memory, stop, and restart after a crash.

Runs as goald runs (gevent monkey-patching first; no database is involved, so no psycogreen), with
goald's logging set up as `goald run` does it (loguru JSON at INFO, into a temporary file), under
one DynamicSupervisor (actors/dynamic.py) with goald's default per-child restart budget
(`supervisor.*`) and `jobs.shutdown_timeout_s` (30 s by default) as its stop deadline.

Each child is a small SupervisedActor shaped like a match actor: some state (status, minute, score,
an events list, team statistics), `started()` (counts itself, wakes a waiter), `handle()` answering
`Ping` (an ask: key and minute) and applying `Tick` (a tell: minute, a statistic, sometimes an
event), and `Crash` (a tell that raises: the child crashes, its supervisor restarts it).

Measured, each against its target (from the issue):
1. start: from the first StartChild tell (DynamicSupervisor.start_child, the public API) until
   every child's `started()` ran (time.perf_counter) — target < 3 s;
2. memory: the process's RSS (psutil, after gc.collect()) with the supervisor up and no children,
   and again once all `--children` have started and are idle; the increase — target < 250 MB
   (the absolute RSS after and the increase per child are shown too);
3. restart: `--crashes` children, a different random one each time (each child crashes once: a
   second crash in a row would wait for the backoff by design, actors/restart.py), crashed one at
   a time while the others run and `--busy-rps` Ticks a second go to random children; the time
   from the `raise` in the child's handler to the new incarnation's `started()`, median and max —
   target < 100 ms each; shown beside it, the time from the Crash tell until the new incarnation
   (a new ref in the supervisor's registry) answers a Ping ask;
4. stop: stopping the supervisor (ActorRef.stop(block=True)), which tells every child to stop at
   once and waits for all against one deadline — target within jobs.shutdown_timeout_s, every
   child stopped by itself (its `stopping()` ran; none had to be killed at the deadline).
For reference, in the same run after goald's supervisor is gone (the peer figure of 4): pykka's own
`ActorRegistry.stop_all()` on `--children` plain pykka.ThreadingActor actors (same state; it
stops them one after the other, newest first); their start time is shown too (not their RSS: they
reuse the memory goald's children freed).

Run:  python bench/supervision.py [--children 10000] [--crashes 50] [--busy-rps 1000] [--seed 1] [--json]
Exit status 1 when a target fails.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from importlib.metadata import version  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import psutil  # noqa: E402
import pykka  # noqa: E402

from goald import config as config_mod, logs  # noqa: E402
from goald.actors.base import Start, SupervisedActor  # noqa: E402
from goald.actors.dynamic import DynamicSupervisor  # noqa: E402
from goald.tree import intensity_from  # noqa: E402

START_TARGET_S = 3.0
RSS_TARGET_MB = 250.0
RESTART_TARGET_MS = 100.0


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Tick:
    minute: int


@dataclass(frozen=True)
class Crash:
    pass


class Marks:
    """What the children report to the bench (written in their greenlets, read by the bench's)."""

    def __init__(self, expect: int):
        self.expect, self.started, self.stopped = expect, 0, 0
        self.all_started = gevent.event.Event()
        self.waiters: dict = {}     # key -> AsyncResult: set to perf_counter() by the next started()
        self.crashed_at: dict = {}  # key -> perf_counter() just before the raise


def new_state(key: int) -> dict:
    return {"id": 100000 + key, "status": "1H", "minute": key % 90, "score": [0, 0], "events": [],
            "stats": {"home_shots": 0, "away_shots": 0, "home_corners": 0, "away_corners": 0}}


class MatchChild(SupervisedActor):
    kind = "match"

    def __init__(self, *, name: str, parent, key: int, marks: Marks):
        super().__init__(name=name, parent=parent)
        self.key, self.marks = key, marks
        self.state = new_state(key)

    def started(self) -> None:
        m = self.marks
        m.started += 1
        if m.started >= m.expect:
            m.all_started.set()
        waiter = m.waiters.pop(self.key, None)
        if waiter is not None:
            waiter.set(time.perf_counter())

    def stopping(self) -> None:
        self.marks.stopped += 1

    def handle(self, message):
        s = self.state
        if isinstance(message, Ping):
            return self.key, s["minute"]
        if isinstance(message, Tick):
            s["minute"] = message.minute
            s["stats"]["home_shots" if message.minute % 2 else "away_shots"] += 1
            if message.minute % 7 == 0 and len(s["events"]) < 20:
                s["events"].append({"minute": message.minute, "type": "shot"})
            return None
        if isinstance(message, Crash):
            self.marks.crashed_at[self.key] = time.perf_counter()
            raise RuntimeError(f"bench crash of match {self.key}")
        return super().handle(message)


class PlainChild(pykka.ThreadingActor):
    """pykka's own actor with the same state, for the stop_all reference."""

    def __init__(self, key: int, marks: Marks):
        super().__init__()
        self.state, self.marks = new_state(key), marks

    def on_start(self) -> None:
        self.marks.started += 1
        if self.marks.started >= self.marks.expect:
            self.marks.all_started.set()


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def busy(registry: dict, rps: float, counts: dict) -> None:
    """`rps` Ticks a second to random live children, in 10-ms slots."""
    rng, per_slot, next_t = random.Random(5), max(1, round(rps / 100)), time.time()
    while True:
        refs = list(registry.values())
        for ref in rng.sample(refs, min(per_slot, len(refs))):
            try:
                ref.tell(Tick(rng.randrange(90)))
                counts["ticks"] += 1
            except pykka.ActorDeadError:
                counts["dead"] += 1
        next_t += 0.01
        gevent.sleep(max(0.0, next_t - time.time()))


def measure(n: int, crashes: int, busy_rps: float, seed: int, cfg) -> dict:
    res: dict = {"children": n, "crashes": crashes, "busy_rps": busy_rps}
    shutdown_s = cfg["jobs.shutdown_timeout_s"]
    res["shutdown_timeout_s"] = shutdown_s
    marks, registry = Marks(n), {}
    sup = DynamicSupervisor.start(name="matches", intensity=intensity_from(cfg), registry=registry,
                                  shutdown_timeout_s=shutdown_s)
    sup.ask(Start(), timeout=10)
    res["rss_before_mb"] = rss_mb()

    # 1. start
    def make(key):
        return lambda parent, name: MatchChild.start(name=name, parent=parent, key=key, marks=marks)
    t0 = time.perf_counter()
    for key in range(n):
        DynamicSupervisor.start_child(sup, key, make(key))
    all_in = marks.all_started.wait(timeout=120)
    res["start_s"] = time.perf_counter() - t0
    res["started"] = marks.started
    if not all_in:
        raise RuntimeError(f"only {marks.started}/{n} children started within 120 s")

    # 2. memory, idle children
    gevent.sleep(0.5)
    res["rss_after_mb"] = rss_mb()
    res["rss_increase_mb"] = res["rss_after_mb"] - res["rss_before_mb"]

    # 3. crash -> restart, one random child at a time, while the others get Ticks
    counts = {"ticks": 0, "dead": 0}
    feeder = gevent.spawn(busy, registry, busy_rps, counts) if busy_rps > 0 else None
    gevent.sleep(0.5)
    to_started, to_answer, new_refs = [], [], 0
    for key in random.Random(seed).sample(range(n), crashes):
        old = registry[key]
        waiter = marks.waiters[key] = gevent.event.AsyncResult()
        t_tell = time.perf_counter()
        old.tell(Crash())
        t_started = waiter.get(timeout=10)
        new = registry.get(key)
        answer = new.ask(Ping(), timeout=10)
        t_answer = time.perf_counter()
        if answer[0] != key:
            raise RuntimeError(f"child {key}: the new incarnation answered {answer!r}")
        new_refs += new is not old
        to_started.append((t_started - marks.crashed_at[key]) * 1000)
        to_answer.append((t_answer - t_tell) * 1000)
        gevent.sleep(0.02)
    if feeder is not None:
        feeder.kill()
    res["restart_ms"] = {"median": statistics.median(to_started), "max": max(to_started),
                         "min": min(to_started)}
    res["restart_answer_ms"] = {"median": statistics.median(to_answer), "max": max(to_answer)}
    res["new_incarnations"] = new_refs
    res["busy_ticks"] = counts["ticks"]
    summary = sup.proxy().describe().get(timeout=10)["counts"]
    res["supervisor_counts"] = {k: summary.get(k) for k in ("children", "running", "crashed", "restarted",
                                                            "gave_up")}

    # 4. stop: the supervisor stops every child at once, against one deadline
    marks.stopped = 0
    t0 = time.perf_counter()
    sup.stop(block=True, timeout=shutdown_s + 30)
    res["stop_s"] = time.perf_counter() - t0
    res["stopped_cleanly"] = marks.stopped
    res["left_in_registry"] = len(pykka.ActorRegistry.get_all())

    # reference: pykka's own stop_all on as many plain ThreadingActors
    plain = Marks(n)
    t0 = time.perf_counter()
    refs = [PlainChild.start(key, plain) for key in range(n)]
    plain.all_started.wait(timeout=120)   # every actor's loop has run, as goald's children's had
    res["pykka_start_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pykka.ActorRegistry.stop_all(block=True)
    res["pykka_stop_all_s"] = time.perf_counter() - t0
    del refs
    return res


def judge(res: dict) -> list:
    r, a = res["restart_ms"], res["shutdown_timeout_s"]
    n = res["children"]
    return [
        {"what": f"start {n} children (first StartChild -> every started())", "value": f"{res['start_s']:.2f} s",
         "target": f"< {START_TARGET_S:g} s", "pass": res["start_s"] < START_TARGET_S},
        {"what": f"RSS increase for {n} idle children", "value": f"{res['rss_increase_mb']:.0f} MB",
         "target": f"< {RSS_TARGET_MB:g} MB", "pass": res["rss_increase_mb"] < RSS_TARGET_MB},
        {"what": f"crash -> restart (raise -> new started()), median of {res['crashes']}",
         "value": f"{r['median']:.2f} ms", "target": f"< {RESTART_TARGET_MS:g} ms",
         "pass": r["median"] < RESTART_TARGET_MS},
        {"what": f"crash -> restart, max of {res['crashes']}", "value": f"{r['max']:.2f} ms",
         "target": f"< {RESTART_TARGET_MS:g} ms", "pass": r["max"] < RESTART_TARGET_MS},
        {"what": f"stop the supervisor ({n} children, one deadline)", "value": f"{res['stop_s']:.2f} s",
         "target": f"<= {a:g} s (jobs.shutdown_timeout_s)", "pass": res["stop_s"] <= a},
        {"what": "children that stopped by themselves (none killed)", "value": f"{res['stopped_cleanly']}",
         "target": f"= {n}", "pass": res["stopped_cleanly"] == n and res["left_in_registry"] == 0},
    ]


def print_report(res: dict) -> None:
    print(f"goald DynamicSupervisor, {res['children']} match-like children; gevent-patched; Python "
          f"{platform.python_version()}, pykka {version('pykka')}, gevent {gevent.__version__}; "
          f"{psutil.cpu_count()} CPUs, load average {res['loadavg'][0]:.2f} at the start, "
          f"{res['loadavg_end'][0]:.2f} at the end")
    print()
    print(f"  {'measure':58s} {'figure':>10s}   {'target':32s}")
    for t in res["targets"]:
        print(f"  {t['what']:58s} {t['value']:>10s}   {t['target']:32s} {'PASS' if t['pass'] else 'FAIL'}")
    print()
    r, a, n = res["restart_ms"], res["restart_answer_ms"], res["children"]
    print(f"  RSS: {res['rss_before_mb']:.0f} MB before (supervisor up, no children), {res['rss_after_mb']:.0f} MB "
          f"after, +{res['rss_increase_mb']:.0f} MB = {res['rss_increase_mb'] * 1024 / n:.1f} KB per child")
    print(f"  restart: raise -> started() min {r['min']:.2f} / median {r['median']:.2f} / max {r['max']:.2f} ms; "
          f"Crash tell -> the new incarnation answers an ask: median {a['median']:.2f} / max {a['max']:.2f} ms; "
          f"{res['new_incarnations']}/{res['crashes']} new refs; {res['busy_ticks']} Ticks to the others meanwhile "
          f"({res['busy_rps']:g}/s)")
    print(f"  supervisor before the stop: {res['supervisor_counts']}")
    print(f"  reference, pykka's own: ActorRegistry.stop_all() on {n} plain ThreadingActors "
          f"{res['pykka_stop_all_s']:.2f} s (one after the other; goald's parallel stop above: {res['stop_s']:.2f} s); "
          f"starting them (until every on_start() ran) took {res['pykka_start_s']:.2f} s")
    print(f"\n{'PASS' if res['pass'] else 'FAIL'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--children", type=int, default=10000, help="children of the supervisor (default 10000)")
    ap.add_argument("--crashes", type=int, default=50, help="random children crashed one at a time (default 50)")
    ap.add_argument("--busy-rps", type=float, default=1000.0,
                    help="Ticks a second to random children during the crashes (default 1000; 0: idle)")
    ap.add_argument("--seed", type=int, default=1, help="which children crash")
    ap.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = ap.parse_args(argv)
    if not 0 < args.crashes <= args.children:
        ap.error("--crashes must be between 1 and --children")
    cfg = config_mod.load(None, environ={}, search=False)
    with tempfile.NamedTemporaryFile("a", prefix="goald-bench-supervision-", suffix=".log", buffering=1) as f:
        logs.setup(cfg["log.level"], "json", stream=f)
        try:
            load0 = os.getloadavg()
            res = measure(args.children, args.crashes, args.busy_rps, args.seed, cfg)
            res["loadavg"], res["loadavg_end"] = load0, os.getloadavg()
        finally:
            logs.setup("INFO", "json")
    res["targets"] = judge(res)
    res["pass"] = all(t["pass"] for t in res["targets"])
    print_report(res)
    if args.json:
        print(json.dumps(res))
    return 0 if res["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
