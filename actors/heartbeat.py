"""Heartbeat: keeps the ledger rows of this node's running runs fresh, one statement for all.

A `running` row whose heartbeat is older than `Runtime.stale_after_s` (three beats plus one pool
wait) is taken for an orphan of a dead instance: `orphan_rescue` marks it `interrupted`, and the
overlap check stops counting it. So every `jobs.heartbeat_s`, at x.500 s (runs start on whole
seconds, and so do other jobs' claims' neighbours: a beat never lands in a starting burst), the
heartbeat touches every run in `rt.runs` that was claimed at least one beat ago (a short run never
costs a beat) in one UPDATE, which also stamps `started_at` of runs that have started.

A failed beat is logged and the next one is tried on time: one bad beat (a pool timeout, a dropped
connection) must not end the beating, or 15 s later a live run would be rescued as an orphan and
a second copy could start. `run_forever()` is hosted by a ServiceActor (goald/tree.py); it raises
nothing.
"""
from __future__ import annotations

import time

import gevent

from goald import logs
from goald.actors import ledger
from goald.actors.runtime import Runtime
from goald.actors.schedule import next_at_phase

PHASE_S = 0.5


class Heartbeat:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.beats = 0
        self.failures = 0          # beats failed in a row
        self.last_error: str | None = None

    def next_beat(self, now: float) -> float:
        """The first x.500 s instant at least one heartbeat interval from `now`."""
        return next_at_phase(now, self.rt.heartbeat_s, PHASE_S)

    def beat_once(self, now: float) -> int:
        due = [(r.run_id, r.started_at) for r in list(self.rt.runs.values())
               if now - r.claimed_at >= self.rt.heartbeat_s]
        if not due:
            return 0
        try:
            n = ledger.heartbeat(self.rt.pool, due, timeout_s=self.rt.pool.timeout_s)
        except Exception as e:  # logged; the next beat is tried on time
            self.failures += 1
            self.last_error = f"{type(e).__name__}: {e}"
            logs.event("WARNING", "job.heartbeat_failed",
                       f"Heartbeat not written for {len(due)} run(s) ({self.failures} in a row): {e}",
                       runs=len(due), failures=self.failures, error=str(e))
            return 0
        if self.failures:
            logs.event("INFO", "job.heartbeat_recovered", f"Heartbeat written again after {self.failures} "
                       f"failed beat(s)", failures=self.failures)
        self.failures, self.last_error = 0, None
        self.beats += 1
        return n

    def run_forever(self) -> None:
        while True:
            target = self.next_beat(time.time())
            gevent.sleep(max(0.0, target - time.time()))
            self.beat_once(time.time())
