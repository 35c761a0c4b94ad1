"""MatchActor: one per tracked match; it owns its match and applies the provider's updates in order.

Messages (all tells, from the ingest jobs through the router, the minute ticker and the writer;
actors/matches.py):
- `LiveUpdate(item, provider_time, received_at)`: a detail_live item, as of the provider's clock;
- `ObjectUpdate(match, received_at)`: a diary / recent-list match object, as of its `updated_at`;
- `Tick(at)`: the minute may have changed (the ticker wakes the actor at the second it does);
- `Reload()`: the writer found a newer row in the database (another writer got further): the actor
  takes the row as its state, so a reconcile or a late message never overwrites newer state;
- `Recent()` (an ask, from the console through the pipeline): the actor's last `RECENT_UPDATES`
  notable events, newest first: updates applied (with status, score and minute) and rejected as
  older, reloads, reconciles and endings; updates that changed nothing are counted, not listed.
Each update goes through goald/match/state.py (`applied` / `unchanged` / `older`); an applied one
is handed to the writer, which writes many matches in one statement per tick, guarded by
`provider_update_time`. A status change is logged with `match_id`, `status_id` and
`provider_update_time`; one outside DOMAIN.md's flow is logged as unusual and counted. Once the
match is final (8, 11, 12) the actor retires itself after `match.retire_after_s` (later updates in
that time are still applied).

Runs in its own actor greenlet. `started()` loads the row when it was not handed one (a restart
after a crash restarts from the row); a match with no row stops at once (normal exit). An
exception in a handler crashes the actor; its supervisor restarts it from its row.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import gevent

from goald import logs
from goald.actors.base import SupervisedActor
from goald.match import state


@dataclass(frozen=True)
class LiveUpdate:
    item: Any
    provider_time: int
    received_at: float


@dataclass(frozen=True)
class ObjectUpdate:
    match: Any
    received_at: float


@dataclass(frozen=True)
class Tick:
    at: float


@dataclass(frozen=True)
class Reload:
    pass


@dataclass(frozen=True)
class Recent:
    pass


RECENT_UPDATES = 16      # kept as tuples: ~2 KB a match (bench/match_memory.py holds 10,000 in < 400 MB)
_RECENT_FIELDS = ("at", "kind", "source", "provider_time", "status_id", "score", "minute_text", "detail",
                  "unchanged_before")


@dataclass(frozen=True)
class Reconcile:
    """Asked by the watchdog and the stuck-match check (actors/jobs/safety.py): `match` is the
    provider's match object from a direct query (None when its answer had none); `end_reason`, for a
    stuck match, ends it with that reason when the object has nothing newer. The answer is one of
    `newer` (applied), `unchanged` (nothing newer, nothing ended), `ended`, `no_answer` (an ending
    asked, but the provider returned no object: no evidence, nothing ended), `gone` (no row)."""
    match: Any | None
    received_at: float
    end_reason: str | None = None


@dataclass(frozen=True)
class Barrier:
    """Asked (by tests and benches) to wait until the messages told before it are handled."""


class MatchActor(SupervisedActor):
    kind = "match"

    def __init__(self, *, name: str, parent, key: str, pipeline, row: dict | None = None):
        super().__init__(name=name, parent=parent)
        self.key = key
        self.pipeline = pipeline
        self.held: state.Held | None = state.from_row(row) if row is not None else None
        self._retire: gevent.Greenlet | None = None
        self.recent: deque[tuple] = deque(maxlen=RECENT_UPDATES)
        self.unchanged = 0                    # updates that changed nothing since the last one listed

    def started(self) -> None:
        if self.held is None:
            row = self.pipeline.load(self.key)
            if row is None:
                logs.event("WARNING", "match.no_row", f"Match {self.key}: no row in the database; not tracked",
                           match_id=self.key)
                self.pipeline.untrack(self.key)
                return
            self.held = state.from_row(row)
        for message in self.pipeline.drain_buffered(self.key):
            self.handle(message)
        self._after_change()

    def handle(self, message: Any) -> Any:
        if self.held is None:
            return isinstance(message, Barrier) or None
        if isinstance(message, LiveUpdate):
            self._update(state.apply_live(self.held, message.item, message.provider_time, message.received_at),
                         message.provider_time)
        elif isinstance(message, ObjectUpdate):
            self._update(state.apply_object(self.held, message.match, message.received_at),
                         message.match.updated_at)
        elif isinstance(message, Tick):
            self._tick(message.at)
        elif isinstance(message, Reconcile):
            return self._reconcile(message)
        elif isinstance(message, Barrier):
            return True
        elif isinstance(message, Recent):
            return {"recent": [dict(zip(_RECENT_FIELDS, r)) for r in reversed(self.recent)],
                    "unchanged_since_last": self.unchanged}
        elif isinstance(message, Reload):
            row = self.pipeline.load(self.key)
            if row is None:
                self.pipeline.untrack(self.key)
                return None
            self.held = state.from_row(row)
            self.pipeline.forget_last(self.key)
            self.pipeline.counts["reloaded"] += 1
            self._note("reloaded", "database", self.held.row.get("provider_update_time"),
                       "the database held newer state; taken")
            self._after_change()
        else:
            return super().handle(message)
        return None

    def describe(self) -> dict:
        return {"match_id": self.key, **(self.held.snapshot() if self.held else {})}

    # --- internals (actor greenlet) -----------------------------------------------------------

    def _note(self, kind: str, source: str, provider_time: int | None, detail: str = "") -> None:
        row = self.held.row if self.held else {}
        self.recent.append((round(time.time(), 3), kind, source, provider_time,
                            self.held.status_id if self.held else None,
                            f"{row.get('home_display')}-{row.get('away_display')}", row.get("minute_text"), detail,
                            self.unchanged))
        self.unchanged = 0

    def _update(self, out: state.Outcome, provider_time: int, source: str = "feed") -> None:
        counts = self.pipeline.counts
        counts["messages"] += 1
        counts[out.kind] += 1
        if out.kind == "older":
            self._note("rejected_older", source, provider_time,
                       f"older than the state held ({self.held.row.get('provider_update_time')})")
            self.pipeline.sampler.log(
                "INFO", "match.update_rejected", (self.key,),
                f"Match {self.key}: update of provider time {provider_time} is older than the state held "
                f"({self.held.row.get('provider_update_time')}); rejected", match_id=self.key,
                status_id=self.held.status_id, provider_update_time=provider_time,
                held_update_time=self.held.row.get("provider_update_time"))
            return
        self.held = out.held
        if out.kind == "unchanged":
            self.unchanged += 1
            if out.stamp:
                self.pipeline.submit(self.held, data=False, shown=False)   # the last_event_ts stamp only
            return
        self.pipeline.submit(self.held, data=True, incidents=out.incidents_changed, stats=out.stats_changed)
        self._note("applied", source, provider_time,
                   f"status {out.transition[0]} → {out.transition[1]}" if out.transition else "")
        if out.transition:
            old, new = out.transition
            counts["transitions"] += 1
            if out.unusual:
                counts["unusual"] += 1
            logs.event("WARNING" if out.unusual else "INFO",
                       "match.transition_unusual" if out.unusual else "match.transition",
                       f"Match {self.key}: status {old} → {new}{' (not in the normal flow)' if out.unusual else ''}"
                       f" ({self.held.row.get('minute_text') or '-'})", match_id=self.key, status_id=new,
                       from_status=old, provider_update_time=provider_time, period=self.held.row.get("period"))
        self._after_change()

    def _reconcile(self, message: Reconcile) -> str:
        # Never decide on what this actor alone holds: another node (or writer) may have stored newer
        # state since, so the row is read first and taken when it is ahead.
        row = self.pipeline.load(self.key)
        if row is None:
            self.pipeline.untrack(self.key)
            return "gone"
        stored = state.from_row(row)
        if _ahead(stored.row, self.held.row):
            self.held = stored
            self.pipeline.forget_last(self.key)
            self.pipeline.counts["reloaded"] += 1
        self.pipeline.counts["reconciles"] += 1
        if message.match is not None:
            out = state.apply_object(self.held, message.match, message.received_at)
            self._update(out, message.match.updated_at, source="reconcile")
            if out.kind == "applied":
                return "newer"
        if message.end_reason is None or self.held.status_id not in state.LIVE_STATUSES:
            return "unchanged"
        if message.match is None:
            return "no_answer"
        was = self.held.status_id
        self.held = state.end_by_goald(self.held, message.end_reason, self.pipeline.clock())
        self.pipeline.submit(self.held, data=True)
        self.pipeline.counts["ended_by_goald"] += 1
        self._note("ended_by_goald", "reconcile", self.held.row.get("provider_update_time"), message.end_reason)
        logs.event("WARNING", "match.ended_by_goald", f"Match {self.key}: ended by goald: {message.end_reason}",
                   match_id=self.key, status_id=8, from_status=was, ended_reason=message.end_reason,
                   provider_update_time=self.held.row.get("provider_update_time"))
        self._after_change()
        return "ended"

    def _tick(self, at: float) -> None:
        now = max(at, self.pipeline.clock())
        new = state.tick(self.held, now)
        if new is not None:
            self.held = new
            self.pipeline.counts["minute_changes"] += 1
            logs.event("DEBUG", "match.minute", f"Match {self.key}: {new.row['minute_text']}", match_id=self.key,
                       status_id=new.status_id, provider_update_time=new.row.get("provider_update_time"),
                       minute_text=new.row["minute_text"])
            self.pipeline.submit(new, data=False)
        self._wake(now)

    def _after_change(self) -> None:
        now = self.pipeline.clock()
        new = state.tick(self.held, now)   # a loaded row may be minutes old
        if new is not None:
            self.held = new
            self.pipeline.submit(new, data=False)
        self._wake(now)
        final = self.held.status_id in state.FINAL_STATUSES
        if final and self._retire is None:
            self._retire = self.spawn(self._retire_later, self.pipeline.retire_after_s())
        elif not final and self._retire is not None:
            self._retire.kill(block=False)
            self._retire = None

    def _wake(self, now: float) -> None:
        at = state.next_change_at(self.held, now)
        if at is not None:
            self.pipeline.wake_at(self.key, at)

    def _retire_later(self, delay_s: float) -> None:
        gevent.sleep(delay_s)
        self.pipeline.retire(self.key)


def _ahead(stored: dict, held: dict) -> bool:
    """The stored row holds newer state than the actor (written by another node or writer)."""
    s_time, h_time = stored.get("provider_update_time") or 0, held.get("provider_update_time") or 0
    if s_time != h_time:
        return s_time > h_time
    return (stored.get("status_id"), stored.get("ended_reason")) != (held.get("status_id"), held.get("ended_reason"))
