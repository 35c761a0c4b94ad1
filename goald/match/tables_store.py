"""The standings and head-to-head tables' SQL (sql/0010_standings_h2h.sql): the syncs' writes and
their candidates, and the reads behind the public endpoints. One module per table family.

Writes are set-based (any number of seasons or matches in a fixed number of statements, passed as
one JSON array) and change nothing when the content is the same (`content_hash`), so a sync
that finds nothing new writes nothing and invalidates no cache entry. A season's lines are
replaced only by a table whose provider time is not older than the stored one. Functions take an
open connection and leave the transaction to the caller, in the caller's greenlet (a job's run
greenlet, or a request greenlet for the reads); a database error propagates as psycopg2's.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import msgspec

from goald.match.store import encode
from goald.provider.payloads_reference import AnalysisRow, MatchAnalysis, StandingRow, StandingTable

_JSON = msgspec.json.Encoder(order="sorted")
_SPLIT = ("points", "position", "total", "won", "draw", "loss", "goals", "goals_against", "goal_diff")


def _hash(doc) -> str:
    return hashlib.blake2b(_JSON.encode(doc), digest_size=16).hexdigest()


# --- standings: writes ----------------------------------------------------------------------------

def _line(season_id: str, table: StandingTable, r: StandingRow) -> dict:
    def split(side: str) -> dict:
        out = {k: getattr(r, f"{side}_{k}") for k in _SPLIT}
        out["played"], out["drawn"], out["lost"] = out.pop("total"), out.pop("draw"), out.pop("loss")
        out["goals_for"] = out.pop("goals")
        return out
    return {"season_id": season_id, "table_id": table.id, "stage_id": table.stage_id, "group_num": table.group,
            "conference": table.conference, "team_id": r.team_id, "position": r.position, "points": r.points,
            "played": r.total, "won": r.won, "drawn": r.draw, "lost": r.loss, "goals_for": r.goals,
            "goals_against": r.goals_against, "goal_diff": r.goal_diff, "deduct_points": r.deduct_points,
            "promotion_id": r.promotion_id, "note": r.note, "home": split("home"), "away": split("away")}


def season_doc(season_id: str, tables: Iterable[StandingTable], promotions: Iterable, source: str,
               provider_updated_at: int | None = None, competition_id: str | None = None) -> dict:
    """One season's standings as `write_standings` takes them. `provider_updated_at` defaults to
    the newest line's `updated_at` (a season table has no time of its own)."""
    tables = list(tables)
    lines = [_line(season_id, t, r) for t in tables for r in t.rows]
    if provider_updated_at is None:
        provider_updated_at = max((r.updated_at for t in tables for r in t.rows), default=0)
    promos = [{"id": p.id, "name": p.name, "color": p.color} for p in promotions]
    return {"season_id": season_id, "competition_id": competition_id, "source": source, "promotions": promos,
            "provider_updated_at": provider_updated_at, "content_hash": _hash([lines, promos]), "lines": lines}


_UPSERT_STANDINGS = """
WITH x AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS x(season_id text, competition_id text, source text,
                                                            promotions jsonb, provider_updated_at bigint,
                                                            content_hash text))
INSERT INTO standings AS s (season_id, competition_id, source, promotions, provider_updated_at, content_hash)
SELECT x.season_id,
       coalesce(x.competition_id, (SELECT se.competition_id FROM seasons se WHERE se.id = x.season_id),
                (SELECT m.competition_id FROM matches m WHERE m.season_id = x.season_id LIMIT 1)),
       x.source, x.promotions, x.provider_updated_at, x.content_hash
FROM x
ON CONFLICT (season_id) DO UPDATE SET
    competition_id = coalesce(EXCLUDED.competition_id, s.competition_id), source = EXCLUDED.source,
    promotions = EXCLUDED.promotions, provider_updated_at = EXCLUDED.provider_updated_at,
    content_hash = EXCLUDED.content_hash, fetched_at = now(), changed_at = now()
WHERE s.content_hash IS DISTINCT FROM EXCLUDED.content_hash
  AND s.provider_updated_at <= EXCLUDED.provider_updated_at
RETURNING s.season_id, s.competition_id
"""

_TOUCH_STANDINGS = "UPDATE standings SET fetched_at = now() WHERE season_id = ANY(%s)"

_INSERT_LINES = """
INSERT INTO standing_rows (season_id, table_id, stage_id, group_num, conference, team_id, position, points,
                           played, won, drawn, lost, goals_for, goals_against, goal_diff, deduct_points,
                           promotion_id, note, home, away)
SELECT season_id, table_id, stage_id, group_num, conference, team_id, position, points, played, won, drawn,
       lost, goals_for, goals_against, goal_diff, deduct_points, promotion_id, note, home, away
FROM jsonb_to_recordset(%s::jsonb) AS x(season_id text, table_id text, stage_id text, group_num smallint,
     conference text, team_id text, position integer, points integer, played integer, won integer,
     drawn integer, lost integer, goals_for integer, goals_against integer, goal_diff integer,
     deduct_points integer, promotion_id text, note text, home jsonb, away jsonb)
WHERE season_id = ANY(%s)
ON CONFLICT (season_id, table_id, team_id) DO NOTHING
"""


def write_standings(conn, docs: list[dict]) -> list[tuple[str, str | None]]:
    """Store these seasons' standings (`season_doc`s); four statements however many. A season
    whose content is unchanged, or whose stored provider time is newer, is left as it is (its
    `fetched_at` moves, so it is not due again at once). Returns the (season, competition) pairs
    whose standings changed."""
    if not docs:
        return []
    docs = list({d["season_id"]: d for d in docs}.values())      # one per season: the last one wins
    heads = [{k: v for k, v in d.items() if k != "lines"} for d in docs]
    with conn.cursor() as cur:
        cur.execute(_UPSERT_STANDINGS, (encode(heads),))
        changed = cur.fetchall()
        ids = [sid for sid, _ in changed]
        cur.execute(_TOUCH_STANDINGS, ([d["season_id"] for d in docs],))
        if ids:
            cur.execute("DELETE FROM standing_rows WHERE season_id = ANY(%s)", (ids,))
            cur.execute(_INSERT_LINES, (encode([ln for d in docs if d["season_id"] in ids for ln in d["lines"]]),
                                        ids))
    return [(sid, cid) for sid, cid in changed]


_STANDINGS_DUE = """
WITH active AS (
    SELECT m.season_id, max(m.match_time) AS last_kickoff,
           bool_or(m.status_id = 8 AND m.status_changed_ts IS NOT NULL) AS any_ended,
           max(CASE WHEN m.status_id = 8 THEN m.status_changed_ts END) AS last_ended
    FROM matches m
    WHERE m.season_id IS NOT NULL AND m.season_id <> '' AND m.match_time BETWEEN %(since)s AND %(until)s
    GROUP BY m.season_id)
SELECT a.season_id FROM active a LEFT JOIN standings s ON s.season_id = a.season_id
WHERE s.season_id IS NULL
   OR s.fetched_at < now() - make_interval(secs => %(refresh_s)s)
   OR (a.last_ended IS NOT NULL AND s.fetched_at < to_timestamp(a.last_ended))
ORDER BY s.fetched_at NULLS FIRST, a.season_id
LIMIT %(limit)s
"""


def standings_due(conn, now: float, *, refresh_s: float, window_s: float, limit: int) -> list[str]:
    """Seasons with matches within `window_s` of `now` (the pipeline's clock) whose standings are
    missing, fetched longer than `refresh_s` ago (the database's clock, which wrote fetched_at), or
    older than the end of one of their matches: never fetched first."""
    with conn.cursor() as cur:
        cur.execute(_STANDINGS_DUE, {"since": int(now - window_s), "until": int(now + window_s),
                                     "refresh_s": refresh_s, "limit": limit})
        return [r[0] for r in cur.fetchall()]


def seasons_with_live_matches(conn, live_statuses: Iterable[int]) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(DISTINCT season_id) FROM matches WHERE status_id = ANY(%s) AND season_id <> ''",
                    (list(live_statuses),))
        return cur.fetchone()[0]


# --- head-to-head: writes -------------------------------------------------------------------------

def _row(r: AnalysisRow) -> dict:
    def side(t) -> dict:
        return {"team_id": t.team_id, "position": t.position, "goals": t.goals, "half_time_goals": t.half_time_goals,
                "red_cards": t.red_cards, "yellow_cards": t.yellow_cards,
                "corners": t.corners if t.corners >= 0 else None, "overtime_goals": t.overtime_goals,
                "penalty_goals": t.penalty_goals}
    return {"match_id": r.match_id, "competition_id": r.competition_id, "status_id": r.status_id,
            "match_time": r.match_time, "neutral": bool(r.neutral), "home": side(r.home), "away": side(r.away),
            "season_id": r.season.season_id if r.season is not None else "",
            "round": r.round.round_num if r.round is not None else 0}


def h2h_doc(match_id: str, a: MatchAnalysis) -> dict:
    doc = {"match_id": match_id, "vs": [_row(r) for r in a.history.vs],
           "home_recent": [_row(r) for r in a.history.home], "away_recent": [_row(r) for r in a.history.away],
           "home_next": [_row(r) for r in a.future.home], "away_next": [_row(r) for r in a.future.away],
           "goal_distribution": msgspec.to_builtins(a.goal_distribution)}
    doc["content_hash"] = _hash(doc)
    return doc


_UPSERT_H2H = """
WITH x AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS x(match_id text, vs jsonb, home_recent jsonb,
           away_recent jsonb, home_next jsonb, away_next jsonb, goal_distribution jsonb, content_hash text)),
touched AS (UPDATE match_h2h h SET fetched_at = now() FROM x WHERE h.match_id = x.match_id
            AND h.content_hash = x.content_hash RETURNING h.match_id)
INSERT INTO match_h2h AS h (match_id, vs, home_recent, away_recent, home_next, away_next, goal_distribution,
                            content_hash)
SELECT x.match_id, x.vs, x.home_recent, x.away_recent, x.home_next, x.away_next, x.goal_distribution, x.content_hash
FROM x JOIN matches m ON m.id = x.match_id
WHERE x.match_id NOT IN (SELECT match_id FROM touched)
ON CONFLICT (match_id) DO UPDATE SET
    vs = EXCLUDED.vs, home_recent = EXCLUDED.home_recent, away_recent = EXCLUDED.away_recent,
    home_next = EXCLUDED.home_next, away_next = EXCLUDED.away_next, goal_distribution = EXCLUDED.goal_distribution,
    content_hash = EXCLUDED.content_hash, fetched_at = now(), changed_at = now()
WHERE h.content_hash IS DISTINCT FROM EXCLUDED.content_hash
RETURNING h.match_id
"""


def write_h2h(conn, docs: list[dict]) -> list[str]:
    """Store these matches' head-to-head (`h2h_doc`s) in one statement; unchanged ones only have
    their `fetched_at` moved, unknown matches are skipped. Returns the matches whose data changed."""
    if not docs:
        return []
    docs = list({d["match_id"]: d for d in docs}.values())
    with conn.cursor() as cur:
        cur.execute(_UPSERT_H2H, (encode(docs),))
        return [r[0] for r in cur.fetchall()]


_H2H_DUE = """
SELECT m.id FROM matches m LEFT JOIN match_h2h h ON h.match_id = m.id
WHERE m.status_id = 1 AND m.match_time BETWEEN %(now)s AND %(until)s
  AND (h.match_id IS NULL OR h.fetched_at < now() - make_interval(secs => %(refresh_s)s))
ORDER BY h.fetched_at NULLS FIRST, m.match_time, m.id
LIMIT %(limit)s
"""


def h2h_due(conn, now: float, *, horizon_s: float, refresh_s: float, limit: int) -> list[str]:
    """Not-started matches kicking off within `horizon_s` whose head-to-head is missing or older
    than `refresh_s`: missing first, then the soonest."""
    with conn.cursor() as cur:
        cur.execute(_H2H_DUE, {"now": int(now), "until": int(now + horizon_s), "refresh_s": refresh_s,
                               "limit": limit})
        return [r[0] for r in cur.fetchall()]


# --- reads (the public endpoints: console/tables_api.py) -------------------------------------------

_STANDINGS = """
SELECT s.season_id, s.competition_id, c.name, c.logo, s.source, s.promotions, s.provider_updated_at,
       extract(epoch FROM s.fetched_at)::bigint,
       coalesce((SELECT json_agg(json_build_object(
                    'table_id', r.table_id, 'stage_id', r.stage_id, 'group_num', r.group_num,
                    'conference', r.conference, 'team_id', r.team_id, 'team_name', t.name, 'team_logo', t.logo,
                    'position', r.position, 'points', r.points, 'played', r.played, 'won', r.won,
                    'drawn', r.drawn, 'lost', r.lost, 'goals_for', r.goals_for, 'goals_against', r.goals_against,
                    'goal_diff', r.goal_diff, 'deduct_points', r.deduct_points, 'promotion_id', r.promotion_id,
                    'note', r.note, 'home', r.home, 'away', r.away)
                  ORDER BY r.stage_id, r.group_num, r.table_id, r.position, r.team_id)
                 FROM standing_rows r LEFT JOIN teams t ON t.id = r.team_id
                 WHERE r.season_id = s.season_id), '[]'::json)
FROM standings s LEFT JOIN competitions c ON c.id = s.competition_id
"""
_STANDINGS_NAMES = ("season_id", "competition_id", "competition_name", "competition_logo", "source", "promotions",
                    "provider_updated_at", "fetched_at", "lines")


def standings(conn, season_id: str) -> dict | None:
    """One season's standings with team and competition names, in one statement; None when no
    table of that season is stored."""
    with conn.cursor() as cur:
        cur.execute(_STANDINGS + " WHERE s.season_id = %s", (season_id,))
        row = cur.fetchone()
    return dict(zip(_STANDINGS_NAMES, row)) if row is not None else None


_COMPETITION_STANDINGS = _STANDINGS + """
WHERE s.season_id = (
    SELECT s2.season_id FROM standings s2 LEFT JOIN seasons se ON se.id = s2.season_id
    WHERE s2.competition_id = %s
    ORDER BY coalesce(se.is_current, false) DESC, s2.provider_updated_at DESC, s2.season_id DESC LIMIT 1)
"""


def competition_standings(conn, competition_id: str) -> dict | None:
    """The standings of the competition's current season (the one the reference sync marks
    current, else the one with the newest table), in one statement; None when there is none."""
    with conn.cursor() as cur:
        cur.execute(_COMPETITION_STANDINGS, (competition_id,))
        row = cur.fetchone()
    return dict(zip(_STANDINGS_NAMES, row)) if row is not None else None


_H2H = """
SELECT m.id, m.home_team_id, m.away_team_id, h.vs, h.home_recent, h.away_recent, h.home_next, h.away_next,
       h.goal_distribution, extract(epoch FROM h.fetched_at)::bigint
FROM matches m LEFT JOIN match_h2h h ON h.match_id = m.id
WHERE m.id = %s
"""
_H2H_NAMES = ("match_id", "home_team_id", "away_team_id", "vs", "home_recent", "away_recent", "home_next",
              "away_next", "goal_distribution", "fetched_at")
H2H_LISTS = ("vs", "home_recent", "away_recent", "home_next", "away_next")

_NAMES = """
SELECT 'team', id, name, logo FROM teams WHERE id = ANY(%(teams)s)
UNION ALL
SELECT 'competition', id, name, logo FROM competitions WHERE id = ANY(%(competitions)s)
"""


def h2h(conn, match_id: str) -> dict | None:
    """A match's head-to-head (None: no such match; lists empty and fetched_at None: not synced
    yet), with `names`: {("team"|"competition", id): (name, logo)} of every team and competition
    its rows mention. Two statements."""
    with conn.cursor() as cur:
        cur.execute(_H2H, (match_id,))
        row = cur.fetchone()
        if row is None:
            return None
        out = dict(zip(_H2H_NAMES, row))
        teams = {out["home_team_id"], out["away_team_id"]}
        competitions = set()
        for name in H2H_LISTS:
            out[name] = out[name] or []
            for r in out[name]:
                teams.update((r["home"]["team_id"], r["away"]["team_id"]))
                competitions.add(r["competition_id"])
        out["goal_distribution"] = out["goal_distribution"] or {}
        teams.discard(None)
        cur.execute(_NAMES, {"teams": sorted(teams), "competitions": sorted(competitions)})
        out["names"] = {(kind, i): (name, logo) for kind, i, name, logo in cur.fetchall()}
    return out
