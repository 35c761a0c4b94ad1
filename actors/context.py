"""What a job function gets: `run(ctx) -> counts`.

A `JobContext` is built by the job actor for one run and used in that run's body greenlet. It
carries the pool, the effective configuration, a logger bound to the job, the occurrence being
run, and the cancellation check: `ctx.cancelled()` is true once goald is shutting down past its
drain time (or at a second SIGTERM), and `ctx.check_cancelled()` raises `JobCancelled` then,
which the ledger records as `interrupted`. `provider` and `cache` are filled in when goald has
them (later issues); until then they are None.

Every database use of a run goes through the context (`ctx.connection()`, or `ctx.pool`, which
is the same thing for code that takes a pool), so that the run's
- statements carry a statement timeout no longer than what is left of the job's own timeout;
- queries are counted (`queries_issued` in the ledger);
- connection-held time is recorded as spans (`db_spans`: the stretches in which the run held at
  least one connection; `goald kpi` counts concurrent database jobs from them);
- backends are known while it holds them, so that a timed-out run's queries can be cancelled on
  the server (actors/job_actor.py) instead of running on after the run was given up.

A job returns its counts: an int (rows affected), a dict of named counts (their sum is recorded as
rows affected), or None.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator

import gevent.event
from loguru import logger

from goald.actors.ledger import Occurrence
from goald.db.pool import CountingConnection, Pool

MAX_SPANS = 500   # a run with more connection stretches than this has the closest ones merged


class JobCancelled(Exception):
    """Raised by `ctx.check_cancelled()` once the run must stop early (shutdown)."""


class _RunPool:
    """`ctx.pool`: the pool as the run may use it (every checkout goes through the context)."""

    def __init__(self, ctx: "JobContext"):
        self._ctx = ctx

    def connection(self, timeout_s: float | None = None, *, autocommit: bool = False):
        return self._ctx.connection(timeout_s, autocommit=autocommit)

    def stats(self):
        return self._ctx._pool.stats()

    @property
    def timeout_s(self) -> float:
        return self._ctx._pool.timeout_s


class JobContext:
    def __init__(self, *, occurrence: Occurrence, pool: Pool, config: Any, node: str,
                 cancel: gevent.event.Event, deadline: float | None = None, provider: Any = None,
                 cache: Any = None, matches: Any = None, own_runs: Callable[[], list[int]] | None = None):
        """`deadline`: time.time() at which the run times out (bounds its statement timeouts);
        `own_runs`: the ledger ids of the runs in flight on this node (orphan rescue spares them)."""
        self.occurrence = occurrence
        self.job = occurrence.job
        self._pool = pool
        self.pool = _RunPool(self)
        self.config = config
        self.node = node
        self.provider = provider
        self.cache = cache
        self.matches = matches      # the match pipeline's router (actors/matches.py); None outside `goald run`
        self.log = logger.bind(job=occurrence.job, event="job.log")
        self.queries = 0
        self.deadline = deadline
        self.own_runs = own_runs or (lambda: [])
        self._cancel = cancel
        self._held: dict[int, int] = {}     # id(conn) -> backend pid, while checked out
        self._spans: list[int] = []         # flattened [start_us, end_us, ...]
        self._span_start: int | None = None

    @contextlib.contextmanager
    def connection(self, timeout_s: float | None = None, *, autocommit: bool = False) -> Iterator[CountingConnection]:
        """A pooled connection for one unit of work; its queries count towards this run."""
        with self._pool.connection(timeout_s, autocommit=autocommit,
                                   statement_timeout_ms=self._statement_timeout_ms()) as conn:
            if not self._held:
                self._span_start = _now_us()
            self._held[id(conn)] = conn.info.backend_pid
            try:
                yield conn
            finally:
                self.queries += conn.queries
                self._held.pop(id(conn), None)
                if not self._held and self._span_start is not None:
                    self._spans += [self._span_start, max(_now_us(), self._span_start)]
                    self._span_start = None

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled(f"{self.job}: cancelled (goald is shutting down)")

    # --- read by the job actor ----------------------------------------------------------------

    def backend_pids(self) -> list[int]:
        """The server processes of the connections the run holds right now."""
        return [pid for pid in self._held.values() if pid]

    def db_spans(self) -> list[int]:
        """Connection-held stretches so far, flattened [start_us, end_us, ...] (a stretch still
        open ends now), at most MAX_SPANS pairs (the closest neighbours merged)."""
        spans = list(self._spans)
        if self._span_start is not None:
            spans += [self._span_start, max(_now_us(), self._span_start)]
        return _cap(spans, MAX_SPANS)

    def _statement_timeout_ms(self) -> int | None:
        if self.deadline is None:
            return None
        return max(1, int((self.deadline - time.time()) * 1000))


def rows_affected(result: Any) -> int | None:
    """The ledger's rows_affected for what a job returned (see module doc)."""
    if result is None:
        return None
    if isinstance(result, bool):
        return int(result)
    if isinstance(result, int):
        return result
    if isinstance(result, dict):
        return sum(v for v in result.values() if isinstance(v, int) and not isinstance(v, bool))
    return None


def _now_us() -> int:
    return int(time.time() * 1_000_000)


def _cap(spans: list[int], limit: int) -> list[int]:
    """Merge the pairs separated by the smallest gaps until at most `limit` pairs remain."""
    pairs = [[spans[i], spans[i + 1]] for i in range(0, len(spans), 2)]
    while len(pairs) > limit:
        gaps = sorted(range(len(pairs) - 1), key=lambda i: pairs[i + 1][0] - pairs[i][1])
        drop = set(gaps[:len(pairs) - limit])
        merged: list[list[int]] = []
        for i, pair in enumerate(pairs):
            if merged and (i - 1) in drop:
                merged[-1][1] = pair[1]
            else:
                merged.append(list(pair))
        pairs = merged
    return [t for pair in pairs for t in pair]
