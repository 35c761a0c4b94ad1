"""JobActor: one per job. Owns the job's claims, runs, timeout and the closing of its ledger rows.

The clock tells it `Due(ticket)` about CLAIM_LEAD_S before the occurrence is due. The actor
greenlet only decides and spawns; each run lives in its own run greenlet, registered in the
runtime (`rt.runs`), not owned by the actor: a job actor restarted by its supervisor leaves its
runs going, and only a shutdown waits for them and then cancels them. In the run greenlet:
- the claim (actors.ledger.claim: `running`, `skipped_disabled`, `skipped_overlap` or
  `skipped_lock`). Transient database trouble (a pool timeout, a refused or dropped connection)
  is retried until the occurrence's grace period is over; then the ticket says "database
  unavailable" and the clock's reaper writes the `missed` row once the database answers. Any
  claim that committed marks the ticket claimed;
- then it sleeps until the absolute scheduled time and runs `spec.run(ctx)` in a body greenlet.
  At `spec.timeout_s` the body is killed with `JobTimedOut`, a BaseException, so an
  `except Exception` in the job cannot swallow it; the queries the run still had on the server
  are cancelled (`pg_cancel_backend` from another connection; the interrupted connection itself is
  discarded by the pool); a body that ignores even that is abandoned, and the row says so;
- the row is closed with `succeeded`, `failed` (the exception's type and message), `timed_out` or
  `interrupted` (cancelled at shutdown), with counts, queries and connection-held spans. Closing is
  retried through transient trouble until it lands (or goald stops; then orphan rescue marks it).
The node's heartbeat (actors/heartbeat.py) keeps every running row fresh meanwhile. Log lines keep
the seeds' words: `Job started: <name> (staggered +15s)`, `Job completed: <name> (46ms)`,
`Job failed: <name>: <why>`. Each outcome (a skip's too), duration and start lateness is counted
for /metrics (goald/metrics.py) where it is logged or closed.
A ledger that cannot be written for a reason a retry cannot fix (the table is gone, the schema is
not migrated) makes the run greenlet tell the actor `LedgerFailed`, which raises in the actor: it
crashes and its supervisor restarts it with backoff (and escalates a storm, ending in exit 6).
On stop during shutdown the actor waits for its runs until the shutdown deadline, then cancels
them (rows `interrupted`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import gevent
import gevent.event
import greenlet

from goald import flags as flagnames, logs, metrics
from goald.actors import ledger
from goald.actors.base import SupervisedActor
from goald.actors.context import JobCancelled, JobContext, rows_affected
from goald.actors.ledger import Occurrence
from goald.actors.runtime import LiveRun, Runtime, Ticket
from goald.db.pool import transient

# The clock dispatches this early; the ledger claim (one round trip) must be done by the
# scheduled second even on a loaded pool.
CLAIM_LEAD_S = 0.25
# libev rounds timer waits up to whole milliseconds: sleep to this much before the target, then
# yield until it (bench/tick_precision.py: first run of an instant 1.5 ms late -> ~0.1 ms).
FINE_WAIT_S = 0.002
COLD_GRACE_S = 1.0   # after the shutdown deadline or a second signal, before a run is killed
KILL_GRACE_S = 1.0   # a timed-out body gets this long to die of JobTimedOut before it is abandoned
ABANDONED_KILLS = 60  # an abandoned body is killed again every KILL_GRACE_S, this many times
ERROR_MAX_CHARS = 2000
RETRY_FIRST_S, RETRY_MAX_S = 0.1, 5.0
FINISH_KILLS_TOLERATED = 3
# Failures of jobs with log_runs = "DEBUG" (pollers): one line a minute per job and error.
_QUIET_FAILURES = logs.Sampler(time.monotonic, 60.0)


def _sleep_until(target: float) -> None:
    """Sleep until the absolute time `target`, to well under a millisecond, without blocking the hub."""
    remaining = target - time.time()
    if remaining > FINE_WAIT_S:
        gevent.sleep(remaining - FINE_WAIT_S)
    while time.time() < target:
        gevent.sleep(0)


@dataclass(frozen=True)
class Due:
    ticket: Ticket

    @property
    def occurrence(self) -> Occurrence:
        return self.ticket.occurrence


@dataclass(frozen=True)
class LedgerFailed:
    error: str


class LedgerUnavailable(Exception):
    """The run ledger cannot be written for good: the actor crashes so that its supervisor backs off."""


class JobTimedOut(BaseException):
    """Raised in a job's body at its timeout. A BaseException: `except Exception` cannot catch it."""


class JobActor(SupervisedActor):
    kind = "job"

    def __init__(self, *, name: str, parent, job: str, runtime: Runtime):
        super().__init__(name=name, parent=parent)
        self.job = job
        self.rt = runtime

    # --- actor greenlet -----------------------------------------------------------------------

    def handle(self, message):
        if isinstance(message, Due):
            return self._on_due(message.ticket)
        if isinstance(message, LedgerFailed):
            raise LedgerUnavailable(f"{self.job}: the run ledger cannot be written: {message.error}")
        return super().handle(message)

    def _on_due(self, ticket: Ticket) -> None:
        if self.rt.shutdown.warm.is_set():
            ticket.state = "dropped"  # a stopping goald claims nothing; the next start records it
            return
        gevent.spawn(self._run, ticket)

    def stopping(self) -> None:
        """At shutdown: wait for this job's runs until the deadline, then cancel them. A stop that
        is not a shutdown (a restart by the supervisor) leaves them running."""
        sd = self.rt.shutdown
        if not sd.warm.is_set():
            return
        while self._alive_runs() and not sd.cold.is_set() and sd.remaining_s() > 0:
            sd.cold.wait(min(0.1, sd.remaining_s()))
        alive = self._alive_runs()
        if alive:  # ctx.cancelled() is true now: a cooperative job gets a moment to return by itself
            gevent.joinall(alive, timeout=COLD_GRACE_S)
            gevent.killall([g for g in alive if not g.dead], block=True, timeout=KILL_GRACE_S + 2)

    def describe(self) -> dict:
        return {"kind": self.kind, "running": len(self._alive_runs())}

    def _alive_runs(self) -> list[gevent.Greenlet]:
        return [r.greenlet for r in self.rt.runs_of(self.job) if r.greenlet is not None and not r.greenlet.dead]

    # --- run greenlet -------------------------------------------------------------------------

    def _run(self, ticket: Ticket) -> None:
        occ = ticket.occurrence
        if self.rt.specs[self.job].leader_only and not self.rt.leader():
            # Another node leads the match pipeline and runs it; should none, the reaper records the
            # period `missed` with this reason (ON CONFLICT DO NOTHING: the leader's row stays).
            ticket.failed("no node led the match pipeline (this node is not its leader)")
            return
        claim = self._claim(ticket)
        if claim is None:
            return
        ticket.claimed()
        if claim.outcome != "running":
            self._log_skip(claim)
            return
        live = LiveRun(claim.run_id, self.job, occ, greenlet=gevent.getcurrent())
        self.rt.runs[claim.run_id] = live
        try:
            self._execute(occ, live)
        finally:
            self.rt.runs.pop(claim.run_id, None)

    def _claim(self, ticket: Ticket) -> ledger.Claim | None:
        """Claim the occurrence, retrying transient trouble until its grace period is over."""
        occ = ticket.occurrence
        spec = self.rt.specs[self.job]
        delay, first_error = RETRY_FIRST_S, None
        while True:
            left = ticket.deadline - time.time()
            try:
                return ledger.claim(self.rt.pool, occ, node=self.rt.node, overlap=spec.overlap,
                                    stale_after_s=self.rt.stale_after_s, utilization=self.rt.pool.stats().utilization,
                                    flag=flagnames.job_enabled(self.job), enabled_default=spec.enabled,
                                    timeout_s=max(0.1, min(self.rt.pool.timeout_s, left)))
            except Exception as e:
                if not transient(e):
                    ticket.failed(f"run ledger unavailable: {type(e).__name__}: {e}")
                    self._ledger_failed(e)
                    return None
                if first_error is None:
                    first_error = e
                    logs.event("WARNING", "job.claim_retrying",
                               f"{self.job}: claim failed, retrying until the grace period is over: {e}",
                               job=self.job, error=str(e))
                left = ticket.deadline - time.time()
                if left <= 0 or self.rt.shutdown.warm.is_set():
                    ticket.failed(f"database unavailable: {_first_line(first_error)}")
                    return None
                gevent.sleep(min(delay, left))
                delay = min(delay * 2, RETRY_MAX_S)

    def _log_skip(self, claim: ledger.Claim) -> None:
        if claim.outcome == "skipped_disabled":
            msg = f"Job skipped: {self.job} (disabled)"
        elif claim.outcome == "skipped_overlap":
            msg = f"Job skipped: {self.job} (skipped_overlap: previous run still going on {claim.holder})"
        elif claim.existing == "missed":   # the reaper (here or elsewhere) was first: the claim came too late
            msg = f"Job skipped: {self.job} (skipped_lock: already recorded missed by {claim.holder})"
        else:
            msg = f"Job skipped: {self.job} (skipped_lock: taken by {claim.holder})"
        logs.event(self._level(), "job.skipped", msg, job=self.job, outcome=claim.outcome, holder=claim.holder,
                   existing=claim.existing)
        metrics.job_outcome(self.job, claim.outcome)

    def _execute(self, occ: Occurrence, live: LiveRun) -> None:
        """The body greenlet is made now and sleeps to the scheduled second itself, so at that
        instant it runs straight from its own timer: no extra turn of the loop, and none behind
        other runs' log lines (the `Job started` line is queued from the body, after it began)."""
        spec = self.rt.specs[self.job]
        ctx = JobContext(occurrence=occ, pool=self.rt.pool, config=self.rt.cfg, node=self.rt.node,
                         cancel=self.rt.shutdown.cancel, provider=self.rt.provider, cache=self.rt.cache,
                         matches=self.rt.matches,
                         own_runs=lambda: list(self.rt.runs))
        began = gevent.event.Event()

        def run_body():
            _sleep_until(occ.scheduled_at)
            live.started_at = time.time()
            ctx.deadline = live.started_at + spec.timeout_s
            began.set()
            gevent.get_hub().loop.run_callback(self._log_started, occ, live.started_at)
            return _call(spec.run, ctx)

        body = gevent.spawn(run_body)
        outcome, result, error = None, None, None
        try:
            gevent.wait([began, body], count=1)
            if not began.is_set():   # the body was killed before its second came
                raise greenlet.GreenletExit()
            body.join(timeout=max(0.0, ctx.deadline - time.time()))
        except greenlet.GreenletExit:  # killed at shutdown: the body goes with it
            if not began.is_set():
                body.kill(block=True, timeout=KILL_GRACE_S)
                self._finish(live.run_id, "interrupted", None, time.time(),
                             "cancelled: goald stopped before the run started", None, None, [])
                return
            outcome, error = "interrupted", "cancelled: goald stopped before the run finished"
            if not self._stop_body(body, ctx, greenlet.GreenletExit):
                error += "; the job ignored the cancellation and was abandoned"
        if outcome is None and not body.ready():
            outcome = "timed_out"
            error = f"timed out after {spec.timeout_s:g}s"
            if not self._stop_body(body, ctx, JobTimedOut(error)):
                error += "; the job ignored the cancellation and was abandoned"
        if outcome is None:
            outcome, result, error = _body_outcome(body)
        started, finished = live.started_at, time.time()
        self._finish(live.run_id, outcome, started, finished, error, rows_affected(result), ctx.queries,
                     ctx.db_spans())
        self._log_outcome(outcome, started, finished, error)

    def _stop_body(self, body: gevent.Greenlet, ctx: JobContext, exc) -> bool:
        """Kill a body that must stop and cancel its server-side queries; True when it died."""
        pids = ctx.backend_pids()          # before the kill: the pool discards those connections
        body.kill(exc, block=True, timeout=KILL_GRACE_S)
        if pids:
            self._cancel_backends(pids)
        if not body.dead:  # it swallowed the kill: keep at it, it must not outlive its run forever
            gevent.spawn(_keep_killing, body, exc)
        return body.dead

    def _cancel_backends(self, pids: list[int]) -> None:
        """The interrupted connections are closed, but a server only notices at its next write:
        without a cancel, a pg_sleep(60) would run on for a minute."""
        try:
            with self.rt.pool.connection(timeout_s=2.0, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_cancel_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
        except Exception as e:
            logs.event("WARNING", "job.cancel_failed",
                       f"{self.job}: could not cancel the timed-out run's queries (backends {pids}): {e}",
                       job=self.job, backends=pids)

    def _log_started(self, occ: Occurrence, started: float) -> None:
        metrics.job_started(self.job, started - occ.scheduled_at)
        stagger = f" (staggered +{occ.offset_s}s)" if occ.staggered and occ.offset_s else ""
        logs.event(self._level(), "job.started", f"Job started: {self.job}{stagger}", job=self.job,
                   scheduled_at=occ.scheduled_at, period_at=occ.period_at, offset_s=occ.offset_s,
                   staggered=occ.staggered, late_ms=round((started - occ.scheduled_at) * 1000, 2))

    def _finish(self, run_id, outcome, started, finished, error, rows, queries, spans) -> None:
        """Close the row; transient trouble is retried until it lands or goald stops for good."""
        metrics.job_outcome(self.job, outcome, started, finished)
        delay, kills, first_error = RETRY_FIRST_S, 0, None
        while True:
            try:
                rescued = not ledger.finish(self.rt.pool, run_id, outcome=outcome, started_at=started,
                                            finished_at=finished, error=error, rows_affected=rows,
                                            queries_issued=queries, db_spans=spans)
                if rescued:
                    logs.event("WARNING", "job.rescued_meanwhile",
                               f"{self.job}: run {run_id} had been marked interrupted (no heartbeat); "
                               f"recorded its real outcome {outcome}", job=self.job, run_id=run_id)
                if first_error is not None:
                    logs.event("INFO", "job.finish_recorded", f"{self.job}: outcome {outcome} recorded after "
                               f"retries", job=self.job, run_id=run_id)
                return
            except greenlet.GreenletExit:
                kills += 1   # killed while closing the row at shutdown: still try to write it
                if kills > FINISH_KILLS_TOLERATED:
                    return
            except Exception as e:
                if not transient(e):
                    self._ledger_failed(e)
                    return
                if first_error is None:
                    first_error = e
                    logs.event("WARNING", "job.finish_retrying",
                               f"{self.job}: outcome {outcome} not recorded yet, retrying: {e}",
                               job=self.job, run_id=run_id, error=str(e))
                if self.rt.shutdown.cold.is_set() or (self.rt.shutdown.warm.is_set()
                                                       and self.rt.shutdown.remaining_s() <= 0):
                    logs.event("ERROR", "job.finish_lost",
                               f"{self.job}: outcome {outcome} of run {run_id} not recorded before stopping "
                               f"({e}); orphan rescue will mark it interrupted", job=self.job, run_id=run_id)
                    return
                gevent.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _log_outcome(self, outcome: str, started: float, finished: float, error: str | None) -> None:
        ms = round((finished - started) * 1000)
        if outcome == "succeeded":
            logs.event(self._level(), "job.completed", f"Job completed: {self.job} ({ms}ms)", job=self.job,
                       duration_ms=ms)
        elif self._level() == "DEBUG":   # a poller: one line a minute per error, with a count
            _QUIET_FAILURES.log("WARNING" if outcome == "interrupted" else "ERROR",
                                "job.interrupted" if outcome == "interrupted" else "job.failed", (self.job, error),
                                f"Job {outcome}: {self.job}: {error}", job=self.job, outcome=outcome,
                                duration_ms=ms, error=error)
        elif outcome == "interrupted":
            logs.event("WARNING", "job.interrupted", f"Job interrupted: {self.job}: {error}", job=self.job,
                       duration_ms=ms)
        else:
            logs.event("ERROR", "job.failed", f"Job failed: {self.job}: {error}", job=self.job, outcome=outcome,
                       duration_ms=ms, error=error)

    def _level(self) -> str:
        spec = self.rt.specs.get(self.job)
        return spec.log_runs if spec is not None else "INFO"

    def _ledger_failed(self, e: Exception) -> None:
        logs.event("ERROR", "job.ledger_failed", f"Job failed: {self.job}: run ledger unavailable: {e}",
                   job=self.job, error=str(e))
        try:
            self.actor_ref.tell(LedgerFailed(f"{type(e).__name__}: {e}"))
        except Exception:
            pass


def _call(fn, ctx):
    """A run's body: (result, None) or (None, exception). Every exception is the run's outcome,
    reported in the ledger and the log, never printed by the gevent hub as a greenlet failure."""
    try:
        return fn(ctx), None
    except BaseException as e:  # noqa: B036 - JobTimedOut and GreenletExit are outcomes too
        return None, e


def _body_outcome(body: gevent.Greenlet) -> tuple[str, object, str | None]:
    """(outcome, result, error) of a body greenlet that ended by itself."""
    result, exc = body.value if isinstance(body.value, tuple) else (None, body.exception)
    if exc is None:
        return "succeeded", result, None
    if isinstance(exc, JobCancelled):
        return "interrupted", None, str(exc)
    if isinstance(exc, greenlet.GreenletExit):
        return "interrupted", None, "cancelled: goald stopped before the run finished"
    return "failed", None, f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:ERROR_MAX_CHARS]


def _keep_killing(body: gevent.Greenlet, exc: BaseException) -> None:
    """An abandoned body (it caught its JobTimedOut or GreenletExit) is killed again every second
    for a minute; its run is already recorded. Runs in a plain greenlet of its own."""
    for _ in range(ABANDONED_KILLS):
        if body.dead:
            return
        body.kill(exc, block=True, timeout=KILL_GRACE_S)
