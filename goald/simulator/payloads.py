"""The provider's payload shapes over the simulated world: the match object of `match/diary` and
`match/recent/list`, the diary's `results_extra`, and the competition and team list items, all
as plain dicts/lists in the documented shapes (field names and JSON types of the public TheSports
docs), ready for JSON encoding.

`SimMatch` is one match of the world: its references (competition, stage, teams, venue,
referee) and its `Timeline`. Its match object is cached per match and rebuilt only when an event
happened since the last build (the same rule as `Timeline.live_entry`). Returned dicts are
shared between calls: callers treat them as read-only.

Runs in whatever greenlet calls it (the server's request greenlets): pure CPU, never blocks, no
I/O, raises nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from goald.simulator.refdata import LOGO, Competition, Referee, Stage, Team, Venue
from goald.simulator.timeline import ET1, FT, STATUS_OF, Timeline


@dataclass(eq=False)
class SimMatch:
    """One match: references, timeline, and the fixed part of its match object."""

    index: int
    id: str
    comp: Competition
    stage: Stage
    group_num: int
    round_num: int
    home: Team
    away: Team
    venue: Venue
    referee: Referee
    timeline: Timeline
    knockout: bool = False
    neutral: int = 0
    environment: dict | None = None
    positions: tuple[str, str] = ("", "")
    scenario: str = ""
    _k: int = field(default=-1, repr=False)
    _obj: dict | None = field(default=None, repr=False)

    def __post_init__(self):
        self.end_t = next((e.t for e in self.timeline.events if e.kind == "end"), 0)

    def match_object(self, t: float) -> dict | None:
        """The documented match object at t (None before the match exists)."""
        tl = self.timeline
        k = tl.index_at(t)
        if k == self._k:
            return self._obj
        self._k = k
        if not k:
            self._obj = None
            return None
        s = tl.snap(k)
        status = STATUS_OF[s.phase]
        obj = {
            "id": self.id, "season_id": self.comp.season_id, "competition_id": self.comp.id,
            "home_team_id": self.home.id, "away_team_id": self.away.id, "status_id": status,
            "match_time": s.match_time, "venue_id": self.venue.id, "referee_id": self.referee.id,
            "neutral": self.neutral, "note": "", "home_scores": list(s.home), "away_scores": list(s.away),
            "home_position": self.positions[0], "away_position": self.positions[1],
            "coverage": {"mlive": 1 if self.comp.tier in (0, 1) else 0, "lineup": 1 if self.comp.lineups else 0,
                         "gif": 0},
            "round": {"stage_id": self.stage.id, "group_num": self.group_num, "round_num": self.round_num},
        }
        if self.environment:
            obj["environment"] = self.environment
        if s.et or s.phase == ET1:
            obj["has_ot"] = 1
        if s.phase == FT and self.end_t and self.end_t <= s.t:
            obj["ended"] = self.end_t
        obj["updated_at"] = s.t
        self._obj = obj
        return obj


def competition_item(c: Competition, ref) -> dict:
    """One `competition/additional/list` item."""
    teams = c.teams or ref.country_teams.get(c.country.id, [])[:20]
    higher = [ref.league_at[key] for key in [(c.country.id, c.tier - 1)] if key in ref.league_at]
    lower = [ref.league_at[key] for key in [(c.country.id, c.tier + 1)] if key in ref.league_at]
    item = {
        "id": c.id, "category_id": c.country.category_id, "country_id": c.country.id, "name": c.name,
        "short_name": c.short_name, "logo": LOGO.format(kind="competition", id=c.id), "type": c.type,
        "cur_season_id": c.season_id, "cur_stage_id": c.cur_stage.id, "cur_round": c.cur_round,
        "round_count": c.round_count,
        "title_holder": [teams[c.index % len(teams)].id, 1 + c.index % 4] if teams else [],
        "most_titles": [[teams[(c.index * 7) % len(teams)].id], 5 + c.index % 20] if teams else [],
        "newcomers": [[t.id for t in teams[-3:]], []] if c.type == 1 and c.tier > 1 else [[], []],
        "divisions": [higher, lower] if c.type == 1 else [[], []],
        "host": {"country": c.country.name},
        "gender": 1, "primary_color": c.colors[0], "secondary_color": c.colors[1], "updated_at": c.updated_at,
    }
    return item


def team_item(t: Team) -> dict:
    """One `team/additional/list` item."""
    return {
        "id": t.id, "competition_id": t.league.id if t.league else "", "country_id": t.country.id,
        "name": t.name, "short_name": t.short_name, "logo": LOGO.format(kind="team", id=t.id), "national": 0,
        "foundation_time": t.founded, "website": "", "coach_id": t.coach_id, "venue_id": t.venue.id,
        "market_value": t.market_value, "market_value_currency": "EUR",
        "total_players": 23 if t.index >= 0 else -1, "foreign_players": (t.index * 7) % 12 if t.index >= 0 else -1,
        "national_players": (t.index * 3) % 9 if t.index >= 0 else -1, "virtual": 0, "gender": 1,
        "updated_at": t.updated_at,
    }


def diary_extra(matches: list[SimMatch]) -> dict:
    """`results_extra` of the diary: every record the matches point at, once each."""
    comps, teams, refs, venues, stages = {}, {}, {}, {}, {}
    for m in matches:
        comps.setdefault(m.comp.id, m.comp)
        teams.setdefault(m.home.id, m.home)
        teams.setdefault(m.away.id, m.away)
        refs.setdefault(m.referee.id, m.referee)
        venues.setdefault(m.venue.id, m.venue)
        stages.setdefault(m.stage.id, m.stage)
    return {
        "competition": [{"id": c.id, "name": c.name, "logo": LOGO.format(kind="competition", id=c.id)}
                        for c in comps.values()],
        "team": [{"id": t.id, "name": t.name, "logo": LOGO.format(kind="team", id=t.id)} for t in teams.values()],
        "referee": [{"id": r.id, "name": r.name, "logo": ""} for r in refs.values()],
        "venue": [{"id": v.id, "name": v.name} for v in venues.values()],
        "season": [{"id": c.season_id, "competition_id": c.id, "year": c.year} for c in comps.values()],
        "stage": [{"id": s.id, "season_id": s.season_id, "name": s.name, "mode": s.mode,
                   "group_count": s.group_count, "round_count": s.round_count, "order": s.order}
                  for s in stages.values()],
    }


def paged(items: list, key, page: int | None, since: int | None, size: int = 1000) -> list:
    """The doc's list semantics: a time query returns records updated at or after `since`,
    sorted by update time; either way `size` per page, page 1-based, empty past the end."""
    if since is not None:
        items = sorted((i for i in items if key(i) >= since), key=key)
    page = page or 1
    if page < 1:
        return []
    return items[(page - 1) * size: page * size]
