"""What the operator console may ask of the running daemon (console/admin.py's `ops`).

Part of the composition root: it reads the actor runtime (actors/runtime.py: the catalog, the
flags as last read, the effective schedules) and tells job actors, so that the console itself
never imports actors (the import-linter contract). Methods run in a request's greenlet.

- `jobs(now)`: every job of the catalog with its schedule, effective offset, enabled, stagger,
  next starts and whether it runs only on the match pipeline's leader;
- `run_now(job)`: a `manual` occurrence told to the job's actor as `Due`, so it goes through the
  same claim as a scheduled one (the ledger's per-job lock and UNIQUE (job, period_at): one row,
  one run, whichever node's console asked). Waits up to `RUN_NOW_WAIT_S` for the claim and
  answers what the claim decided.
"""
from __future__ import annotations

import time
from typing import Callable

import gevent

from goald.actors.job_actor import Due
from goald.actors.ledger import Occurrence
from goald.actors.runtime import Runtime, Ticket
from goald.console.admin import RunNowRefused

NEXT_STARTS = 3
RUN_NOW_WAIT_S = 5.0
RUN_NOW_GRACE_S = 30.0
DOCTOR_EVERY_S = 30.0
TIMELINE_EVERY_S = 60.0


class DaemonOps:
    def __init__(self, rt: Runtime, job_ref: Callable[[str], object], doctor: Callable[[], dict] | None = None):
        self.rt = rt
        self.job_ref = job_ref        # name -> the job actor's live ActorRef (the jobs supervisor's directory)
        self._doctor = doctor         # goald/doctor.py run over this process's pool and provider client
        self._doctor_report: tuple[float, dict] | None = None
        self._doctor_refresh: gevent.Greenlet | None = None
        self._timeline: tuple[tuple, float, dict] | None = None

    def doctor(self) -> dict | None:
        """`goald doctor`'s report for this process, at most DOCTOR_EVERY_S old. A stale report is
        answered while a greenlet of its own makes the next (its checks take a few hundred ms);
        only the first request waits for one."""
        if self._doctor is None:
            return None
        report = self._doctor_report
        if report is None or time.monotonic() - report[0] > DOCTOR_EVERY_S:
            if self._doctor_refresh is None or self._doctor_refresh.dead:
                self._doctor_refresh = gevent.spawn(self._make_doctor_report)
            if report is None:
                self._doctor_refresh.join(timeout=30)
                report = self._doctor_report
        return report[1] if report is not None else None

    def _make_doctor_report(self) -> None:
        self._doctor_report = (time.monotonic(), self._doctor())

    def job_names(self) -> list[str]:
        return sorted(self.rt.specs)

    def stagger_enabled(self, flags: dict[str, bool] | None = None) -> bool:
        return self._view(flags).stagger_enabled()

    def stagger_default(self) -> bool:
        """What applies while the stagger flag has no row (jobs.stagger_enabled)."""
        return self.rt.cfg["jobs.stagger_enabled"]

    def _view(self, flags: dict[str, bool] | None) -> Runtime:
        """The runtime as it will be once the clock has read `flags` (the flags table now): a
        change made a moment ago shows at once, not at the clock's next poll."""
        if flags is None:
            return self.rt
        return Runtime(pool=None, node=self.rt.node, cfg=self.rt.cfg, specs=self.rt.specs, flags=flags)

    def jobs(self, now: float, flags: dict[str, bool] | None = None) -> list[dict]:
        rt = self._view(flags)
        rows = []
        for name in sorted(rt.specs):
            spec = rt.specs[name]
            sched = rt.effective_schedule(name)
            rows.append({
                "name": name, "description": spec.description,
                "schedule": spec.schedule.cron or f"every {spec.schedule.every_s}s",
                "catalog_offset_s": spec.schedule.offset_s, "offset_s": sched.offset_s,
                "stagger": rt.job_stagger(name),
                "staggered": rt.stagger_enabled() and rt.job_stagger(name) and sched.offset_s > 0,
                "enabled": rt.job_enabled(name), "enabled_default": spec.enabled,
                "timeout_s": spec.timeout_s, "overlap": spec.overlap, "leader_only": spec.leader_only,
                "next_starts": [_iso(t) for t in sched.occurrences(now, now + 366 * 86400, limit=NEXT_STARTS)],
            })
        return rows

    def match_recent(self, match_id: str) -> dict | None:
        """The last notable updates of a match's actor on this node (None: not tracked here)."""
        pipeline = self.rt.matches
        return pipeline.recent(match_id) if pipeline is not None else None

    def config(self) -> dict:
        """The effective settings with their sources (secrets masked), as `goald config --json`."""
        cfg = self.rt.cfg
        return {"file": str(cfg.path) if cfg.path else None, "settings": cfg.as_rows(),
                "warnings": list(cfg.warnings), "doctor": self.doctor()}

    def timeline(self, now: float, flags: dict[str, bool] | None = None) -> dict:
        """The enabled jobs' start seconds within a minute (effective offsets) and the collisions
        the start-up check would report (actors/schedule.py), for the stagger timeline."""
        from goald.actors.schedule import collisions, is_poller

        enabled = self._view(flags).enabled_schedules()
        key = tuple(sorted((n, s.describe()) for n, s in enabled.items()))
        cached = self._timeline
        if cached is not None and cached[0] == key and now - cached[1] < TIMELINE_EVERY_S:
            return cached[2]
        jobs = []
        for name in sorted(enabled):
            sched = enabled[name]
            if is_poller(sched):
                seconds = sorted({int(t) % 60 for t in sched.occurrences(now, now + 60)})
            else:
                seconds = [sched.offset_s % 60]
            jobs.append({"name": name, "schedule": sched.describe(), "poller": is_poller(sched),
                         "offset_s": sched.offset_s, "seconds": seconds})
        found = collisions(enabled, now)       # 24 h of starts per job: ~0.5 s with the pollers, so kept a while
        plan = {"jobs": jobs, "collisions": [{"first": c.first, "second": c.second,
                                             "second_of_minute": c.second_of_minute, "message": c.describe()}
                                            for c in found]}
        self._timeline = (key, now, plan)
        return plan

    def run_now(self, job: str) -> dict:
        """Ask the job's actor for a manual run; returns {"state", "reason", "period_at"} once the
        claim decided (state `claimed`: the ledger has the row) or the wait ran out (`pending`)."""
        spec = self.rt.specs.get(job)
        if spec is None:
            raise RunNowRefused(f"no job named {job}")
        if self.rt.shutdown.warm.is_set():
            raise RunNowRefused("goald is stopping")
        if spec.leader_only and not self.rt.leader():
            raise RunNowRefused(f"{job} runs only on the node that leads the match pipeline, and this node does "
                                f"not: ask on the leader's console (/api/health says which node leads)")
        ref = self.job_ref(job)
        if ref is None:
            raise RunNowRefused(f"the actor of {job} is not running right now (restarting); try again")
        now = time.time()
        ticket = Ticket(Occurrence(job, now, 0, False, trigger="manual"), deadline=now + RUN_NOW_GRACE_S)
        ref.tell(Due(ticket))
        waited = time.monotonic() + RUN_NOW_WAIT_S
        while ticket.state == "pending" and time.monotonic() < waited:
            gevent.sleep(0.02)
        return {"state": ticket.state, "reason": ticket.reason, "period_at": now}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
