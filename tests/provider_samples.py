"""Builders of valid provider payloads (plain dicts, shaped per the public TheSports docs) for
every endpoint goald decodes. Tests mutate them to make bad ones; `body(...)` encodes.

Every builder takes the ids and the few values tests vary as arguments and fills the rest with
documented, plausible values. Timestamps default to `NOW` so relative-time checks pass.
"""
from __future__ import annotations

import json
import re
from typing import Any

NOW = 1_700_000_000
"""The `now` tests pass to decoders (2023-11-14 22:13:20 UTC)."""


def page(results: Any, **extra: Any) -> dict:
    """A success envelope: `{"code": 0, "results": ..., **extra}` (e.g. query=, results_extra=)."""
    return {"code": 0, "results": results, **extra}


_RAW_NUMBER = re.compile(r'"@raw:([^"@]*)@"')


def raw_number(text: str) -> str:
    """A placeholder that `body` writes as the bare token `text` (e.g. "1e400", "NaN", 5000
    digits): numbers Python's json cannot write."""
    return f"@raw:{text}@"


def body(payload: Any) -> bytes:
    """The bytes of a payload as the provider sends them (placeholders of `raw_number` written
    bare)."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return _RAW_NUMBER.sub(lambda m: m.group(1), text).encode()


def error_body(text: str = "user or secret error") -> dict:
    """What the provider answers (HTTP 200) on bad credentials, a disallowed IP, ..."""
    return {"err": text}


def throttled_body() -> dict:
    return {"code": 429, "msg": "Too Many Requests"}


def query(total: int, *, type: str = "time", **more: Any) -> dict:
    return {"total": total, "type": type, **more}


def team_score(goals: int = 0, half_time: int = 0, red: int = 0, yellow: int = 0, corners: int = -1,
               overtime: int = 0, penalties: int = 0) -> list[int]:
    """A per-team score array of 7."""
    return [goals, half_time, red, yellow, corners, overtime, penalties]


# --- match/detail_live --------------------------------------------------------------------------


def live_item(match_id: str, status: int = 2, *, home: list | None = None, away: list | None = None,
              kickoff_ts: int | None = None, n_stats: int = 3, n_incidents: int = 2, n_tlive: int = 2) -> dict:
    """One detail_live item; the current half kicked off 20 minutes before NOW by default."""
    kickoff = NOW - 1200 if kickoff_ts is None else kickoff_ts
    stat_types = [2, 3, 4, 8, 21, 22, 23, 24, 25, 37]
    return {
        "id": match_id,
        "score": [match_id, status, home or team_score(1, 1, 0, 1, 3), away or team_score(0, 0, 0, 2, 1),
                  kickoff, ""],
        "stats": [{"type": stat_types[i % len(stat_types)], "home": i, "away": i + 1} for i in range(n_stats)],
        "incidents": [incident(i) for i in range(n_incidents)],
        "tlive": [{"time": f"{i * 3}'", "data": f"Line {i} of the commentary", "position": i % 3}
                  for i in range(n_tlive)],
    }


def incident(i: int = 0) -> dict:
    """A goal, a card or a substitution (by i % 3), with the fields that kind carries."""
    kind = i % 3
    if kind == 0:
        return {"type": 1, "position": 1, "time": 10 + i, "second": 600 + i, "player_id": f"pl{i}",
                "player_name": f"Player {i}", "assist1_id": f"pa{i}", "assist1_name": f"Assist {i}",
                "home_score": 1, "away_score": 0}
    if kind == 1:
        return {"type": 3, "position": 2, "time": 20 + i, "second": 1200, "player_id": f"pl{i}",
                "player_name": f"Player {i}", "reason_type": 1}
    return {"type": 9, "position": 1, "time": 30 + i, "second": 1800, "in_player_id": f"in{i}",
            "in_player_name": f"In {i}", "out_player_id": f"out{i}", "out_player_name": f"Out {i}"}


def live_page(n: int, **item_kwargs: Any) -> dict:
    return page([live_item(f"m{i:06d}", **item_kwargs) for i in range(n)])


# --- match object (diary, recent list) ----------------------------------------------------------


def match_object(match_id: str, status: int = 1, *, match_time: int = NOW + 3600, home_team: str = "t-home",
                 away_team: str = "t-away", competition: str = "c1", season: str = "s1",
                 home: list | None = None, away: list | None = None, updated_at: int = NOW - 60,
                 optional: bool = True) -> dict:
    """A match object; `optional=False` leaves out every field the docs do not always send."""
    item = {
        "id": match_id, "season_id": season, "competition_id": competition, "home_team_id": home_team,
        "away_team_id": away_team, "status_id": status, "match_time": match_time,
        "home_scores": home or team_score(), "away_scores": away or team_score(), "updated_at": updated_at,
    }
    if optional:
        item.update({
            "venue_id": "v1", "referee_id": "r1", "neutral": 0, "note": "", "home_position": "3",
            "away_position": "11", "coverage": {"mlive": 1, "lineup": 1, "gif": 0},
            "round": {"stage_id": "st1", "group_num": 0, "round_num": 12},
            "environment": {"weather": 5, "pressure": "1013hPa", "temperature": "14°C", "wind": "3m/s",
                            "humidity": "60%"},
        })
    return item


def diary_extra(competitions: int = 1, teams: int = 2) -> dict:
    return {
        "competition": [{"id": f"c{i + 1}", "name": f"League {i + 1}", "logo": ""} for i in range(competitions)],
        "team": [{"id": f"t{i}", "name": f"Team {i}", "logo": ""} for i in range(teams)],
        "season": [{"id": "s1", "competition_id": "c1", "year": "2023-2024"}],
        "stage": [{"id": "st1", "season_id": "s1", "name": "Regular season", "mode": 1, "group_count": 0,
                   "round_count": 38, "order": 1}],
        "referee": [{"id": "r1", "name": "A. Referee", "logo": ""}],
        "venue": [{"id": "v1", "name": "Stadium"}],
    }


def diary_page(n: int) -> dict:
    return page([match_object(f"m{i:06d}") for i in range(n)], query={"total": n, "type": "diary"},
                results_extra=diary_extra())


def recent_page(n: int, *, page_no: int = 1) -> dict:
    matches = [match_object(f"m{i:06d}", 8, match_time=NOW - 7200, home=team_score(2), away=team_score(1))
               for i in range(n)]
    return page(matches, query=query(n, type="page", page=page_no))


# --- data/update --------------------------------------------------------------------------------


def data_update_results() -> dict:
    """Changes keyed by type id: 1 match lineup, 3 season standing, 7 FIFA men, 12 team lineup."""
    return {
        "1": [{"match_id": "m000001", "update_time": NOW - 30}, {"match_id": "m000002", "update_time": NOW - 10}],
        "3": [{"season_id": "s1", "update_time": NOW - 50}],
        "7": [{"pub_time": NOW - 86_400, "update_time": NOW - 90}],
        "12": [{"team_id": "t1", "update_time": NOW - 5}],
    }


# --- match/analysis -----------------------------------------------------------------------------


def analysis_row(match_id: str, status: int = 8, *, match_time: int = NOW - 30 * 86_400,
                 home_team: str = "t-home", away_team: str = "t-away") -> list:
    """One positional analysis row, as in the docs' example."""
    return [match_id, "c1", status, match_time, 0,
            [home_team, "4", 1, 0, 0, 0, -1, 0, 0], [away_team, "19", 1, 0, 0, 0, -1, 0, 0],
            ["0.86,-0.5,1.04,0", "3.8,3.6,2.05,0", "0.9,2.75,1.0,0", ""], ["", 0, 21], ["s1", "2017"]]


def goal_split(matches: int = 10) -> dict:
    return {"matches": matches, "scored": [[3, 10, 1, 15], [5, 16, 16, 30]], "conceded": [[2, 8, 1, 15]]}


def analysis_results(match_id: str = "m000001", rows: int = 3) -> dict:
    def history(prefix: str) -> list:
        return [analysis_row(f"{prefix}{i}") for i in range(rows)]

    side = {"all": goal_split(), "home": goal_split(5), "away": goal_split(5)}
    return {
        "info": analysis_row(match_id, 1, match_time=NOW + 3600),
        "history": {"vs": history("vs"), "home": history("hh"), "away": history("ha")},
        "future": {"home": [analysis_row("fh0", 1, match_time=NOW + 7 * 86_400)],
                   "away": [analysis_row("fa0", 1, match_time=NOW + 7 * 86_400)]},
        "goal_distribution": {"home": side, "away": side},
    }


# --- standings ----------------------------------------------------------------------------------


def standing_row(team_id: str, position: int, *, points: int = 30, won: int = 9, draw: int = 3,
                 loss: int = 2) -> dict:
    total = won + draw + loss
    row = {"team_id": team_id, "promotion_id": "p1" if position == 1 else "", "points": points,
           "position": position, "deduct_points": 0, "note": "", "total": total, "won": won, "draw": draw,
           "loss": loss, "goals": 25, "goals_against": 12, "goal_diff": 13, "updated_at": NOW - 3600}
    for side in ("home", "away"):
        row.update({f"{side}_points": points // 2, f"{side}_position": position, f"{side}_total": total // 2,
                    f"{side}_won": won // 2, f"{side}_draw": draw // 2, f"{side}_loss": loss // 2,
                    f"{side}_goals": 12, f"{side}_goals_against": 6, f"{side}_goal_diff": 6})
    return row


def standing_table(table_id: str, teams: int = 4, *, group: int = 0) -> dict:
    return {"id": table_id, "conference": "", "group": group, "stage_id": "st1",
            "rows": [standing_row(f"t{i}", i + 1, points=40 - 3 * i) for i in range(teams)]}


def promotions() -> list[dict]:
    return [{"id": "p1", "name": "Champions League", "color": "#1e90ff"},
            {"id": "p2", "name": "Relegation", "color": "#ff4500"}]


def season_table_results(tables: int = 2) -> dict:
    return {"promotions": promotions(),
            "tables": [standing_table(f"tb{i}", group=i + 1 if tables > 1 else 0) for i in range(tables)]}


def live_season_table(season_id: str) -> dict:
    return {"season_id": season_id, "promotions": promotions(), "tables": [standing_table(f"{season_id}-tb")],
            "updated_at": NOW - 120}


# --- reference lists ----------------------------------------------------------------------------


def competition(competition_id: str, *, name: str = "Premier League") -> dict:
    return {"id": competition_id, "category_id": "cat1", "country_id": "co1", "name": name, "short_name": "PL",
            "logo": "", "type": 1, "cur_season_id": "s1", "cur_stage_id": "st1", "cur_round": 12,
            "round_count": 38, "title_holder": ["t1", 6], "most_titles": [["t2"], 20],
            "newcomers": [["t5"], ["t6"]], "divisions": [[], ["c2"]], "host": {"country": "England"},
            "gender": 1, "primary_color": "", "secondary_color": "", "updated_at": NOW - 600}


def team(team_id: str, *, name: str = "Example FC") -> dict:
    return {"id": team_id, "competition_id": "c1", "country_id": "co1", "name": name, "short_name": "EFC",
            "logo": "", "national": 0, "foundation_time": -2_208_988_800, "website": "", "coach_id": "co1",
            "venue_id": "v1", "market_value": 250_000_000, "market_value_currency": "EUR", "total_players": 25,
            "foreign_players": 12, "national_players": -1, "virtual": 0, "gender": 1, "updated_at": NOW - 600}


# --- one valid page per endpoint ----------------------------------------------------------------


def team_stats_item(match_id: str) -> dict:
    """One item of match/team_stats/list: both teams' statistics."""
    return {"id": match_id, "stats": [
        {"team_id": f"{match_id}-{side}", "goals": g, "shots": 9 + g, "shots_on_target": 3 + g, "corner_kicks": 4,
         "ball_possession": p, "yellow_cards": 1, "red_cards": 0, "fouls": 11, "passes": 380}
        for side, g, p in (("home", 1, 55), ("away", 0, 45))]}


def half_stats_results() -> dict:
    """match/half/team_stats/detail results of an ended match: the halves and full time."""
    return {"p1": {"1": [1, 0], "2": [3, 1], "25": [56, 44]}, "p2": {"1": [0, 0], "2": [2, 2], "25": [54, 46]},
            "ft": {"1": [1, 0], "2": [5, 3], "25": [55, 45]}}


def valid_page(endpoint: str, n: int = 3) -> dict:
    """A valid success page of `endpoint` (a key of decode.DECODERS) with about `n` items."""
    builders = {
        "match/detail_live": lambda: live_page(n),
        "match/diary": lambda: diary_page(n),
        "match/recent/list": lambda: recent_page(n),
        "data/update": lambda: page(data_update_results()),
        "match/analysis": lambda: page(analysis_results(rows=n)),
        "season/recent/table/detail": lambda: page(season_table_results(max(1, n // 2))),
        "table/live": lambda: page([live_season_table(f"s{i}") for i in range(n)]),
        "competition/additional/list": lambda: page([competition(f"c{i}") for i in range(n)],
                                                    query=query(n, type="page", page=1)),
        "team/additional/list": lambda: page([team(f"t{i}") for i in range(n)], query=query(n, type="page", page=1)),
        "match/team_stats/list": lambda: page([team_stats_item(f"m{i}") for i in range(n)]),
        "match/half/team_stats/detail": lambda: page(half_stats_results()),
    }
    return builders[endpoint]()
