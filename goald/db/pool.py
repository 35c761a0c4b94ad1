"""A gevent-aware PostgreSQL connection pool.

Any greenlet may call `Pool.connection()`. When every connection is busy the caller *waits*
(cooperatively, on a gevent semaphore) up to `timeout_s` and then gets `PoolTimeout`, a message
saying what to do; it never gets psycopg2's `PoolError`. The pool reports active, idle, waiting,
total, max and utilization (`stats()`), counts the queries each checkout issues (`conn.queries`)
and discards a connection whose query was interrupted (gevent.Timeout, GreenletExit, kill) or that
broke, instead of handing it to the next greenlet.

Connections are opened with a connect timeout (enforced here: libpq does not time out an
asynchronous connect under psycogreen), a server-side statement_timeout and application_name.
A checkout may ask for autocommit (a one-statement write then costs one round trip instead of
three: BEGIN, the statement, COMMIT) and for a shorter statement timeout (a job's statements must
not outlive the job's own timeout); both are put back for the next user.

`transient(e)` tells the errors worth retrying (the server went away, restarted, refused a
connection, or the pool had nothing free) from those that a retry cannot fix (a missing table).
"""
from __future__ import annotations

import select
import time
from collections import deque
from dataclasses import dataclass

import gevent
import gevent.lock
import gevent.monkey
import psycopg2
import psycopg2.extensions as ext

from goald.redact import mask_dsn

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000

# The unpatched poll(2): a zero-timeout readiness check must not yield to the gevent hub.
_poll = gevent.monkey.get_original("select", "poll")


class PoolTimeout(Exception):
    """No connection became free in time. The message names the pool's state and the remedy."""


class DatabaseUnavailable(Exception):
    """A new connection could not be opened (server down, wrong DSN, connect timeout)."""


def transient(e: BaseException) -> bool:
    """True for database trouble that may pass by itself: a dropped or refused connection, a server
    shutting down or restarting, a cancelled statement, an exhausted pool."""
    return isinstance(e, (PoolTimeout, DatabaseUnavailable, psycopg2.OperationalError, psycopg2.InterfaceError))


class CountingCursor(ext.cursor):
    """Counts every statement it sends on its connection (`conn.queries`)."""

    def execute(self, query, vars=None):
        self.connection.queries += 1
        return super().execute(query, vars)

    def executemany(self, query, vars_list):
        self.connection.queries += 1
        return super().executemany(query, vars_list)

    def callproc(self, procname, parameters=None):
        self.connection.queries += 1
        return super().callproc(procname, parameters)


class CountingConnection(ext.connection):
    """A psycopg2 connection whose cursors count queries; `queries` resets at each checkout."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.queries = 0
        self.cursor_factory = CountingCursor
        self.statement_timeout_ms: int | None = None   # the session's value, as goald last set it


@dataclass(frozen=True)
class PoolStats:
    active: int
    idle: int
    waiting: int
    total: int
    max: int
    utilization: float  # active / max, percent
    peak_active: int    # most connections in use at once since the last take_peak() (or start)
    checkouts: int
    timeouts: int
    discarded: int
    opened: int
    queries: int

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Pool:
    """Connections to one database, shared by every greenlet of the process."""

    def __init__(self, dsn: str, *, maxconn: int = 10, minconn: int = 0,
                 timeout_s: float = DEFAULT_TIMEOUT_S,
                 connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
                 statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
                 application_name: str = "goald"):
        if maxconn < 1 or minconn < 0 or minconn > maxconn:
            raise ValueError(f"pool bounds must satisfy 0 <= minconn <= maxconn and maxconn >= 1 "
                             f"(got minconn={minconn}, maxconn={maxconn})")
        self.dsn = dsn
        self.maxconn, self.minconn = maxconn, minconn
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.statement_timeout_ms = statement_timeout_ms
        self.application_name = application_name
        self._slots = gevent.lock.BoundedSemaphore(maxconn)
        self._idle: deque[CountingConnection] = deque()
        self._active = 0
        self._peak = 0
        self._observers = 0   # checkouts made through observer_connection(), not counted in the peak
        self._waiting = 0
        self._closed = False
        self._counters = dict(checkouts=0, timeouts=0, discarded=0, opened=0, queries=0)
        for _ in range(minconn):
            self._idle.append(self._open())

    # --- public ---------------------------------------------------------------------------

    def connection(self, timeout_s: float | None = None, *, autocommit: bool = False,
                   statement_timeout_ms: int | None = None) -> _Checkout:
        """Check out a connection for the `with` block; commit or roll back is the caller's
        (with `autocommit=True` every statement commits by itself).

        On a normal exit an open transaction is rolled back (never leaked into the next user).
        An exception from the block rolls back too; a BaseException (gevent.Timeout,
        GreenletExit) or a broken connection discards it, because an interrupted query leaves
        the connection in an unknown state. `statement_timeout_ms` (lower than the pool's) bounds
        every statement of this checkout; the next checkout gets the pool's value back.
        """
        return _Checkout(self, self.timeout_s if timeout_s is None else timeout_s, True, autocommit,
                         statement_timeout_ms)

    def observer_connection(self, timeout_s: float | None = None) -> _Checkout:
        """Like `connection()`, but left out of the peak (`take_peak`): for the pool monitor, whose
        own sample write must not show up as load in the next sample."""
        return _Checkout(self, self.timeout_s if timeout_s is None else timeout_s, False, False, None)

    def stats(self) -> PoolStats:
        total = self._active + len(self._idle)
        return PoolStats(
            active=self._active, idle=len(self._idle), waiting=self._waiting, total=total,
            max=self.maxconn, utilization=round(100.0 * self._active / self.maxconn, 1),
            peak_active=self._peak, **self._counters)

    def take_peak(self) -> int:
        """The high-water mark of connections in use since the last call, then reset it to now's
        level (PoolMonitor samples it, so bursts shorter than its interval still show)."""
        peak, self._peak = self._peak, self._active - self._observers
        return peak

    def describe(self) -> str:
        return f"pool max {self.maxconn} on {mask_dsn(self.dsn)}"

    def close(self) -> None:
        """Close idle connections; connections in use are closed when they come back."""
        self._closed = True
        while self._idle:
            _close_quietly(self._idle.popleft())

    # --- internals ------------------------------------------------------------------------

    def _checkout(self, timeout_s: float, counted: bool = True) -> CountingConnection:
        if self._closed:
            # Yield first: a loop that retries on every error (a job's `except Exception`) would
            # otherwise spin without ever letting the hub run, and no kill could reach it.
            gevent.sleep(0)
            raise DatabaseUnavailable("the connection pool is closed (goald is stopping)")
        started = time.monotonic()
        got = self._slots.acquire(blocking=False)  # the common case: a slot is free, no waiting
        if not got:
            self._waiting += 1
            try:
                got = self._slots.acquire(timeout=timeout_s)
            finally:
                self._waiting -= 1
        if self._closed:  # closed while this greenlet waited: never open a connection for it
            if got:
                self._slots.release()
            raise DatabaseUnavailable("the connection pool is closed (goald is stopping)")
        if not got:
            self._counters["timeouts"] += 1
            s = self.stats()
            raise PoolTimeout(
                f"no database connection became free within {timeout_s:g} s "
                f"(pool max {s.max}, {s.active} in use, {s.waiting} others waiting): raise "
                f"database.pool_max after `goald check-db-capacity`, or find what holds connections")
        try:
            conn = self._take_idle() or self._open(deadline=started + max(timeout_s, self.connect_timeout_s))
        except BaseException:
            self._slots.release()
            raise
        self._active += 1
        if not counted:
            self._observers += 1
        elif self._active - self._observers > self._peak:
            self._peak = self._active - self._observers
        self._counters["checkouts"] += 1
        conn.queries = 0
        return conn

    def _take_idle(self) -> CountingConnection | None:
        while self._idle:
            conn = self._idle.pop()  # most recently used: warmest, least likely to have timed out
            if (conn.closed or conn.get_transaction_status() == ext.TRANSACTION_STATUS_UNKNOWN
                    or _has_unread_input(conn)):
                self._discard(conn)
                continue
            return conn
        return None

    def _open(self, deadline: float | None = None) -> CountingConnection:
        limit = self.connect_timeout_s
        if deadline is not None:
            limit = max(0.1, min(limit, deadline - time.monotonic()))
        options = f"-c statement_timeout={self.statement_timeout_ms}"
        try:
            with gevent.Timeout(limit):
                conn = psycopg2.connect(
                    self.dsn, connection_factory=CountingConnection,
                    connect_timeout=max(1, int(self.connect_timeout_s)),
                    application_name=self.application_name, options=options)
        except gevent.Timeout:
            raise DatabaseUnavailable(
                f"could not connect to {mask_dsn(self.dsn)} within {limit:.1f} s: is the server up "
                f"and database.url right?") from None
        except psycopg2.OperationalError as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DatabaseUnavailable(f"could not connect to {mask_dsn(self.dsn)}: {reason}") from None
        self._counters["opened"] += 1
        conn.statement_timeout_ms = self.statement_timeout_ms
        return conn

    def _set_statement_timeout(self, conn: CountingConnection, ms: int) -> None:
        """Set the session's statement_timeout outside any transaction (so no rollback undoes it)."""
        if conn.statement_timeout_ms == ms:
            return
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT set_config('statement_timeout', %s, false)", (str(ms),))
        except BaseException:
            # Interrupted (a job's timeout killing its greenlet closes the connection mid-statement):
            # restoring autocommit on a closed connection would raise InterfaceError *instead of*
            # the interruption, and a job's `except Exception` would swallow its own timeout.
            if not conn.closed:
                try:
                    conn.autocommit = False
                except Exception:
                    pass  # broken: the checkout discards it
            raise
        conn.autocommit = False
        conn.statement_timeout_ms = ms

    def _checkin(self, conn: CountingConnection, *, reusable: bool, counted: bool = True) -> None:
        self._active -= 1
        if not counted:
            self._observers -= 1
        self._counters["queries"] += conn.queries
        try:
            if reusable and not conn.closed and not self._closed:
                status = conn.get_transaction_status()
                if status in (ext.TRANSACTION_STATUS_INTRANS, ext.TRANSACTION_STATUS_INERROR):
                    conn.rollback()
                    status = conn.get_transaction_status()
                if status == ext.TRANSACTION_STATUS_IDLE:
                    self._idle.append(conn)
                    return
            self._discard(conn)
        except Exception:
            self._discard(conn)
        except BaseException:  # interrupted during the rollback: the state is unknown
            self._discard(conn)
            raise
        finally:
            self._slots.release()

    def _discard(self, conn: CountingConnection) -> None:
        self._counters["discarded"] += 1
        _close_quietly(conn)


class _Checkout:
    """The context manager `Pool.connection()` returns (a class: cheaper than a generator)."""

    __slots__ = ("pool", "timeout_s", "conn", "counted", "autocommit", "statement_timeout_ms")

    def __init__(self, pool: Pool, timeout_s: float, counted: bool, autocommit: bool,
                 statement_timeout_ms: int | None):
        self.pool, self.timeout_s, self.conn, self.counted = pool, timeout_s, None, counted
        self.autocommit, self.statement_timeout_ms = autocommit, statement_timeout_ms

    def __enter__(self) -> CountingConnection:
        conn = self.pool._checkout(self.timeout_s, self.counted)
        try:
            wanted = self.pool.statement_timeout_ms
            if self.statement_timeout_ms is not None and (wanted == 0 or 0 < self.statement_timeout_ms < wanted):
                wanted = self.statement_timeout_ms
            self.pool._set_statement_timeout(conn, wanted)
            conn.queries = 0
            if self.autocommit:
                conn.autocommit = True
        except BaseException as e:
            self.pool._checkin(conn, reusable=isinstance(e, Exception) and not conn.closed, counted=self.counted)
            raise
        self.conn = conn
        return conn

    def __exit__(self, exc_type, exc, tb) -> None:
        conn, self.conn = self.conn, None
        if self.autocommit and not conn.closed:
            try:
                conn.autocommit = False
            except Exception:
                pass  # a broken connection: _checkin discards it
        # An Exception rolls back and keeps the connection; a BaseException discards it.
        self.pool._checkin(conn, reusable=exc_type is None or issubclass(exc_type, Exception),
                           counted=self.counted)


def _has_unread_input(conn) -> bool:
    """An idle connection has nothing to read; input means the server closed it (terminated
    backend, restart, idle timeout) or sent something unasked: either way, do not hand it out."""
    p = _poll()
    p.register(conn.fileno(), select.POLLIN)
    return bool(p.poll(0))


def _close_quietly(conn) -> None:
    try:
        conn.close()
    except Exception:
        pass
