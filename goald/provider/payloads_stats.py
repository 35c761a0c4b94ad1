"""msgspec Structs of the provider's team statistics (docs: `match/team_stats/list`,
`match/half/team_stats/detail`), read by the live stats sync and the data completeness validator
(actors/jobs/stats.py).

Same rules as goald/provider/payloads.py: frozen, untracked by the cycle collector, unknown
fields ignored, counts never negative. Every statistic is optional: the provider sends what it
has, and a missing one is None, never 0 (so that an upsert never writes an unknown value over a
known one).
"""
from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from goald.provider.payloads import EntityId, NonNegative, PayloadObject

Count = Annotated[int, Meta(ge=0, le=100_000)] | None
Percent = Annotated[int, Meta(ge=0, le=100)] | None

# The documented fields of a team's statistics, in the docs' order (`ball_possession` is a percentage).
TEAM_STAT_FIELDS = (
    "goals", "penalty", "assists", "red_cards", "yellow_cards", "shots", "shots_on_target", "dribble",
    "dribble_succ", "clearances", "blocked_shots", "interceptions", "tackles", "tackles_succ", "passes",
    "passes_accuracy", "key_passes", "crosses", "crosses_accuracy", "long_balls", "long_balls_accuracy", "duels",
    "duels_won", "fouls", "was_fouled", "goals_against", "offsides", "yellow2red_cards", "corner_kicks",
    "ball_possession", "freekicks", "freekick_goals", "big_chance_missed", "big_chance_created", "hit_woodwork",
    "fastbreaks", "fastbreak_shots", "fastbreak_goals", "poss_losts", "aerial_won", "aerial_lost", "ground_won",
    "ground_lost", "duel_won", "duel_lost", "shots_ibox", "shots_obox",
)
# The halves of `match/half/team_stats/detail`: full time, first and second half, extra time's halves.
HALVES = ("ft", "p1", "p2", "o1", "o2")


class TeamStats(PayloadObject):
    """One team's statistics in one match (goals, shots, possession, ...); None: not sent."""

    team_id: EntityId
    goals: Count = None
    penalty: Count = None
    assists: Count = None
    red_cards: Count = None
    yellow_cards: Count = None
    shots: Count = None
    shots_on_target: Count = None
    dribble: Count = None
    dribble_succ: Count = None
    clearances: Count = None
    blocked_shots: Count = None
    interceptions: Count = None
    tackles: Count = None
    tackles_succ: Count = None
    passes: Count = None
    passes_accuracy: Count = None
    key_passes: Count = None
    crosses: Count = None
    crosses_accuracy: Count = None
    long_balls: Count = None
    long_balls_accuracy: Count = None
    duels: Count = None
    duels_won: Count = None
    fouls: Count = None
    was_fouled: Count = None
    goals_against: Count = None
    offsides: Count = None
    yellow2red_cards: Count = None
    corner_kicks: Count = None
    ball_possession: Percent = None
    freekicks: Count = None
    freekick_goals: Count = None
    big_chance_missed: Count = None
    big_chance_created: Count = None
    hit_woodwork: Count = None
    fastbreaks: Count = None
    fastbreak_shots: Count = None
    fastbreak_goals: Count = None
    poss_losts: Count = None
    aerial_won: Count = None
    aerial_lost: Count = None
    ground_won: Count = None
    ground_lost: Count = None
    duel_won: Count = None
    duel_lost: Count = None
    shots_ibox: Count = None
    shots_obox: Count = None

    def known(self) -> dict[str, int]:
        """The statistics the provider sent (None left out)."""
        return {f: v for f in TEAM_STAT_FIELDS if (v := getattr(self, f)) is not None}


class MatchTeamStats(PayloadObject):
    """One item of `match/team_stats/list`: a match whose team statistics changed in the last 120 s."""

    id: EntityId
    stats: tuple[TeamStats, ...] = ()


HalfPair = tuple[NonNegative, NonNegative]     # [home, away]


class HalfTeamStats(PayloadObject):
    """`match/half/team_stats/detail?uuid=`: per half, statistic id (STATUS_CODE.md "Half-time
    Statistics") → [home, away]. A half the provider has no data for is empty."""

    ft: dict[NonNegative, HalfPair] = msgspec.field(default_factory=dict)
    p1: dict[NonNegative, HalfPair] = msgspec.field(default_factory=dict)
    p2: dict[NonNegative, HalfPair] = msgspec.field(default_factory=dict)
    o1: dict[NonNegative, HalfPair] = msgspec.field(default_factory=dict)
    o2: dict[NonNegative, HalfPair] = msgspec.field(default_factory=dict)
