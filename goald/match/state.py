"""A tracked match as its actor holds it, and what one provider update or one clock tick does to it.

Pure functions over plain values, no I/O and no clock of their own (`now` is an argument): the match
actor (actors/match_actor.py) calls them in its own greenlet, the tests call them directly. Bad
input never raises: a decoded payload is already valid (goald/provider/decode.py), and an unknown
status is the minute engine's `unknown` period.

`Held` is the match row as the actor last wrote (or loaded) it: the provider-owned columns
(`DATA_COLUMNS`), the minute engine's (`MINUTE_COLUMNS`), the period tracking of
goald/match/minute.py, and the last incidents and statistics applied. An update is
- `unchanged`: it says nothing new (no write; for a live item at most the `last_event_ts` stamp,
  see SEEN_STAMP_S: the provider still reports the match);
- `older`: it says something different but its provider time is older than the held one: rejected,
  counted, nothing changes (the optimistic lock on `provider_update_time`);
- `applied`: the new state, written by the actor's next batch.
A status change is checked against DOMAIN.md's status flow (`TRANSITIONS`); an unusual one is
still applied (the provider is the truth) and reported so that it is logged and counted.

`end_by_goald` is the one ending goald makes itself (a stuck match, actors/jobs/safety.py): status
8 with `ended_reason`, the provider's status kept in `provider_status_id`. Over such an ending an
update applies only when it says something the provider had not said (and is newer): the same
state re-sent is `unchanged`, so the ending stands; anything new undoes it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from goald.match import minute as mm
from goald.match.rows import from_live, from_match

# The columns a match actor owns and writes in one guarded statement (goald/match/store.py).
DATA_COLUMNS = (
    "season_id", "competition_id", "home_team_id", "away_team_id", "venue_id", "referee_id", "neutral",
    "status_id", "match_time",
    "home_regular", "away_regular", "home_half_time", "away_half_time", "home_overtime", "away_overtime",
    "home_penalties", "away_penalties", "home_red_cards", "away_red_cards", "home_yellow_cards",
    "away_yellow_cards", "home_corners", "away_corners",
    "first_half_kickoff_ts", "second_half_kickoff_ts", "overtime_kickoff_ts", "overtime_second_kickoff_ts",
    "announced_added_minute", "provider_update_time", "last_event_ts", "finished_after",
    "provider_status_id", "status_changed_ts", "ended_reason",
)
# The minute engine's columns: written only when they change, and they never move updated_at.
MINUTE_COLUMNS = ("period", "minute", "added_minute", "minute_text", "last_minute_update_ts")
KICKOFF_COLUMNS = {"first": "first_half_kickoff_ts", "second": "second_half_kickoff_ts",
                   "extra": "overtime_kickoff_ts", "extra_second": "overtime_second_kickoff_ts"}

LIVE_STATUSES = frozenset({2, 3, 4, 5, 7})
FINAL_STATUSES = frozenset({8, 11, 12})    # ended, cut in half (abandoned), cancelled
# An unchanged provider message refreshes last_event_ts when the stored stamp is this old: the
# watchdog sees a match the provider still reports as alive without a write per message.
SEEN_STAMP_S = 30

# DOMAIN.md's status flow: normal 1→2→3→4→8; cup 4→5→7→8 or 4→5→8; disruptions 1→9→(1|2|12),
# 2/4→10→(resume|11|8); before kick-off a match may be cancelled (12) or "to be determined" (13).
TRANSITIONS: dict[int, frozenset[int]] = {
    0: frozenset({1, 13}),
    1: frozenset({2, 9, 12, 13}),
    2: frozenset({3, 10}),
    3: frozenset({4}),
    4: frozenset({5, 7, 8, 10}),
    5: frozenset({6, 7, 8, 10}),
    6: frozenset({5, 7, 8, 10}),
    7: frozenset({8}),
    9: frozenset({1, 2, 12}),
    10: frozenset({2, 3, 4, 5, 8, 11}),
    13: frozenset({1, 12}),
}

INJURY_TIME = 19   # incident type: stoppage announced, `add_time` minutes
_HALF_END = {mm.FIRST_HALF: 45, mm.SECOND_HALF: 90, mm.EXTRA_TIME_FIRST: 105, mm.EXTRA_TIME_SECOND: 120}

SHORT_STATUS = {
    mm.NOT_STARTED: "NS", mm.FIRST_HALF: "1H", mm.HALF_TIME: "HT", mm.SECOND_HALF: "2H",
    mm.BREAK_BEFORE_EXTRA_TIME: "BT", mm.EXTRA_TIME_FIRST: "ET", mm.EXTRA_TIME_BREAK: "BT",
    mm.EXTRA_TIME_SECOND: "ET", mm.PENALTIES: "P", mm.DELAYED: "PST", mm.INTERRUPTED: "INT",
    mm.ABANDONED: "ABD", mm.CANCELLED: "CANC", mm.UNKNOWN: "TBD",
}
STATUS_NAMES = {0: "abnormal", 1: "not started", 2: "first half", 3: "half-time", 4: "second half",
                5: "extra time", 6: "extra time", 7: "penalty shoot-out", 8: "ended", 9: "delayed",
                10: "interrupted", 11: "abandoned", 12: "cancelled", 13: "to be determined"}


def short_status(period: str, finished_after: str | None) -> str:
    """API-Football's vocabulary (NS 1H HT 2H ET BT P FT AET PEN PST INT ABD CANC) for a period."""
    if period == mm.ENDED:
        return {"penalties": "PEN", "extra_time": "AET"}.get(finished_after or "", "FT")
    return SHORT_STATUS.get(period, "TBD")


@dataclass(frozen=True)
class Held:
    id: str
    row: dict                                   # DATA_COLUMNS + MINUTE_COLUMNS as stored
    tracked: mm.Tracked = field(default_factory=mm.Tracked)
    incidents: tuple = ()
    stats: tuple = ()

    @property
    def status_id(self) -> int:
        return self.row.get("status_id") or 0

    @property
    def minute(self) -> mm.Minute:
        return mm.Minute(self.row.get("minute"), self.row.get("added_minute"), self.row.get("minute_text") or "")

    def snapshot(self) -> dict:
        """The row to write: every column this match's actor owns."""
        return {"id": self.id, **{c: self.row.get(c) for c in DATA_COLUMNS + MINUTE_COLUMNS}}


def from_row(row: dict) -> Held:
    """The held state of a match loaded from its row (a crashed actor restarts from it)."""
    tracked = mm.Tracked(period=row.get("period") or mm.period_of(row.get("status_id") or 0),
                         **{k: row.get(c) for k, c in KICKOFF_COLUMNS.items()})
    held = {c: row.get(c) for c in DATA_COLUMNS + MINUTE_COLUMNS}
    if held["provider_status_id"] is None:    # a row written before sql/0008
        held["provider_status_id"] = held["status_id"]
    return Held(id=row["id"], row=held, tracked=tracked)


@dataclass(frozen=True)
class Outcome:
    kind: str                                   # applied | unchanged | older
    held: Held
    transition: tuple[int, int] | None = None   # (from, to) when the status changed
    unusual: bool = False                       # the transition is not in DOMAIN.md's flow
    stamp: bool = False                         # unchanged, but last_event_ts is refreshed
    incidents_changed: bool = False
    stats_changed: bool = False


def apply_live(held: Held, item: Any, provider_time: int, now: float) -> Outcome:
    """A detail_live item (`LiveMatch`): status, scores, the current half's kick-off, incidents and
    statistics, as of the provider's `provider_time` (its clock when it answered)."""
    cols = from_live(item)
    del cols["id"]
    return _apply(held, cols, provider_time, now, item.score.kickoff_ts, tuple(item.incidents), tuple(item.stats),
                  seen=True)


def apply_object(held: Held, m: Any, now: float) -> Outcome:
    """A diary / recent-list match object (`Match`), as of its `updated_at`."""
    cols = from_match(m)
    del cols["id"]
    provider_time = cols.pop("provider_update_time")
    return _apply(held, cols, provider_time, now, 0, None, None, seen=False)


def _apply(held: Held, cols: dict, provider_time: int, now: float, kickoff_ts: int,
           incidents: tuple | None, stats: tuple | None, seen: bool) -> Outcome:
    row = held.row
    prior_status = row.get("status_id")
    if row.get("ended_reason") is not None:
        # goald ended this match itself (a stuck match, actors/jobs/safety.py): what the provider
        # says of the row's columns is compared with what it said then, so the ending stands until
        # it says something new (incidents and statistics are not compared: an actor restarted
        # from its row holds none, and they alone never contradict an ending).
        said = {**row, "status_id": row.get("provider_status_id")}
        if all(said.get(k) == v for k, v in cols.items()):
            return _unchanged(held, now, seen)
        if row.get("provider_update_time") is not None and provider_time <= row["provider_update_time"]:
            return Outcome("older", held)
        # The provider has moved on: its status again, tracked from its own period.
        held = replace(held, row={**row, "status_id": said["status_id"], "ended_reason": None},
                       tracked=replace(held.tracked, period=mm.period_of(said["status_id"] or 0)))
        row = held.row
    changed = {k: v for k, v in cols.items() if row.get(k) != v}
    incidents_changed = incidents is not None and incidents != held.incidents
    stats_changed = stats is not None and stats != held.stats
    if incidents is None and cols["status_id"] == row.get("status_id"):
        tracked = held.tracked   # a match object says nothing of the feed's period markers: keep them
    else:
        tracked = mm.track(held.tracked, cols["status_id"], kickoff_ts, held.incidents if incidents is None else incidents)
    kickoffs = {c: getattr(tracked, k) for k, c in KICKOFF_COLUMNS.items() if getattr(tracked, k) != row.get(c)}
    if not (changed or incidents_changed or stats_changed or kickoffs or tracked.period != held.tracked.period):
        return _unchanged(held, now, seen)
    stored_time = row.get("provider_update_time")
    if stored_time is not None and provider_time < stored_time:
        return Outcome("older", held)
    new = {**row, **changed, **kickoffs, "provider_update_time": provider_time, "last_event_ts": int(now)}
    old_status, status = prior_status, cols["status_id"]
    new["provider_status_id"] = status
    if status != old_status:
        new["status_changed_ts"] = int(now)
    incidents_now = held.incidents if incidents is None else incidents
    new["announced_added_minute"] = _announced(tracked.period, incidents_now, row.get("announced_added_minute"),
                                               held.tracked.period)
    if status == 8 and not new.get("finished_after"):
        new["finished_after"] = _finished_after(held.tracked, new)
    minute = mm.minute_at(tracked, now, held.minute)
    new.update(period=tracked.period, minute=minute.minute, added_minute=minute.added, minute_text=minute.text)
    if (minute.minute, minute.added, minute.text, tracked.period) != (row.get("minute"), row.get("added_minute"),
                                                                       row.get("minute_text"), row.get("period")):
        new["last_minute_update_ts"] = int(now)
    transition = (old_status, status) if old_status != status and old_status is not None else None
    unusual = transition is not None and status not in TRANSITIONS.get(old_status, frozenset())
    out = replace(held, row=new, tracked=tracked, incidents=incidents_now,
                  stats=held.stats if stats is None else stats)
    return Outcome("applied", out, transition, unusual, incidents_changed=incidents_changed,
                   stats_changed=stats_changed)


def _unchanged(held: Held, now: float, seen: bool) -> Outcome:
    row = held.row
    stamp = seen and (row.get("last_event_ts") is None or now - row["last_event_ts"] >= SEEN_STAMP_S)
    if stamp:
        held = replace(held, row={**row, "last_event_ts": int(now)})
    return Outcome("unchanged", held, stamp=stamp)


def end_by_goald(held: Held, reason: str, now: float) -> Held:
    """The match ended by goald itself (a stuck match whose reconcile found nothing newer): status
    8 with `ended_reason`, the provider's own status and update time kept, so that any later
    provider update that says something new still applies (`_apply`)."""
    row = held.row
    tracked = replace(held.tracked, period=mm.ENDED)
    new = {**row, "status_id": 8, "ended_reason": reason, "status_changed_ts": int(now),
           "provider_status_id": row.get("status_id") if row.get("provider_status_id") is None
           else row["provider_status_id"]}
    if not new.get("finished_after"):
        new["finished_after"] = _finished_after(held.tracked, new)
    minute = mm.minute_at(tracked, now, held.minute)
    new.update(period=tracked.period, minute=minute.minute, added_minute=minute.added, minute_text=minute.text,
               last_minute_update_ts=int(now))
    return replace(held, row=new, tracked=tracked)


def tick(held: Held, now: float) -> Held | None:
    """The minute engine at `now`: the new held state when minute, text or period changed, else None."""
    minute = mm.minute_at(held.tracked, now, held.minute)
    if (minute.minute, minute.added, minute.text, held.tracked.period) == (
            held.row.get("minute"), held.row.get("added_minute"), held.row.get("minute_text"), held.row.get("period")):
        return None
    return replace(held, row={**held.row, "period": held.tracked.period, "minute": minute.minute,
                              "added_minute": minute.added, "minute_text": minute.text,
                              "last_minute_update_ts": int(now)})


def next_change_at(held: Held, now: float) -> float | None:
    """The next second at which the minute (and so its text) changes; None in a frozen period or
    while the current half's kick-off is unknown."""
    running = mm._RUNNING.get(held.tracked.period)
    if running is None:
        return None
    kickoff = getattr(held.tracked, running[0])
    if kickoff is None:
        return None
    if now < kickoff:
        return float(kickoff)
    return float(kickoff + 60 * (math.floor((now - kickoff) / 60) + 1))


def _announced(period: str, incidents: tuple, stored: int | None, previous_period: str) -> int | None:
    """The stoppage announced for the current half: the last `injury time` incident at its end."""
    end = _HALF_END.get(period)
    if end is None:
        return stored if period == previous_period else None
    for inc in reversed(incidents):
        if getattr(inc, "type", None) == INJURY_TIME and getattr(inc, "time", None) == end:
            return getattr(inc, "add_time", None) or None
    return None


def _finished_after(tracked: mm.Tracked, row: dict) -> str:
    if tracked.period == mm.PENALTIES or (row.get("home_penalties") or 0) + (row.get("away_penalties") or 0) > 0:
        return "penalties"
    if tracked.extra is not None or (row.get("home_overtime") or 0) + (row.get("away_overtime") or 0) > 0:
        return "extra_time"
    return "regular"
