"""Provider payloads as `matches` columns (sql/0006_matches.sql): the one place that knows how
the 7-int score arrays and the match object map onto the table.

Pure functions over decoded payloads (goald/provider/payloads.py), run by whichever greenlet
ingests (the ingest jobs, the match actors); they never raise for a decoded payload (decoding
already validated it). The provider's corners -1 (no data) is None (NULL); the display score is
the table's generated column, not written here; an empty id (the provider's "" for no venue or
referee) is None.
"""
from __future__ import annotations

from goald.match.minute import Tracked, minute_at, track
from goald.provider.payloads import LiveMatch, Match, TeamScore


def score_columns(home: TeamScore, away: TeamScore) -> dict:
    """The score array pair as columns: goals, half-time goals, overtime (including regular time,
    0 until extra time), shoot-out, cards and corners."""
    out = {}
    for side, s in (("home", home), ("away", away)):
        out[f"{side}_regular"] = s.goals
        out[f"{side}_half_time"] = s.half_time_goals
        out[f"{side}_overtime"] = s.overtime_goals
        out[f"{side}_penalties"] = s.penalty_goals
        out[f"{side}_red_cards"] = s.red_cards
        out[f"{side}_yellow_cards"] = s.yellow_cards
        out[f"{side}_corners"] = None if s.corners < 0 else s.corners
    return out


def from_live(item: LiveMatch) -> dict:
    """What a detail_live item says of its match row: status and scores (the kick-off of the
    current half, `score[4]`, goes through goald/match/minute.py's `track`, which sets each
    kick-off column once)."""
    return {"id": item.id, "status_id": item.score.status_id, **score_columns(item.score.home, item.score.away)}


def from_match(m: Match) -> dict:
    """What a diary / recent-list match object says of its row; its `updated_at` is the
    provider's time of that state, `provider_update_time` (the guarded write compares it)."""
    return {
        "id": m.id, "season_id": m.season_id or None, "competition_id": m.competition_id or None,
        "home_team_id": m.home_team_id, "away_team_id": m.away_team_id, "venue_id": m.venue_id or None,
        "referee_id": m.referee_id or None, "neutral": bool(m.neutral), "status_id": m.status_id,
        "match_time": m.match_time, "provider_update_time": m.updated_at,
        **score_columns(m.home_scores, m.away_scores),
    }


def object_row(m: Match, now: float | None = None) -> dict:
    """A match object as the row of a match no actor tracks (goald/match/store.py
    upsert_objects): its columns, with the period and text its status alone implies (`FT`,
    `CAN`, ...; a running period's minute is the match actor's to compute), and `now` (when it
    was ingested) as the time of its status (kept when the stored status is the same)."""
    tracked = track(Tracked(), m.status_id, 0)
    return {**from_match(m), "provider_status_id": m.status_id,
            "status_changed_ts": None if now is None else int(now),
            "period": tracked.period, "minute_text": minute_at(tracked, 0).text}
