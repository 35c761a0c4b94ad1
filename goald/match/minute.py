"""The minute engine: which period a match is in, and its minute and minute text, exact to the second.

Pure functions, no I/O, no clock of their own (`now` is an argument): whatever greenlet calls them
(a match actor, a test replaying a scenario) gets an answer at once; bad input never raises, an
unknown status is period `unknown` with an empty text.

**Periods from the provider's feed** (DOMAIN.md; docs/simulator.md shows the simulator emits
exactly this). `status_id` says most: 1 not started, 2 first half, 3 half-time, 4 second half,
5 extra time, 7 penalties, 8 ended, 9 delayed, 10 interrupted, 11 abandoned, 12 cancelled. What the
status does not say, the feed marks:
- the break before extra time is still status 4, after an "end" incident (type 12) at 90';
- status 5 covers both extra-time halves and the break between them: the break begins with a
  "midfield" incident (type 11) at 105', and the second half with a new kick-off timestamp in
  `score[4]` (the current half's kick-off), which is how its minute counts from its own kick-off
  and never on from the first half's across the break.

**Kick-off timestamps** are written once, each on its own transition (→2 the first half's, 3→4 the
second's, 4→5 extra time's, a new `score[4]` in 5 the second extra-time half's): `track()` never
changes one that is set, and ignores a 0 (unknown).

**Minute** (the provider's formula, floored): first half `(now − ko1)/60 + 1`, second half
`(now − ko2)/60 + 46`, extra time `(now − ko3)/60 + 91`, its second half `(now − ko4)/60 + 106`.
Past the period's nominal end (45, 90, 105, 120) the text is `45+N'` and `minute`/`added` are 45/N:
no clamping ever hides stoppage time. Breaks and freeze statuses (3, 7, 8, 9, 10, 11, 12) keep the
stored minute and show their text (`HT`, `BT`, `PEN`, `FT`, `DELAY`, `INT`, `ABD`, `CAN`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

NOT_STARTED, FIRST_HALF, HALF_TIME, SECOND_HALF = "not_started", "first_half", "half_time", "second_half"
BREAK_BEFORE_EXTRA_TIME, EXTRA_TIME_FIRST, EXTRA_TIME_BREAK, EXTRA_TIME_SECOND = (
    "break_before_extra_time", "extra_time_first", "extra_time_break", "extra_time_second")
PENALTIES, ENDED, DELAYED, INTERRUPTED, ABANDONED, CANCELLED, UNKNOWN = (
    "penalties", "ended", "delayed", "interrupted", "abandoned", "cancelled", "unknown")

INCIDENT_MIDFIELD, INCIDENT_END = 11, 12

# period: (the kick-off it counts from, the formula's base, the nominal end); None: a frozen period
_RUNNING = {
    FIRST_HALF: ("first", 1, 45),
    SECOND_HALF: ("second", 46, 90),
    EXTRA_TIME_FIRST: ("extra", 91, 105),
    EXTRA_TIME_SECOND: ("extra_second", 106, 120),
}
_TEXT = {
    NOT_STARTED: "", HALF_TIME: "HT", BREAK_BEFORE_EXTRA_TIME: "BT", EXTRA_TIME_BREAK: "BT",
    PENALTIES: "PEN", ENDED: "FT", DELAYED: "DELAY", INTERRUPTED: "INT", ABANDONED: "ABD",
    CANCELLED: "CAN", UNKNOWN: "",
}
_BY_STATUS = {1: NOT_STARTED, 2: FIRST_HALF, 3: HALF_TIME, 4: SECOND_HALF, 5: EXTRA_TIME_FIRST, 6: EXTRA_TIME_FIRST,
              7: PENALTIES, 8: ENDED, 9: DELAYED, 10: INTERRUPTED, 11: ABANDONED, 12: CANCELLED}


@dataclass(frozen=True)
class Tracked:
    """What a match actor keeps between two provider updates: the period and the four kick-offs
    (Unix seconds; None = not known)."""

    period: str = NOT_STARTED
    first: int | None = None
    second: int | None = None
    extra: int | None = None
    extra_second: int | None = None


@dataclass(frozen=True)
class Minute:
    minute: int | None  # 1..45, 46..90, 91..105, 106..120: capped at the period's end
    added: int | None   # the N of 45+N' (None within the nominal time)
    text: str


def track(prev: Tracked, status_id: int, kickoff_ts: int, incidents: Iterable = ()) -> Tracked:
    """The period after a provider update (`status_id`, `score[4]`, the incidents so far, as dicts or
    objects with `type` and `time`), with each kick-off set once, on its own transition."""
    period = _BY_STATUS.get(status_id, UNKNOWN)
    ko = kickoff_ts if isinstance(kickoff_ts, int) and kickoff_ts > 0 else None
    out = prev
    if period == FIRST_HALF and out.first is None and ko:
        out = replace(out, first=ko)
    elif period == SECOND_HALF:
        if out.second is None and ko and ko != out.first:
            out = replace(out, second=ko)
        if _marked(incidents, INCIDENT_END, 90):
            period = BREAK_BEFORE_EXTRA_TIME
    elif period == EXTRA_TIME_FIRST:
        if out.extra is None and ko and ko != out.second:
            out = replace(out, extra=ko)
        elif out.extra is not None and ko and ko != out.extra and out.extra_second is None:
            out = replace(out, extra_second=ko)
        if out.extra_second is not None:
            period = EXTRA_TIME_SECOND
        elif _marked(incidents, INCIDENT_MIDFIELD, 105):
            period = EXTRA_TIME_BREAK
    return out if out.period == period else replace(out, period=period)


def _marked(incidents: Iterable, kind: int, at_least: int) -> bool:
    for i in incidents:
        t = i.get("type") if isinstance(i, dict) else getattr(i, "type", None)
        minute = i.get("time") if isinstance(i, dict) else getattr(i, "time", None)
        if t == kind and isinstance(minute, int) and minute >= at_least:
            return True
    return False


def minute_at(tracked: Tracked, now: float, stored: Minute | None = None) -> Minute:
    """The minute and its text at `now`; a frozen period, or a running one whose kick-off is
    unknown, keeps the `stored` minute."""
    running = _RUNNING.get(tracked.period)
    kept = stored or Minute(None, None, "")
    if running is None:
        return Minute(kept.minute, kept.added, _TEXT.get(tracked.period, ""))
    kickoff_field, base, end = running
    kickoff = getattr(tracked, kickoff_field)
    if kickoff is None:
        return Minute(kept.minute, kept.added, _text(kept.minute, kept.added) if kept.minute else "")
    minute = max(base, int((now - kickoff) // 60) + base)
    if minute > end:
        return Minute(end, minute - end, f"{end}+{minute - end}'")
    return Minute(minute, None, f"{minute}'")


def _text(minute: int, added: int | None) -> str:
    return f"{minute}+{added}'" if added else f"{minute}'"


def period_of(status_id: int) -> str:
    """The period a status alone implies (before the feed's markers refine it)."""
    return _BY_STATUS.get(status_id, UNKNOWN)
