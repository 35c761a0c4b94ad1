"""The team statistics tables' SQL (sql/0009_match_team_stats.sql): the live stats sync's upsert,
the completeness validator's candidates and writes. One module per table family.

Set-based (one statement for any number of rows, passed as one JSON array); functions take an
open connection and leave the transaction to the caller, in the caller's greenlet (a job's run
greenlet); a database error propagates as psycopg2's exception.
"""
from __future__ import annotations

from typing import Iterable

from goald.match.store import encode
from goald.provider.payloads_stats import HALVES

# data_completeness bits (matches.data_completeness): which halves' statistics are stored.
FIRST_HALF, SECOND_HALF, FULL_TIME = 1, 2, 4
COMPLETE = FIRST_HALF | SECOND_HALF | FULL_TIME
_BITS = {"p1": FIRST_HALF, "p2": SECOND_HALF, "ft": FULL_TIME}

_UPSERT_TEAM_STATS = """
WITH x AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS x(match_id text, team_id text, stats jsonb)),
known AS (SELECT x.* FROM x JOIN matches m ON m.id = x.match_id),
up AS (
    INSERT INTO match_team_stats AS s (match_id, team_id, stats)
    SELECT match_id, team_id, stats FROM known
    ON CONFLICT (match_id, team_id) DO UPDATE SET stats = s.stats || EXCLUDED.stats, updated_at = now()
    WHERE s.stats || EXCLUDED.stats IS DISTINCT FROM s.stats
    RETURNING s.match_id)
SELECT (SELECT coalesce(array_agg(DISTINCT match_id), '{}') FROM up),
       (SELECT count(DISTINCT match_id) FROM x WHERE match_id NOT IN (SELECT match_id FROM known))
"""


def upsert_team_stats(conn, items: Iterable) -> tuple[list[str], int]:
    """Each match's team statistics (`MatchTeamStats`), merged per team into what is stored:
    only the values sent are written, so a known value is never replaced by a missing one.
    Returns (the matches whose stored statistics changed, how many matches the database does not
    know: skipped)."""
    rows = [{"match_id": m.id, "team_id": t.team_id, "stats": t.known()} for m in items for t in m.stats]
    if not rows:
        return [], 0
    with conn.cursor() as cur:
        cur.execute(_UPSERT_TEAM_STATS, (encode(rows),))
        changed, unknown = cur.fetchone()
    return list(changed), unknown


def completeness_candidates(conn, now: float, *, since_s: float, retry_after_s: float, max_attempts: int,
                            limit: int) -> list[str]:
    """Ended matches (kicked off within `since_s`) whose half statistics are incomplete, not asked
    about within `retry_after_s` and asked fewer than `max_attempts` times; latest first."""
    with conn.cursor() as cur:
        cur.execute("""
            SELECT m.id FROM matches m LEFT JOIN match_stats_checks c ON c.match_id = m.id
            WHERE m.status_id = 8 AND m.data_completeness <> %s AND m.match_time >= %s
              AND (c.match_id IS NULL OR (c.checked_at < %s AND c.attempts < %s))
            ORDER BY m.match_time DESC, m.id LIMIT %s""",
                    (COMPLETE, int(now - since_s), int(now - retry_after_s), max_attempts, limit))
        return [r[0] for r in cur.fetchall()]


_WRITE_HALVES = """
WITH x AS (SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS x(match_id text, half text, type smallint,
                                                                   home integer, away integer)),
up AS (
    INSERT INTO match_half_stats AS h (match_id, half, type, home, away)
    SELECT match_id, half, type, home, away FROM x
    ON CONFLICT (match_id, half, type) DO UPDATE SET home = EXCLUDED.home, away = EXCLUDED.away
    WHERE (h.home, h.away) IS DISTINCT FROM (EXCLUDED.home, EXCLUDED.away)
    RETURNING 1),
checked AS (
    INSERT INTO match_stats_checks AS c (match_id, checked_at)
    SELECT unnest(%(ids)s::text[]), %(now)s
    ON CONFLICT (match_id) DO UPDATE SET checked_at = EXCLUDED.checked_at, attempts = c.attempts + 1
    RETURNING 1),
done AS (
    UPDATE matches m SET data_completeness = m.data_completeness | v.bits
    FROM jsonb_to_recordset(%(bits)s::jsonb) AS v(id text, bits smallint)
    WHERE m.id = v.id AND m.data_completeness IS DISTINCT FROM (m.data_completeness | v.bits)
    RETURNING m.id)
SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM done)
"""


def write_half_stats(conn, halves: dict, now: float) -> tuple[int, int]:
    """Each asked match's statistics per half (match id → `HalfTeamStats`, or None when the
    provider had none): the rows, its completeness bits (only ever added) and the check. Returns
    (statistics rows written, matches whose completeness changed)."""
    if not halves:
        return 0, 0
    rows, bits = [], []
    for mid, h in halves.items():
        got = 0
        for half in HALVES:
            values = getattr(h, half) if h is not None else {}
            for stat, (home, away) in values.items():
                rows.append({"match_id": mid, "half": half, "type": stat, "home": home, "away": away})
            if values:
                got |= _BITS.get(half, 0)
        bits.append({"id": mid, "bits": got})
    with conn.cursor() as cur:
        cur.execute(_WRITE_HALVES, {"rows": encode(rows), "ids": list(halves), "now": int(now),
                                    "bits": encode([b for b in bits if b["bits"]])})
        written, completed = cur.fetchone()
    return written, completed
