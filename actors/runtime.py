"""State shared by the clock, the job actors and the heartbeat: the pool, the catalog, flags, the
runs in flight, the tickets of dispatched occurrences, shutdown phases.

One `Runtime` per daemon, created in the main greenlet and handed to the actors; under gevent no
two greenlets run at once, so its fields are read and replaced without locks (a reload swaps
`cfg`/`specs` whole). `Shutdown` is the lifecycle: `begin_warm()` on the first SIGTERM (stop
dispatching; running jobs may finish until `deadline`), `begin_cold()` on the second (cancel now).

`runs` holds the runs in flight on this node (`LiveRun`, keyed by ledger row id). It belongs to
the runtime, not to a job actor: a job actor restarted by its supervisor leaves its runs going
(they need nothing from it), and the heartbeat beats them all. `Ticket`s tie a dispatched
occurrence to its outcome so that none is lost (see actors/clock.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import gevent
import gevent.event

from goald import flags as flagnames
from goald.actors.catalog import JobSpec
from goald.actors.ledger import Occurrence, stale_after
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


class Ticket:
    """One dispatched occurrence, from the clock's dispatch until its row is certain.

    `state`: `pending` (told to the job actor, not yet claimed), `claimed` (the claim transaction
    committed: the period has its row, whoever wrote it), `failed` (the claim gave up; `reason`
    says why), `dropped` (goald is stopping: nothing was claimed; the next start's downtime
    backfill records it). After `deadline` (due + grace) the clock's reaper writes a `missed` row
    for every ticket not `claimed`, with its reason (ON CONFLICT DO NOTHING: if another instance
    ran the period, its row stays)."""

    __slots__ = ("occurrence", "deadline", "state", "reason")

    def __init__(self, occurrence: Occurrence, deadline: float, state: str = "pending", reason: str | None = None):
        self.occurrence, self.deadline, self.state, self.reason = occurrence, deadline, state, reason

    def claimed(self) -> None:
        self.state = "claimed"

    def failed(self, reason: str) -> None:
        if self.state == "pending":
            self.state, self.reason = "failed", reason

    def __repr__(self) -> str:
        return f"Ticket({self.occurrence.job} @{self.occurrence.period_at:.0f}, {self.state})"


@dataclass
class LiveRun:
    """A run in flight on this node (between its claim and its closed row)."""

    run_id: int
    job: str
    occurrence: Occurrence
    claimed_at: float = field(default_factory=time.time)
    started_at: float | None = None     # set when the body starts
    greenlet: Any = None                # the run greenlet


@dataclass
class Runtime:
    pool: Pool
    node: str
    cfg: Config
    specs: dict[str, JobSpec]
    shutdown: Shutdown = field(default_factory=Shutdown)
    flags: dict[str, bool] = field(default_factory=dict)   # the flags table as last read
    runs: dict[int, LiveRun] = field(default_factory=dict)
    provider: Any = None
    cache: Any = None
    matches: Any = None        # the MatchPipeline (actors/matches.py), set by the tree
    # Whether this node leads the match pipeline (goald/db/cluster.py Leadership.ensure); a single
    # goald without a leadership (tests) always does.
    leader: Callable[[], bool] = lambda: True

    @property
    def heartbeat_s(self) -> float:
        return self.cfg["jobs.heartbeat_s"]

    @property
    def stale_after_s(self) -> float:
        return stale_after(self.cfg)

    @property
    def grace_s(self) -> float:
        return self.cfg["jobs.grace_s"]

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

    def runs_of(self, job: str) -> list[LiveRun]:
        return [r for r in self.runs.values() if r.job == job]
