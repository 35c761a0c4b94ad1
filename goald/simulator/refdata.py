"""The simulated football world's reference data: countries, competitions (leagues and cups),
seasons, stages, teams with their squads, venues and referees, and the provider-style ids.

Everything derives from the seed: `Ids(seed)` makes 15-character lowercase alphanumeric ids like
the provider's (a keyed hash of kind and number, so the same seed gives the same ids), and
`build_reference(seed, leagues)` draws names and attributes from `random.Random` streams of its
own. Squads are drawn lazily per team from a stream keyed by the team, so the result never
depends on which team is asked for first. All names are invented.

Runs in whatever greenlet calls it (World's constructor): pure CPU, never blocks, no I/O, raises
nothing for valid arguments.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
LOGO = "https://img.goald-simulator.invalid/football/{kind}/{id}.png"

_SYL = ("al", "ber", "ca", "dor", "el", "fa", "gan", "har", "is", "jor", "kal", "lin", "mar", "nor", "os",
        "pel", "quin", "ros", "sal", "tor", "ul", "ven", "wes", "yar", "zan", "bri", "dra", "fen", "gri",
        "mo", "ru", "ta", "vi", "lo", "ne", "sa")
_COUNTRY_END = ("ia", "land", "ova", "stan", "mark", "ora", "enia", "ay")
_CITY_END = ("ton", "burg", "ford", "vale", "mouth", "heim", "field", "port", "grad", "bridge", "wick", "by")
_CLUB = ("{c} United", "{c} City", "FC {c}", "{c} Rovers", "Athletic {c}", "{c} Wanderers", "Real {c}",
         "{c} Town", "Sporting {c}", "{c} Albion", "Dynamo {c}", "{c} Rangers", "Inter {c}", "{c} SC")
_FIRST = "ABCDEFGHIJKLMNOPRSTVWY"
_POSITIONS = ["G", "D", "D", "D", "D", "M", "M", "M", "M", "F", "F", "G", "D", "D", "M", "M", "M", "F", "F", "D",
              "M", "F", "G"]  # 1..11 the usual starters, 12..23 the bench
SQUAD = len(_POSITIONS)


class Ids:
    """Deterministic provider-style ids: `make(kind, n)` is 15 lowercase letters/digits."""

    def __init__(self, seed: object):
        self.key = str(seed).encode()[:64]

    def make(self, kind: str, n: object) -> str:
        digest = hashlib.blake2b(f"{kind}:{n}".encode(), digest_size=15, key=self.key).digest()
        return digest.translate(_TO_ALPHABET).decode()


_TO_ALPHABET = bytes(ord(ALPHABET[b % 36]) for b in range(256))


def word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(_SYL) for _ in range(parts))


def unique(rng: random.Random, taken: set, make) -> str:
    for _ in range(50):
        name = make()
        if name not in taken:
            taken.add(name)
            return name
    name = f"{make()} {len(taken)}"
    taken.add(name)
    return name


@dataclass
class Country:
    id: str
    name: str
    category_id: str


@dataclass
class Stage:
    id: str
    season_id: str
    name: str
    mode: int            # 1 points, 2 elimination
    group_count: int
    round_count: int
    order: int


@dataclass
class Competition:
    index: int
    id: str
    name: str
    short_name: str
    type: int            # 1 league, 2 cup
    country: Country
    tier: int
    season_id: str
    year: str
    stages: list[Stage]
    cur_round: int
    round_count: int
    corners: bool        # the provider has corner data for it
    lineups: bool
    updated_at: int
    colors: tuple[str, str]
    teams: list["Team"] = field(default_factory=list)

    @property
    def cur_stage(self) -> Stage:
        return self.stages[0] if self.type == 1 else self.stages[min(len(self.stages) - 1, 1)]


@dataclass
class Team:
    index: int
    id: str
    name: str
    short_name: str
    country: Country
    league: Competition | None
    venue: "Venue"
    coach_id: str
    founded: int
    market_value: int
    updated_at: int
    strength: float
    _squad: list | None = None


@dataclass
class Venue:
    id: str
    name: str
    city: str


@dataclass
class Referee:
    id: str
    name: str


class Reference:
    """The world's reference data (see the module docstring)."""

    def __init__(self, seed: int, leagues: int, day: int):
        self.seed, self.ids = seed, Ids(seed)
        rng = random.Random(f"{seed}/reference")
        names: set = set()
        n_countries = max(2, (leagues + 1) // 2)
        self.countries = [Country(self.ids.make("country", i), unique(rng, names, lambda: (
            word(rng, 2) + rng.choice(_COUNTRY_END)).capitalize()), self.ids.make("category", i % 6))
            for i in range(n_countries)]
        self.competitions: list[Competition] = []
        self.teams: list[Team] = []
        self.venues: list[Venue] = []
        self.referees = [Referee(self.ids.make("referee", i), f"{rng.choice(_FIRST)}. {word(rng, 2).capitalize()}")
                         for i in range(max(30, leagues * 3))]
        by_country: dict[int, int] = {}
        for i in range(leagues):
            country = self.countries[i % n_countries]
            tier = by_country[i % n_countries] = by_country.get(i % n_countries, 0) + 1
            label = ["Premier League", "Championship", "League One", "League Two", "National League"][min(tier, 5) - 1]
            comp = self._competition(rng, country, f"{country.name} {label}", 1, tier, day)
            for _ in range(20):
                self._team(rng, names, comp, country, day)
        for c_index, country in enumerate(self.countries):
            self._competition(rng, country, f"{country.name} Cup", 2, 0, day)
        self.by_id = {c.id: c for c in self.competitions}
        self.team_by_id = {t.id: t for t in self.teams}
        self.country_teams: dict[str, list[Team]] = {}
        for t in self.teams:
            self.country_teams.setdefault(t.country.id, []).append(t)
        self.league_at = {(c.country.id, c.tier): c.id for c in self.competitions if c.type == 1}

    def _competition(self, rng: random.Random, country: Country, name: str, ctype: int, tier: int,
                     day: int) -> Competition:
        i = len(self.competitions)
        cid, season_id = self.ids.make("competition", i), self.ids.make("season", i)
        year = "2025-2026"
        if ctype == 1:
            stages = [Stage(self.ids.make("stage", f"{i}/0"), season_id, "Regular Season", 1, 0, 38, 1)]
            cur_round, round_count = rng.randint(8, 30), 38
        else:
            stages = [Stage(self.ids.make("stage", f"{i}/0"), season_id, "Group Stage", 1, 8, 3, 1)]
            for order, label in enumerate(("Round of 32", "Round of 16", "Quarter-finals", "Semi-finals",
                                           "Final"), start=2):
                stages.append(Stage(self.ids.make("stage", f"{i}/{order}"), season_id, label, 2, 0, 1, order))
            cur_round, round_count = 2, 6
        short = "".join(w[0] for w in name.split()).upper()
        updated = day - 86400 * (2 + i % 20) + 3600 * (i % 24) if i % 10 else day + 3600 * (i % 24)
        comp = Competition(i, cid, name, short, ctype, country, tier, season_id, year, stages, cur_round,
                           round_count, corners=i % 9 != 7, lineups=tier in (0, 1, 2), updated_at=updated,
                           colors=(f"#{rng.randrange(1 << 24):06X}", f"#{rng.randrange(1 << 24):06X}"))
        self.competitions.append(comp)
        return comp

    def _team(self, rng: random.Random, names: set, league: Competition, country: Country, day: int) -> Team:
        i = len(self.teams)
        city = unique(rng, names, lambda: (word(rng, 2) + rng.choice(_CITY_END)).capitalize())
        name = rng.choice(_CLUB).format(c=city)
        venue = Venue(self.ids.make("venue", i), f"{city} {rng.choice(('Stadium', 'Park', 'Arena', 'Ground'))}",
                      city)
        self.venues.append(venue)
        updated = day - 86400 * (5 + i % 60) + 7 * i % 86400 if i % 25 else day + 1800 * (i % 48)
        team = Team(i, self.ids.make("team", i), name, city[:3].upper(), country, league, venue,
                    self.ids.make("coach", i), -rng.randint(200, 3800) * 86400 * 30 + 2_000_000_000,
                    rng.randint(5, 900) * 1_000_000, updated, rng.uniform(0.7, 1.4))
        league.teams.append(team)
        self.teams.append(team)
        return team

    def squad(self, team: Team) -> list[tuple[str, str, str]]:
        """The team's 23 players as (id, name, position G/D/M/F); 1-11 start."""
        if team._squad is None:
            rng = random.Random(f"{self.seed}/squad/{team.index}")
            squad = []
            for n, pos in enumerate(_POSITIONS):
                r = rng.getrandbits(32)
                surname = _SYL[r % 36] + _SYL[(r >> 6) % 36] + (_SYL[(r >> 12) % 36] if r >> 30 == 3 else "")
                squad.append((self.ids.make("player", f"{team.index}/{n}"),
                              f"{_FIRST[(r >> 18) % len(_FIRST)]}. {surname.capitalize()}", pos))
            team._squad = squad
        return team._squad

