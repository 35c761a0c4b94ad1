"""The read side of the match tables: the queries behind the public match endpoints
(console/matches_api.py). Database only, never the provider. Each function takes an open
connection, runs one statement (two for one match's detail) in the caller's greenlet (a request
greenlet of the console) and returns plain dicts; a database error propagates.
"""
from __future__ import annotations

from goald.match.state import LIVE_STATUSES

MATCH_COLUMNS = (
    "id", "season_id", "competition_id", "home_team_id", "away_team_id", "status_id", "match_time", "period",
    "minute", "added_minute", "announced_added_minute", "minute_text", "home_display", "away_display",
    "home_regular", "away_regular", "home_half_time", "away_half_time", "home_overtime", "away_overtime",
    "home_penalties", "away_penalties", "home_red_cards", "away_red_cards", "home_yellow_cards",
    "away_yellow_cards", "home_corners", "away_corners", "first_half_kickoff_ts", "second_half_kickoff_ts",
    "overtime_kickoff_ts", "overtime_second_kickoff_ts", "finished_after", "ended_reason", "stale_reason",
    "provider_update_time", "updated_at", "data_completeness",
)
JOINED = ("home_name", "home_logo", "away_name", "away_logo", "competition_name", "competition_logo")

_SELECT = f"""
SELECT {', '.join('m.' + c for c in MATCH_COLUMNS)},
       ht.name, ht.logo, at.name, at.logo, c.name, c.logo
FROM matches m
LEFT JOIN teams ht ON ht.id = m.home_team_id
LEFT JOIN teams at ON at.id = m.away_team_id
LEFT JOIN competitions c ON c.id = m.competition_id
"""
_NAMES = MATCH_COLUMNS + JOINED


# What a listed match's answer depends on: updated_at (moved by every data change, see the trigger
# in sql/0006), the minute engine's columns and stale_reason (which do not move it), and the joined
# team and competition rows. Equal keys: the encoded answer of the match can be reused.
_KEYS = """
SELECT m.id, m.updated_at, m.period, m.minute, m.added_minute, m.minute_text, m.stale_reason,
       ht.updated_at, at.updated_at, c.updated_at
FROM matches m
LEFT JOIN teams ht ON ht.id = m.home_team_id
LEFT JOIN teams at ON at.id = m.away_team_id
LEFT JOIN competitions c ON c.id = m.competition_id
"""
_LIVE_WHERE = " WHERE m.status_id = ANY(%s) OR (m.status_id = 1 AND m.match_time <= %s) ORDER BY m.match_time, m.id"
_DIARY_WHERE = " WHERE m.match_time >= %s AND m.match_time < %s ORDER BY m.match_time, m.id"


def _keys(conn, where: str, args: tuple) -> list[tuple[str, tuple]]:
    with conn.cursor() as cur:
        cur.execute(_KEYS + where, args)
        return [(r[0], r[1:]) for r in cur.fetchall()]


def live_keys(conn, now: int) -> list[tuple[str, tuple]]:
    """(id, key) of the live listing, in its order: a narrow query, so that only the matches whose
    key changed need their full rows (`by_ids`)."""
    return _keys(conn, _LIVE_WHERE, (sorted(LIVE_STATUSES), now))


def diary_keys(conn, day_start: int) -> list[tuple[str, tuple]]:
    return _keys(conn, _DIARY_WHERE, (day_start, day_start + 86400))


def by_ids(conn, ids: list[str]) -> list[dict]:
    """The full rows of these matches (any order)."""
    if not ids:
        return []
    with conn.cursor() as cur:
        cur.execute(_SELECT + " WHERE m.id = ANY(%s)", (list(ids),))
        return _rows(cur)


def _rows(cur) -> list[dict]:
    return [dict(zip(_NAMES, r)) for r in cur.fetchall()]


def live(conn, now: int) -> list[dict]:
    """The live set (2, 3, 4, 5, 7) and the matches not started whose kick-off time has passed."""
    with conn.cursor() as cur:
        cur.execute(_SELECT + _LIVE_WHERE, (sorted(LIVE_STATUSES), now))
        return _rows(cur)


def one(conn, match_id: str) -> dict | None:
    """One match with its incidents, statistics, team statistics and statistics per half, or None."""
    with conn.cursor() as cur:
        cur.execute(_SELECT + " WHERE m.id = %s", (match_id,))
        rows = _rows(cur)
        if not rows:
            return None
        match = rows[0]
        cur.execute("SELECT seq, type, position, time, add_time, player_id, player_name, home_score, away_score "
                    "FROM match_incidents WHERE match_id = %s ORDER BY seq", (match_id,))
        match["incidents"] = [dict(zip(("seq", "type", "position", "time", "add_time", "player_id", "player_name",
                                        "home_score", "away_score"), r)) for r in cur.fetchall()]
        cur.execute("SELECT type, home, away FROM match_stats WHERE match_id = %s ORDER BY type", (match_id,))
        match["stats"] = [dict(zip(("type", "home", "away"), r)) for r in cur.fetchall()]
        cur.execute("SELECT t.team_id, CASE t.team_id WHEN m.home_team_id THEN 'home' WHEN m.away_team_id THEN 'away' "
                    "ELSE 'other' END, t.stats FROM match_team_stats t JOIN matches m ON m.id = t.match_id "
                    "WHERE t.match_id = %s ORDER BY 2, 1", (match_id,))
        match["team_stats"] = [{"team_id": r[0], "side": r[1], "stats": r[2]} for r in cur.fetchall()]
        cur.execute("SELECT half, type, home, away FROM match_half_stats WHERE match_id = %s ORDER BY half, type",
                    (match_id,))
        match["half_stats"] = {}
        for half, *stat in cur.fetchall():
            match["half_stats"].setdefault(half, []).append(dict(zip(("type", "home", "away"), stat)))
        return match
