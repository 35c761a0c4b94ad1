"""One match as a timeline: timestamped events in, the provider's view of the match at any
instant out.

Owns playing the rules (rules.py: which event may follow which, after DOMAIN.md's status flow)
over a match's events: the score arrays of 7, the current half's kick-off timestamp, incidents
with their match minute (the provider's formula, floored: first half `(t - ko1)/60 + 1`, second
`(t - ko2)/60 + 46`, extra time `(t - ko3)/60 + 91`, its second half `(t - ko4)/60 + 106`), stats,
the `tlive` text (texts.py) and `minute_text`, the reference that clients and scenario
expectations compare with.

Everything is computed once, when the timeline is built: one snapshot per event, so `state_at(t)`
is a bisect on the sorted event times plus list slicing, and `live_entry(t)` (the detail_live
item) is cached per match and rebuilt only when an event has happened since the last build. The
returned dicts and lists are shared between calls: callers treat them as read-only.

Runs in whatever greenlet calls it (the server's request greenlets): pure CPU, never blocks, no
I/O. A timeline that breaks the rules raises `TimelineError` when it is built (naming the event);
nothing raises afterwards.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from goald.simulator.rules import (  # noqa: F401  (re-exported: the rules' names are the timeline's)
    ABD, ACTIVE_S, ALLOWED, BT, BT0, CAN, CARD_UPGRADE, CLOCK, CLOCK_ONLY, DELAY, END, ET1, ET2, FROZEN_TEXT, FT,
    GOAL, H1, H2, HT, IN_PLAY, INCIDENT_TYPE, INJURY_TIME, INT, KINDS, LIVE_STATUSES, MIDFIELD, NS, OT_END,
    OWN_GOAL, PEN, PENALTY, PENALTY_MISSED, PHASES, PK_END, RED, SHOOTOUT_GOAL, SHOOTOUT_MISS, START, STAT_TYPES,
    STATUS_OF, SUBSTITUTION, TEAM_KINDS, VAR, YELLOW, clock_minute, minute_text_of, short_status)
from goald.simulator.texts import SILENT as _SILENT
from goald.simulator.texts import default_text as _default_text



class TimelineError(ValueError):
    """An event the rules do not allow; `index` is its position in the events given."""

    def __init__(self, index: int, event: "Event", reason: str):
        self.index, self.event, self.reason = index, event, reason
        super().__init__(f"event {index} ({event.kind}): {reason}")


@dataclass(slots=True)
class Event:
    """One thing that happens at Unix second `t`. `side`: 0 neutral, 1 home, 2 away (for an own
    goal, the side whose score goes up). Players are `(id, name)`. `minutes`: announced stoppage of
    `injury_time`. `reason`: card/substitution reason_type, or VAR reason; `result`: VAR result.
    `text`: the tlive line (replaces the default one). `match_time`: the new scheduled kick-off of
    a `resume` after a delay (0 = unchanged)."""

    t: int
    kind: str
    side: int = 0
    player: tuple[str, str] | None = None
    assist: tuple[str, str] | None = None
    assist2: tuple[str, str] | None = None
    player_in: tuple[str, str] | None = None
    minutes: int = 0
    reason: int = 0
    result: int = 0
    text: str = ""
    match_time: int = 0


@dataclass(frozen=True, slots=True)
class MatchState:
    """A match at one instant, as the provider sees it plus the reference `minute_text`."""

    match_id: str
    status_id: int
    phase: str
    short_status: str           # API-Football's vocabulary: NS 1H HT 2H ET BT P FT AET PEN INT PST ABD CANC
    home_scores: list
    away_scores: list
    kickoff_ts: int
    minute_text: str
    minute: int | None
    added_minute: int | None
    incidents: list
    stats: list
    tlive: list
    update_time: int
    match_time: int


class _Snap:
    __slots__ = ("t", "phase", "kos", "home", "away", "stats", "n_inc", "n_tlive", "match_time", "frozen",
                 "ended_from", "et")

    def __init__(self, t, phase, kos, home, away, stats, n_inc, n_tlive, match_time, frozen, ended_from, et):
        self.t, self.phase, self.kos, self.home, self.away = t, phase, kos, home, away
        self.stats, self.n_inc, self.n_tlive, self.match_time = stats, n_inc, n_tlive, match_time
        self.frozen, self.ended_from, self.et = frozen, ended_from, et


class Timeline:
    """A match's events (sorted by time; equal times keep their order) and a snapshot after each.
    `created_at` is when the match appeared in the provider's lists (its first update_time)."""

    def __init__(self, match_id: str, events: list[Event], *, match_time: int, created_at: int,
                 home: str = "Home", away: str = "Away", corners: bool = True,
                 rates: tuple = (1.0, 1.0, 0.5, 0.5, 0)):
        self.match_id, self.home_name, self.away_name = match_id, home, away
        self.corners, self.rates = corners, rates
        self.events = [Event(created_at, "scheduled")] + list(events)
        self.incidents: list[dict] = []
        self.tlive: list[dict] = []
        self.snaps: list[_Snap] = []
        self._build(match_time)
        self.times = [e.t for e in self.events]
        self.first_activity = next((e.t for e in self.events if e.kind not in ("scheduled", "lineup")), None)
        self.last_time = self.times[-1]
        self.ends_live = STATUS_OF[self.snaps[-1].phase] in LIVE_STATUSES
        self._entry_k, self._entry = -1, None

    # --- building ---------------------------------------------------------------------------

    def _build(self, match_time: int) -> None:
        phase, kos, resume_phase = NS, [0, 0, 0, 0], NS
        home, away = [0, 0, 0, 0, 0 if self.corners else -1, 0, 0], [0, 0, 0, 0, 0 if self.corners else -1, 0, 0]
        shots = [0, 0, 0, 0]  # on home, on away, off home, off away
        shots_t = (0, 0, 0, 0)
        played_base, seg_start, frozen, ended_from, et = 0, 0, (None, None), None, False
        last_t = None
        for index, ev in enumerate(self.events):
            if index == 0:
                self.snaps.append(_Snap(ev.t, NS, (0, 0, 0, 0), tuple(home), tuple(away), None, 0, 0, match_time,
                                        frozen, None, False))
                last_t = ev.t
                continue
            if ev.kind not in KINDS or ev.kind == "scheduled":
                raise TimelineError(index - 1, ev, "unknown event type")
            if ev.t < last_t:
                raise TimelineError(index - 1, ev, "earlier than the event before it (events must be in time order)")
            if phase not in ALLOWED[ev.kind]:
                raise TimelineError(index - 1, ev, f"not allowed in {PHASES[phase]} (status {STATUS_OF[phase]})")
            if ev.kind in TEAM_KINDS and ev.side not in (1, 2):
                raise TimelineError(index - 1, ev, "needs a team (home or away)")
            if ev.kind == "injury_time" and ev.minutes <= 0:
                raise TimelineError(index - 1, ev, "needs minutes > 0")
            last_t = ev.t
            before = phase
            kind, side = ev.kind, ev.side
            if kind in CLOCK_ONLY and not ev.text:  # the common case: only shots and clock-driven stats move
                if kind != "stats":
                    shots[side - 1 if kind == "shot_on" else side + 1] += 1
                    shots_t = tuple(shots)
                prev = self.snaps[-1]
                self.snaps.append(_Snap(ev.t, phase, prev.kos, prev.home, prev.away,
                                        (played_base + ev.t - seg_start, shots_t), prev.n_inc, prev.n_tlive,
                                        match_time, frozen, ended_from, et))
                continue
            silent = kind in _SILENT  # no incident, no clock reading of its own
            if not silent and phase in IN_PLAY:
                ctime = clock_minute(phase, kos, ev.t)
                second = CLOCK[phase][3] + int(ev.t - kos[CLOCK[phase][0]])
            elif not silent:
                ctime = (frozen[0] or 0, frozen[0] or 0, frozen[1] or 0)
                second = {HT: 2700, BT0: 5400, BT: 6300}.get(phase, (frozen[0] or 0) * 60)
            scores = home if side == 1 else away
            # --- state changes
            if kind in START:
                phase = START[kind]
                kos[CLOCK[phase][0]] = ev.t
                seg_start = ev.t
                frozen = (None, None)
                if phase == ET1:
                    et = True
                    home[5], away[5] = home[0], away[0]
            elif kind in ("half_time", "end_of_regular_time", "extra_time_break", "penalties", "end", "interrupt",
                          "abandon"):
                if before in IN_PLAY:
                    played_base += ev.t - seg_start
                if kind == "interrupt":
                    resume_phase, frozen = before, (ctime[1], ctime[2])
                    phase = INT
                elif kind == "abandon":
                    if before in IN_PLAY:
                        frozen = (ctime[1], ctime[2])
                    phase = ABD
                else:
                    phase = {"half_time": HT, "end_of_regular_time": BT0, "extra_time_break": BT,
                             "penalties": PEN, "end": FT}[kind]
                    if phase != FT or before != INT:
                        frozen = ({HT: 45, BT0: 90, BT: 105}.get(phase) or (120 if et else 90), 0)
                    ended_from = before if phase == FT else ended_from
            elif kind == "delay":
                phase = DELAY
            elif kind == "cancel":
                phase = CAN
            elif kind == "resume":
                if phase == DELAY:
                    phase = NS
                    match_time = ev.match_time or match_time
                else:
                    phase, frozen, seg_start = resume_phase, (None, None), ev.t
            elif kind in ("goal", "penalty_goal", "own_goal"):
                if phase in (ET1, ET2):
                    scores[5] += 1
                else:
                    scores[0] += 1
                    if phase == H1:
                        scores[1] += 1
                if kind != "own_goal":
                    shots[side - 1] += 1
            elif kind == "shootout_goal":
                scores[6] += 1
            elif kind == "yellow":
                scores[3] += 1
            elif kind in ("red", "card_upgrade"):
                scores[2] += 1
            elif kind == "corner" and self.corners:
                scores[4] += 1
            elif kind == "shot_on":
                shots[side - 1] += 1
            elif kind == "shot_off":
                shots[side + 1] += 1
            # --- incident and text
            if not silent:
                self._incident(ev, before, ctime, second, home, away, et)
            if ev.text or not silent:
                self._text(ev, before, phase, kos, home, away, et)
            if kind in ("shot_on", "shot_off", "goal", "penalty_goal"):
                shots_t = tuple(shots)
            played = played_base + (ev.t - seg_start if phase in IN_PLAY else 0)
            stats = (played, shots_t) if (kos[0] or phase in IN_PLAY) else None
            self.snaps.append(_Snap(ev.t, phase, tuple(kos), tuple(home), tuple(away), stats, len(self.incidents),
                                    len(self.tlive), match_time, frozen, ended_from, et))

    def _stats(self, played: int, home: tuple, away: tuple, shots: tuple) -> tuple:
        att_h, att_a, dan_h, dan_a, bias = self.rates
        minutes = played / 60
        wobble = (played // 420 * 5 + len(self.match_id)) % 7 - 3 if played else 0
        pos_h = max(25, min(75, 50 + bias + wobble)) if played else 50
        return (home[4], away[4], home[3], away[3], home[2], away[2], shots[0], shots[1], shots[2], shots[3],
                int(minutes * att_h), int(minutes * att_a), int(minutes * dan_h), int(minutes * dan_a),
                pos_h, 100 - pos_h)

    def _incident(self, ev: Event, before: int, ctime: tuple, second: int, home: list, away: list,
                  et: bool) -> None:
        kind = ev.kind
        itype = INCIDENT_TYPE.get(kind)
        if kind in ("half_time", "extra_time_break"):
            itype = MIDFIELD
        elif kind in ("end_of_regular_time", "extra_time", "penalties", "end") and before in (H2, ET2, PEN):
            itype = {H2: END, ET2: OT_END, PEN: PK_END}[before]
        if itype is None:
            return
        inc = {"type": itype, "position": ev.side if kind in TEAM_KINDS or kind == "var" else 0,
               "time": ctime[1], "second": max(0, second)}
        if itype == INJURY_TIME:
            inc["add_time"] = ev.minutes
        elif ctime[2]:
            inc["add_time"] = ctime[2]
        if ev.player and itype != SUBSTITUTION:
            inc["player_id"], inc["player_name"] = ev.player
        if itype in (GOAL, PENALTY, OWN_GOAL):
            if ev.assist:
                inc["assist1_id"], inc["assist1_name"] = ev.assist
            if ev.assist2:
                inc["assist2_id"], inc["assist2_name"] = ev.assist2
            i = 5 if et else 0
            inc["home_score"], inc["away_score"] = home[i], away[i]
        elif itype in (SHOOTOUT_GOAL, SHOOTOUT_MISS):
            inc["home_score"], inc["away_score"] = home[6], away[6]
        elif itype == SUBSTITUTION:
            if ev.player_in:
                inc["in_player_id"], inc["in_player_name"] = ev.player_in
            if ev.player:
                inc["out_player_id"], inc["out_player_name"] = ev.player
            inc["reason_type"] = ev.reason
        elif itype in (YELLOW, RED, CARD_UPGRADE):
            inc["reason_type"] = ev.reason
        elif itype == VAR:
            inc["var_reason"], inc["var_result"] = ev.reason, ev.result
        self.incidents.append(inc)

    def _text(self, ev: Event, before: int, after: int, kos: tuple, home: list, away: list, et: bool) -> None:
        text = ev.text or _default_text(self, ev, home, away, et)
        if not text:
            return
        phase = after if ev.kind in START else before
        label = minute_text_of(phase, kos, ev.t, (None, None)) if phase in IN_PLAY else FROZEN_TEXT.get(phase, "")
        self.tlive.append({"time": label, "data": text, "position": ev.side if ev.kind in TEAM_KINDS else 0})

    # --- reading ----------------------------------------------------------------------------

    def index_at(self, t: float) -> int:
        """How many events have happened at or before t (0: the match does not exist yet)."""
        return bisect.bisect_right(self.times, t)

    def status_at(self, t: float) -> int | None:
        k = self.index_at(t)
        return STATUS_OF[self.snaps[k - 1].phase] if k else None

    def update_time_at(self, t: float) -> int | None:
        k = self.index_at(t)
        return self.snaps[k - 1].t if k else None

    def snap(self, k: int) -> _Snap:
        return self.snaps[k - 1]

    def minute_at(self, t: float) -> tuple[str, int | None, int | None]:
        """(minute_text, minute, added minutes) at t; ("", None, None) before the match exists."""
        k = self.index_at(t)
        if not k:
            return "", None, None
        s = self.snaps[k - 1]
        if s.phase in IN_PLAY:
            _, minute, added = clock_minute(s.phase, s.kos, t)
            return minute_text_of(s.phase, s.kos, t, s.frozen), minute, added or None
        return FROZEN_TEXT[s.phase], s.frozen[0], s.frozen[1] or None

    def kickoff_ts(self, s: _Snap) -> int:
        """The kick-off of the current half as the provider sends it (0 = none/unknown)."""
        p = s.phase
        if p in (H1, HT):
            return s.kos[0]
        if p in (H2, BT0):
            return s.kos[1]
        if p in (ET1, BT):
            return s.kos[2]
        if p in (ET2, PEN, INT):
            return next((ko for ko in reversed(s.kos) if ko), 0)
        return 0

    def stats_list(self, s: _Snap) -> list:
        if s.stats is None:
            return []
        v = self._stats(s.stats[0], s.home, s.away, s.stats[1])
        out = [{"type": st, "home": v[2 * i], "away": v[2 * i + 1]} for i, st in enumerate(STAT_TYPES)]
        return out if self.corners else out[1:]

    def live_entry(self, t: float) -> dict | None:
        """The detail_live item at t if the match is active then (live, or an event other than
        its scheduling or line-up within the last 120 minutes), else None. Rebuilt only when an
        event happened since the last call."""
        first = self.first_activity
        if first is None or t < first or (t >= self.last_time + ACTIVE_S and not self.ends_live):
            return None
        k = bisect.bisect_right(self.times, t)
        s = self.snaps[k - 1]
        if t - s.t >= ACTIVE_S and STATUS_OF[s.phase] not in LIVE_STATUSES:
            return None
        if k != self._entry_k:
            self._entry_k = k
            if not k:
                self._entry = None
            else:
                s = self.snaps[k - 1]
                self._entry = {"id": self.match_id,
                               "score": [self.match_id, STATUS_OF[s.phase], list(s.home), list(s.away),
                                         self.kickoff_ts(s), ""],
                               "stats": self.stats_list(s), "incidents": self.incidents[:s.n_inc],
                               "tlive": self.tlive[:s.n_tlive]}
        return self._entry

    def state_at(self, t: float) -> MatchState | None:
        k = self.index_at(t)
        if not k:
            return None
        s = self.snaps[k - 1]
        text, minute, added = self.minute_at(t)
        return MatchState(self.match_id, STATUS_OF[s.phase], PHASES[s.phase], short_status(s.phase, s.ended_from), list(s.home),
                          list(s.away), self.kickoff_ts(s), text, minute, added, self.incidents[:s.n_inc],
                          self.stats_list(s), self.tlive[:s.n_tlive], s.t, s.match_time)
