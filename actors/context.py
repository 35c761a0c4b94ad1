"""What a job function gets: `run(ctx) -> counts`.

A `JobContext` is built by the job actor for one run and used in that run's greenlet only. It
carries the pool (through `ctx.connection()`, which also counts the queries the run issues for the
ledger), the effective configuration, a logger bound to the job, the occurrence being run, and the
cancellation check: `ctx.cancelled()` is true once goald is shutting down (or the run was cancelled),
and `ctx.check_cancelled()` raises `JobCancelled` then, which the ledger records as `interrupted`.
`provider` and `cache` are filled in when goald has them (later issues); until then they are None.

A job returns its counts: an int (rows affected), a dict of named counts (their sum is recorded as
rows affected), or None.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import gevent.event
from loguru import logger

from goald.actors.ledger import Occurrence
from goald.db.pool import CountingConnection, Pool


class JobCancelled(Exception):
    """Raised by `ctx.check_cancelled()` once the run must stop early (shutdown)."""


class JobContext:
    def __init__(self, *, occurrence: Occurrence, pool: Pool, config: Any, node: str,
                 cancel: gevent.event.Event, provider: Any = None, cache: Any = None):
        self.occurrence = occurrence
        self.job = occurrence.job
        self.pool = pool
        self.config = config
        self.node = node
        self.provider = provider
        self.cache = cache
        self.log = logger.bind(job=occurrence.job, event="job.log")
        self.queries = 0
        self._cancel = cancel

    @contextlib.contextmanager
    def connection(self, timeout_s: float | None = None) -> Iterator[CountingConnection]:
        """A pooled connection for one unit of work; its queries count towards this run."""
        with self.pool.connection(timeout_s) as conn:
            try:
                yield conn
            finally:
                self.queries += conn.queries

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled(f"{self.job}: cancelled (goald is shutting down)")


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
