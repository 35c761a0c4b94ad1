"""The simulated football world of `goald simulate`: a deterministic live football day plus the
scenario matches placed beside it, and the provider's endpoint payloads at `clock.now()`.

`World(seed, matches, clock, scenarios=(), day=None)` builds everything once: the reference data
(refdata.py), the day's plan and every match's timeline (generate.py, timeline.py), the scenario
matches (scenario.py) and the index of `data/update` changes. The same seed, match count and day
give the same world, payload for payload; nothing reads the time except `clock.now()`, nothing is
random except `random.Random` streams keyed by the seed. `day` is the UTC midnight the day
belongs to (default: the UTC day of `clock.now()`); the day runs from the evening before (20:00
before midnight) to the next midnight, see docs/simulator.md for what it holds and the coverage
guarantee (`MIN_FULL_COVERAGE` matches).

Each endpoint method reads `clock.now()` and returns plain dicts/lists in the documented shapes;
they are shared with per-match caches, so callers treat them as read-only (the server encodes
them). Unknown ids give None. Runs in whatever greenlet calls it (the server's request
greenlets): pure CPU, never blocks, no I/O; the constructor raises only for bad arguments
(ValueError) and for unknown scenario objects (TypeError).
"""
from __future__ import annotations

import bisect
import calendar
import math
import random
import time
from collections import Counter

from goald.simulator.clock import WallClock
from goald.simulator.generate import MIN_FULL_COVERAGE, MatchGen, match_events, plan_day
from goald.simulator.payloads import SimMatch, competition_item, diary_extra, paged, team_item
from goald.simulator.refdata import Competition, Country, Reference, Stage, Team, Venue
from goald.simulator.scenario import Scenario, parse_at
from goald.simulator.standings import Standings
from goald.simulator.team_stats import half_stats, team_stats_item
from goald.simulator.timeline import LIVE_STATUSES, STATUS_OF, MatchState, Timeline

__all__ = ["World", "MIN_FULL_COVERAGE", "date_tsp"]

PAGE_SIZE = 1000
UPDATE_WINDOW_S = 120
TABLE_LIVE_WINDOW_S = 600
_WEATHER = (1, 2, 3, 5, 5, 7, 8, 9, 10, 13)


def date_tsp(date: str) -> int:
    """The UTC midnight of "YYYYMMDD" (ValueError for anything else)."""
    return calendar.timegm(time.strptime(str(date), "%Y%m%d"))


class Placement:
    """A scenario placed in the world: its kick-off (scenario clock 00:00) is `start` (Unix s)."""

    def __init__(self, scenario: Scenario, at: int, start: int, match_ids: list[str]):
        self.scenario, self.at, self.start, self.match_ids = scenario, at, start, match_ids

    def clock(self, at) -> int:
        """The Unix second of scenario time `at` ("MM:SS" or seconds)."""
        return self.start + parse_at(at)


class World:
    def __init__(self, seed: int = 1, matches: int = 400, clock=None, scenarios=(), day: int | None = None):
        if matches < 0:
            raise ValueError(f"matches must be 0 or more, not {matches}")
        self.seed, self.clock = seed, clock or WallClock()
        now = self.clock.now()
        self.day = int(day if day is not None else now - now % 86400)
        self.ref = Reference(seed, max(4, math.ceil(matches * 2.6 / 20)), self.day)
        self.standings = Standings(self)
        self.matches: list[SimMatch] = []
        self.placements: list[Placement] = []
        self._scenario_country: Country | None = None
        self._live: tuple[int | None, list] = (None, [])
        self._by_season: dict[str, list[SimMatch]] = {}
        self._generate(matches)
        self.generated = len(self.matches)
        for index, item in enumerate(scenarios):
            scenario, at = item
            if not isinstance(scenario, Scenario):
                raise TypeError(f"scenarios[{index}]: expected (Scenario, at), got {type(scenario).__name__}")
            self._place(index, scenario, parse_at(at), now)
        self.by_id = {m.id: m for m in self.matches}
        for m in self.matches:
            self._by_season.setdefault(m.comp.season_id, []).append(m)
        self._changes = self._index_changes()
        self._change_times = [c[0] for c in self._changes]

    # --- building ---------------------------------------------------------------------------

    def _generate(self, count: int) -> None:
        ref, day = self.ref, self.day
        rng = random.Random(f"{self.seed}/day")
        leagues = [c for c in ref.competitions if c.type == 1]
        cups = [c for c in ref.competitions if c.type == 2]
        country_teams = ref.country_teams
        busy: dict[int, list[int]] = {}
        cup_count: Counter = Counter()
        for i, plan in enumerate(plan_day(rng, day, count)):
            cup = plan.role == "tie" or (plan.role == "ordinary" and rng.random() < 0.12)
            when = plan.match_time or plan.anchor
            if cup:
                comp = cups[(plan.n if plan.role == "tie" else rng.randrange(len(cups))) % len(cups)]
                home, away = self._pick_teams(rng, country_teams[comp.country.id], when, busy)
                stage = comp.stages[1 + min(3, cup_count[comp.id] // 16)]
                cup_count[comp.id] += 1
                group_num, round_num = 0, 1
            else:
                comp = rng.choice(leagues)
                home, away = self._pick_teams(rng, comp.teams, when, busy)
                stage, group_num, round_num = comp.stages[0], 0, comp.cur_round
            mrng = random.Random(f"{self.seed}/match/{i}")
            gen = MatchGen(mrng, {1: ref.squad(home), 2: ref.squad(away)}, comp.corners,
                           (home.strength, away.strength))
            events = match_events(plan, mrng, gen, comp.lineups, cup)
            mid = ref.ids.make("match", f"{day}/{i}")  # a new id every day: teams stay, matches do not
            tl = Timeline(mid, events, match_time=plan.match_time, created_at=day - 3 * 86400 + (i * 977) % 86400,
                          home=home.name, away=away.name, corners=comp.corners, rates=self._rates(mrng, home, away))
            ranks = self.standings.rank(comp)
            env = None
            if mrng.random() < 0.6:
                env = {"weather": mrng.choice(_WEATHER), "pressure": f"{mrng.randint(990, 1030)}hPa",
                       "temperature": f"{mrng.randint(-2, 31)}°C", "wind": f"{mrng.randint(0, 120) / 10}m/s",
                       "humidity": f"{mrng.randint(30, 95)}%"}
            self.matches.append(SimMatch(i, mid, comp, stage, group_num, round_num, home, away, home.venue,
                                         ref.referees[rng.randrange(len(ref.referees))], tl, knockout=cup,
                                         environment=env, positions=(ranks.get(home.id, ""), ranks.get(away.id, ""))))

    @staticmethod
    def _pick_teams(rng: random.Random, candidates: list[Team], when: int, busy: dict) -> tuple[Team, Team]:
        order = rng.sample(candidates, min(len(candidates), 60))
        for gap in (20 * 3600, 4 * 3600, 0):
            free = [t for t in order if all(abs(when - x) >= gap for x in busy.get(t.index, ()))][:2]
            if len(free) == 2:
                break
        for t in free:
            busy.setdefault(t.index, []).append(when)
        return free[0], free[1]

    @staticmethod
    def _rates(rng: random.Random, home: Team, away: Team) -> tuple:
        att_h, att_a = rng.uniform(0.8, 1.3) * home.strength, rng.uniform(0.7, 1.2) * away.strength
        bias = max(-12, min(12, round((home.strength - away.strength) * 12)))
        return att_h, att_a, att_h * rng.uniform(0.4, 0.6), att_a * rng.uniform(0.4, 0.6), bias

    def _place(self, index: int, scenario: Scenario, at: int, now: float) -> None:
        ids, start = self.ref.ids, int(now - at)
        if self._scenario_country is None:
            self._scenario_country = Country(ids.make("country", "scenario"), "Scenario Land",
                                             ids.make("category", "scenario"))
        country = self._scenario_country
        placed = []
        for j, sm in enumerate(scenario.matches):
            comp = next((c for c in self.ref.competitions if c.index < 0 and c.name == sm.competition), None)
            if comp is None:
                n = -1 - sum(1 for c in self.ref.competitions if c.index < 0)
                season = ids.make("season", f"scenario/{sm.competition}")
                stage = Stage(ids.make("stage", f"scenario/{sm.competition}"), season, "Scenario", 1 + sm.knockout,
                              0, 1, 1)
                comp = Competition(n, ids.make("competition", f"scenario/{sm.competition}"), sm.competition,
                                   "SCN", sm.competition_type, country, 1, season, "2025-2026", [stage], 1, 1,
                                   corners=True, lineups=False, updated_at=start + sm.first_at - 3600,
                                   colors=("#444444", "#EEEEEE"))
                self.ref.competitions.append(comp)
            teams = []
            for name in (sm.home, sm.away):
                team = self.ref.team_by_id.get(ids.make("team", f"scenario/{name}"))
                if team is None:
                    team = Team(-1, ids.make("team", f"scenario/{name}"), name, name[:3].upper(), country, comp,
                                Venue(ids.make("venue", f"scenario/{name}"), f"{name} Ground", name),
                                ids.make("coach", f"scenario/{name}"), 0, 0, start + sm.first_at - 3600, 1.0, [])
                    self.ref.teams.append(team)
                    self.ref.team_by_id[team.id] = team
                    if not sm.knockout and team not in comp.teams:
                        comp.teams.append(team)
                teams.append(team)
            mid = ids.make("match", f"scenario/{index}/{scenario.name}/{j}")
            events = sm.timeline_events(start, lambda team, name: ids.make("player", f"scenario/{team}/{name}"))
            tl = Timeline(mid, events, match_time=start, created_at=start + sm.first_at - 3600, home=sm.home,
                          away=sm.away, corners=sm.corners)
            self.matches.append(SimMatch(len(self.matches), mid, comp, comp.stages[0], 0, 1, teams[0], teams[1],
                                         teams[0].venue, self.ref.referees[j % len(self.ref.referees)], tl,
                                         knockout=sm.knockout, scenario=scenario.name))
            placed.append(mid)
        self.placements.append(Placement(scenario, at, start, placed))

    def _index_changes(self) -> list[tuple]:
        """(time, type id, id field, id) of every data/update change, sorted by time."""
        out = []
        for m in self.matches:
            season = m.comp.season_id
            tl = m.timeline
            for e in tl.events:
                if e.kind == "lineup":
                    out.append((e.t, "1", "match_id", m.id))
                elif e.kind in ("goal", "penalty_goal", "own_goal") and not m.knockout:
                    out.append((e.t, "3", "season_id", season))
                elif e.kind == "end":
                    out.append((e.t, "2" if m.knockout else "3", "season_id", season))
        out.sort()
        return out

    # --- access -----------------------------------------------------------------------------

    def match_ids(self) -> list[str]:
        return [m.id for m in self.matches]

    def match(self, match_id: str) -> Timeline | None:
        m = self.by_id.get(match_id)
        return m.timeline if m else None

    def sim_match(self, match_id: str) -> SimMatch | None:
        return self.by_id.get(match_id)

    def state(self, match_id: str) -> MatchState | None:
        m = self.by_id.get(match_id)
        return m.timeline.state_at(self.clock.now()) if m else None

    def season_matches(self, season_id: str) -> list[SimMatch]:
        return self._by_season.get(season_id, [])

    def summary(self) -> dict:
        now = self.clock.now()
        statuses = Counter(m.timeline.status_at(now) for m in self.matches)
        statuses.pop(None, None)
        return {"seed": self.seed, "day": self.day, "now": now, "matches": len(self.matches),
                "generated": self.generated, "scenario_matches": len(self.matches) - self.generated,
                "min_full_coverage": MIN_FULL_COVERAGE, "competitions": len(self.ref.competitions),
                "teams": len(self.ref.teams), "statuses": {str(k): v for k, v in sorted(statuses.items())},
                "scenarios": [{"name": p.scenario.name, "at": p.at, "start": p.start, "match_ids": p.match_ids}
                              for p in self.placements]}

    # --- endpoints --------------------------------------------------------------------------

    def detail_live(self) -> list[dict]:
        """`match/detail_live` results: every match active in the last 120 minutes."""
        now = self.clock.now()
        second = int(now // 1)
        if self._live[0] == second:  # events are at whole seconds: the list is the same all second long
            return self._live[1]
        out = []
        for m in self.matches:
            entry = m.timeline.live_entry(now)
            if entry is not None:
                out.append(entry)
        self._live = (second, out)
        return out

    def diary(self, tsp) -> tuple[list[dict], dict]:
        """`match/diary` (results, results_extra): matches whose match_time is within the 24 hours
        from `tsp` (Unix seconds, or a "YYYYMMDD" date)."""
        if isinstance(tsp, str):
            tsp = date_tsp(tsp) if len(tsp.strip()) == 8 else int(tsp)
        tsp = int(tsp)
        now = self.clock.now()
        chosen = []
        for m in self.matches:
            obj = m.match_object(now)
            if obj is not None and tsp <= obj["match_time"] < tsp + 86400:
                chosen.append((obj["match_time"], m.id, obj, m))
        chosen.sort(key=lambda c: (c[0], c[1]))
        return [c[2] for c in chosen], diary_extra([c[3] for c in chosen])

    def recent_list(self, since: int | None = 0, page: int = 1, uuid: str | None = None) -> list[dict]:
        """`match/recent/list` results: match objects with updated_at >= since (ordered by
        updated_at, then id), 1000 per page, page 1-based; empty past the end. With `uuid`: that
        match's object alone (none before the match is published)."""
        now, since = self.clock.now(), since or 0
        if uuid is not None:
            m = self.by_id.get(uuid)
            obj = m.match_object(now) if m is not None else None
            return [obj] if obj is not None else []
        objs = [o for o in (m.match_object(now) for m in self.matches) if o is not None and o["updated_at"] >= since]
        objs.sort(key=lambda o: (o["updated_at"], o["id"]))
        if page < 1:
            return []
        return objs[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]

    def data_update(self) -> dict:
        """`data/update` results: {type id: [{<id field>: id, "update_time": t}]} for what changed
        in the last 120 s (now - 120 < t <= now), the latest change per item."""
        now = self.clock.now()
        lo = bisect.bisect_right(self._change_times, now - UPDATE_WINDOW_S)
        hi = bisect.bisect_right(self._change_times, now)
        latest: dict = {}
        for t, type_id, key, ident in self._changes[lo:hi]:
            latest[(type_id, key, ident)] = t
        out: dict[str, list] = {}
        for (type_id, key, ident), t in latest.items():
            out.setdefault(type_id, []).append({key: ident, "update_time": t})
        return {k: out[k] for k in sorted(out, key=int)}

    def team_stats(self) -> list[dict]:
        """`match/team_stats/list` results: the matches whose statistics changed in the last 120 s."""
        now = self.clock.now()
        return [item for m in self.matches if (item := team_stats_item(m, now)) is not None]

    def half_team_stats(self, match_id: str) -> dict | None:
        """`match/half/team_stats/detail` results for one match ({} while no half is over)."""
        m = self.by_id.get(match_id)
        return half_stats(m, self.clock.now()) if m is not None else None

    def analysis(self, match_id: str) -> dict | None:
        m = self.by_id.get(match_id)
        if m is None or m.timeline.index_at(self.clock.now()) == 0:
            return None
        return self.standings.analysis(m, self.clock.now())

    def season_table(self, season_id: str) -> dict | None:
        comp = next((c for c in self.ref.competitions if c.season_id == season_id), None)
        if comp is None:
            return None
        return self.standings.tables(comp, self.clock.now(), live=False)

    def table_live(self) -> list[dict]:
        """`table/live` results: league seasons with a match live now or changed in the last 10
        minutes, their tables counting the live scores."""
        now = self.clock.now()
        seasons: dict[str, int] = {}
        for m in self.matches:
            if m.knockout or m.comp.type != 1:
                continue
            tl = m.timeline
            if tl.first_activity is None or now < tl.first_activity:
                continue
            s = tl.snap(tl.index_at(now))
            if not s.kos[0]:
                continue
            if STATUS_OF[s.phase] in LIVE_STATUSES or now - s.t < TABLE_LIVE_WINDOW_S:
                seasons[m.comp.season_id] = max(seasons.get(m.comp.season_id, 0), s.t)
        comps = {c.season_id: c for c in self.ref.competitions}
        return [{"season_id": sid, "updated_at": t, **self.standings.tables(comps[sid], now, live=True)}
                for sid, t in sorted(seasons.items())]

    def competitions(self, page: int | None = 1, since: int | None = None, uuid: str | None = None) -> list[dict]:
        """`competition/additional/list` results (page, time= as `since`, or uuid query)."""
        now = self.clock.now()
        comps = [c for c in self.ref.competitions if c.updated_at <= now and (uuid is None or c.id == uuid)]
        return [competition_item(c, self.ref) for c in paged(comps, lambda c: c.updated_at, page, since, PAGE_SIZE)]

    def teams(self, page: int | None = 1, since: int | None = None, uuid: str | None = None) -> list[dict]:
        """`team/additional/list` results (page, time= as `since`, or uuid query)."""
        now = self.clock.now()
        teams = [t for t in self.ref.teams if t.updated_at <= now and (uuid is None or t.id == uuid)]
        return [team_item(t) for t in paged(teams, lambda t: t.updated_at, page, since, PAGE_SIZE)]
