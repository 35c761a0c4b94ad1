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
    "provider_update_time", "updated_at",
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


def _rows(cur) -> list[dict]:
    return [dict(zip(_NAMES, r)) for r in cur.fetchall()]


def live(conn, now: int) -> list[dict]:
    """The live set (2, 3, 4, 5, 7) and the matches not started whose kick-off time has passed."""
    with conn.cursor() as cur:
        cur.execute(_SELECT + " WHERE m.status_id = ANY(%s) OR (m.status_id = 1 AND m.match_time <= %s)"
                    " ORDER BY m.match_time, m.id", (sorted(LIVE_STATUSES), now))
        return _rows(cur)


def diary(conn, day_start: int) -> list[dict]:
    """The matches kicking off in [day_start, day_start + 24 h), by kick-off time."""
    with conn.cursor() as cur:
        cur.execute(_SELECT + " WHERE m.match_time >= %s AND m.match_time < %s ORDER BY m.match_time, m.id",
                    (day_start, day_start + 86400))
        return _rows(cur)


def one(conn, match_id: str) -> dict | None:
    """One match with its incidents and statistics, or None."""
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
        return match
