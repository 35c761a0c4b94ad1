"""AI predictions (sql/0015): their import, the page GET /api/predictions reads, and demo data.
The matcher is goald/business/predictions_match.py, the results predictions_results.py.

- `import_predictions(conn, rows)`: one INSERT for any number of rows, idempotent on the AI's
  `external_id` (a row imported twice is one row; the second is ignored, never updated).
- `page(conn, filters, limit, cursor)`: newest first (predicted_at DESC, id DESC), keyset
  paginated (the cursor is the last row's `<predicted_at µs>.<id>`), with the matched match's
  teams and competition; one query.
- `seed_demo(cur, seed, today)`: predictions made from the matches in the database (none: none).

Everything runs in the caller's greenlet on the caller's connection; `import_predictions`
commits, the others leave the transaction to the caller.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import psycopg2.extras

from goald.business.predictions_results import MARKETS

STATUSES = ("pending", "won", "lost", "void")
_COLUMNS = ("external_id", "home_team_name", "away_team_name", "league_name", "predicted_at",
            "minute_at_prediction", "home_score_at", "away_score_at", "market", "confidence")


def import_predictions(conn, rows: list[dict]) -> int:
    """Insert predictions (dicts with _COLUMNS' keys; league_name, minute, scores and confidence
    optional); returns how many were new."""
    if not rows:
        return 0
    values = [(r["external_id"], r["home_team_name"], r["away_team_name"], r.get("league_name", ""),
               r["predicted_at"], r.get("minute_at_prediction", 0), r.get("home_score_at", 0),
               r.get("away_score_at", 0), r["market"], r.get("confidence")) for r in rows]
    with conn.cursor() as cur:
        inserted = psycopg2.extras.execute_values(
            cur, f"INSERT INTO ai_predictions ({', '.join(_COLUMNS)}) VALUES %s "
                 "ON CONFLICT (external_id) DO NOTHING RETURNING id", values, page_size=len(values), fetch=True)
    conn.commit()
    return len(inserted)


@dataclass(frozen=True)
class Filters:
    """GET /api/predictions' filters, checked by the caller (console/predictions_api.py)."""
    day: date | None = None             # UTC day of predicted_at
    competition: str | None = None      # the matched match's competition
    match: str | None = None
    status: str | None = None           # one of STATUSES
    matched: bool | None = None


_SELECT = """
SELECT p.id, p.external_id, p.home_team_name, p.away_team_name, p.league_name, p.predicted_at,
       p.minute_at_prediction, p.home_score_at, p.away_score_at, p.market, p.confidence, p.status, p.settled_at,
       p.result_note, p.match_id, p.match_confidence, p.unmatched_reason, p.matched_at,
       m.match_time, m.status_id, m.competition_id, c.name AS competition_name, c.logo AS competition_logo,
       m.home_team_id, th.name AS home_name, th.logo AS home_logo,
       m.away_team_id, ta.name AS away_name, ta.logo AS away_logo
FROM ai_predictions p
LEFT JOIN matches m ON m.id = p.match_id
LEFT JOIN competitions c ON c.id = m.competition_id
LEFT JOIN teams th ON th.id = m.home_team_id
LEFT JOIN teams ta ON ta.id = m.away_team_id
"""


def page(conn, filters: Filters, limit: int, cursor: tuple[datetime, int] | None = None) -> tuple[list[dict], tuple | None]:
    """(rows, next cursor or None): at most `limit` rows after `cursor`, newest first."""
    where, args = [], {"limit": limit + 1}
    if filters.day is not None:
        start = datetime(filters.day.year, filters.day.month, filters.day.day, tzinfo=timezone.utc)
        where.append("p.predicted_at >= %(day)s AND p.predicted_at < %(day)s + interval '1 day'")
        args["day"] = start
    if filters.competition is not None:
        where.append("m.competition_id = %(competition)s")
        args["competition"] = filters.competition
    if filters.match is not None:
        where.append("p.match_id = %(match)s")
        args["match"] = filters.match
    if filters.status is not None:
        where.append("p.status = %(status)s")
        args["status"] = filters.status
    if filters.matched is not None:
        where.append("p.match_id IS NOT NULL" if filters.matched else "p.match_id IS NULL")
    if cursor is not None:
        where.append("(p.predicted_at, p.id) < (%(after_at)s, %(after_id)s)")
        args["after_at"], args["after_id"] = cursor
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + \
        " ORDER BY p.predicted_at DESC, p.id DESC LIMIT %(limit)s"
    with conn.cursor() as cur:          # the connection's own cursor (a pool's counts its queries)
        cur.execute(sql, args)
        names = [d.name for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1]["predicted_at"], rows[-1]["id"]) if more else None)


def cursor_text(cursor: tuple[datetime, int]) -> str:
    at, pid = cursor
    delta = at.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return f"{delta // timedelta(microseconds=1)}.{pid}"


def parse_cursor(text: str) -> tuple[datetime, int]:
    """The inverse of cursor_text; ValueError for anything else."""
    us, _, pid = text.partition(".")
    if not (us.isdigit() and pid.isdigit() and len(us) <= 16 and len(pid) <= 18):
        raise ValueError(text)
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(us)), int(pid)


# --- demo data ----------------------------------------------------------------------------------

DEMO_MAX = 20_000       # predictions seed_demo makes at most (one per match, nearest to today first)
_DEMO_MARKETS = "ARRAY[" + ", ".join(f"'{m}'" for m in MARKETS) + "]"

# One prediction per match (nearest kick-off to today first), its names varied by a hash of the
# match id: as stored, "FC " + name, name + " FC", upper case, the first word only (ambiguous
# where several alike matches share the window), accents added where a vowel allows it
# ("Munchen" → "München", folded back by the matcher), and one in ten of a team nobody knows
# (never matched). Matches not started get a pre-match prediction half an hour before kick-off.
_DEMO = f"""
INSERT INTO ai_predictions (external_id, home_team_name, away_team_name, league_name, predicted_at,
                            minute_at_prediction, home_score_at, away_score_at, market, confidence)
SELECT 'demo-' || %(seed)s || '-' || m.id,
       CASE v.k WHEN 0 THEN th.name WHEN 1 THEN 'FC ' || th.name WHEN 2 THEN th.name || ' FC'
                WHEN 3 THEN upper(th.name) WHEN 4 THEN split_part(th.name, ' ', 1)
                WHEN 5 THEN translate(th.name, 'aeou', 'áéöü') ELSE 'Unknown Rovers ' || v.h %% 97 END,
       CASE v.k WHEN 1 THEN 'FC ' || ta.name WHEN 3 THEN upper(ta.name) WHEN 4 THEN split_part(ta.name, ' ', 1)
                WHEN 5 THEN translate(ta.name, 'aeou', 'áéöü') ELSE ta.name END,
       coalesce(c.name, ''),
       least(now(), to_timestamp(m.match_time + CASE WHEN m.status_id = 1 THEN -1800   -- before kick-off: pre-match
                                                     ELSE v.minute * 60 + CASE WHEN v.minute > 45 THEN 900 ELSE 0 END END)),
       v.minute, least(m.home_regular, v.h %% 2), least(m.away_regular, (v.h / 2) %% 2),
       ({_DEMO_MARKETS})[1 + v.h %% {len(MARKETS)}], round((0.5 + (v.h %% 46) / 100.0)::numeric, 2)
FROM (SELECT m.* FROM matches m
      ORDER BY abs(m.match_time - extract(epoch FROM %(today)s::date)::bigint), m.id LIMIT {DEMO_MAX}) m
JOIN teams th ON th.id = m.home_team_id
JOIN teams ta ON ta.id = m.away_team_id
LEFT JOIN competitions c ON c.id = m.competition_id
CROSS JOIN LATERAL (SELECT h, CASE WHEN h %% 10 = 0 THEN 6 ELSE h %% 6 END AS k,
                           CASE WHEN m.status_id = 1 THEN 0
                                WHEN m.status_id IN (8, 11, 12) THEN (h / 7) %% 86
                                ELSE least((h / 7) %% 86, coalesce(m.minute, 0)) END AS minute   -- live: not ahead of it
                    FROM (SELECT (hashtext(%(seed)s || m.id) %% 100000 + 100000) %% 100000 AS h) x) v
ON CONFLICT (external_id) DO NOTHING
"""


def seed_demo(cur, seed: int, today: date) -> int:
    """Make demo predictions from the matches present (at most DEMO_MAX); returns how many."""
    cur.execute(_DEMO, {"seed": str(seed), "today": today})
    return cur.rowcount
