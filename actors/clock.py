"""Clock: computes every job's due occurrences and tells the job actors; pings the systemd watchdog.

Runs three helper greenlets owned by the clock actor:
- the tick loop: sleeps until the earliest due occurrence minus CLAIM_LEAD_S (absolute targets from
  actors.schedule, so it never drifts), then dispatches `Due` to the job's actor. A tick found late
  is still dispatched while within `jobs.grace_s`; beyond it the occurrence is recorded `missed`.
  After a pause only the latest due occurrence of a job may run: the older ones are recorded
  `missed` in one statement (no catch-up burst). Disabled jobs are dispatched with enabled=False so
  their actor records `skipped_disabled`;
- the flag poller: re-reads the flags table every `jobs.flag_poll_s`; a changed stagger or enable
  flag re-plans the affected jobs at once (no restart);
- the GC pacer (actors/gc_pacer.py): Python's cyclic collector runs at x.300 s, away from job
  starts, instead of whenever allocations trigger it;
- the watchdog: every half WatchdogSec, checks that its children (the job actors) are alive or being
  restarted by their supervisor and that the tick loop is alive, and only then sends WATCHDOG=1.
At start it records the occurrences missed while goald was down (`jobs.missed_lookback_s` back) and
logs `Job stagger enabled` / `Job stagger disabled`. Ledger writes happen in spawned greenlets, so
the tick loop never waits on the database. An exception in a helper greenlet is logged and that
greenlet ends; the watchdog then stops pinging (the loop) or the actor crashes (see `_guarded`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import gevent
import gevent.event
import pykka

from goald import flags as flagnames, logs
from goald.actors import gc_pacer, ledger
from goald.actors.base import SupervisedActor
from goald.actors.job_actor import CLAIM_LEAD_S, Due
from goald.actors.ledger import Occurrence
from goald.actors.runtime import Runtime
from goald.actors.schedule import Schedule

MISSED_CAP = 10000


@dataclass
class _Entry:
    job: str
    schedule: Schedule
    next_due: float
    enabled: bool
    staggered: bool


@dataclass(frozen=True)
class Replan:
    """Told by the daemon after a reload (catalog or settings changed)."""


class Clock(SupervisedActor):
    kind = "clock"

    def __init__(self, *, name: str, parent, runtime: Runtime, directory: dict, jobs_supervisor=None,
                 notifier=None):
        """`jobs_supervisor`: the job supervisor's ref, or a callable returning the current one
        (it changes when the root restarts it)."""
        super().__init__(name=name, parent=parent)
        self.rt = runtime
        self.directory = directory
        self.jobs_supervisor = jobs_supervisor
        self.notifier = notifier
        self.entries: dict[str, _Entry] = {}
        self._wake = gevent.event.Event()
        self._loop_g: gevent.Greenlet | None = None
        self.dispatched = 0
        self.last_tick: float | None = None

    # --- actor greenlet -----------------------------------------------------------------------

    def started(self) -> None:
        self._read_flags()
        self._plan(time.time())
        self._log_stagger()
        self._record_downtime()
        self._loop_g = self.spawn(self._tick_loop)
        self.spawn(self._flag_loop)
        self.spawn(gc_pacer.run, self._next_dispatch_at)
        if self.notifier is not None and self.notifier.watchdog_interval_s:
            self.spawn(self._watchdog_loop, self.notifier.watchdog_interval_s)

    def stopping(self) -> None:
        gc_pacer.restore()

    def _next_dispatch_at(self) -> float:
        return min((e.next_due for e in self.entries.values()), default=time.time() + 60.0) - CLAIM_LEAD_S

    def handle(self, message):
        if isinstance(message, Replan):
            self._plan(time.time(), keep_unchanged=True)
            self._log_stagger()
            return None
        return super().handle(message)

    def plan(self) -> list[dict]:
        """The next occurrence of every job (asked by tests and `/health/actors`)."""
        return [{"job": e.job, "next_due": e.next_due, "enabled": e.enabled, "offset_s": e.schedule.offset_s,
                 "staggered": e.staggered} for e in self.entries.values()]

    # --- planning -----------------------------------------------------------------------------

    def _plan(self, now: float, keep_unchanged: bool = False) -> list[str]:
        """(Re)compute each job's effective schedule; returns the jobs whose plan changed."""
        changed = []
        stagger = self.rt.stagger_enabled()
        for name in sorted(self.rt.specs):
            sched = self.rt.effective_schedule(name)
            enabled = self.rt.job_enabled(name)
            staggered = stagger and self.rt.job_stagger(name) and sched.offset_s > 0
            old = self.entries.get(name)
            if keep_unchanged and old is not None and old.schedule == sched:
                if old.enabled != enabled:
                    old.enabled = enabled
                    changed.append(name)
                continue
            self.entries[name] = _Entry(name, sched, sched.next_after(now),
                                        enabled, staggered)
            changed.append(name)
        for name in set(self.entries) - set(self.rt.specs):
            del self.entries[name]
        self._wake.set()
        return changed

    def _log_stagger(self) -> None:
        if self.rt.stagger_enabled():
            offsets = ", ".join(f"{e.job} +{e.schedule.offset_s}s" for e in self.entries.values())
            logs.event("INFO", "clock.stagger", f"Job stagger enabled ({offsets})", stagger=True)
        else:
            logs.event("INFO", "clock.stagger", "Job stagger disabled", stagger=False)

    def _read_flags(self) -> bool:
        with self.rt.pool.connection() as conn:
            new = flagnames.read(conn)
        changed = new != self.rt.flags
        self.rt.flags = new
        return changed

    # --- tick loop (helper greenlet) ----------------------------------------------------------

    def _tick_loop(self) -> None:
        while not self.rt.shutdown.warm.is_set():
            now = time.time()
            due_at = min((e.next_due for e in self.entries.values()), default=now + 60.0)
            wait = due_at - CLAIM_LEAD_S - now
            if wait > 0:
                self._wake.clear()
                self._wake.wait(wait)
                continue
            self.last_tick = now
            for entry in list(self.entries.values()):
                if entry.next_due - CLAIM_LEAD_S <= now:
                    self._fire(entry, now)

    def _fire(self, e: _Entry, now: float) -> None:
        t = e.next_due
        lookback = self.rt.cfg["jobs.missed_lookback_s"]
        if now - t > lookback:
            t = e.schedule.next_after(now - lookback)
        missed = []
        while True:
            n = e.schedule.next_after(t)
            if n - CLAIM_LEAD_S > now:
                break
            missed.append(t)
            t = n
        late = now - t
        grace = self.rt.cfg["jobs.grace_s"]
        if late > grace:
            missed.append(t)
        else:
            self._dispatch(e, t)
        e.next_due = e.schedule.next_after(t)
        if missed:
            self.spawn(self._record_missed, e, missed[-MISSED_CAP:], late)

    def _dispatch(self, e: _Entry, t: float) -> None:
        occ = Occurrence(e.job, t, e.schedule.offset_s, e.staggered)
        ref = self.directory.get(e.job)
        try:
            if ref is None:
                raise pykka.ActorDeadError(f"{e.job} is not running")
            ref.tell(Due(occ, e.enabled))
            self.dispatched += 1
        except pykka.ActorDeadError:
            self.spawn(self._record_missed, e, [t], 0.0, "the job's actor was being restarted")

    def _record_missed(self, e: _Entry, times: list[float], late: float, reason: str | None = None) -> None:
        reason = reason or f"the clock was {late:.1f}s late (grace {self.rt.cfg['jobs.grace_s']:g}s)"
        try:
            n = ledger.record_missed(self.rt.pool, e.job, times, node=self.rt.node, offset_s=e.schedule.offset_s,
                                     staggered=e.staggered, reason=reason)
        except Exception as ex:
            logs.event("ERROR", "clock.missed_not_recorded",
                       f"{e.job}: {len(times)} missed occurrence(s) could not be recorded: {ex}", job=e.job)
            return
        if n:
            logs.event("WARNING", "job.missed", f"Job missed: {e.job} ({n} occurrence(s); {reason})",
                       job=e.job, count=n, reason=reason)

    def _record_downtime(self) -> None:
        """Occurrences that fell while no goald ran: `missed`, from each job's last ledger row."""
        now = time.time()
        try:
            last = ledger.last_scheduled(self.rt.pool)
        except Exception as ex:
            logs.event("WARNING", "clock.missed_not_recorded", f"could not read the ledger for downtime: {ex}")
            return
        floor = now - self.rt.cfg["jobs.missed_lookback_s"]
        upto = now - self.rt.cfg["jobs.grace_s"]
        for e in self.entries.values():
            seen = last.get(e.job)
            if seen is None:
                continue
            times = e.schedule.occurrences(max(seen.timestamp(), floor), upto, limit=MISSED_CAP)
            if times:
                self.spawn(self._record_missed, e, times, 0.0, "goald was not running")

    # --- flag poller and watchdog (helper greenlets) ------------------------------------------

    def _flag_loop(self) -> None:
        while True:
            gevent.sleep(self.rt.cfg["jobs.flag_poll_s"])
            try:
                stagger_before = self.rt.stagger_enabled()
                if self._read_flags():
                    changed = self._plan(time.time(), keep_unchanged=True)
                    if changed:
                        logs.event("INFO", "clock.replanned", f"Flags changed: re-planned {', '.join(changed)}",
                                   jobs=changed)
                    if self.rt.stagger_enabled() != stagger_before:
                        self._log_stagger()
            except Exception as ex:
                logs.event("WARNING", "clock.flags_unreadable", f"Flags not re-read: {ex}")

    def _watchdog_loop(self, interval_s: float) -> None:
        while True:
            problem = self.check_children()
            if problem is None:
                self.notifier.watchdog()
            else:
                logs.event("ERROR", "clock.watchdog_withheld", f"Watchdog ping withheld: {problem}", problem=problem)
            gevent.sleep(interval_s)

    def check_children(self) -> str | None:
        """None when the tick loop and every job actor are alive (or being restarted); else why not."""
        if self._loop_g is None or self._loop_g.dead:
            return "the clock's tick loop is not running"
        missing = [j for j in self.rt.specs if not (self.directory.get(j) and self.directory[j].is_alive())]
        if not missing:
            return None
        if self.jobs_supervisor is None:
            return f"job actors not alive: {', '.join(missing)}"
        sup = self.jobs_supervisor() if callable(self.jobs_supervisor) else self.jobs_supervisor
        if sup is None:
            return f"job actors not alive and no job supervisor: {', '.join(missing)}"
        try:
            states = sup.proxy().child_states().get(timeout=2.0)
        except (pykka.ActorDeadError, pykka.Timeout):
            return "the job supervisor is not answering"
        dead = [j for j in missing if states.get(j) not in ("restarting", "starting")]
        return f"job actors not alive: {', '.join(dead)}" if dead else None
