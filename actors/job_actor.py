"""JobActor: one per job. Owns the job's overlap policy, timeout and run ledger rows.

The clock tells it `Due(occurrence, enabled)` about CLAIM_LEAD_S before the occurrence is due. The
actor greenlet only decides and spawns; each run lives in its own run greenlet (`spawn`), so a
slow job never stops the actor from answering, and a job's exception never reaches pykka:
- disabled → a `skipped_disabled` row;
- otherwise the run greenlet claims the occurrence (actors.ledger.claim: `running`, or
  `skipped_lock` / `skipped_overlap`), sleeps until the absolute scheduled time, then calls
  `spec.run(ctx)` under a gevent.Timeout of `spec.timeout_s`, while a heartbeat greenlet stamps
  started_at after one `jobs.heartbeat_s` and then touches the row every `jobs.heartbeat_s` (a
  run shorter than that writes started_at with its outcome: one connection, not two);
- the row is closed with `succeeded`, `failed` (the exception's type and message), `timed_out`
  (the run greenlet is interrupted; a connection it held is discarded by the pool) or
  `interrupted` (cancelled at shutdown). Log lines keep the seeds' words:
  `Job started: <name> (staggered +15s)`, `Job completed: <name> (46ms)`, `Job failed: <name>: <why>`.
If the ledger itself cannot be written (database down, table gone) the run greenlet tells the
actor `LedgerFailed`, which raises in the actor: it crashes and its supervisor restarts it with
backoff (and escalates a storm). On stop (warm shutdown) the actor waits for its runs until the
shutdown deadline, then cancels them (rows `interrupted`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import gevent
import gevent.event
import greenlet

from goald import logs
from goald.actors import ledger
from goald.actors.base import SupervisedActor
from goald.actors.context import JobCancelled, JobContext, rows_affected
from goald.actors.ledger import Occurrence
from goald.actors.runtime import Runtime

# The clock dispatches this early; the ledger claim (one short transaction, 6 round trips) must
# be done by the scheduled second even on a loaded pool (measured p99 27-45 ms under load).
CLAIM_LEAD_S = 0.25
# libev rounds timer waits up to whole milliseconds: sleep to this much before the target, then
# yield until it (bench/tick_precision.py: first run of an instant 1.5 ms late -> ~0.1 ms).
FINE_WAIT_S = 0.002
HEARTBEAT_PHASE_S = 0.5
FINISH_RETRIES = 5
COLD_GRACE_S = 1.0   # after the shutdown deadline or a second signal, before a run is killed
ERROR_MAX_CHARS = 2000


def _sleep_until(target: float) -> None:
    """Sleep until the absolute time `target`, to well under a millisecond, without blocking the hub."""
    remaining = target - time.time()
    if remaining > FINE_WAIT_S:
        gevent.sleep(remaining - FINE_WAIT_S)
    while time.time() < target:
        gevent.sleep(0)


@dataclass(frozen=True)
class Due:
    occurrence: Occurrence
    enabled: bool = True


@dataclass(frozen=True)
class LedgerFailed:
    error: str


class LedgerUnavailable(Exception):
    """The run ledger could not be written: the actor crashes so that its supervisor backs off."""


class JobTimedOut(Exception):
    pass


class JobActor(SupervisedActor):
    kind = "job"

    def __init__(self, *, name: str, parent, job: str, runtime: Runtime):
        super().__init__(name=name, parent=parent)
        self.job = job
        self.rt = runtime
        self.runs: dict[float, gevent.Greenlet] = {}   # scheduled_at → run greenlet
        self.last_outcome: str | None = None

    # --- actor greenlet -----------------------------------------------------------------------

    def handle(self, message):
        if isinstance(message, Due):
            return self._on_due(message)
        if isinstance(message, LedgerFailed):
            raise LedgerUnavailable(f"{self.job}: the run ledger cannot be written: {message.error}")
        return super().handle(message)

    def _on_due(self, due: Due) -> None:
        occ = due.occurrence
        if not due.enabled:
            self.spawn(self._record_disabled, occ)
            return
        if self.rt.shutdown.warm.is_set():
            return  # not dispatched by a stopping clock; nothing was claimed
        self.runs = {k: g for k, g in self.runs.items() if not g.dead}
        self.runs[occ.scheduled_at] = self.spawn(self._run, occ)

    def stopping(self) -> None:
        """Warm: wait for running jobs until the shutdown deadline; then cancel them."""
        sd = self.rt.shutdown
        while any(not g.dead for g in self.runs.values()) and not sd.cold.is_set() and sd.remaining_s() > 0:
            sd.cold.wait(min(0.1, sd.remaining_s()))
        alive = [g for g in self.runs.values() if not g.dead]
        if alive:  # ctx.cancelled() is true now: a cooperative job gets a moment to return by itself
            gevent.joinall(alive, timeout=COLD_GRACE_S)
            gevent.killall([g for g in alive if not g.dead], block=True, timeout=5)

    # --- run greenlet -------------------------------------------------------------------------

    def _record_disabled(self, occ: Occurrence) -> None:
        try:
            if ledger.record(self.rt.pool, occ, outcome="skipped_disabled", node=self.rt.node):
                logs.event("INFO", "job.skipped", f"Job skipped: {self.job} (disabled)", job=self.job,
                           outcome="skipped_disabled")
        except Exception as e:
            self._ledger_failed(e)

    def _run(self, occ: Occurrence) -> None:
        spec = self.rt.specs[self.job]
        try:
            claim = ledger.claim(self.rt.pool, occ, node=self.rt.node, overlap=spec.overlap,
                                 stale_after_s=self.rt.stale_after_s,
                                 utilization=self.rt.pool.stats().utilization)
        except Exception as e:
            self._ledger_failed(e)
            return
        if claim.outcome != "running":
            self.last_outcome = claim.outcome
            why = "taken by " if claim.outcome == "skipped_lock" else "previous run still going on "
            logs.event("INFO", "job.skipped", f"Job skipped: {self.job} ({claim.outcome}: {why}{claim.holder})",
                       job=self.job, outcome=claim.outcome, holder=claim.holder)
            return
        try:
            _sleep_until(occ.scheduled_at)
        except greenlet.GreenletExit:
            now = time.time()
            self._finish(claim.run_id, "interrupted", None, now, "cancelled: goald stopped before the run started",
                         None, None)
            return
        self._execute(spec, occ, claim.run_id)

    def _execute(self, spec, occ: Occurrence, run_id: int) -> None:
        started = time.time()
        # The start line is written from the loop's next turn: runs due at the same instant then
        # start one after the other without each waiting for the others' log lines.
        gevent.get_hub().loop.run_callback(self._log_started, occ, started)
        ctx = JobContext(occurrence=occ, pool=self.rt.pool, config=self.rt.cfg, node=self.rt.node,
                         cancel=self.rt.shutdown.cancel, provider=self.rt.provider, cache=self.rt.cache)
        stop_beat = gevent.event.Event()
        beat = gevent.spawn(self._heartbeat, run_id, started, stop_beat)
        result, error = None, None
        timeout = gevent.Timeout(spec.timeout_s, JobTimedOut(f"timed out after {spec.timeout_s:g}s"))
        timeout.start()
        try:
            result = spec.run(ctx)
            outcome = "succeeded"
        except JobTimedOut as e:
            outcome, error = "timed_out", str(e)
        except JobCancelled as e:
            outcome, error = "interrupted", str(e)
        except greenlet.GreenletExit:
            outcome, error = "interrupted", "cancelled: goald stopped before the run finished"
        except Exception as e:
            outcome, error = "failed", f"{type(e).__name__}: {e}"[:ERROR_MAX_CHARS]
        finally:
            timeout.close()
        finished = time.time()
        stop_beat.set()  # let a beat in flight finish its query: killing it would cost a connection
        beat.join(timeout=self.rt.pool.timeout_s)
        if not beat.dead:
            beat.kill(block=False)
        self.last_outcome = outcome
        self._finish(run_id, outcome, started, finished, error, rows_affected(result), ctx.queries)
        self._log_outcome(outcome, started, finished, error)

    def _log_started(self, occ: Occurrence, started: float) -> None:
        stagger = f" (staggered +{occ.offset_s}s)" if occ.staggered and occ.offset_s else ""
        logs.event("INFO", "job.started", f"Job started: {self.job}{stagger}", job=self.job,
                   scheduled_at=occ.scheduled_at, offset_s=occ.offset_s, staggered=occ.staggered,
                   late_ms=round((started - occ.scheduled_at) * 1000, 2))

    def _heartbeat(self, run_id: int, started: float, stop: gevent.event.Event) -> None:
        """First beat after one interval (a short run never takes a second connection for it):
        it stamps started_at, so a long run shows as started in the ledger while it goes on."""
        try:
            # Runs start on whole seconds, and so do other jobs: beat half a second off them, so
            # a long run's heartbeat never takes a connection in another job's starting burst.
            if stop.wait(self.rt.heartbeat_s + HEARTBEAT_PHASE_S):
                return
            ledger.mark_started(self.rt.pool, run_id, started)
            while not stop.wait(self.rt.heartbeat_s):
                ledger.heartbeat(self.rt.pool, [run_id])
        except Exception as e:  # a missed beat is not fatal: rescue only acts after 3 of them
            logs.event("WARNING", "job.heartbeat_failed", f"{self.job}: heartbeat not written: {e}", job=self.job)

    def _finish(self, run_id, outcome, started, finished, error, rows, queries) -> None:
        for attempt in range(FINISH_RETRIES):
            try:
                if not ledger.finish(self.rt.pool, run_id, outcome=outcome, started_at=started,
                                     finished_at=finished, error=error, rows_affected=rows, queries_issued=queries):
                    logs.event("WARNING", "job.rescued_meanwhile",
                               f"{self.job}: run {run_id} had been marked interrupted (no heartbeat); "
                               f"recorded its real outcome {outcome}", job=self.job, run_id=run_id)
                return
            except greenlet.GreenletExit:
                continue  # killed while closing the row at shutdown: still try to write it
            except Exception as e:
                if attempt == FINISH_RETRIES - 1:
                    self._ledger_failed(e)
                    return
                gevent.sleep(0.2 * 2 ** attempt)

    def _log_outcome(self, outcome: str, started: float, finished: float, error: str | None) -> None:
        ms = round((finished - started) * 1000)
        if outcome == "succeeded":
            logs.event("INFO", "job.completed", f"Job completed: {self.job} ({ms}ms)", job=self.job, duration_ms=ms)
        elif outcome == "interrupted":
            logs.event("WARNING", "job.interrupted", f"Job interrupted: {self.job}: {error}", job=self.job,
                       duration_ms=ms)
        else:
            logs.event("ERROR", "job.failed", f"Job failed: {self.job}: {error}", job=self.job, outcome=outcome,
                       duration_ms=ms, error=error)

    def _ledger_failed(self, e: Exception) -> None:
        logs.event("ERROR", "job.ledger_failed", f"Job failed: {self.job}: run ledger unavailable: {e}",
                   job=self.job, error=str(e))
        try:
            self.actor_ref.tell(LedgerFailed(f"{type(e).__name__}: {e}"))
        except Exception:
            pass
