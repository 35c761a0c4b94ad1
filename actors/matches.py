"""The match pipeline's shared part: the router to the match actors, the batched writer and the
minute ticker (one `MatchPipeline` per daemon, created by goald/tree.py).

    ingest job ──route_live / route_objects / track──▶ MatchActor (one per tracked match, children
                                                         of the `matches` DynamicSupervisor)
    MatchActor ──submit(held)──▶ pending ──writer_loop, every match.write_interval_s──▶ PostgreSQL
    MatchActor ──wake_at(second)──▶ ticker heap ──ticker_loop, at that second──▶ Tick ──▶ MatchActor

- **Router** (any greenlet; plain calls, the registry is the DynamicSupervisor's dict): an update for
  a tracked match is told to its actor; one for an untracked match is returned to the caller (the
  ingest job writes it set-based, or starts tracking it). Messages for an actor that is starting
  wait in a buffer its `started()` drains first, so the order holds.
- **Writer** (`writer_loop`, the `match_writer` service's greenlet): what the actors submitted since
  the last tick, one entry per match (a later submit replaces the earlier snapshot: the actor's
  whole state, so nothing is lost and each match's order holds), written in statements of at most
  `match.max_updates_per_tick` rows (provider changes, guarded) and `match.minute_batch_size` rows
  (minute and last-event stamps only). A row the guard filtered (the database holds newer state)
  makes its actor `Reload`. A failed flush (the database is down) keeps every entry and retries.
  At stop the writer flushes once more.
- **Ticker** (`ticker_loop`, the `match_ticker` service's greenlet): a heap of (second, match); the
  actor whose minute changes at that second is told `Tick`, so the minute text changes within
  a fraction of a second of the formula, with one message per match per minute, not per second.
- Counters (`counts`) and an aggregated `match.updates.rate` line every RATE_LOG_S (never a line
  per provider message); rejected updates are logged sampled (one per match a minute).
State lives here, not in the service actors (actors/match_services.py), so a restarted writer or
ticker loses nothing.
"""
from __future__ import annotations

import heapq
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import gevent
import gevent.event
import pykka

from goald import logs
from goald.actors.dynamic import StartChild, StopChild
from goald.actors.match_actor import LiveUpdate, MatchActor, ObjectUpdate, Recent, Reload, Tick
from goald.db.pool import Pool
from goald.match import state, store
from goald.match.changes import Changes

RATE_LOG_S = 30.0
FIRST_RATE_AFTER = 100     # the first rate line comes after this many messages (a start shows activity)
RETRY_MAX_S = 5.0
ROUTE_YIELD_EVERY = 500


@dataclass
class _Pending:
    snapshot: dict
    data: bool
    incidents: tuple | None = None
    stats: tuple | None = None
    shown: bool = True          # False: only the last_event_ts stamp, which no answer shows


class MatchPipeline:
    def __init__(self, pool: Pool, settings: Callable[[], Any], changes: Changes | None = None,
                 clock: Callable[[], float] = time.time):
        """`settings()` returns the current configuration (a reload swaps it)."""
        self.pool = pool
        self.settings = settings
        self.changes = changes or Changes()
        self.clock = clock
        self.registry: dict[str, pykka.ActorRef] = {}
        self.supervisor: Callable[[], pykka.ActorRef | None] = lambda: None
        self.counts: Counter = Counter()
        self.sampler = logs.Sampler(time.monotonic, 60.0)
        self._buffered: dict[str, list] = {}
        self._last_live: dict[str, tuple[Any, float]] = {}   # id -> (the last item told, when)
        self._pending: dict[str, _Pending] = {}
        self._heap: list[tuple[float, str]] = []
        self._wake_at: dict[str, float] = {}
        self._ticker_wakeup = gevent.event.Event()
        self._rate_at = time.monotonic()
        self._rate_counts: Counter = Counter()
        self._first_rate_done = False
        self.bootstrap_at: float | None = None   # when detail_live last fetched diaries for unknown matches

    # --- settings -------------------------------------------------------------------------------

    def retire_after_s(self) -> float:
        return self.settings()["match.retire_after_s"]

    # --- the router (any greenlet) --------------------------------------------------------------

    def is_tracked(self, key: str) -> bool:
        return key in self.registry or key in self._buffered

    def tracked_count(self) -> int:
        return len(self.registry) + sum(1 for k in self._buffered if k not in self.registry)

    def track(self, ids: Iterable[str], rows: dict[str, dict] | None = None) -> int:
        """Start an actor for each of `ids` not tracked yet (rows: their loaded rows, else they are
        loaded in one query). Returns how many were started."""
        new = [k for k in dict.fromkeys(ids) if not self.is_tracked(k)]
        if not new:
            return 0
        sup = self.supervisor()
        if sup is None:
            return 0
        rows = dict(rows or {})
        missing = [k for k in new if k not in rows]
        if missing:
            with self.pool.connection() as conn:
                rows.update(store.load(conn, missing))
                conn.rollback()
        starts = []
        for key in new:
            if key not in rows:
                continue
            self._buffered[key] = []
            starts.append(StartChild(key, self._starter(key, rows[key])))
        if starts:
            sup.tell(starts)
            self.counts["started"] += len(starts)
        return len(starts)

    def _starter(self, key: str, row: dict) -> Callable:
        first = [row]

        def start(parent, name):
            # The first incarnation gets the row loaded with the batch; a restart loads it afresh.
            return MatchActor.start(name=name, parent=parent, key=key, pipeline=self,
                                    row=first.pop() if first else None)
        return start

    def untrack(self, key: str) -> None:
        self._buffered.pop(key, None)
        self._last_live.pop(key, None)
        sup = self.supervisor()
        if sup is not None:
            sup.tell(StopChild(key))

    def retire(self, key: str) -> None:
        self.counts["retired"] += 1
        self.untrack(key)

    def drain_buffered(self, key: str) -> list:
        """At an actor's start (a restart too): the messages that waited for it; the router
        forgets what it last told that match, so the next item is told whatever it says."""
        self.forget_last(key)
        return self._buffered.pop(key, None) or []

    def forget_last(self, key: str) -> None:
        """The next detail_live item of this match is told to its actor even if unchanged."""
        self._last_live.pop(key, None)

    def route_live(self, items: Iterable, provider_time: int, received_at: float) -> list:
        """Tell each detail_live item to its match's actor; returns the items of untracked matches.
        An item equal to the last one told to the same actor is not told again (most of a busy
        detail_live is unchanged from two seconds before: 3,500 actor wake-ups saved a poll),
        except every SEEN_STAMP_S, so the actor refreshes its match's last_event_ts."""
        def fresh():
            for item in items:
                last = self._last_live.get(item.id)
                if last is not None and (last[0] is item or last[0] == item) and received_at - last[1] < state.SEEN_STAMP_S \
                        and item.id in self.registry:
                    self.counts["messages"] += 1
                    self.counts["unchanged"] += 1
                    continue
                yield LiveUpdate(item, provider_time, received_at), item.id
        return self._route(fresh())

    def route_objects(self, matches: Iterable, received_at: float) -> list:
        """Tell each match object to its match's actor; returns the objects of untracked matches."""
        return self._route((ObjectUpdate(m, received_at), m.id) for m in matches)

    def _route(self, messages) -> list:
        untracked = []
        for n, (message, key) in enumerate(messages, 1):
            if n % ROUTE_YIELD_EVERY == 0:
                gevent.sleep(0)    # 3,000 items of a busy detail_live: let requests be answered meanwhile
            ref = self.registry.get(key)
            if ref is not None:
                try:
                    ref.tell(message)
                    if isinstance(message, LiveUpdate):
                        self._last_live[key] = (message.item, message.received_at)
                    continue
                except pykka.ActorDeadError:
                    pass
            buffer = self._buffered.get(key)
            if buffer is not None:
                buffer.append(message)
            else:
                untracked.append(message.item if isinstance(message, LiveUpdate) else message.match)
        return untracked

    def ask(self, key: str, message: Any, timeout_s: float) -> Any:
        """Ask the actor of `key` (any greenlet but the actor's own), tracking the match first if no
        actor holds it: the actor's answer, or None when the match has no row or no actor started
        within `timeout_s`. Raises pykka.Timeout when the actor does not answer in time."""
        deadline = time.monotonic() + timeout_s
        if not self.is_tracked(key):
            self.track([key])
        while (ref := self.registry.get(key)) is None:
            if not self.is_tracked(key) or time.monotonic() > deadline:
                return None
            gevent.sleep(0.02)
        try:
            return ref.ask(message, timeout=max(0.1, deadline - time.monotonic()))
        except pykka.ActorDeadError:
            return None

    # --- from the match actors (their greenlets) -------------------------------------------------

    def recent(self, key: str, timeout_s: float = 2.0) -> dict | None:
        """The last notable updates of `key`'s actor (actors/match_actor.py `Recent`), or None
        when no actor holds it on this node (it is not tracked here: not live, or another node
        leads the pipeline). Never starts an actor. Any greenlet but the actor's own."""
        ref = self.registry.get(key)
        if ref is None:
            return None
        try:
            return ref.ask(Recent(), timeout=timeout_s)
        except (pykka.ActorDeadError, pykka.Timeout):
            return None

    def load(self, key: str) -> dict | None:
        with self.pool.connection() as conn:
            row = store.load(conn, [key]).get(key)
            conn.rollback()
        return row

    def submit(self, held: state.Held, *, data: bool, incidents: bool = False, stats: bool = False,
               shown: bool = True) -> None:
        entry = self._pending.get(held.id)
        if entry is None:
            self._pending[held.id] = _Pending(held.snapshot(), data, held.incidents if incidents else None,
                                              held.stats if stats else None, shown or data)
            return
        entry.snapshot = held.snapshot()
        entry.data = entry.data or data
        entry.shown = entry.shown or shown or data
        if incidents:
            entry.incidents = held.incidents
        if stats:
            entry.stats = held.stats

    def wake_at(self, key: str, at: float) -> None:
        if self._wake_at.get(key) == at:
            return
        self._wake_at[key] = at
        heapq.heappush(self._heap, (at, key))
        if self._heap[0] == (at, key):
            self._ticker_wakeup.set()

    # --- the writer (match_writer's greenlet) ----------------------------------------------------

    def pending_count(self) -> int:
        return len(self._pending)

    def flush(self) -> int:
        """Write everything pending; returns the rows written. Raises the database's error after
        putting back what was not committed."""
        if not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        cfg = self.settings()
        data = [(k, e) for k, e in batch.items() if e.data]
        light = [(k, e) for k, e in batch.items() if not e.data]
        chunks = [(True, c) for c in _chunks(data, cfg["match.max_updates_per_tick"])] + \
                 [(False, c) for c in _chunks(light, cfg["match.minute_batch_size"])]
        written = 0
        shown = False       # a written row whose answer changed: the read endpoints' version moves
        done = 0
        try:
            with self.pool.connection() as conn:
                for guarded, chunk in chunks:
                    if guarded:
                        ok = store.write(conn, [e.snapshot for _, e in chunk],
                                         incidents={k: e.incidents for k, e in chunk if e.incidents is not None},
                                         stats={k: e.stats for k, e in chunk if e.stats is not None})
                        conn.commit()
                        written += len(ok)
                        shown = shown or bool(ok)
                        for key, _ in chunk:
                            if key not in ok:
                                self._reject(key)
                    else:
                        n, cleared = store.write_light(conn, [_light(e.snapshot) for _, e in chunk])
                        conn.commit()
                        written += n
                        # a cleared stale flag is shown too (stale_reason is in the answers)
                        shown = shown or cleared > 0 or (n > 0 and any(e.shown for _, e in chunk))
                    self.counts["statements"] += 1
                    done += 1
        except BaseException:
            for _, chunk in chunks[done:]:
                for key, entry in chunk:
                    self._put_back(key, entry)
            raise
        finally:
            if written:
                self.counts["rows_written"] += written
            if shown:
                self.changes.bump()
        return written

    def _reject(self, key: str) -> None:
        """The database holds newer state than this match's actor wrote: the actor reloads it."""
        self.counts["rejected_by_database"] += 1
        ref = self.registry.get(key)
        if ref is not None:
            try:
                ref.tell(Reload())
            except pykka.ActorDeadError:
                pass

    def _put_back(self, key: str, old: _Pending) -> None:
        newer = self._pending.get(key)
        if newer is None:
            self._pending[key] = old
            return
        newer.data = newer.data or old.data
        newer.shown = newer.shown or old.shown
        if newer.incidents is None:
            newer.incidents = old.incidents
        if newer.stats is None:
            newer.stats = old.stats

    def writer_loop(self) -> None:
        failures = 0
        while True:
            interval = self.settings()["match.write_interval_s"]
            gevent.sleep(interval if not failures else min(RETRY_MAX_S, interval * 2 ** failures))
            try:
                self.flush()
                failures = 0
            except Exception as e:  # the database is down or refused: keep everything, retry
                failures += 1
                self.sampler.log("ERROR", "match.write_failed", ("flush",),
                                 f"Match writes failed ({type(e).__name__}: {str(e).strip()}); "
                                 f"{len(self._pending)} match(es) kept, retrying",
                                 pending=len(self._pending), error_type=type(e).__name__)
            self._log_rate()

    def final_flush(self, timeout_s: float = 5.0) -> None:
        """At stop: write what is pending (best effort within timeout_s; a failure is logged)."""
        try:
            with gevent.Timeout(timeout_s):
                self.flush()
        except (Exception, gevent.Timeout) as e:
            logs.event("ERROR", "match.write_failed", f"Match writes at stop failed ({type(e).__name__}: {e}); "
                       f"{len(self._pending)} match(es) not written (the provider sends them again)",
                       pending=len(self._pending), error_type=type(e).__name__)

    def _log_rate(self, force: bool = False) -> None:
        now = time.monotonic()
        window = now - self._rate_at
        since = self.counts - self._rate_counts
        messages = since["messages"]
        first = not self._first_rate_done and messages >= FIRST_RATE_AFTER
        if not (force or first or (window >= RATE_LOG_S and (messages or since["minute_changes"]))):
            if window >= RATE_LOG_S:
                self._rate_at, self._rate_counts = now, Counter(self.counts)
            return
        self._first_rate_done = True
        self._rate_at, self._rate_counts = now, Counter(self.counts)
        logs.event("INFO", "match.updates.rate",
                   f"Match updates: {messages} message(s) in {window:.0f}s, {since['applied']} applied, "
                   f"{since['older']} rejected as older, {since['transitions']} status change(s), "
                   f"{since['minute_changes']} minute change(s), {since['rows_written']} row(s) written; "
                   f"{self.tracked_count()} match(es) tracked",
                   messages_since_last=messages, window_sec=round(window, 1), applied=since["applied"],
                   unchanged=since["unchanged"], rejected_older=since["older"],
                   rejected_by_database=since["rejected_by_database"], transitions=since["transitions"],
                   unusual=since["unusual"], minute_changes=since["minute_changes"],
                   rows_written=since["rows_written"], statements=since["statements"],
                   tracked=self.tracked_count())

    # --- the ticker (match_ticker's greenlet) -----------------------------------------------------

    def tick_due(self, now: float) -> int:
        """Tell every actor whose minute changes at or before `now`; returns how many."""
        told = 0
        while self._heap and self._heap[0][0] <= now:
            at, key = heapq.heappop(self._heap)
            if self._wake_at.get(key) != at:
                continue    # superseded by a later wake_at for the same match
            del self._wake_at[key]
            ref = self.registry.get(key)
            if ref is None:
                continue
            try:
                ref.tell(Tick(at))
                told += 1
            except pykka.ActorDeadError:
                pass
        return told

    def ticker_loop(self) -> None:
        while True:
            self.tick_due(self.clock())
            wait = 1.0
            if self._heap:
                wait = min(1.0, max(0.0, self._heap[0][0] - self.clock()) + 0.005)
            self._ticker_wakeup.clear()
            self._ticker_wakeup.wait(wait)

    # --- leadership (goald/db/cluster.py) -----------------------------------------------------------

    def stand_down(self, why: str = "") -> None:
        """This node no longer leads the match pipeline (any greenlet): every match actor stops and
        what they had not written yet is dropped, so that nothing held here is written over the
        new leader's state (the provider sends it all again to the leader)."""
        self.counts["stood_down"] += 1
        dropped = len(self._pending)
        self._pending.clear()
        self._heap.clear()
        self._wake_at.clear()
        self._last_live.clear()
        self._buffered.clear()
        sup = self.supervisor()
        keys = list(self.registry)
        if sup is not None and keys:
            sup.tell([StopChild(k) for k in keys])
        logs.event("WARNING", "match.stood_down", f"Match pipeline stood down{': ' + why if why else ''}: "
                   f"{len(keys)} match actor(s) stopped, {dropped} unwritten change(s) dropped",
                   actors=len(keys), dropped=dropped)

    # --- introspection ----------------------------------------------------------------------------

    def describe(self) -> dict:
        return {"tracked": self.tracked_count(), "pending_writes": len(self._pending),
                "minute_wakes": len(self._wake_at), "counts": dict(self.counts)}


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), max(1, size))]


def _light(snapshot: dict) -> dict:
    return {"id": snapshot["id"], "last_event_ts": snapshot.get("last_event_ts"),
            **{c: snapshot.get(c) for c in state.MINUTE_COLUMNS}}
