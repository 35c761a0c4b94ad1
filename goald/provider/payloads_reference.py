"""The provider's slower-moving payloads as typed, validated msgspec Structs: `match/analysis`
(head-to-head and recent form), standings (`season/recent/table/detail`, `table/live`) and the
reference lists (`competition/additional/list`, `team/additional/list`).

Same rules as `payloads.py` (whose constrained scalars and bases it reuses): required fields have
no default, unknown object fields are ignored, positional rows are `array_like` Structs, score
rows have their exact documented length. Plain immutable data: no state, no I/O.
"""
from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from goald.provider.payloads import (
    MAX_COUNT,
    Count,
    CornerCount,
    EntityId,
    NonNegative,
    StatusId,
    Timestamp,
    ExactPayloadRow,
    PayloadObject,
    PayloadRow,
)

# --- match/analysis -----------------------------------------------------------------------------


class AnalysisTeam(ExactPayloadRow):
    """One side of an analysis row: `[team_id, league position (text), then the 7-int score:
    goals, half-time goals, red cards, yellow cards, corners, overtime score, shoot-out score]`."""

    team_id: str
    position: str
    goals: Count
    half_time_goals: Count
    red_cards: Count
    yellow_cards: Count
    corners: CornerCount
    overtime_goals: Count
    penalty_goals: Count


class AnalysisRound(PayloadRow):
    """`[stage_id, group_num, round_num]` of an analysis row."""

    stage_id: str = ""
    group_num: NonNegative = 0
    round_num: NonNegative = 0


class AnalysisSeason(PayloadRow):
    """`[season_id, year]` of an analysis row."""

    season_id: str = ""
    year: str = ""


class AnalysisRow(PayloadRow):
    """One match of the analysis, positional: `[match_id, competition_id, status_id, match_time,
    neutral, home[9], away[9], odds[4], round[3], season[2]]`. The 5th element is 0 in the docs'
    example and is taken as the neutral-venue flag; the trailing odds/round/season may be absent.
    Extra trailing elements are ignored (forward compatible)."""

    match_id: EntityId
    competition_id: str
    status_id: StatusId
    match_time: Timestamp
    neutral: int
    home: AnalysisTeam
    away: AnalysisTeam
    odds: tuple[str, ...] = ()
    round: AnalysisRound | None = None
    season: AnalysisSeason | None = None


class AnalysisHistory(PayloadObject):
    """Head-to-head (`vs`) and each team's recent results; empty lists when there is no data."""

    vs: tuple[AnalysisRow, ...] = ()
    home: tuple[AnalysisRow, ...] = ()
    away: tuple[AnalysisRow, ...] = ()


class AnalysisFuture(PayloadObject):
    home: tuple[AnalysisRow, ...] = ()
    away: tuple[AnalysisRow, ...] = ()


class GoalSplit(PayloadObject):
    """Goals scored/conceded by time slice over `matches` matches (rows are numeric arrays whose
    columns the docs do not name: kept as numbers)."""

    matches: NonNegative = 0
    scored: tuple[tuple[int | float, ...], ...] = ()
    conceded: tuple[tuple[int | float, ...], ...] = ()


class TeamGoalDistribution(PayloadObject):
    all: GoalSplit | None = None
    home: GoalSplit | None = None
    away: GoalSplit | None = None


class GoalDistribution(PayloadObject):
    home: TeamGoalDistribution | None = None
    away: TeamGoalDistribution | None = None


class MatchAnalysis(PayloadObject):
    """`results` of `match/analysis?uuid=<match>`. `info` is the match's own row (None when it was
    absent or rejected)."""

    info: AnalysisRow | None = None
    history: AnalysisHistory = msgspec.field(default_factory=AnalysisHistory)
    future: AnalysisFuture = msgspec.field(default_factory=AnalysisFuture)
    goal_distribution: GoalDistribution = msgspec.field(default_factory=GoalDistribution)


# --- standings ----------------------------------------------------------------------------------


class Promotion(PayloadObject):
    """A promotion/relegation zone a standings row can point at (`promotion_id`)."""

    id: EntityId
    name: str
    color: str = ""


class StandingRow(PayloadObject):
    """One team's line in a standings table. Points may be negative (deductions); counts not."""

    team_id: EntityId
    position: NonNegative
    points: int
    total: NonNegative
    won: NonNegative
    draw: NonNegative
    loss: NonNegative
    goals: NonNegative
    goals_against: NonNegative
    goal_diff: int
    promotion_id: str = ""
    deduct_points: int = 0
    note: str = ""
    home_points: int = 0
    home_position: NonNegative = 0
    home_total: NonNegative = 0
    home_won: NonNegative = 0
    home_draw: NonNegative = 0
    home_loss: NonNegative = 0
    home_goals: NonNegative = 0
    home_goals_against: NonNegative = 0
    home_goal_diff: int = 0
    away_points: int = 0
    away_position: NonNegative = 0
    away_total: NonNegative = 0
    away_won: NonNegative = 0
    away_draw: NonNegative = 0
    away_loss: NonNegative = 0
    away_goals: NonNegative = 0
    away_goals_against: NonNegative = 0
    away_goal_diff: int = 0
    updated_at: Timestamp = 0


class StandingTable(PayloadObject):
    """One standings table of a season (a league has one, a group stage one per group)."""

    id: EntityId
    rows: tuple[StandingRow, ...]
    conference: str = ""
    group: NonNegative = 0  # 0 = not a group; 1 = A, 2 = B, ...
    stage_id: str = ""


class SeasonStandings(PayloadObject):
    """`results` of `season/recent/table/detail?uuid=<season>`."""

    promotions: tuple[Promotion, ...] = ()
    tables: tuple[StandingTable, ...] = ()


class LiveSeasonTable(PayloadObject):
    """One item of `table/live`: a season whose standings changed in the last 10 minutes."""

    season_id: EntityId
    updated_at: Timestamp
    promotions: tuple[Promotion, ...] = ()
    tables: tuple[StandingTable, ...] = ()


# --- reference lists ----------------------------------------------------------------------------


class TitleHolder(PayloadRow):
    """`[team_id, titles]`; `[]` when there is none."""

    team_id: str = ""
    titles: NonNegative = 0


class MostTitles(PayloadRow):
    """`[[team_id, ...], titles]`; `[]` when there is none."""

    team_ids: tuple[str, ...] = ()
    titles: NonNegative = 0


class Newcomers(PayloadRow):
    """`[[promoted team ids], [relegated team ids]]`."""

    promoted: tuple[str, ...] = ()
    relegated: tuple[str, ...] = ()


class Divisions(PayloadRow):
    """`[[higher competition ids], [lower competition ids]]`."""

    higher: tuple[str, ...] = ()
    lower: tuple[str, ...] = ()


class Host(PayloadObject):
    country: str = ""
    city: str = ""


class Competition(PayloadObject):
    """One item of `competition/additional/list` (type: 0 unknown, 1 league, 2 cup, 3 friendly)."""

    id: EntityId
    name: str
    updated_at: Timestamp
    category_id: str = ""
    country_id: str = ""
    short_name: str = ""
    logo: str = ""
    type: NonNegative = 0
    cur_season_id: str = ""
    cur_stage_id: str = ""
    cur_round: NonNegative = 0
    round_count: NonNegative = 0
    title_holder: TitleHolder | None = None
    most_titles: MostTitles | None = None
    newcomers: Newcomers | None = None
    divisions: Divisions | None = None
    host: Host | None = None
    gender: NonNegative = 0
    primary_color: str = ""
    secondary_color: str = ""
    uid: str = ""


PlayerCount = Annotated[int, Meta(ge=-1, le=MAX_COUNT)]
"""A squad count where the provider writes -1 for "no data"."""


class Team(PayloadObject):
    """One item of `team/additional/list`. `foundation_time` may be before 1970 (negative)."""

    id: EntityId
    name: str
    updated_at: Timestamp
    competition_id: str = ""
    country_id: str = ""
    short_name: str = ""
    logo: str = ""
    national: int = 0
    country_logo: str = ""
    foundation_time: int = 0
    website: str = ""
    coach_id: str = ""
    venue_id: str = ""
    market_value: NonNegative = 0
    market_value_currency: str = ""
    total_players: PlayerCount = -1
    foreign_players: PlayerCount = -1
    national_players: PlayerCount = -1
    uid: str = ""
    virtual: int = 0
    gender: NonNegative = 0
