"""State shared by the clock and the job actors: the pool, the catalog, flags, shutdown phases.

One `Runtime` per daemon, created in the main greenlet and handed to the actors; under gevent no
two greenlets run at once, so its fields are read and replaced without locks (a reload swaps
`cfg`/`specs` whole). `Shutdown` is the lifecycle: `begin_warm()` on the first SIGTERM (stop
dispatching; running jobs may finish until `deadline`), `begin_cold()` on the second (cancel now).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.event

from goald import flags as flagnames
from goald.actors.catalog import JobSpec
from goald.actors.ledger import ORPHAN_HEARTBEATS
from goald.actors.schedule import Schedule, effective_offset
from goald.config import Config
from goald.db.pool import Pool


class Shutdown:
    def __init__(self) -> None:
        self.warm = gevent.event.Event()   # set: no new runs; running ones finish until `deadline`
        self.cold = gevent.event.Event()   # set: cancel running jobs now
        self.cancel = gevent.event.Event()  # set: ctx.cancelled() is true (cold, or the deadline passed)
        self.deadline: float | None = None

    def begin_warm(self, timeout_s: float) -> None:
        if not self.warm.is_set():
            self.deadline = time.time() + timeout_s
            self.warm.set()
            gevent.spawn_later(timeout_s, self.cancel.set)

    def begin_cold(self) -> None:
        self.deadline = time.time()
        self.warm.set()
        self.cancel.set()
        self.cold.set()

    def remaining_s(self) -> float:
        return 0.0 if self.deadline is None else max(0.0, self.deadline - time.time())


@dataclass
class Runtime:
    pool: Pool
    node: str
    cfg: Config
    specs: dict[str, JobSpec]
    shutdown: Shutdown = field(default_factory=Shutdown)
    flags: dict[str, bool] = field(default_factory=dict)   # the flags table as last read
    provider: Any = None
    cache: Any = None

    @property
    def heartbeat_s(self) -> float:
        return self.cfg["jobs.heartbeat_s"]

    @property
    def stale_after_s(self) -> float:
        return ORPHAN_HEARTBEATS * self.cfg["jobs.heartbeat_s"]

    def stagger_enabled(self) -> bool:
        return self.flags.get(flagnames.STAGGER, self.cfg["jobs.stagger_enabled"])

    def job_enabled(self, name: str) -> bool:
        return self.flags.get(flagnames.job_enabled(name), self.specs[name].enabled)

    def job_stagger(self, name: str) -> bool:
        return self.flags.get(flagnames.job_stagger(name), self.specs[name].stagger)

    def effective_schedule(self, name: str) -> Schedule:
        spec = self.specs[name]
        off = effective_offset(spec.schedule.offset_s, self.stagger_enabled(), self.job_stagger(name))
        return spec.schedule.with_offset(off)

    def enabled_schedules(self) -> dict[str, Schedule]:
        """The effective schedule of every enabled job (what the collision check looks at)."""
        return {n: self.effective_schedule(n) for n in self.specs if self.job_enabled(n)}
