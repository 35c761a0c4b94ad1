"""The shape of goald's actor tree, in one place (used by `goald run`, the tests and the benches).

Part of the composition root: the only module besides the daemon that puts actors, console and
core pieces together.

    root (one_for_one)
    ├─ pool_monitor           ServiceActor(PoolMonitor)   (omitted when with_pool_monitor=False)
    ├─ heartbeat              ServiceActor(Heartbeat)     beats this node's running runs
    ├─ match_writer           ServiceActor(WriterService) the match actors' batched writes (actors/match_services.py)
    ├─ match_ticker           ServiceActor(TickerService) the minute engine's wake-ups
    ├─ change_feed            ServiceActor(ChangeFeed)    other nodes' match writes (goald/db/cluster.py; omitted when none is given)
    ├─ matches (dynamic)      MatchActor × tracked match  (actors/match_actor.py)
    ├─ jobs (one_for_one)     JobActor × catalog
    ├─ clock                  Clock (dispatches to jobs, records what nobody ran; systemd watchdog)
    └─ console                ServiceActor(HttpServer)    (omitted when app is None)

`start()` starts it and returns once every child answered (or raises StartFailed / pykka
errors); `stop()` is the warm shutdown within one budget (`stop_budget_s`); both run in the
caller's greenlet.

The stop budget: running jobs get `jobs.shutdown_timeout_s` (the current value: a SIGHUP that
changes it is followed), then cancelled runs get AFTER_DRAIN_S to end and close their rows, the
console CONSOLE_STOP_S for open requests, every other actor ACTOR_STOP_S, and the embedded
PostgreSQL DATABASE_STOP_S. Their sum must fit in the unit's TimeoutStopSec (UNIT_TIMEOUT_STOP_S,
systemd/goald.service); a test checks the unit, and `jobs.shutdown_timeout_s` warns above what fits.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pykka

from goald.actors import gc_pacer
from goald.actors.base import Start
from goald.actors.clock import Clock
from goald.actors.heartbeat import Heartbeat
from goald.actors.job_actor import COLD_GRACE_S, KILL_GRACE_S, JobActor
from goald.actors.match_services import TickerService, WriterService, match_supervisor
from goald.actors.matches import MatchPipeline
from goald.actors.runtime import Runtime
from goald.actors.service import ServiceActor
from goald.actors.supervisor import ChildSpec, Intensity, Supervisor

CONSOLE_STOP_S = 2.0
ACTOR_STOP_S = 3.0
AFTER_DRAIN_S = COLD_GRACE_S + KILL_GRACE_S + 3.0
DATABASE_STOP_S = 6.0
# Everything but the drain; with the default drain of 30 s goald stops within 46 s.
STOP_OVERHEAD_S = CONSOLE_STOP_S + 2 * ACTOR_STOP_S + AFTER_DRAIN_S + DATABASE_STOP_S
UNIT_TIMEOUT_STOP_S = 60.0


def stop_budget_s(cfg) -> float:
    """The longest a warm stop of goald takes with this configuration."""
    return cfg["jobs.shutdown_timeout_s"] + STOP_OVERHEAD_S


def intensity_from(cfg) -> Intensity:
    return Intensity(max_restarts=cfg["supervisor.max_restarts"], max_seconds=cfg["supervisor.max_seconds"],
                     backoff_base_s=cfg["supervisor.backoff_base_s"], backoff_max_s=cfg["supervisor.backoff_max_s"])


@dataclass
class Tree:
    rt: Runtime
    notifier: Any = None
    app: Any = None                       # the Bottle app for the console child
    listener: Any = None                  # a socket bound early by the daemon (console.server.bind)
    with_pool_monitor: bool = True
    on_escalate: Callable[[str], None] | None = None
    root: pykka.ActorRef | None = None
    root_directory: dict = field(default_factory=dict)
    jobs_directory: dict = field(default_factory=dict)
    services: dict = field(default_factory=dict)   # name -> the service object of the live incarnation
    pipeline: MatchPipeline | None = None          # the match pipeline (made here unless given)
    change_feed: Any = None                        # goald/db/cluster.py ChangeFeed (none in tests)
    _stop_deadline: float | None = None

    def _within_budget(self, own_s: float | Callable[[], float]) -> Callable[[], float]:
        """A child's stop timeout: its own, but never past the tree's stop deadline."""
        def timeout() -> float:
            own = own_s() if callable(own_s) else own_s
            if self._stop_deadline is None:
                return own
            return max(0.0, min(own, self._stop_deadline - time.monotonic()))
        return timeout

    def _drain_s(self) -> float:
        return self.rt.cfg["jobs.shutdown_timeout_s"] + AFTER_DRAIN_S

    def _service(self, name: str, make: Callable[[], Any], kind: str, stop_s: float) -> ChildSpec:
        def start(parent, n):
            service = self.services[name] = make()
            return ServiceActor.start(name=n, parent=parent, service=service, kind=kind, stop_timeout_s=stop_s)
        return ChildSpec(name, start, kind=kind, shutdown_timeout_s=self._within_budget(stop_s + 1.0))

    def children(self) -> list[ChildSpec]:
        rt, cfg = self.rt, self.rt.cfg
        intensity = intensity_from(cfg)
        job_children = [
            ChildSpec(name, lambda parent, n, job=name: JobActor.start(name=n, parent=parent, job=job, runtime=rt),
                      shutdown_timeout_s=self._within_budget(self._drain_s))
            for name in sorted(rt.specs)]
        out = []
        if self.with_pool_monitor:
            from goald.pool_monitor import PoolMonitor

            out.append(self._service("pool_monitor", lambda: PoolMonitor(
                rt.pool, node=rt.node, interval_s=rt.cfg["pool_monitor.interval_s"]), "monitor", ACTOR_STOP_S))
        out.append(self._service("heartbeat", lambda: Heartbeat(rt), "heartbeat", ACTOR_STOP_S))
        if self.pipeline is None:
            self.pipeline = MatchPipeline(rt.pool, lambda: rt.cfg)
        pipeline = rt.matches = self.pipeline
        pipeline.supervisor = lambda: self.root_directory.get("matches")
        out.append(self._service("match_writer", lambda: WriterService(pipeline), "writer", ACTOR_STOP_S))
        out.append(self._service("match_ticker", lambda: TickerService(pipeline), "ticker", ACTOR_STOP_S))
        if self.change_feed is not None:
            out.append(self._service("change_feed", lambda: self.change_feed, "feed", ACTOR_STOP_S))
        out.append(ChildSpec("matches", lambda parent, n: match_supervisor(
            pipeline, parent, n, intensity, self._within_budget(ACTOR_STOP_S)), kind="dynamic_supervisor",
            shutdown_timeout_s=self._within_budget(ACTOR_STOP_S + 1.0)))
        out.append(ChildSpec("jobs", lambda parent, n: Supervisor.start(
            name=n, parent=parent, children=job_children, intensity=intensity, directory=self.jobs_directory),
            shutdown_timeout_s=self._within_budget(lambda: self._drain_s() + ACTOR_STOP_S)))
        out.append(ChildSpec("clock", lambda parent, n: Clock.start(
            name=n, parent=parent, runtime=rt, directory=self.jobs_directory,
            jobs_supervisor=lambda: self.root_directory.get("jobs"), notifier=self.notifier),
            shutdown_timeout_s=self._within_budget(ACTOR_STOP_S)))
        if self.app is not None:
            from goald.console.server import HttpServer

            def console():
                listener, self.listener = self.listener, None   # only the first incarnation has it
                port = self.services["console"].port if "console" in self.services else cfg["console.port"]
                return HttpServer(self.app, cfg["console.host"], port, listener=listener)

            out.append(self._service("console", console, "console", CONSOLE_STOP_S))
        return out

    def start(self, timeout_s: float = 60.0) -> pykka.ActorRef:
        gc_pacer.freeze_once()   # the start-up objects, before any actor exists (see gc_pacer)
        self.root = Supervisor.start(name="root", children=self.children(), intensity=intensity_from(self.rt.cfg),
                                     on_escalate=self.on_escalate, directory=self.root_directory)
        try:
            self.root.ask(Start(), timeout=timeout_s)
        except BaseException:
            self.root.stop(block=True, timeout=timeout_s)
            self.root = None
            raise
        return self.root

    def stop(self) -> None:
        """Warm shutdown: no new runs; running jobs get jobs.shutdown_timeout_s (see Shutdown);
        everything within stop_budget_s minus the database's share."""
        if self.root is None:
            return
        budget = stop_budget_s(self.rt.cfg) - DATABASE_STOP_S
        self._stop_deadline = time.monotonic() + budget
        self.rt.shutdown.begin_warm(self.rt.cfg["jobs.shutdown_timeout_s"])
        try:
            self.root.stop(block=True, timeout=budget)
        except pykka.ActorDeadError:
            pass

    def describe(self) -> dict:
        if self.root is None:
            raise RuntimeError("the actor tree is not running")
        return self.root.proxy().describe().get(timeout=5)

    def console_address(self) -> tuple[str, int] | None:
        server = self.services.get("console")
        return None if server is None else server.address()

    def set_pool_monitor_interval(self, interval_s: float) -> None:
        monitor = self.services.get("pool_monitor")
        if monitor is not None:
            monitor.interval_s = interval_s
