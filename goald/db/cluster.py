"""Several goald nodes on one database, coordinated by PostgreSQL alone.

- **Leadership** of the match pipeline: one node at a time runs the ingest and match-safety jobs
  and holds the match actors (`JobSpec.leader_only`), so no node ever applies an update to match
  state another node has moved on from. The leader is the node holding a session advisory lock
  (`LEADER_LOCK`) on a connection of its own (not the pool's). The lock goes with the session: a
  node killed with -9 loses it as soon as PostgreSQL sees its socket close, and the next node to
  ask takes it over; a node whose lock connection breaks (the database restarted) knows it is no
  longer the leader at its next check, and stands down (`on_lost`).
- **The change feed** (`ChangeFeed`): the leader's writes reach the other nodes' read endpoints
  through LISTEN/NOTIFY on channel `CHANNEL`, so every node's API serves the same data within
  milliseconds instead of waiting for its bodies' maximum age. Notifications are coalesced (at
  most one per `FEED_INTERVAL_S`) and carry the sending node's name, so a node ignores its own.
  The same feed carries the public API cache's invalidations on channel `CACHE_CHANNEL`: a
  standings table one node's sync changed is dropped from every node's memory cache.

Both use blocking psycopg2 calls on their own connections, made cooperative by psycogreen: the
leadership check runs in the calling greenlet (a job's run greenlet), serialized by a gevent lock;
the feed runs in its own service greenlet (`run_forever`). A database error never leaves either:
the leadership check answers False (and retries at the next check), the feed reconnects after
a pause. This module knows nothing of actors: what standing down means is the caller's callback.
"""
from __future__ import annotations

import time
from typing import Callable

import gevent
import gevent.lock
import gevent.select
import psycopg2

from goald import logs

LEADER_LOCK = 7_214_061_977_001     # pg_try_advisory_lock key: "the match pipeline's leader"
CHANNEL = "goald_matches"
CACHE_CHANNEL = "goald_cache"       # payload: "<node>\t<kind>\t<scope>" (goald/cache/ invalidations)
MAX_PENDING = 10_000                # invalidations queued while the feed is down (beyond: the TTLs bound staleness)
FEED_INTERVAL_S = 0.05
RECONNECT_S = 2.0


class Leadership:
    def __init__(self, dsn: str, node: str, *, check_every_s: float = 1.0, connect_timeout_s: float = 5.0,
                 on_acquired: Callable[[], None] | None = None, on_lost: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.dsn, self.node = dsn, node
        self.check_every_s = check_every_s
        self.connect_timeout_s = connect_timeout_s
        self.on_acquired, self.on_lost = on_acquired, on_lost
        self.clock = clock
        self.leading = False
        self.since: float | None = None      # time.time() when this node became the leader
        self.changes = 0                     # times this node became or stopped being the leader
        self._conn = None
        self._checked: float | None = None
        self._lock = gevent.lock.BoundedSemaphore()

    def ensure(self) -> bool:
        """Whether this node leads the match pipeline now; when no node does, it becomes the leader.
        One round trip at most every `check_every_s` (the answer in between is the last one)."""
        if self._checked is not None and self.clock() - self._checked < self.check_every_s:
            return self.leading
        with self._lock:
            if self._checked is not None and self.clock() - self._checked < self.check_every_s:
                return self.leading
            self._checked = self.clock()
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg2.connect(self.dsn, connect_timeout=int(self.connect_timeout_s),
                                                  application_name=f"goald leader {self.node}")
                    self._conn.autocommit = True
                with self._conn.cursor() as cur:
                    if self.leading:
                        cur.execute("SELECT 1")          # the session lives: the lock is still ours
                    else:
                        cur.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
                        if cur.fetchone()[0]:
                            self._acquired()
            except psycopg2.Error as e:
                self._close()
                if self.leading:
                    self._lost(f"its lock connection failed ({type(e).__name__}: {str(e).strip()})")
            return self.leading

    def release(self) -> None:
        """At stop: give the lock up at once (the session's end would too)."""
        # An ensure() in progress (connecting, at most connect_timeout_s) finishes first; a lock
        # that is still held after that is not waited for: closing the session is what matters.
        acquired = self._lock.acquire(timeout=self.connect_timeout_s + 1.0)
        try:
            was = self.leading
            self._close()
            if was:
                self.leading = False
                logs.event("INFO", "cluster.leader_released", f"{self.node} no longer leads the match pipeline "
                           f"(stopping)", node=self.node)
        finally:
            if acquired:
                self._lock.release()

    def describe(self) -> dict:
        return {"node": self.node, "leading": self.leading, "since": self.since, "changes": self.changes}

    def _acquired(self) -> None:
        self.leading, self.since = True, time.time()
        self.changes += 1
        logs.event("INFO", "cluster.leader_acquired", f"{self.node} leads the match pipeline (ingest, match "
                   f"actors, watchdog) from now on", node=self.node)
        if self.on_acquired is not None:
            self.on_acquired()

    def _lost(self, why: str) -> None:
        self.leading, self.since = False, None
        self.changes += 1
        logs.event("ERROR", "cluster.leader_lost", f"{self.node} no longer leads the match pipeline: {why}; it "
                   f"stands down and asks again", node=self.node, reason=why)
        if self.on_lost is not None:
            self.on_lost(why)

    def _close(self) -> None:
        _close_quietly(self._conn)
        self._conn = None


class ChangeFeed:
    """The `change_feed` service: NOTIFY when this node's match data changed, LISTEN for the others'."""

    def __init__(self, dsn: str, node: str, on_peer_change: Callable[[], None], *, connect_timeout_s: float = 5.0,
                 on_peer_invalidate: Callable[[str, str], None] | None = None):
        self.dsn, self.node = dsn, node
        self.on_peer_change = on_peer_change
        self.on_peer_invalidate = on_peer_invalidate
        self.connect_timeout_s = connect_timeout_s
        self.sent = self.received = 0
        self.invalidations_sent = self.invalidations_received = 0
        self._pending: list[str] = []
        self._dirty = False
        self._stopped = False
        self._conn = None

    def changed(self) -> None:
        """This node wrote match data (any greenlet; no I/O here): the feed tells the others."""
        self._dirty = True

    def invalidated(self, kind: str, scope: str) -> None:
        """This node invalidated cached answers (a Cache listener; any greenlet, no I/O here): the
        feed tells the others, which drop theirs."""
        if len(self._pending) < MAX_PENDING:
            self._pending.append(f"{self.node}\t{kind}\t{scope}")

    def run_forever(self) -> None:
        """The feed's loop (its service greenlet). It ends when `stop()` was called, closing its
        own connection: the connection is never closed under a `select` waiting on it."""
        try:
            self._loop()
        finally:
            self._close()

    def _loop(self) -> None:
        failures = 0
        while not self._stopped:
            try:
                self._connect()
                failures = 0
                while not self._stopped:
                    if self._dirty:
                        self._dirty = False
                        with self._conn.cursor() as cur:
                            cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.node))
                        self.sent += 1
                    while self._pending:
                        with self._conn.cursor() as cur:
                            cur.execute("SELECT pg_notify(%s, %s)", (CACHE_CHANNEL, self._pending[0]))
                        self._pending.pop(0)
                        self.invalidations_sent += 1
                    readable, _, _ = gevent.select.select([self._conn], [], [], FEED_INTERVAL_S)
                    if readable:
                        self._conn.poll()
                        notes = list(self._conn.notifies)
                        self._conn.notifies.clear()
                        self._deliver(notes)
            except psycopg2.Error as e:
                failures += 1
                if failures == 1:
                    logs.event("WARNING", "cluster.feed_failed", f"Change feed interrupted ({type(e).__name__}: "
                               f"{str(e).strip()}); the read endpoints fall back to their maximum body age "
                               f"until it reconnects", error_type=type(e).__name__)
                self._close()
                gevent.sleep(RECONNECT_S)

    def _deliver(self, notes: list) -> None:
        peers = [n for n in notes if n.channel == CHANNEL and n.payload != self.node]
        if peers:
            self.received += len(peers)
            self.on_peer_change()
        for n in notes:
            if n.channel != CACHE_CHANNEL:
                continue
            node, _, rest = n.payload.partition("\t")
            kind, _, scope = rest.partition("\t")
            if node == self.node or not kind or self.on_peer_invalidate is None:
                continue
            self.invalidations_received += 1
            try:
                self.on_peer_invalidate(kind, scope)
            except Exception as e:      # a bad message from a peer must not stop the feed
                logs.event("WARNING", "cluster.invalidation_failed", f"Cache invalidation from {node} "
                           f"({kind} {scope}) failed: {type(e).__name__}: {e}", node=node, kind=kind)

    def stop(self, timeout_s: float) -> None:
        """At stop (the service actor's greenlet): the loop ends within FEED_INTERVAL_S, or is
        killed right after this by its actor; either way it closes its connection itself."""
        self._stopped = True

    def describe(self) -> dict:
        return {"sent": self.sent, "received": self.received, "invalidations_sent": self.invalidations_sent,
                "invalidations_received": self.invalidations_received, "connected": self._conn is not None}

    def _connect(self) -> None:
        if self._conn is not None and not self._conn.closed:
            return
        self._conn = psycopg2.connect(self.dsn, connect_timeout=int(self.connect_timeout_s),
                                      application_name=f"goald feed {self.node}")
        self._conn.autocommit = True
        with self._conn.cursor() as cur:
            cur.execute(f"LISTEN {CHANNEL}; LISTEN {CACHE_CHANNEL}")

    def _close(self) -> None:
        _close_quietly(self._conn)
        self._conn = None


def _close_quietly(conn) -> None:
    if conn is not None:
        try:
            conn.close()
        except psycopg2.Error:
            pass
