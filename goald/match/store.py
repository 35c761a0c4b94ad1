"""The match tables' SQL (sql/0006_matches.sql): every statement that writes or loads matches,
their incidents and statistics, and the reference tables. One module per table family.

Set-based: each function is one statement for any number of rows, the rows passed as one JSON
array (`jsonb_to_recordset`), so a tick of 2,000 matches is one round trip. Functions take an open
connection and leave the transaction to the caller (they never commit), in whatever greenlet the
caller runs (an ingest job's run greenlet, the match writer's flush greenlet). A database error
propagates as psycopg2's exception; none is raised by the guards below, which filter instead of
failing, so one stale row never fails the batch:
- `provider_update_time` only increases: a row whose stored time is newer is left alone and
  reported (the trigger would refuse it with GD002; the WHERE clause keeps it from getting there);
- a kick-off timestamp is written once: `COALESCE(stored, new)` (the trigger refuses a rewrite
  with GD001 from any other writer);
- a write that changes nothing is not made (IS DISTINCT FROM), so `updated_at` and the table's
  dead tuples do not grow with polling.
"""
from __future__ import annotations

from typing import Iterable

import msgspec

from goald.match.state import DATA_COLUMNS, KICKOFF_COLUMNS, LIVE_STATUSES, MINUTE_COLUMNS

_JSON = msgspec.json.Encoder()

_TYPES = {
    "id": "text", "season_id": "text", "competition_id": "text", "home_team_id": "text", "away_team_id": "text",
    "venue_id": "text", "referee_id": "text", "neutral": "boolean", "status_id": "smallint", "match_time": "bigint",
    "first_half_kickoff_ts": "bigint", "second_half_kickoff_ts": "bigint", "overtime_kickoff_ts": "bigint",
    "overtime_second_kickoff_ts": "bigint", "announced_added_minute": "smallint", "provider_update_time": "bigint",
    "last_event_ts": "bigint", "finished_after": "text", "period": "text", "minute": "smallint",
    "added_minute": "smallint", "minute_text": "text", "last_minute_update_ts": "bigint",
    "provider_status_id": "smallint", "status_changed_ts": "bigint", "ended_reason": "text",
    "stale_level": "smallint", "stale_reason": "text", "stale_since": "bigint",
}
for _side in ("home", "away"):
    for _part in ("regular", "half_time", "overtime", "penalties", "red_cards", "yellow_cards", "corners"):
        _TYPES[f"{_side}_{_part}"] = "smallint"

# What a match object (diary, recent list) says of a match not tracked by an actor: the provider's
# data, then goald's bookkeeping of it.
OBJECT_DATA = (
    "season_id", "competition_id", "home_team_id", "away_team_id", "venue_id", "referee_id", "neutral",
    "status_id", "match_time", *[f"{s}_{p}" for s in ("home", "away") for p in (
        "regular", "half_time", "overtime", "penalties", "red_cards", "yellow_cards", "corners")],
)
OBJECT_COLUMNS = OBJECT_DATA + ("provider_update_time", "provider_status_id", "status_changed_ts", "period",
                                "minute_text")
# The stored row as the provider last said it: after goald ended a stuck match itself, status_id is
# goald's 8 and provider_status_id what the provider said (NULL on rows older than sql/0008).
_SAID = ", ".join("coalesce(m.provider_status_id, m.status_id)" if c == "status_id" else f"m.{c}"
                  for c in OBJECT_DATA)
_GIVEN = ", ".join(f"{{t}}.{c}" for c in OBJECT_DATA)
_KEEP_WHEN_SAME_STATUS = ("period", "minute_text", "status_changed_ts")

INCIDENT_COLUMNS = ("type", "position", "time", "second", "add_time", "player_id", "player_name", "assist1_id",
                    "assist1_name", "assist2_id", "assist2_name", "home_score", "away_score", "in_player_id",
                    "in_player_name", "out_player_id", "out_player_name", "var_reason", "var_result", "reason_type")
_INCIDENT_TYPES = {c: ("text" if c.endswith(("_id", "_name")) else "integer") for c in INCIDENT_COLUMNS}

LOAD_COLUMNS = ("id",) + DATA_COLUMNS + MINUTE_COLUMNS


def _recordset(columns: Iterable[str], types: dict[str, str]) -> str:
    return ", ".join(f"{c} {types[c]}" for c in columns)


def encode(rows: list) -> str:
    """Rows (dicts) as the one JSON parameter of a statement."""
    return _JSON.encode(rows).decode()


# --- loading -------------------------------------------------------------------------------------

def load(conn, ids: list[str]) -> dict[str, dict]:
    """The rows of these matches (absent ids are absent), for actors starting or reloading."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(LOAD_COLUMNS)} FROM matches WHERE id = ANY(%s)", (list(ids),))
        return {r[0]: dict(zip(LOAD_COLUMNS, r)) for r in cur.fetchall()}


def tracked_ids(conn, day_start: int, day_end: int, live: Iterable[int]) -> list[str]:
    """The matches goald tracks with an actor: live ones, and those of [day_start, day_end) not final."""
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM matches WHERE status_id = ANY(%s) "
                    "OR (match_time >= %s AND match_time < %s AND status_id NOT IN (8, 11, 12)) ORDER BY id",
                    (list(live), day_start, day_end))
        return [r[0] for r in cur.fetchall()]


# --- match objects of untracked matches (ingest jobs) ----------------------------------------------

_UPSERT_OBJECTS = f"""
WITH v AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v(id text, {_recordset(OBJECT_COLUMNS, _TYPES)})),
older AS (
    SELECT v.id FROM v JOIN matches m ON m.id = v.id
    WHERE m.provider_update_time > v.provider_update_time AND ({_SAID}) IS DISTINCT FROM ({_GIVEN.format(t='v')})),
up AS (
    INSERT INTO matches AS m (id, {', '.join(OBJECT_COLUMNS)})
    SELECT id, {', '.join(OBJECT_COLUMNS)} FROM v
    ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in OBJECT_COLUMNS if c not in _KEEP_WHEN_SAME_STATUS)},
        {', '.join(f'{c} = CASE WHEN m.status_id = EXCLUDED.status_id THEN m.{c} ELSE EXCLUDED.{c} END' for c in _KEEP_WHEN_SAME_STATUS)},
        ended_reason = NULL
    WHERE (m.provider_update_time IS NULL OR EXCLUDED.provider_update_time >= m.provider_update_time)
      AND CASE WHEN m.ended_reason IS NULL
               THEN ({', '.join('m.' + c for c in OBJECT_DATA)}, m.provider_update_time) IS DISTINCT FROM
                    ({_GIVEN.format(t='EXCLUDED')}, EXCLUDED.provider_update_time)
               -- goald ended it (a stuck match): only something new from the provider undoes that
               ELSE EXCLUDED.provider_update_time > m.provider_update_time
                    AND ({_SAID}) IS DISTINCT FROM ({_GIVEN.format(t='EXCLUDED')}) END
    RETURNING m.id, (xmax = 0) AS inserted)
SELECT (SELECT coalesce(array_agg(id), '{{}}') FROM older),
       (SELECT count(*) FROM up WHERE inserted), (SELECT count(*) FROM up WHERE NOT inserted)
"""


def upsert_objects(conn, rows: list[dict]) -> tuple[int, int, list[str]]:
    """Insert or update matches from match objects (OBJECT_COLUMNS + id): (inserted, updated, the
    ids left alone because the stored provider_update_time is newer and says something else).
    A row that says nothing new is not written (the diary sync twice in a row changes nothing)."""
    if not rows:
        return 0, 0, []
    with conn.cursor() as cur:
        cur.execute(_UPSERT_OBJECTS, (encode(rows),))
        older, inserted, updated = cur.fetchone()
    return inserted, updated, list(older)


# --- the match actors' batched writes ---------------------------------------------------------------

# A provider message ingested for a match (its last_event_ts moves) ends a stale episode (levels 1-3
# of goald/match/safety.py); leaving half-time ends a freeze (level 4).
_FRESH = ("(m.stale_level BETWEEN 1 AND 3 AND v.last_event_ts > coalesce(m.last_event_ts, 0)) "
          "OR (m.stale_level = 4 AND {status} <> 3)")
_CLEAR_STALE = ", ".join(f"{c} = CASE WHEN {_FRESH} THEN {fresh} ELSE m.{c} END"
                         for c, fresh in (("stale_level", "0"), ("stale_reason", "NULL"), ("stale_since", "NULL")))
_ASSIGN = ", ".join(
    f"{c} = COALESCE(m.{c}, v.{c})" if c in KICKOFF_COLUMNS.values() else f"{c} = v.{c}"
    for c in DATA_COLUMNS + MINUTE_COLUMNS) + ", " + _CLEAR_STALE.format(status="v.status_id")
_WRITE = f"""
WITH v AS (SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(id text, {_recordset(DATA_COLUMNS + MINUTE_COLUMNS, _TYPES)})),
up AS (
    UPDATE matches m SET {_ASSIGN}
    FROM v WHERE m.id = v.id
      AND (m.provider_update_time IS NULL OR v.provider_update_time >= m.provider_update_time)
    RETURNING m.id),
inc AS (
    INSERT INTO match_incidents AS i (match_id, seq, {', '.join(INCIDENT_COLUMNS)})
    SELECT x.match_id, x.seq, {', '.join('x.' + c for c in INCIDENT_COLUMNS)}
    FROM jsonb_to_recordset(%(incidents)s::jsonb) AS x(match_id text, seq integer, {_recordset(INCIDENT_COLUMNS, _INCIDENT_TYPES)})
    WHERE x.match_id IN (SELECT id FROM up)
    ON CONFLICT (match_id, seq) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in INCIDENT_COLUMNS)}
    WHERE ({', '.join('i.' + c for c in INCIDENT_COLUMNS)}) IS DISTINCT FROM
          ({', '.join('EXCLUDED.' + c for c in INCIDENT_COLUMNS)})),
inc_gone AS (
    DELETE FROM match_incidents d USING jsonb_to_recordset(%(incident_counts)s::jsonb) AS n(match_id text, n integer)
    WHERE d.match_id = n.match_id AND d.seq >= n.n AND n.match_id IN (SELECT id FROM up)),
st AS (
    INSERT INTO match_stats AS s (match_id, type, home, away)
    SELECT x.match_id, x.type, x.home, x.away
    FROM jsonb_to_recordset(%(stats)s::jsonb) AS x(match_id text, type smallint, home integer, away integer)
    WHERE x.match_id IN (SELECT id FROM up)
    ON CONFLICT (match_id, type) DO UPDATE SET home = EXCLUDED.home, away = EXCLUDED.away
    WHERE (s.home, s.away) IS DISTINCT FROM (EXCLUDED.home, EXCLUDED.away))
SELECT id FROM up
"""

_WRITE_LIGHT = f"""
WITH v AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v(id text, {_recordset(MINUTE_COLUMNS + ('last_event_ts',), _TYPES)})),
flagged AS (SELECT m.id FROM matches m JOIN v ON v.id = m.id WHERE m.stale_level > 0),
up AS (
    UPDATE matches m SET {', '.join(f'{c} = v.{c}' for c in MINUTE_COLUMNS)},
        last_event_ts = GREATEST(m.last_event_ts, v.last_event_ts), {_CLEAR_STALE.format(status="m.status_id")}
    FROM v
    WHERE m.id = v.id
      AND (({', '.join('m.' + c for c in MINUTE_COLUMNS[:-1])}) IS DISTINCT FROM ({', '.join('v.' + c for c in MINUTE_COLUMNS[:-1])})
           OR m.last_event_ts IS DISTINCT FROM GREATEST(m.last_event_ts, v.last_event_ts))
    RETURNING m.id, m.stale_level)
SELECT count(*), count(*) FILTER (WHERE up.stale_level = 0 AND flagged.id IS NOT NULL)
FROM up LEFT JOIN flagged ON flagged.id = up.id
"""


def write(conn, rows: list[dict], incidents: dict[str, tuple] | None = None,
          stats: dict[str, tuple] | None = None) -> set[str]:
    """The match actors' state (`Held.snapshot()` rows), guarded by provider_update_time, with the
    incidents and statistics of those whose lists changed (id → the full list; incidents beyond
    the new list's length are deleted, a VAR-cancelled goal for one). Returns the ids written;
    the others' stored state is newer (or the row is gone): their actors reload."""
    if not rows:
        return set()
    inc_rows, inc_counts, stat_rows = [], [], []
    for mid, items in (incidents or {}).items():
        inc_counts.append({"match_id": mid, "n": len(items)})
        for seq, inc in enumerate(items):
            inc_rows.append({"match_id": mid, "seq": seq, **{c: _field(inc, c) for c in INCIDENT_COLUMNS}})
    for mid, items in (stats or {}).items():
        for st in items:
            stat_rows.append({"match_id": mid, "type": _field(st, "type"), "home": _field(st, "home"),
                              "away": _field(st, "away")})
    with conn.cursor() as cur:
        cur.execute(_WRITE, {"rows": encode(rows), "incidents": encode(inc_rows),
                             "incident_counts": encode(inc_counts), "stats": encode(stat_rows)})
        return {r[0] for r in cur.fetchall()}


def write_light(conn, rows: list[dict]) -> tuple[int, int]:
    """The minute engine's columns and the last_event_ts stamp (never backwards) of matches whose
    provider state did not change: unguarded, never touching a provider column; rows whose values
    are already stored are not written. A stamp that moves ends a stale episode (its flag is
    cleared). Returns (rows written, stale flags cleared)."""
    if not rows:
        return 0, 0
    with conn.cursor() as cur:
        cur.execute(_WRITE_LIGHT, (encode(rows),))
        written, cleared = cur.fetchone()
    return written, cleared


def _field(obj, name):
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    if name.endswith(("_id", "_name")) and value == "":
        return None
    return value


# --- match safety (actors/jobs/safety.py) -----------------------------------------------------------

SAFETY_COLUMNS = ("id", "status_id", "match_time", "first_half_kickoff_ts", "second_half_kickoff_ts",
                  "overtime_kickoff_ts", "status_changed_ts", "last_minute_update_ts", "last_event_ts",
                  "provider_update_time", "stale_level", "stale_reason", "stale_since", "minute_text")


def safety_rows(conn, live: Iterable[int]) -> list[dict]:
    """The rows the watchdog and the stuck-match check judge: every live match, and every match
    still flagged stale (to clear it)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(SAFETY_COLUMNS)} FROM matches WHERE status_id = ANY(%s) OR stale_level > 0 "
                    "ORDER BY id", (list(live),))
        return [dict(zip(SAFETY_COLUMNS, r)) for r in cur.fetchall()]


def stale_counts(conn) -> dict[int, int]:
    """`{stale_level: n}` of the live matches flagged stale (the partial index on live matches:
    cheap enough for every metrics scrape)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT stale_level, count(*) FROM matches WHERE status_id IN "
                    f"({', '.join(str(s) for s in sorted(LIVE_STATUSES))}) AND stale_level > 0 GROUP BY 1")
        return {int(level): int(n) for level, n in cur.fetchall()}


_SET_STALE = """
UPDATE matches m SET stale_level = v.stale_level, stale_reason = v.stale_reason,
    stale_since = CASE WHEN v.stale_level = 0 THEN NULL
                       WHEN m.stale_level = 0 OR (m.stale_level = 4) <> (v.stale_level = 4) THEN v.stale_since
                       ELSE m.stale_since END
FROM jsonb_to_recordset(%s::jsonb) AS v(id text, stale_level smallint, stale_reason text, stale_since bigint,
                                        seen_event_ts bigint, seen_level smallint)
WHERE m.id = v.id AND m.last_event_ts IS NOT DISTINCT FROM v.seen_event_ts AND m.stale_level = v.seen_level
RETURNING m.id
"""


def set_stale(conn, rows: list[dict]) -> set[str]:
    """The watchdog's ladder steps (id, stale_level, stale_reason, stale_since), each written only
    if the match is as the watchdog read it (`seen_event_ts`, `seen_level`): a provider message
    ingested meanwhile wins (the writer has cleared the flag). Returns the ids written."""
    if not rows:
        return set()
    with conn.cursor() as cur:
        cur.execute(_SET_STALE, (encode(rows),))
        return {r[0] for r in cur.fetchall()}


# --- reference data -------------------------------------------------------------------------------

_REFERENCE = {
    "competitions": ("name", "short_name", "logo", "country_id", "category_id", "type", "provider_updated_at"),
    "teams": ("competition_id", "country_id", "name", "short_name", "logo", "national", "country_logo",
              "provider_updated_at"),
    "seasons": ("competition_id", "year", "is_current", "provider_updated_at"),
}
_REFERENCE_TYPES = {"name": "text", "short_name": "text", "logo": "text", "country_id": "text",
                    "category_id": "text", "type": "smallint", "provider_updated_at": "bigint",
                    "competition_id": "text", "national": "boolean", "country_logo": "text", "year": "text",
                    "is_current": "boolean"}


def upsert_reference(conn, table: str, rows: list[dict]) -> tuple[int, int]:
    """Competitions, teams or seasons (id + that table's columns; a missing key keeps the stored
    value, so a diary's short team record never blanks a full one): (inserted, updated). A row with
    an older provider_updated_at than the stored one, or that changes nothing, is not written."""
    if not rows:
        return 0, 0
    cols = _REFERENCE[table]
    given = {c: any(c in r for r in rows) for c in cols}
    assign = ", ".join(
        f"{c} = COALESCE(EXCLUDED.{c}, t.{c})" for c in cols if given[c]) + ", updated_at = now()"
    changed = " OR ".join(f"(EXCLUDED.{c} IS NOT NULL AND EXCLUDED.{c} IS DISTINCT FROM t.{c})" for c in cols if given[c])
    defaults = {"name": "''", "year": "''", "national": "false"}
    select = ", ".join(f"coalesce(v.{c}, {defaults[c]})" if c in defaults else f"v.{c}" for c in cols)
    sql = f"""
    WITH v AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v(id text, {_recordset(cols, _REFERENCE_TYPES)}))
    INSERT INTO {table} AS t (id, {', '.join(cols)}) SELECT v.id, {select} FROM v
    ON CONFLICT (id) DO UPDATE SET {assign}
    WHERE (t.provider_updated_at IS NULL OR EXCLUDED.provider_updated_at IS NULL
           OR EXCLUDED.provider_updated_at >= t.provider_updated_at) AND ({changed})
    RETURNING (xmax = 0)
    """
    with conn.cursor() as cur:
        cur.execute(sql, (encode(rows),))
        flags = [r[0] for r in cur.fetchall()]
    return sum(flags), len(flags) - sum(flags)


# --- ingest cursors -------------------------------------------------------------------------------

def cursor_get(conn, name: str) -> int | None:
    with conn.cursor() as cur:
        cur.execute("SELECT value FROM ingest_cursors WHERE name = %s", (name,))
        row = cur.fetchone()
    return None if row is None else row[0]


def cursor_set(conn, name: str, value: int) -> None:
    """Move a cursor forward (never back: two nodes racing keep the larger)."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO ingest_cursors (name, value) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
                    "SET value = GREATEST(ingest_cursors.value, EXCLUDED.value), updated_at = now()", (name, value))
