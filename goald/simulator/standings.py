"""Standings and head-to-head of the simulated world: `season/recent/table/detail`, `table/live`
and `match/analysis` results in the documented shapes.

A league's table is the season so far (the rounds before today, drawn once per league from a
stream keyed by seed and league, with a consistent fixture list) plus today's matches of that
season: ended ones for the season table, live ones too for the live table. A cup's table is its
completed group stage. Scenario competitions start from an empty table. Analysis rows are drawn
from a stream keyed by seed and match, so the same match always has the same history.

Runs in whatever greenlet calls it (the server's request greenlets): pure CPU, never blocks, no
I/O, raises nothing.
"""
from __future__ import annotations

import random

from goald.simulator.generate import poisson
from goald.simulator.refdata import Competition
from goald.simulator.timeline import STATUS_OF

_FIELDS = ("total", "won", "draw", "loss", "goals", "goals_against")


def _blank() -> dict:
    return {side: [0] * 6 for side in ("home", "away")}


def _add(rows: dict, home_id: str, away_id: str, hg: int, ag: int) -> None:
    for team, side, gf, ga in ((home_id, "home", hg, ag), (away_id, "away", ag, hg)):
        r = rows.setdefault(team, _blank())[side]
        r[0] += 1
        r[1 if gf > ga else 2 if gf == ga else 3] += 1
        r[4] += gf
        r[5] += ga


class Standings:
    """Tables of the world's seasons (see the module docstring)."""

    def __init__(self, world):
        self.world = world
        self._base: dict[str, tuple[list[list], dict]] = {}
        self._rank: dict[str, dict[str, str]] = {}

    def base(self, comp: Competition) -> tuple[list[list], dict]:
        """(groups: lists of team ids, rows: team id -> {"home": [...6], "away": [...6]})."""
        if comp.season_id in self._base:
            return self._base[comp.season_id]
        rng = random.Random(f"{self.world.seed}/table/{comp.season_id}")
        rows: dict = {}
        if comp.type == 1 and comp.teams:
            teams = [t.id for t in comp.teams]
            groups = [teams]
            rounds = comp.cur_round - 1
        else:
            pool = [t.id for t in self.world.ref.country_teams.get(comp.country.id, [])][:32]
            pool = pool if len(pool) >= 8 else [t.id for t in comp.teams]
            groups = [pool[i:i + 4] for i in range(0, len(pool), 4)] if comp.type == 2 else [pool]
            rounds = 3 if comp.type == 2 else 0
        for group in groups:
            for team in group:
                rows.setdefault(team, _blank())
            ring = list(group) + ([None] if len(group) % 2 else [])
            for r in range(rounds):
                n = len(ring)
                for i in range(n // 2):
                    a, b = ring[i], ring[n - 1 - i]
                    if a and b:
                        home, away = (a, b) if (r + i) % 2 else (b, a)
                        _add(rows, home, away, poisson(rng, 1.45), poisson(rng, 1.15))
                ring = [ring[0], ring[-1]] + ring[1:-1]
        self._base[comp.season_id] = groups, rows
        return groups, rows

    def rank(self, comp: Competition) -> dict[str, str]:
        """League position (text) of each team before today's matches; {} for cups."""
        if comp.type != 1:
            return {}
        if comp.season_id not in self._rank:
            groups, rows = self.base(comp)
            members = groups[0] if groups else []
            self._rank[comp.season_id] = {r["team_id"]: str(r["position"])
                                          for r in self._rows(members, rows, self.promotions(comp), comp, 0)}
        return self._rank[comp.season_id]

    def tables(self, comp: Competition, now: float, live: bool) -> dict:
        """{"promotions": [...], "tables": [...]} with today's matches (live ones if `live`)."""
        groups, base = self.base(comp)
        rows = {team: {side: list(v) for side, v in sides.items()} for team, sides in base.items()}
        updated = 0
        for m in self.world.season_matches(comp.season_id):
            if m.knockout:
                continue
            tl = m.timeline
            k = tl.index_at(now)
            if not k:
                continue
            s = tl.snap(k)
            status = STATUS_OF[s.phase]
            if status == 8 or (live and status in (2, 3, 4, 5, 7)):
                _add(rows, m.home.id, m.away.id, s.home[0], s.away[0])
                updated = max(updated, s.t)
        if not groups or not groups[0]:
            groups = [list(rows)]
        promotions = self.promotions(comp)
        tables = []
        for g, group in enumerate(groups, start=1 if comp.type == 2 else 0):
            members = [t for t in group if t in rows] + [t for t in rows if comp.type != 2 and t not in group]
            tables.append({"id": self.world.ref.ids.make("table", f"{comp.season_id}/{g}"), "conference": "",
                           "group": g, "stage_id": comp.stages[0].id,
                           "rows": self._rows(members, rows, promotions, comp, updated or comp.updated_at)})
        return {"promotions": promotions, "tables": tables}

    def promotions(self, comp: Competition) -> list[dict]:
        make = self.world.ref.ids.make
        if comp.type == 2:
            return [{"id": make("promotion", f"{comp.id}/ko"), "name": "Knockout stage", "color": "#2E7D32"}]
        top = "Continental Cup" if comp.tier == 1 else "Promotion"
        return [{"id": make("promotion", f"{comp.id}/up"), "name": top, "color": "#1565C0"},
                {"id": make("promotion", f"{comp.id}/down"), "name": "Relegation", "color": "#C62828"}]

    def _rows(self, members: list, rows: dict, promotions: list, comp: Competition, updated: int) -> list[dict]:
        def key(part):
            def k(team):
                r = [sum(x) for x in zip(*(rows[team][s] for s in part))]
                return (-(3 * r[1] + r[2]), -(r[4] - r[5]), -r[4], team)
            return k
        order = {part: {t: i + 1 for i, t in enumerate(sorted(members, key=key(part)))}
                 for part in (("home", "away"), ("home",), ("away",))}
        out = []
        for team in sorted(members, key=key(("home", "away"))):
            h, a = rows[team]["home"], rows[team]["away"]
            tot = [x + y for x, y in zip(h, a)]
            pos = order[("home", "away")][team]
            promo = ""
            if comp.type == 2 and pos <= 2:
                promo = promotions[0]["id"]
            elif comp.type == 1 and pos <= 4:
                promo = promotions[0]["id"]
            elif comp.type == 1 and pos > len(members) - 3 and len(members) > 6:
                promo = promotions[1]["id"]
            row = {"team_id": team, "promotion_id": promo, "points": 3 * tot[1] + tot[2], "position": pos,
                   "deduct_points": 0, "note": ""}
            for prefix, r in (("", tot), ("home_", h), ("away_", a)):
                for name, v in zip(_FIELDS, r):
                    row[prefix + name] = v
                row[prefix + "goal_diff"] = r[4] - r[5]
                if prefix:
                    row[prefix + "points"] = 3 * r[1] + r[2]
                    row[prefix + "position"] = order[(prefix[:-1],)][team]
            row["updated_at"] = updated
            out.append(row)
        return out

    # --- head-to-head ---------------------------------------------------------------------------

    def analysis(self, m, now: float) -> dict:
        rng = random.Random(f"{self.world.seed}/analysis/{m.id}")
        obj = m.match_object(now)
        info = self._row(m.id, m.comp, obj["status_id"], obj["match_time"], m.neutral, (m.home.id, m.positions[0]),
                         (m.away.id, m.positions[1]), obj["home_scores"], obj["away_scores"], m.stage.id, m.round_num)
        make = self.world.ref.ids.make

        def past(tag: str, n: int, home_id: str, others: list, step_days: int, future: bool = False) -> list:
            rows = []
            for i in range(n):
                other = others[(i * 5 + len(tag)) % len(others)] if others else m.away.id
                at_home = i % 2 == 0
                t = int(m.timeline.snaps[-1].match_time + (1 if future else -1) * (i + 1) * step_days * 86400)
                hg, ag = (0, 0) if future else (poisson(rng, 1.4), poisson(rng, 1.1))
                sides = ((home_id, ""), (other, "")) if at_home else ((other, ""), (home_id, ""))
                goals = (hg, ag) if at_home else (ag, hg)
                rows.append(self._row(make("history", f"{m.id}/{tag}/{i}"), m.comp, 1 if future else 8, t, 0,
                                      sides[0], sides[1], self._scores(rng, goals[0], future),
                                      self._scores(rng, goals[1], future), m.stage.id, 0))
            return rows

        league = lambda team: [t.id for t in (team.league.teams if team.league else []) if t.id != team.id]
        vs = past("vs", rng.randint(0, 6), m.home.id, [m.away.id], rng.randint(90, 300))
        history = {"vs": vs, "home": past("home", 10, m.home.id, league(m.home), 7),
                   "away": past("away", 10, m.away.id, league(m.away), 7)}
        future = {"home": past("fh", 3, m.home.id, league(m.home), 7, True),
                  "away": past("fa", 3, m.away.id, league(m.away), 7, True)}
        return {"info": info, "history": history, "future": future,
                "goal_distribution": {"home": self._distribution(rng), "away": self._distribution(rng)}}

    def _row(self, mid, comp, status, t, neutral, home, away, hs, as_, stage_id, round_num) -> list:
        return [mid, comp.id, status, t, neutral, [home[0], home[1], *hs], [away[0], away[1], *as_],
                ["", "", "", ""], [stage_id, 0, round_num], [comp.season_id, comp.year]]

    @staticmethod
    def _scores(rng: random.Random, goals: int, future: bool) -> list[int]:
        if future:
            return [0, 0, 0, 0, -1, 0, 0]
        return [goals, rng.randint(0, goals), int(rng.random() < 0.08), rng.randint(0, 4), rng.randint(0, 10), 0, 0]

    @staticmethod
    def _distribution(rng: random.Random) -> dict:
        """Goals per 15-minute slice (1-15 ... 76-90+): rows of [goals, percent of the total]."""
        def split(matches: int) -> dict:
            out = {"matches": matches}
            for part in ("scored", "conceded"):
                goals = [poisson(rng, 0.23 * matches) for _ in range(6)]
                total = sum(goals) or 1
                out[part] = [[g, round(100 * g / total, 1)] for g in goals]
            return out
        n = rng.randint(10, 30)
        return {"all": split(n), "home": split(n // 2), "away": split(n - n // 2)}
