"""The shape of goald's actor tree, in one place (used by `goald run`, the tests and the benches).

    root (one_for_one)
    ├─ pool_monitor           PoolMonitorActor        (omitted when with_pool_monitor=False)
    ├─ jobs (one_for_one)     JobActor × catalog
    ├─ clock                  Clock (dispatches to jobs; pings the systemd watchdog)
    └─ console                ConsoleActor            (omitted when app is None)

`start_root()` starts it and returns once every child answered (or raises StartFailed /
pykka errors); runs in the caller's greenlet.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pykka

from goald.actors.base import Start
from goald.actors.clock import Clock
from goald.actors.job_actor import JobActor
from goald.actors.runtime import Runtime
from goald.actors.supervisor import ChildSpec, Intensity, Supervisor

# How much longer than jobs.shutdown_timeout_s an actor may take to stop before it is abandoned.
STOP_MARGIN_S = 15.0


def intensity_from(cfg) -> Intensity:
    return Intensity(max_restarts=cfg["supervisor.max_restarts"], max_seconds=cfg["supervisor.max_seconds"],
                     backoff_base_s=cfg["supervisor.backoff_base_s"], backoff_max_s=cfg["supervisor.backoff_max_s"])


@dataclass
class Tree:
    rt: Runtime
    notifier: Any = None
    app: Any = None                       # the Bottle app for the console child
    with_pool_monitor: bool = True
    on_escalate: Callable[[str], None] | None = None
    root: pykka.ActorRef | None = None
    root_directory: dict = field(default_factory=dict)
    jobs_directory: dict = field(default_factory=dict)

    def children(self) -> list[ChildSpec]:
        rt, cfg = self.rt, self.rt.cfg
        drain_s = cfg["jobs.shutdown_timeout_s"] + STOP_MARGIN_S
        intensity = intensity_from(cfg)
        job_children = [
            ChildSpec(name, lambda parent, n, job=name: JobActor.start(name=n, parent=parent, job=job, runtime=rt),
                      shutdown_timeout_s=drain_s)
            for name in sorted(rt.specs)]
        out = []
        if self.with_pool_monitor:
            from goald.pool_monitor import PoolMonitorActor

            out.append(ChildSpec("pool_monitor", lambda parent, n: PoolMonitorActor.start(
                name=n, parent=parent, pool=rt.pool, node=rt.node, interval_s=cfg["pool_monitor.interval_s"])))
        out.append(ChildSpec("jobs", lambda parent, n: Supervisor.start(
            name=n, parent=parent, children=job_children, intensity=intensity, directory=self.jobs_directory),
            shutdown_timeout_s=drain_s + 5))
        out.append(ChildSpec("clock", lambda parent, n: Clock.start(
            name=n, parent=parent, runtime=rt, directory=self.jobs_directory,
            jobs_supervisor=lambda: self.root_directory.get("jobs"), notifier=self.notifier)))
        if self.app is not None:
            from goald.console.server import ConsoleActor

            out.append(ChildSpec("console", lambda parent, n: ConsoleActor.start(
                name=n, parent=parent, app=self.app, host=cfg["console.host"], port=cfg["console.port"])))
        return out

    def start(self, timeout_s: float = 60.0) -> pykka.ActorRef:
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
        """Warm shutdown: no new runs; running jobs get jobs.shutdown_timeout_s (see Shutdown)."""
        if self.root is None:
            return
        timeout = self.rt.cfg["jobs.shutdown_timeout_s"]
        self.rt.shutdown.begin_warm(timeout)
        try:
            self.root.stop(block=True, timeout=timeout + 2 * STOP_MARGIN_S)
        except pykka.ActorDeadError:
            pass

    def describe(self) -> dict:
        if self.root is None:
            raise RuntimeError("the actor tree is not running")
        return self.root.proxy().describe().get(timeout=5)
