"""Clock: computes every job's due occurrences, tells the job actors, and makes sure each one ends
up with its ledger row; pings the systemd watchdog.

Helper greenlets owned by the clock actor, each linked (if one dies the clock crashes and its
supervisor restarts it; /health/actors shows it meanwhile):
- the tick loop: sleeps until the earliest due occurrence minus CLAIM_LEAD_S (absolute targets from
  actors.schedule, so it never drifts), then tells the job's actor `Due(ticket)`. A tick found late
  is still dispatched while within `jobs.grace_s`; beyond it the occurrence is missed. After a pause
  only the latest due occurrence of a job may run: the older ones are missed (no catch-up burst);
- the reaper (x.600 s each second): every dispatched occurrence has a `Ticket` (actors/runtime.py).
  Once a ticket's grace period has passed and it was not claimed, whatever the reason (the job's
  actor was restarting or died with the message in its inbox, the claim failed because the
  database was unreachable, the tick was late), the reaper writes its `missed` row with that
  reason, many in one statement, ON CONFLICT DO NOTHING (a period another instance ran keeps its
  row). If the database is down the tickets wait in memory (up to MISSED_CAP) with the offsets in
  force when they fell, and are written as soon as it answers again;
- the flag poller: re-reads the flags table every `jobs.flag_poll_s` (at x.400 s, so its
  connection never meets a job's at a whole second); a changed stagger flag
  re-plans the affected jobs at once (no restart). An offset change never skips or repeats a
  period: the period already planned keeps its old due time if the new one is already past;
- the GC pacer (actors/gc_pacer.py): Python's cyclic collector runs at x.300 s, away from job
  starts, instead of whenever allocations trigger it;
- the watchdog: every half WatchdogSec, checks that the job actors are alive or being restarted
  by their supervisor and that the tick loop is alive, and only then sends WATCHDOG=1.
At start it records the occurrences missed while goald was down (`jobs.missed_lookback_s` back)
and logs `Job stagger enabled` / `Job stagger disabled`. Ledger writes happen in the reaper, so the
tick loop never waits on the database. Whether a job is enabled is decided in the claim, from the
flags table itself (see actors/ledger.py), so every instance decides alike.
"""
from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass

import gevent
import gevent.event
import pykka

from goald import flags as flagnames, logs, metrics
from goald.actors import gc_pacer, ledger
from goald.actors.base import SupervisedActor
from goald.actors.job_actor import CLAIM_LEAD_S, Due
from goald.actors.ledger import Occurrence
from goald.actors.runtime import Runtime, Ticket
from goald.actors.schedule import Schedule, next_at_phase

MISSED_CAP = 100_000       # occurrences waiting for their missed rows (a long database outage)
REAP_PHASE_S = 0.6         # the reaper runs at x.600 s: after the GC pacer, before the next claims
FLAG_PHASE_S = 0.4         # flag polls at x.400 s: off whole seconds, where jobs hold connections
REAP_BATCH = 5000
NOT_CLAIMED = ("not claimed within the grace period of {grace:g}s (the job's actor was restarting or "
               "did not get the message, or the claim was still waiting for the database)")


@dataclass
class _Entry:
    job: str
    schedule: Schedule     # the effective schedule now
    next_period: float     # the period dispatched next
    offset_s: int          # ... at this offset (the old one, when a re-plan would have put it in the past)
    staggered: bool
    enabled: bool

    @property
    def due(self) -> float:
        return self.next_period + self.offset_s


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
        self.pending: deque[Ticket] = deque()      # dispatched, grace not yet over
        self.unrecorded: deque[Ticket] = deque()   # grace over, not claimed, row not yet written
        self._wake = gevent.event.Event()
        self._loop_g: gevent.Greenlet | None = None
        self._reap_failing: str | None = None
        self.dispatched = 0
        self.last_tick: float | None = None

    # --- actor greenlet -----------------------------------------------------------------------

    def started(self) -> None:
        self._read_flags()
        self._plan(time.time())
        self._log_stagger()
        self._record_downtime()
        self._loop_g = self.spawn_linked(self._tick_loop)
        self.spawn_linked(self._reap_loop)
        self.spawn_linked(self._flag_loop)
        self.spawn_linked(gc_pacer.run, self._next_dispatch_at)
        if self.notifier is not None and self.notifier.watchdog_interval_s:
            self.spawn_linked(self._watchdog_loop, self.notifier.watchdog_interval_s)

    def stopping(self) -> None:
        gc_pacer.restore()
        try:  # what is already due goes out now; later tickets are left to whoever claims them
            self.reap(time.time(), quiet=True)
        except Exception as e:  # reap() keeps database errors to itself: this is a bug, say so
            logs.event("WARNING", "actor.cleanup_failed", f"{self.name}: last reap failed: {e!r}")
        left = len(self.unrecorded)
        if left:
            logs.event("ERROR", "clock.missed_not_recorded",
                       f"{left} missed occurrence(s) could not be recorded before stopping; the next start "
                       f"records what has no row as missed (goald was not running)", count=left)

    def _next_dispatch_at(self) -> float:
        return min((e.due for e in self.entries.values()), default=time.time() + 60.0) - CLAIM_LEAD_S

    def handle(self, message):
        if isinstance(message, Replan):
            self._plan(time.time(), keep_unchanged=True)
            self._log_stagger()
            return None
        return super().handle(message)

    def plan(self) -> list[dict]:
        """The next occurrence of every job (asked by tests and `/health/actors`)."""
        return [{"job": e.job, "next_due": e.due, "next_period": e.next_period, "enabled": e.enabled,
                 "offset_s": e.schedule.offset_s, "next_offset_s": e.offset_s, "staggered": e.staggered}
                for e in self.entries.values()]

    def describe(self) -> dict:
        return {"kind": self.kind, "pending": len(self.pending), "unrecorded_missed": len(self.unrecorded),
                "dispatched": self.dispatched}

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
            if old is not None and old.schedule.with_offset(0) == sched.with_offset(0):
                # Same periods, another offset: keep the planned period; move it to the new offset
                # unless that is already past (then it keeps its old due time, this once).
                if old.next_period + sched.offset_s - CLAIM_LEAD_S > now:
                    old.offset_s = sched.offset_s
                old.schedule, old.staggered, old.enabled = sched, staggered, enabled
            else:
                first = sched.next_after(now)
                self.entries[name] = _Entry(name, sched, first - sched.offset_s, sched.offset_s, staggered, enabled)
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
        with self.rt.pool.connection(autocommit=True) as conn:
            new = flagnames.read(conn)
        changed = new != self.rt.flags
        self.rt.flags = new
        return changed

    # --- tick loop (helper greenlet) ----------------------------------------------------------

    def _tick_loop(self) -> None:
        while True:
            if self.rt.shutdown.warm.is_set():
                gevent.sleep(1.0)  # stopping: dispatch nothing more (the loop stays, so it is linked)
                continue
            now = time.time()
            due_at = min((e.due for e in self.entries.values()), default=now + 60.0)
            wait = due_at - CLAIM_LEAD_S - now
            if wait > 0:
                self._wake.clear()
                self._wake.wait(min(wait, 60.0))
                continue
            self.last_tick = now
            for entry in list(self.entries.values()):
                if entry.due - CLAIM_LEAD_S <= now:
                    self._fire(entry, now)

    def _fire(self, e: _Entry, now: float) -> None:
        lookback = self.rt.cfg["jobs.missed_lookback_s"]
        current = e.schedule.offset_s
        p, off = e.next_period, e.offset_s
        if now - (p + off) > lookback:  # a pause longer than the look-back: older periods are not recorded
            p, off = e.schedule.period_after(now - lookback - current), current
        older = []
        while True:
            n = e.schedule.period_after(p)
            if n + current - CLAIM_LEAD_S > now:
                break
            older.append(self._occurrence(e, p, off))
            p, off = n, current
        occ = self._occurrence(e, p, off)
        late = now - occ.scheduled_at
        grace = self.rt.grace_s
        e.next_period, e.offset_s = e.schedule.period_after(p), current
        reason = f"the clock was {late:.1f}s late (grace {grace:g}s)"
        for o in older:  # no catch-up burst: only the latest due occurrence may still run
            self._track(Ticket(o, o.scheduled_at + grace, "failed",
                               f"the clock was {now - o.scheduled_at:.1f}s late; after a pause only the "
                               f"latest due occurrence runs"))
        if late > grace:
            self._track(Ticket(occ, occ.scheduled_at + grace, "failed", reason))
        else:
            self._dispatch(occ)

    def _occurrence(self, e: _Entry, period: float, offset_s: int) -> Occurrence:
        return Occurrence(e.job, period, offset_s, e.staggered and offset_s > 0)

    def _dispatch(self, occ: Occurrence) -> None:
        ticket = Ticket(occ, occ.scheduled_at + self.rt.grace_s)
        self._track(ticket)
        ref = self.directory.get(occ.job)
        try:
            if ref is None:
                raise pykka.ActorDeadError(f"{occ.job} is not running")
            ref.tell(Due(ticket))
            self.dispatched += 1
        except pykka.ActorDeadError:
            ticket.failed("the job's actor was not running (it was being restarted)")

    def _track(self, ticket: Ticket) -> None:
        self.pending.append(ticket)

    # --- reaper (helper greenlet) -------------------------------------------------------------

    def _reap_loop(self) -> None:
        while True:
            gevent.sleep(1.0 + REAP_PHASE_S - time.time() % 1.0)
            self.reap(time.time())

    def reap(self, now: float, quiet: bool = False) -> int:
        """Write `missed` rows for the tickets whose grace is over and that nobody claimed;
        returns how many rows were new. Database errors keep the tickets for the next pass."""
        while self.pending and self.pending[0].deadline <= now:
            t = self.pending.popleft()
            if t.state not in ("claimed", "dropped"):
                self.unrecorded.append(t)
        self._cap_unrecorded()
        written = 0
        while self.unrecorded:
            batch = [self.unrecorded[i] for i in range(min(REAP_BATCH, len(self.unrecorded)))]
            missed = [(t.occurrence, t.reason or NOT_CLAIMED.format(grace=self.rt.grace_s)) for t in batch]
            try:
                new = ledger.record_missed(self.rt.pool, missed, node=self.rt.node, timeout_s=2.0)
            except Exception as ex:
                if self._reap_failing is None and not quiet:
                    logs.event("WARNING", "clock.missed_not_recorded",
                               f"{len(self.unrecorded)} missed occurrence(s) wait to be recorded: {ex}",
                               count=len(self.unrecorded), error=str(ex))
                self._reap_failing = str(ex)
                return written
            for _ in batch:
                self.unrecorded.popleft()
            written += sum(new.values())
            self._log_missed(batch, new)
        if self._reap_failing is not None:
            logs.event("INFO", "clock.missed_recorded", f"Missed occurrences recorded again after: "
                       f"{self._reap_failing}", error=self._reap_failing)
            self._reap_failing = None
        return written

    def _log_missed(self, batch: list[Ticket], new: Counter) -> None:
        reasons: dict[str, str] = {}
        for t in batch:
            reasons.setdefault(t.occurrence.job, t.reason or NOT_CLAIMED.format(grace=self.rt.grace_s))
        for job, n in sorted(new.items()):
            metrics.job_missed(job, n)
            logs.event("WARNING", "job.missed", f"Job missed: {job} ({n} occurrence(s); {reasons[job]})",
                       job=job, count=n, reason=reasons[job])

    def _cap_unrecorded(self) -> None:
        extra = len(self.unrecorded) - MISSED_CAP
        if extra > 0:
            for _ in range(extra):
                self.unrecorded.popleft()
            logs.event("ERROR", "clock.missed_dropped",
                       f"{extra} missed occurrence(s) dropped unrecorded: more than {MISSED_CAP} waited",
                       count=extra)

    def _record_downtime(self) -> None:
        """Occurrences that fell while no goald ran: `missed`, from each job's last ledger row."""
        now = time.time()
        try:
            last = ledger.last_periods(self.rt.pool)
        except Exception as ex:
            logs.event("WARNING", "clock.missed_not_recorded", f"could not read the ledger for downtime: {ex}")
            return
        floor = now - self.rt.cfg["jobs.missed_lookback_s"]
        upto = now - self.rt.grace_s
        for e in self.entries.values():
            seen = last.get(e.job)
            if seen is None:
                continue
            off = e.schedule.offset_s
            for p in e.schedule.periods(max(seen.timestamp(), floor - off), upto - off, limit=MISSED_CAP):
                self.unrecorded.append(Ticket(self._occurrence(e, p, off), now, "failed", "goald was not running"))

    # --- flag poller and watchdog (helper greenlets) ------------------------------------------

    def _flag_loop(self) -> None:
        while True:
            now = time.time()
            gevent.sleep(next_at_phase(now, self.rt.cfg["jobs.flag_poll_s"], FLAG_PHASE_S) - now)
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
        # The supervisor answered after handling what it had been told before: a child it has
        # restarted meanwhile is in the directory again.
        dead = [j for j in missing if states.get(j) not in ("restarting", "starting")
                and not (self.directory.get(j) and self.directory[j].is_alive())]
        return f"job actors not alive: {', '.join(dead)}" if dead else None
