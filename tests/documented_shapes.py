"""The provider's documented response shapes, transcribed from its public documentation, and a
small checker for them.

Source: the TheSports football API pages (the copy in github.com/eray-can/thesports-mcp,
docs/thesports/v1_football_<path>_GET.md and STATUS_CODE.md), one entry per endpoint path in
`ENDPOINTS`. Written from the documentation alone, on purpose independent of goald's own decoders
(goald/provider/decode.py) and of the simulator (goald/simulator/): a test that compares the
simulator with these shapes compares it with the docs, not with itself.
Where /work/shared/DOMAIN.md (authoritative for goald) disagrees with the docs, DOMAIN.md wins
and a `DOMAIN.md:` comment says so.

A spec is plain data:

- `"str"`, `"int"` (a JSON integer: int, never bool), `"number"` (int or float, never bool);
- `(kind, frozenset)` for a scalar whose values the docs enumerate, e.g. `("int", {0, 1})`;
- `("list", item)` an array of any length, `("list", item, n)` an array of exactly n items;
- `("tuple", s0, s1, ...)` a positional array (element i has spec si, and there are exactly as many);
- `("object", FIELDS)` a JSON object; `("object-or-empty", FIELDS)` the same, or `{}` where the docs
  say "no data is empty";
- `("keyed", KEYS)` an object keyed by documented ids (data/update's type ids): each key may be
  absent, a key not in KEYS is a problem.

FIELDS maps each documented field to `(spec, presence)`: `ALWAYS` (the docs list it without a
condition), `OPTIONAL` (the docs say "may not exist", "if it exists, it will be returned", "No data
field does not exist", "only available if there is data", "Exist for the national team", ...) or
`("when", sibling, values)`: always present when the object's field `sibling` has one of
`values`, may be absent otherwise (e.g. `query.page` "page query, field exists").

`check(value, spec, path)` returns the problems as readable lines, e.g.
`match/diary $.results[3].home_scores: expected list of 7 int, got list of 6`; a field the docs do
not document is a problem too (`... .foo: undocumented field (got int)`).
"""
from __future__ import annotations

STR, INT, NUMBER = "str", "int", "number"
ALWAYS, OPTIONAL = "always", "optional"


def when(sibling: str, *values) -> tuple:
    """Presence: always there when the sibling field has one of `values`, else it may be absent."""
    return ("when", sibling, frozenset(values))


def one_of(kind: str, values) -> tuple:
    return (kind, frozenset(values))


def array(item, length: int | None = None) -> tuple:
    return ("list", item) if length is None else ("list", item, length)


def positional(*items) -> tuple:
    return ("tuple", *items)


def obj(fields: dict, *, may_be_empty: bool = False) -> tuple:
    return ("object-or-empty" if may_be_empty else "object", fields)


# --- value sets the docs enumerate (STATUS_CODE.md and the field descriptions) ---------------------

MATCH_STATUS = frozenset(range(0, 14))  # Match state 0 abnormal ... 13 to be determined
TECHNICAL_STATISTICS = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 19, 21, 22, 23, 24, 25,
                                  26, 27, 28, 29, 30, 37, 38})  # "Technical Statistics": stats and incident types
EVENT_REASON = frozenset(range(0, 38))  # "event reason" 0 unknown, 1 foul ... 37 viral
VAR_REASON = frozenset(range(0, 10))  # 0 other, 1 goal awarded ... 9 corner not awarded
VAR_RESULT = frozenset(range(0, 13))  # 0 unknown, 1 goal confirmed ... 12 corner cancelled
SIDE = frozenset({0, 1, 2})  # 0 neutral, 1 home team, 2 away team
YES_NO = frozenset({0, 1})
# tbd / has_ot / team_reverse / loss are documented as "1. Yes (if it exists, it will be returned)":
# 1 is the only value named; 0 is accepted as the obvious "no".
WEATHER = frozenset(range(1, 14))  # 1 partially cloudy ... 13 fog
COMPETITION_TYPE = frozenset({0, 1, 2, 3})  # 0 unknown, 1 league, 2 cup, 3 friendly
GENDER = frozenset({1, 2})  # 1 male, 2 female
STAGE_MODE = frozenset({1, 2})  # 1 points, 2 elimination
LIST_QUERY_TYPES = frozenset({"uuid", "page", "time"})
DIARY_QUERY_TYPES = frozenset({"season", "diary"})
# DOMAIN.md: success is {"code": 0, ...} (the docs only say `code` is an integer).
SUCCESS_CODE = one_of(INT, {0})

# --- building blocks ---------------------------------------------------------------------------------

# Per-team score array, documented by example ([1, 0, 0, 0, -1, 0, 0]) although typed "array of
# objects". DOMAIN.md: 7 integers [regular goals, half-time goals, red, yellow, corners (-1 = no
# data), overtime score, shoot-out score]; we follow it (and the example): a list of 7 int.
TEAM_SCORES = array(INT, 7)

COVERAGE = obj({
    "mlive": (one_of(INT, YES_NO), ALWAYS),
    "lineup": (one_of(INT, YES_NO), ALWAYS),
    "gif": (one_of(INT, YES_NO), ALWAYS),
})

ROUND = obj({
    "stage_id": (STR, ALWAYS),
    "group_num": (INT, ALWAYS),
    "round_num": (INT, ALWAYS),
})

ENVIRONMENT = obj({
    "weather": (one_of(INT, WEATHER), ALWAYS),
    "pressure": (STR, ALWAYS),
    "temperature": (STR, ALWAYS),
    "wind": (STR, ALWAYS),
    "humidity": (STR, ALWAYS),
})

# The match object of match/diary and match/recent/list (both pages document the same fields).
# DOMAIN.md lists the same core (id ... match_time, home_scores[7], away_scores[7], updated_at).
MATCH = obj({
    "id": (STR, ALWAYS),
    "season_id": (STR, ALWAYS),
    "competition_id": (STR, ALWAYS),
    "home_team_id": (STR, ALWAYS),
    "away_team_id": (STR, ALWAYS),
    "status_id": (one_of(INT, MATCH_STATUS), ALWAYS),
    "match_time": (INT, ALWAYS),
    "venue_id": (STR, ALWAYS),
    "referee_id": (STR, ALWAYS),
    "neutral": (one_of(INT, YES_NO), ALWAYS),
    "note": (STR, ALWAYS),
    "home_scores": (TEAM_SCORES, ALWAYS),
    "away_scores": (TEAM_SCORES, ALWAYS),
    "home_position": (STR, ALWAYS),
    "away_position": (STR, ALWAYS),
    "coverage": (COVERAGE, ALWAYS),
    "round": (ROUND, ALWAYS),
    "related_id": (STR, OPTIONAL),  # "No data field does not exist"
    # "No data field does not exist", example [3, 6]: home and away aggregate goals.
    "agg_score": (array(INT, 2), OPTIONAL),
    "environment": (ENVIRONMENT, OPTIONAL),  # "only available if there is data"
    "tbd": (one_of(INT, YES_NO), OPTIONAL),  # "if it exists, it will be returned"
    "has_ot": (one_of(INT, YES_NO), OPTIONAL),  # idem
    "ended": (INT, OPTIONAL),  # "End time (if it exists, it will be returned)"
    "team_reverse": (one_of(INT, YES_NO), OPTIONAL),  # idem
    "loss": (one_of(INT, YES_NO), OPTIONAL),  # idem
    "updated_at": (INT, ALWAYS),
})

# The query object of the paged lists (match/recent/list, competition/ and team/additional/list).
# DOMAIN.md: `total` is the page's count, not the collection's (the docs say "the total amount of
# data", and their own loop "until total is 0" only works if it is the page's count).
LIST_QUERY = obj({
    "total": (INT, ALWAYS),
    "type": (one_of(STR, LIST_QUERY_TYPES), ALWAYS),
    "uuid": (STR, when("type", "uuid")),  # "uuid query, field exists"
    "page": (INT, when("type", "page")),  # "page query, field exists"
    "time": (INT, when("type", "time")),  # "time query, field exists"
    "min_time": (INT, when("type", "time")),  # idem
    "max_time": (INT, when("type", "time")),  # idem
})

# --- match/detail_live ---------------------------------------------------------------------------------

# `score`: typed "array of objects" in the docs, documented by its example
# ["1l4rjnh22p2wm7v", 8, [1, 0, 0, 0, -1, 0, 0], [1, 0, 0, 0, -1, 0, 0], 0, ""].
# DOMAIN.md: [match_id, status_id, home[7], away[7], kickoff_ts (the current half's kick-off,
# 0 = unknown), ""]; we follow it.
LIVE_SCORE = positional(STR, one_of(INT, MATCH_STATUS), TEAM_SCORES, TEAM_SCORES, INT, STR)

LIVE_STAT = obj({
    "type": (one_of(INT, TECHNICAL_STATISTICS), ALWAYS),
    "home": (INT, ALWAYS),
    "away": (INT, ALWAYS),
})

VAR = 28
CARD_OR_SUBSTITUTION = (3, 4, 9)  # yellow card, red card, substitution
LIVE_INCIDENT = obj({
    "type": (one_of(INT, TECHNICAL_STATISTICS), ALWAYS),
    "position": (one_of(INT, SIDE), ALWAYS),
    "time": (INT, ALWAYS),
    "second": (INT, ALWAYS),
    "add_time": (INT, OPTIONAL),  # "may not exist"
    "player_id": (STR, OPTIONAL),  # "may not exist"
    "player_name": (STR, OPTIONAL),
    "assist1_id": (STR, OPTIONAL),
    "assist1_name": (STR, OPTIONAL),
    "assist2_id": (STR, OPTIONAL),
    "assist2_name": (STR, OPTIONAL),
    "home_score": (INT, OPTIONAL),
    "away_score": (INT, OPTIONAL),
    "in_player_id": (STR, OPTIONAL),
    "in_player_name": (STR, OPTIONAL),
    "out_player_id": (STR, OPTIONAL),
    "out_player_name": (STR, OPTIONAL),
    # Not marked "may not exist", but documented as "related to var incident": present on VAR
    # incidents (type 28), may be absent on the others.
    "var_reason": (one_of(INT, VAR_REASON), when("type", VAR)),
    "var_result": (one_of(INT, VAR_RESULT), when("type", VAR)),
    # "the red and yellow cards and substitution events related field": present on those.
    "reason_type": (one_of(INT, EVENT_REASON), when("type", *CARD_OR_SUBSTITUTION)),
})

LIVE_TEXT = obj({
    "time": (STR, ALWAYS),
    "data": (STR, ALWAYS),
    "position": (one_of(INT, SIDE), ALWAYS),
})

LIVE_ITEM = obj({
    "id": (STR, ALWAYS),
    "score": (LIVE_SCORE, ALWAYS),
    "stats": (array(LIVE_STAT), ALWAYS),
    "incidents": (array(LIVE_INCIDENT), ALWAYS),
    "tlive": (array(LIVE_TEXT), ALWAYS),
})

# --- match/diary -----------------------------------------------------------------------------------------

# DOMAIN.md: the diary is asked by `date=YYYYMMDD` or `tsp=<unix>`; the docs document only `tsp`
# (required). The answer's shape is the same either way.
DIARY_QUERY = obj({
    "total": (INT, ALWAYS),
    "type": (one_of(STR, DIARY_QUERY_TYPES), ALWAYS),  # "season query: season, date query: diary"
})

NAMED = {"id": (STR, ALWAYS), "name": (STR, ALWAYS)}
DIARY_EXTRA = obj({
    "competition": (array(obj({**NAMED, "logo": (STR, ALWAYS)})), ALWAYS),
    "team": (array(obj({**NAMED, "logo": (STR, ALWAYS),
                        "country_logo": (STR, OPTIONAL)})), ALWAYS),  # "Exist for the national team"
    "referee": (array(obj({**NAMED, "logo": (STR, ALWAYS)})), ALWAYS),
    "venue": (array(obj(NAMED)), ALWAYS),
    "season": (array(obj({"id": (STR, ALWAYS), "competition_id": (STR, ALWAYS), "year": (STR, ALWAYS)})), ALWAYS),
    "stage": (array(obj({
        "id": (STR, ALWAYS),
        "season_id": (STR, ALWAYS),
        "name": (STR, ALWAYS),
        "mode": (one_of(INT, STAGE_MODE), ALWAYS),
        "group_count": (INT, ALWAYS),
        "round_count": (INT, ALWAYS),
        "order": (INT, ALWAYS),
    })), ALWAYS),
})

# --- data/update -------------------------------------------------------------------------------------------

# `results` is an object keyed by "type id" (STATUS_CODE.md, Data Update Type ID, 1-12), each an
# array of {<id field>, update_time}. The id field by type, from the field descriptions:
# match_id "single match lineup (1), match incident gif (10)"; season_id "bracket (2), season
# standing (3), season team statistics (4), season player statistics (5), season top scorer (6)";
# pub_time "fifa men (7), fifa women (8)"; team_id "team historical lineup (12)". World clubs
# ranking (9) and match goal line (11) are not named by any field: any of them may come.
# DOMAIN.md: "keyed by type id, items carry update_time" (the same).
ID_FIELD_OF_TYPE = {1: "match_id", 2: "season_id", 3: "season_id", 4: "season_id", 5: "season_id",
                    6: "season_id", 7: "pub_time", 8: "pub_time", 10: "match_id", 12: "team_id"}
_UPDATE_ID_FIELDS = {"match_id": STR, "season_id": STR, "pub_time": INT, "team_id": STR}


def _update_item(type_id: int) -> tuple:
    mine = ID_FIELD_OF_TYPE.get(type_id)
    fields = {name: (spec, ALWAYS if name == mine else OPTIONAL) for name, spec in _UPDATE_ID_FIELDS.items()
              if mine is None or name == mine}
    fields["update_time"] = (INT, ALWAYS)
    return obj(fields)


DATA_UPDATE = ("keyed", {str(t): array(_update_item(t)) for t in range(1, 13)})

# --- match/analysis ------------------------------------------------------------------------------------------

# A row is documented only by the `info` example (the history/future rows "the format is the
# same as the info field"):
# ["kp3glrw7hwqdyjv", "kp3glrw7hwqdyjv", 8, 1516125600, 0,
#  ["kp3glrw7hwqdyjv", "4", 1, 0, 0, 0, -1, 0, 0], ["kp3glrw7hwqdyjv", "19", 1, 0, 0, 0, -1, 0, 0],
#  ["0.86,-0.5,1.04,0", "3.8,3.6,2.05,0", "0.9,2.75,1.0,0", ""], ["", 0, 21], ["kp3glrw7hwqdyjv", "2017"]]
# so the types come from the example; the names (match id, competition id, status, match time,
# neutral, home [team id, position, scores 7], away [...], odds 4, [stage id, group, round],
# [season id, year]) are read off it (DOMAIN.md: "rows are positional arrays").
ANALYSIS_TEAM = positional(STR, STR, INT, INT, INT, INT, INT, INT, INT)
ANALYSIS_ROW = positional(
    STR,  # match id
    STR,  # competition id
    INT,  # status
    INT,  # match time
    INT,  # neutral
    ANALYSIS_TEAM,  # home: team id, position (text), the 7 scores
    ANALYSIS_TEAM,  # away
    positional(STR, STR, STR, STR),  # odds texts
    positional(STR, INT, INT),  # stage id, group, round
    positional(STR, STR),  # season id, year
)
# "scored"/"conceded" are "array of arrays" without more: the inner arrays are taken as numbers.
GOAL_SPLIT = obj({
    "matches": (INT, ALWAYS),
    "scored": (array(array(NUMBER)), ALWAYS),
    "conceded": (array(array(NUMBER)), ALWAYS),
})
GOAL_DISTRIBUTION = obj({
    "all": (GOAL_SPLIT, ALWAYS),
    "home": (GOAL_SPLIT, ALWAYS),
    "away": (GOAL_SPLIT, ALWAYS),
}, may_be_empty=True)  # "no data is empty"
ANALYSIS = obj({
    "info": (ANALYSIS_ROW, ALWAYS),
    "history": (obj({  # each list "no data is empty": [] is fine
        "vs": (array(ANALYSIS_ROW), ALWAYS),
        "home": (array(ANALYSIS_ROW), ALWAYS),
        "away": (array(ANALYSIS_ROW), ALWAYS),
    }), ALWAYS),
    "future": (obj({
        "home": (array(ANALYSIS_ROW), ALWAYS),
        "away": (array(ANALYSIS_ROW), ALWAYS),
    }), ALWAYS),
    "goal_distribution": (obj({
        "home": (GOAL_DISTRIBUTION, ALWAYS),
        "away": (GOAL_DISTRIBUTION, ALWAYS),
    }), ALWAYS),
})

# --- season/recent/table/detail and table/live ---------------------------------------------------------------

PROMOTION = obj({"id": (STR, ALWAYS), "name": (STR, ALWAYS), "color": (STR, ALWAYS)})
_ROW_COUNTS = ("points", "position", "total", "won", "draw", "loss", "goals", "goals_against", "goal_diff")
TABLE_ROW = obj({
    "team_id": (STR, ALWAYS),
    "promotion_id": (STR, ALWAYS),
    "points": (INT, ALWAYS),
    "position": (INT, ALWAYS),
    "deduct_points": (INT, ALWAYS),
    "note": (STR, ALWAYS),
    **{name: (INT, ALWAYS) for name in _ROW_COUNTS[2:]},
    **{f"{side}_{name}": (INT, ALWAYS) for side in ("home", "away") for name in _ROW_COUNTS},
    "updated_at": (INT, ALWAYS),
})
TABLE = obj({
    "id": (STR, ALWAYS),
    # "only available in very few competitions, such as the US League": taken as may be absent.
    "conference": (STR, OPTIONAL),
    "group": (INT, ALWAYS),
    "stage_id": (STR, ALWAYS),
    "rows": (array(TABLE_ROW), ALWAYS),
})
STANDINGS = {"promotions": (array(PROMOTION), ALWAYS), "tables": (array(TABLE), ALWAYS)}
SEASON_TABLE = obj(STANDINGS)
LIVE_TABLE = obj({"season_id": (STR, ALWAYS), **STANDINGS, "updated_at": (INT, ALWAYS)})

# --- competition/additional/list and team/additional/list ----------------------------------------------------------

COMPETITION = obj({
    "id": (STR, ALWAYS),
    "category_id": (STR, ALWAYS),
    "country_id": (STR, ALWAYS),
    "name": (STR, ALWAYS),
    "short_name": (STR, ALWAYS),
    "logo": (STR, ALWAYS),
    "type": (one_of(INT, COMPETITION_TYPE), ALWAYS),
    "cur_season_id": (STR, ALWAYS),
    "cur_stage_id": (STR, ALWAYS),
    "cur_round": (INT, ALWAYS),
    "round_count": (INT, ALWAYS),
    # Typed "array of objects", documented by examples: positional.
    "title_holder": (positional(STR, INT), ALWAYS),  # ["p3glrw7he0gqdyj", 6]: team id, titles
    "most_titles": (positional(array(STR), INT), ALWAYS),  # [["p3glrw7he0gqdyj"], 20]: team ids, titles
    "newcomers": (positional(array(STR), array(STR)), ALWAYS),  # [[promoted ids], [relegated ids]]
    "divisions": (positional(array(STR), array(STR)), ALWAYS),  # [[higher ids], [lower ids]]
    "host": (obj({"country": (STR, ALWAYS), "city": (STR, OPTIONAL)}), ALWAYS),  # city "may not exist"
    "gender": (one_of(INT, GENDER), ALWAYS),
    "primary_color": (STR, ALWAYS),  # "can be ignored", but documented
    "secondary_color": (STR, ALWAYS),
    "uid": (STR, OPTIONAL),  # "if it exists, it will be returned"
    "updated_at": (INT, ALWAYS),
})

TEAM = obj({
    "id": (STR, ALWAYS),
    "competition_id": (STR, ALWAYS),
    "country_id": (STR, ALWAYS),
    "name": (STR, ALWAYS),
    "short_name": (STR, ALWAYS),
    "logo": (STR, ALWAYS),
    "national": (one_of(INT, YES_NO), ALWAYS),
    "country_logo": (STR, when("national", 1)),  # "Exist for the national team"
    "foundation_time": (INT, ALWAYS),
    "website": (STR, ALWAYS),
    "coach_id": (STR, ALWAYS),
    "venue_id": (STR, ALWAYS),
    "market_value": (INT, ALWAYS),
    "market_value_currency": (STR, ALWAYS),
    "total_players": (INT, ALWAYS),  # -1 = no data
    "foreign_players": (INT, ALWAYS),  # -1 = no data
    "national_players": (INT, ALWAYS),  # -1 = no data
    "uid": (STR, OPTIONAL),  # "if it exists, it will be returned"
    "virtual": (one_of(INT, YES_NO), ALWAYS),
    "gender": (one_of(INT, GENDER), ALWAYS),
    "updated_at": (INT, ALWAYS),
})

# --- the envelopes, by endpoint path ------------------------------------------------------------------------------

# --- match/team_stats/list and match/half/team_stats/detail ------------------------------------------------

# v1_football_match_team_stats_list_GET.md: `results[].stats[]`, one object per team, every field listed
# without a condition. DOMAIN.md: corners may be "no data" (-1 in the score array), so a team without
# corner data has no corner_kicks.
TEAM_STAT_NAMES = (
    "goals", "penalty", "assists", "red_cards", "yellow_cards", "shots", "shots_on_target", "dribble",
    "dribble_succ", "clearances", "blocked_shots", "interceptions", "tackles", "tackles_succ", "passes",
    "passes_accuracy", "key_passes", "crosses", "crosses_accuracy", "long_balls", "long_balls_accuracy", "duels",
    "duels_won", "fouls", "was_fouled", "goals_against", "offsides", "yellow2red_cards", "corner_kicks",
    "ball_possession", "freekicks", "freekick_goals", "big_chance_missed", "big_chance_created", "hit_woodwork",
    "fastbreaks", "fastbreak_shots", "fastbreak_goals", "poss_losts", "aerial_won", "aerial_lost", "ground_won",
    "ground_lost", "duel_won", "duel_lost", "shots_ibox", "shots_obox",
)
TEAM_STAT = obj({"team_id": (STR, ALWAYS),
                 **{n: (INT, OPTIONAL if n == "corner_kicks" else ALWAYS) for n in TEAM_STAT_NAMES}})
TEAM_STATS_ITEM = obj({"id": (STR, ALWAYS), "stats": (array(TEAM_STAT), ALWAYS)})
# v1_football_match_half_team_stats_detail_GET.md: results.<Sign>.<Statistics ID> = [home, away], Sign one of
# ft, p1, p2, o1, o2; the ids from STATUS_CODE.md "Half-time Statistics ID".
HALF_STAT_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 21, 22, 23, 24, 25, 32, 33, 34, 36, 37, 38, 39, 40, 41, 42,
                 43, 44, 45, 46, 48, 49, 51, 52, 53, 54, 55, 56, 61, 63, 65, 66, 67, 69, 70, 71, 72, 74, 75, 78,
                 79, 80, 81, 82, 83, 87)
HALF = ("keyed", {str(i): positional(INT, INT) for i in HALF_STAT_IDS})
HALF_STATS = obj({sign: (HALF, OPTIONAL) for sign in ("ft", "p1", "p2", "o1", "o2")}, may_be_empty=True)

ENDPOINTS: dict[str, tuple] = {
    "match/detail_live": obj({"code": (SUCCESS_CODE, ALWAYS), "results": (array(LIVE_ITEM), ALWAYS)}),
    "match/diary": obj({"code": (SUCCESS_CODE, ALWAYS), "query": (DIARY_QUERY, ALWAYS),
                        "results": (array(MATCH), ALWAYS), "results_extra": (DIARY_EXTRA, ALWAYS)}),
    "match/recent/list": obj({"code": (SUCCESS_CODE, ALWAYS), "query": (LIST_QUERY, ALWAYS),
                              "results": (array(MATCH), ALWAYS)}),
    "data/update": obj({"code": (SUCCESS_CODE, ALWAYS), "results": (DATA_UPDATE, ALWAYS)}),
    "match/analysis": obj({"code": (SUCCESS_CODE, ALWAYS), "results": (ANALYSIS, ALWAYS)}),
    "season/recent/table/detail": obj({"code": (SUCCESS_CODE, ALWAYS), "results": (SEASON_TABLE, ALWAYS)}),
    "table/live": obj({"code": (SUCCESS_CODE, ALWAYS), "results": (array(LIVE_TABLE), ALWAYS)}),
    "competition/additional/list": obj({"code": (SUCCESS_CODE, ALWAYS), "query": (LIST_QUERY, ALWAYS),
                                        "results": (array(COMPETITION), ALWAYS)}),
    "team/additional/list": obj({"code": (SUCCESS_CODE, ALWAYS), "query": (LIST_QUERY, ALWAYS),
                                 "results": (array(TEAM), ALWAYS)}),
    "match/team_stats/list": obj({"code": (SUCCESS_CODE, ALWAYS), "results": (array(TEAM_STATS_ITEM), ALWAYS)}),
    "match/half/team_stats/detail": obj({"code": (SUCCESS_CODE, ALWAYS), "results": (HALF_STATS, ALWAYS)}),
}

# Errors. The docs: "404 Resource does not exist" {code, msg}. DOMAIN.md: errors (e.g. a wrong
# user/secret) come back as HTTP 200 with {"err": "..."}, throttling as {"code": 429}.
NOT_FOUND = obj({"code": (INT, ALWAYS), "msg": (STR, ALWAYS)})
AUTH_ERROR = obj({"err": (STR, ALWAYS)})


# --- the checker ----------------------------------------------------------------------------------------------------

_SCALARS = {STR: (str,), INT: (int,), NUMBER: (int, float)}


def describe(spec) -> str:
    """A spec in words: `int`, `list of 7 int`, `[str, int, ...]`, `object`."""
    if isinstance(spec, str):
        return spec
    kind = spec[0]
    if kind in _SCALARS:
        return kind
    if kind == "list":
        return f"list of {spec[2]} {describe(spec[1])}" if len(spec) > 2 else f"list of {describe(spec[1])}"
    if kind == "tuple":
        return "[" + ", ".join(describe(s) for s in spec[1:]) + "]"
    return "object"


def got(value) -> str:
    """A value's JSON type in words, with a glimpse of it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"bool ({value!r})"
    if isinstance(value, list):
        return f"list of {len(value)}"
    if isinstance(value, dict):
        return f"object with {len(value)} fields"
    text = repr(value)
    return f"{type(value).__name__} ({text[:40]}{'...' if len(text) > 40 else ''})"


def _is(value, kind: str) -> bool:
    return isinstance(value, _SCALARS[kind]) and not isinstance(value, bool)


def _values_text(values: frozenset) -> str:
    ordered = sorted(values, key=lambda v: (str(type(v)), v))
    if len(ordered) > 6 and all(isinstance(v, int) for v in ordered) and ordered == list(
            range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}..{ordered[-1]}"
    return ", ".join(repr(v) for v in ordered)


def _present_required(presence, obj_value: dict) -> bool:
    if presence == ALWAYS:
        return True
    if presence == OPTIONAL:
        return False
    _, sibling, values = presence
    return obj_value.get(sibling) in values


def check(value, spec, path: str = "$") -> list[str]:
    """Every way `value` differs from `spec`, one readable line each (empty: it matches)."""
    problems: list[str] = []
    _check(value, spec, path, problems)
    return problems


def _check(value, spec, path: str, out: list[str]) -> None:
    kind = spec if isinstance(spec, str) else spec[0]
    if kind in _SCALARS:
        if not _is(value, kind):
            out.append(f"{path}: expected {kind}, got {got(value)}")
        elif not isinstance(spec, str) and value not in spec[1]:
            out.append(f"{path}: {value!r} is not a documented value ({_values_text(spec[1])})")
        return
    if kind == "list":
        if not isinstance(value, list):
            out.append(f"{path}: expected {describe(spec)}, got {got(value)}")
            return
        if len(spec) > 2 and len(value) != spec[2]:
            out.append(f"{path}: expected {describe(spec)}, got list of {len(value)}")
        for i, item in enumerate(value):
            _check(item, spec[1], f"{path}[{i}]", out)
        return
    if kind == "tuple":
        items = spec[1:]
        if not isinstance(value, list):
            out.append(f"{path}: expected a positional array {describe(spec)}, got {got(value)}")
            return
        if len(value) != len(items):
            out.append(f"{path}: expected a positional array of {len(items)} {describe(spec)}, "
                       f"got list of {len(value)}")
        for i, (item, item_spec) in enumerate(zip(value, items)):
            _check(item, item_spec, f"{path}[{i}]", out)
        return
    if kind in ("object", "object-or-empty"):
        if not isinstance(value, dict):
            out.append(f"{path}: expected object, got {got(value)}")
            return
        if kind == "object-or-empty" and not value:
            return
        fields = spec[1]
        for name, (field_spec, presence) in fields.items():
            if name in value:
                _check(value[name], field_spec, f"{path}.{name}", out)
            elif _present_required(presence, value):
                why = "" if presence == ALWAYS else f" when {presence[1]} is {_values_text(presence[2])}"
                out.append(f"{path}.{name}: missing (documented as always present{why})")
        for name in value:
            if name not in fields:
                out.append(f"{path}.{name}: undocumented field (got {got(value[name])})")
        return
    if kind == "keyed":
        if not isinstance(value, dict):
            out.append(f"{path}: expected object keyed by id, got {got(value)}")
            return
        keys = spec[1]
        for key, item in value.items():
            if key not in keys:
                out.append(f"{path}[{key!r}]: undocumented key (documented: {', '.join(keys)})")
            else:
                _check(item, keys[key], f"{path}[{key!r}]", out)
        return
    raise ValueError(f"{path}: unknown spec {spec!r}")


def documented_fields(spec, path: str = "$") -> list[str]:
    """The path of every documented field and positional slot under `spec` (for counting)."""
    kind = spec if isinstance(spec, str) else spec[0]
    if kind in _SCALARS:
        return []
    if kind == "list":
        return documented_fields(spec[1], f"{path}[*]")
    if kind == "tuple":
        out = []
        for i, s in enumerate(spec[1:]):
            out += [f"{path}[{i}]"] + documented_fields(s, f"{path}[{i}]")
        return out
    if kind in ("object", "object-or-empty"):
        out = []
        for name, (s, _) in spec[1].items():
            out += [f"{path}.{name}"] + documented_fields(s, f"{path}.{name}")
        return out
    if kind == "keyed":
        out = []
        for key, s in spec[1].items():
            out += [f"{path}[{key!r}]"] + documented_fields(s, f"{path}[{key!r}]")
        return out
    raise ValueError(f"{path}: unknown spec {spec!r}")
