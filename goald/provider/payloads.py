"""The provider's live and match payloads as typed, validated msgspec Structs.

Owns the shapes of the envelope, the per-team score array, `match/detail_live` items, the match
object of `match/diary` and `match/recent/list` (with the diary's `results_extra`) and
`data/update`. The slower-moving shapes (analysis, standings, competitions, teams) live in
`payloads_reference.py`. Field names follow the provider's documentation; positional arrays are
`array_like` Structs that get names here.

Rules the types carry (msgspec enforces them in C while decoding, see `decode.py`):
- documented-required fields have no default; optional ones ("may not exist", "if it exists")
  default to the empty value; unknown extra object fields are ignored (forward compatible), a
  documented field of the wrong type is not;
- score arrays have exactly their documented length (`forbid_unknown_fields` on an array_like
  Struct rejects extra trailing elements; missing ones are missing required fields);
- absurd values are out of range: negative goals and cards (corners may be -1 = no data),
  `status_id` outside 0..13, negative timestamps, counts above `MAX_COUNT`.

Plain data: no module state, no I/O; instances are immutable (`frozen=True`, tuples not lists),
which is also what makes `gc=False` safe (an immutable tree can never form a reference cycle).
"""
from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

# --- constrained scalars ------------------------------------------------------------------------

MAX_COUNT = 999
"""Upper bound of a goal/card/corner count: anything above is a corrupt value, not football."""

STATUS_IDS = range(0, 14)
"""The documented match states (STATUS_CODE.md "Match state"): 0 abnormal ... 13 to be determined."""

Count = Annotated[int, Meta(ge=0, le=MAX_COUNT)]
CornerCount = Annotated[int, Meta(ge=-1, le=MAX_COUNT)]  # -1 = the provider has no corner data
StatusId = Annotated[int, Meta(ge=STATUS_IDS.start, le=STATUS_IDS.stop - 1)]
Timestamp = Annotated[int, Meta(ge=0, le=2**40)]  # Unix seconds; 0 = unknown where documented
NonNegative = Annotated[int, Meta(ge=0)]
Side = Annotated[int, Meta(ge=0, le=2)]  # 0 neutral, 1 home, 2 away
EntityId = Annotated[str, Meta(min_length=1)]


class PayloadObject(msgspec.Struct, frozen=True, gc=False):
    """Base of every object payload: immutable, untracked by the cycle collector."""


class PayloadRow(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """Base of positional payloads (JSON arrays decoded by position into named fields)."""


class ExactPayloadRow(msgspec.Struct, frozen=True, gc=False, array_like=True, forbid_unknown_fields=True):
    """A positional payload of exactly its documented length: extra trailing elements reject it.
    Only the score arrays are exact (validation.py relies on it: msgspec reports an extra element
    without a path, so "too long" always means `score_length`)."""


# --- envelope -----------------------------------------------------------------------------------


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """The outer object of every answer. Success is `{"code": 0, "results": ...}`; the provider
    reports errors inside HTTP 200 as `{"err": "..."}` and throttling as `{"code": 429}`.

    `query`, `results` and `results_extra` stay `msgspec.Raw` (undecoded bytes) so the HTTP client
    can look at `code`/`err` first and the endpoint's decoder decodes them once, typed. An absent
    member is an empty `Raw` (falsy); a JSON `null` is `Raw(b"null")`."""

    code: int | None = None
    err: str | None = None
    msg: str | None = None
    query: msgspec.Raw = msgspec.Raw()
    results: msgspec.Raw = msgspec.Raw()
    results_extra: msgspec.Raw = msgspec.Raw()

    @property
    def ok(self) -> bool:
        """A success answer: `code` 0 and no (or an empty) `err`."""
        return not self.err and self.code == 0

    @property
    def throttled(self) -> bool:
        """`{"code": 429}`: the provider asks us to slow down."""
        return self.code == 429


class ListQuery(PayloadObject):
    """`query` of the paged lists (recent list, competition/team lists, diary). `total` is the
    count of *this* page, not of the collection: page until a page with total 0."""

    total: NonNegative = 0
    type: str = ""
    uuid: str = ""
    page: NonNegative = 0
    time: NonNegative = 0
    min_time: NonNegative = 0
    max_time: NonNegative = 0


# --- scores -------------------------------------------------------------------------------------


class TeamScore(ExactPayloadRow):
    """One team's 7-int score array: `[goals in regular time, half-time goals, red cards, yellow
    cards, corners (-1 = no data), overtime score (includes regular time; only in overtime),
    shoot-out score]`."""

    goals: Count
    half_time_goals: Count
    red_cards: Count
    yellow_cards: Count
    corners: CornerCount
    overtime_goals: Count
    penalty_goals: Count

    @property
    def display_goals(self) -> int:
        """The score shown to people: the overtime score when it is > 0, else regular time. The
        shoot-out score is shown apart, never added."""
        return self.overtime_goals if self.overtime_goals > 0 else self.goals


class Score(ExactPayloadRow):
    """`score` of a detail_live item: `[match_id, status_id, home[7], away[7], kickoff_ts, ""]`.
    `kickoff_ts` is the kick-off of the *current* half (first half in status 2, second in 4,
    overtime in 5); 0 = unknown. The trailing string has no documented meaning (`reserved`)."""

    match_id: EntityId
    status_id: StatusId
    home: TeamScore
    away: TeamScore
    kickoff_ts: Timestamp
    reserved: str


# --- match/detail_live --------------------------------------------------------------------------


class Stat(PayloadObject):
    """One technical statistic (type: STATUS_CODE.md "Technical Statistics"), per team."""

    type: NonNegative
    home: int
    away: int


class Incident(PayloadObject):
    """One match incident. `type`, `position` and `time` are always there; everything else only
    for the incident kinds it relates to (goal, substitution, VAR, cards, injury time, ...).
    `second` is documented as always present but is only a refinement: missing means 0."""

    type: NonNegative
    position: Side
    time: NonNegative
    second: NonNegative = 0
    add_time: NonNegative = 0
    player_id: str = ""
    player_name: str = ""
    assist1_id: str = ""
    assist1_name: str = ""
    assist2_id: str = ""
    assist2_name: str = ""
    home_score: Count | None = None
    away_score: Count | None = None
    in_player_id: str = ""
    in_player_name: str = ""
    out_player_id: str = ""
    out_player_name: str = ""
    var_reason: NonNegative = 0
    var_result: NonNegative = 0
    reason_type: NonNegative = 0


class TextLine(PayloadObject):
    """One line of the text commentary (`tlive`)."""

    data: str
    time: str = ""
    position: Side = 0


class LiveMatch(PayloadObject):
    """One item of `match/detail_live`: a match active in the last 120 minutes."""

    id: EntityId
    score: Score
    stats: tuple[Stat, ...] = ()
    incidents: tuple[Incident, ...] = ()
    tlive: tuple[TextLine, ...] = ()

    @property
    def status_id(self) -> int:
        return self.score.status_id

    @property
    def kickoff_ts(self) -> int:
        return self.score.kickoff_ts


# --- match object (diary, recent list) ----------------------------------------------------------


class Coverage(PayloadObject):
    mlive: int = 0
    lineup: int = 0
    gif: int = 0


class MatchRound(PayloadObject):
    stage_id: str = ""
    group_num: NonNegative = 0
    round_num: NonNegative = 0


class Environment(PayloadObject):
    weather: NonNegative = 0
    pressure: str = ""
    temperature: str = ""
    wind: str = ""
    humidity: str = ""


class Match(PayloadObject):
    """The match object of `match/diary` and `match/recent/list`. `match_time` is the scheduled
    kick-off (Unix seconds), `updated_at` the provider's change time of the record."""

    id: EntityId
    season_id: str
    competition_id: str
    home_team_id: EntityId
    away_team_id: EntityId
    status_id: StatusId
    match_time: Timestamp
    home_scores: TeamScore
    away_scores: TeamScore
    updated_at: Timestamp
    venue_id: str = ""
    referee_id: str = ""
    neutral: int = 0
    note: str = ""
    home_position: str = ""
    away_position: str = ""
    coverage: Coverage | None = None
    round: MatchRound | None = None
    related_id: str = ""
    agg_score: tuple[Count, ...] = ()
    environment: Environment | None = None
    tbd: int = 0
    has_ot: int = 0
    ended: NonNegative = 0
    team_reverse: int = 0
    loss: int = 0


# --- match/diary results_extra ------------------------------------------------------------------


class CompetitionRef(PayloadObject):
    id: EntityId
    name: str
    logo: str = ""


class TeamRef(PayloadObject):
    id: EntityId
    name: str
    logo: str = ""
    country_logo: str = ""


class RefereeRef(PayloadObject):
    id: EntityId
    name: str
    logo: str = ""


class VenueRef(PayloadObject):
    id: EntityId
    name: str


class SeasonRef(PayloadObject):
    id: EntityId
    competition_id: str = ""
    year: str = ""


class StageRef(PayloadObject):
    id: EntityId
    name: str
    season_id: str = ""
    mode: NonNegative = 0  # 1 points, 2 elimination
    group_count: NonNegative = 0
    round_count: NonNegative = 0
    order: NonNegative = 0


class DiaryExtra(PayloadObject):
    """`results_extra` of the diary: the records the day's matches point at."""

    competition: tuple[CompetitionRef, ...] = ()
    team: tuple[TeamRef, ...] = ()
    season: tuple[SeasonRef, ...] = ()
    stage: tuple[StageRef, ...] = ()
    referee: tuple[RefereeRef, ...] = ()
    venue: tuple[VenueRef, ...] = ()


# --- data/update --------------------------------------------------------------------------------


class DataChange(PayloadObject):
    """One item of `data/update` (what changed in the last 120 s). The provider groups items by
    type id (STATUS_CODE.md "Data Update Type ID": 1 match lineup, 3 season standing, ...); the
    decoder sets `type_id` from the group's key. Which id is set depends on the type."""

    update_time: Timestamp
    type_id: NonNegative = 0
    match_id: str = ""
    season_id: str = ""
    team_id: str = ""
    pub_time: NonNegative = 0
