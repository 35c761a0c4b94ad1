"""The public standings and head-to-head endpoints: `GET /api/standings/<season_id>`,
`GET /api/standings/competition/<competition_id>` (its current season) and
`GET /api/matches/<id>/h2h`. Database only (goald/match/tables_store.py), never the provider; the
data comes from the standings and h2h syncs (actors/jobs/tables.py).

**Cached** through goald's cache (goald/cache/: Redis or memory, single flight per key, kinds
`standings` and `h2h` with their switches and TTLs; the syncs invalidate what they change). The
cache holds the encoded body; every answer says whether it came from the cache (`fromCache`, the
last field, written as `false` in the stored body and turned to `true` on the way out) and carries
the same weak ETag for both (the data are the same). `If-None-Match` → 304; a client that accepts
gzip gets the body compressed once per body and node, not per request: the ETag and the four
variants of a body (fromCache false / true, plain / gzip) are made once (`_Answers`).

Handlers run in the request's greenlet (gevent.pywsgi), as direct routes of the ConsoleApp
(console/app.py; Bottle serves their HEAD). Bad parameters → 400, unknown season or match → 404,
the database or a cache wait unavailable → 503, all in the envelope; anything else is the app's
logged 500. The shapes are the msgspec Structs below (the OpenAPI document is generated from them).
"""
from __future__ import annotations

import gzip
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable

import msgspec

from goald.cache.cache import Cache, CacheBuildAborted, CacheWaitTimeout
from goald.console import envelope
from goald.console.envelope import Reply
from goald.console.matches_api import (GZIP_LEVEL, GZIP_MIN_BYTES, Named, _accepts_gzip, _matches_etag, etag_of,
                                       read_with)
from goald.db.pool import DatabaseUnavailable, Pool, PoolTimeout
from goald.match import tables_store
from goald.match.state import STATUS_NAMES

if TYPE_CHECKING:
    from goald.console.app import ConsoleApp

ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_AGE_S = {"standings": 15, "h2h": 300}     # what browsers and proxies may keep (Cache-Control)
FALSE_TAIL, TRUE_TAIL = b'"fromCache":false}', b'"fromCache":true}'


# --- standings --------------------------------------------------------------------------------------

class PromotionOut(msgspec.Struct):
    id: str
    name: str
    color: str


class Split(msgspec.Struct):
    """A team's line counted over its home (or away) matches only."""
    position: int
    points: int
    played: int
    won: int
    drawn: int
    lost: int
    goals_for: int
    goals_against: int
    goal_diff: int


class StandingLine(msgspec.Struct):
    position: int
    team: Named
    points: int
    played: int
    won: int
    drawn: int
    lost: int
    goals_for: int
    goals_against: int
    goal_diff: int
    deduct_points: int
    promotion: PromotionOut | None      # the zone this position is in (promotion, relegation, ...)
    note: str
    home: Split
    away: Split


class StandingTableOut(msgspec.Struct):
    id: str
    stage_id: str
    group: int                          # 0: not a group; 1 = A, 2 = B, ...
    group_name: str | None              # "A", "B", ... (None when not a group)
    conference: str
    rows: list[StandingLine]


class StandingsOut(msgspec.Struct):
    ok: bool
    season_id: str
    competition: Named
    source: str                         # live: counts the live matches' scores (table/live); season
    provider_updated_at: int            # the provider's time of the table, Unix seconds
    fetched_at: int                     # when goald last fetched it, Unix seconds
    promotions: list[PromotionOut]
    tables: list[StandingTableOut]
    fromCache: bool = False             # the last field (see the module docstring)


def standings_out(r: dict) -> StandingsOut:
    promotions = [PromotionOut(p["id"], p["name"], p.get("color", "")) for p in r["promotions"]]
    by_id = {p.id: p for p in promotions}
    tables: dict[str, StandingTableOut] = {}
    for ln in r["lines"]:
        t = tables.get(ln["table_id"])
        if t is None:
            g = ln["group_num"]
            t = tables[ln["table_id"]] = StandingTableOut(ln["table_id"], ln["stage_id"], g,
                                                          _group_name(g), ln["conference"], [])
        t.rows.append(StandingLine(
            ln["position"], Named(ln["team_id"], ln["team_name"], ln["team_logo"]), ln["points"], ln["played"],
            ln["won"], ln["drawn"], ln["lost"], ln["goals_for"], ln["goals_against"], ln["goal_diff"],
            ln["deduct_points"], by_id.get(ln["promotion_id"]), ln["note"], Split(**ln["home"]), Split(**ln["away"])))
    return StandingsOut(True, r["season_id"], Named(r["competition_id"], r["competition_name"], r["competition_logo"]),
                        r["source"], r["provider_updated_at"], r["fetched_at"], promotions, list(tables.values()))


def _group_name(g: int) -> str | None:
    return chr(ord("A") + g - 1) if 1 <= g <= 26 else (str(g) if g else None)


# --- head-to-head ---------------------------------------------------------------------------------

class H2HSide(msgspec.Struct):
    team: Named
    position: str                       # league position at the time, as the provider gives it ("" unknown)
    display: int                        # what a scoreboard shows: overtime score once there is one, else regular
    goals: int
    half_time_goals: int
    red_cards: int
    yellow_cards: int
    corners: int | None                 # None: no corner data
    overtime_goals: int
    penalty_goals: int


class H2HMatch(msgspec.Struct):
    match_id: str
    competition: Named
    season_id: str
    round: int
    status_id: int
    status: str
    match_time: int                     # kick-off, Unix seconds UTC
    neutral: bool
    home: H2HSide
    away: H2HSide


class H2HOut(msgspec.Struct):
    ok: bool
    match_id: str
    available: bool                     # False: the h2h sync has not fetched this match yet
    fetched_at: int | None
    home_team: Named
    away_team: Named
    vs: list[H2HMatch]                  # earlier meetings of the two teams
    home_recent: list[H2HMatch]
    away_recent: list[H2HMatch]
    home_next: list[H2HMatch]
    away_next: list[H2HMatch]
    goal_distribution: dict[str, Any]   # the provider's goal distribution by time slice (match/analysis)
    fromCache: bool = False             # the last field (see the module docstring)


def h2h_out(r: dict) -> H2HOut:
    names = r["names"]

    def named(kind: str, i: str | None) -> Named:
        name, logo = names.get((kind, i), (None, None))
        return Named(i, name, logo)

    def side(s: dict) -> H2HSide:
        display = s["overtime_goals"] if s["overtime_goals"] > 0 else s["goals"]
        return H2HSide(named("team", s["team_id"]), s["position"], display, s["goals"], s["half_time_goals"],
                       s["red_cards"], s["yellow_cards"], s["corners"], s["overtime_goals"], s["penalty_goals"])

    def match(m: dict) -> H2HMatch:
        return H2HMatch(m["match_id"], named("competition", m["competition_id"]), m["season_id"], m["round"],
                        m["status_id"], STATUS_NAMES.get(m["status_id"], "unknown"), m["match_time"], m["neutral"],
                        side(m["home"]), side(m["away"]))

    lists = {name: [match(m) for m in r[name]] for name in tables_store.H2H_LISTS}
    return H2HOut(True, r["match_id"], r["fetched_at"] is not None, r["fetched_at"],
                  named("team", r["home_team_id"]), named("team", r["away_team_id"]),
                  goal_distribution=r["goal_distribution"], **lists)


# --- serving --------------------------------------------------------------------------------------

_ENCODER = msgspec.json.Encoder()


class _Variants:
    """One stored body's four answers (fromCache false / true, plain / gzip) and its ETag, each
    made once: a hit costs a dictionary lookup and a comparison of the body, no hash, no copy."""

    __slots__ = ("stored", "etag", "_plain", "_gzip")

    def __init__(self, stored: bytes) -> None:
        self.stored = stored
        self.etag = "W/" + etag_of(stored)
        self._plain = {False: stored, True: stored[:-len(FALSE_TAIL)] + TRUE_TAIL}
        self._gzip: dict[bool, bytes] = {}

    def plain(self, from_cache: bool) -> bytes:
        return self._plain[from_cache]

    def gzipped(self, from_cache: bool) -> tuple[bytes, bool]:
        """(the compressed body, whether this call compressed it)."""
        z = self._gzip.get(from_cache)
        if z is not None:
            return z, False
        z = self._gzip[from_cache] = gzip.compress(self._plain[from_cache], GZIP_LEVEL, mtime=0)
        return z, True


class _Answers:
    """Each cache key's answer variants (`_Variants`), for the body the cache holds now, bounded
    (least recently used first out). A body that changed (a rebuild, another node's write to
    Redis) is recognised by comparing bytes (a memcmp of a few KB), so its variants are remade;
    the cache stays the one source of what is current."""

    MAX = 2_000

    def __init__(self) -> None:
        self._by_key: OrderedDict[tuple[str, str], _Variants] = OrderedDict()
        self.prepared = 0                # bodies whose variants were made
        self.compressed = 0              # gzip compressions (at most two per body)

    def get(self, kind: str, scope: str, stored: bytes) -> _Variants:
        key = (kind, scope)
        v = self._by_key.get(key)
        if v is not None and (v.stored is stored or v.stored == stored):
            self._by_key.move_to_end(key)
            return v
        v = self._by_key[key] = _Variants(stored)
        self._by_key.move_to_end(key)
        self.prepared += 1
        if len(self._by_key) > self.MAX:
            self._by_key.popitem(last=False)
        return v

    def gzipped(self, v: _Variants, from_cache: bool) -> bytes:
        z, made = v.gzipped(from_cache)
        self.compressed += made
        return z


class _NotFound(Exception):
    pass


def serve_cached(environ: dict, cache: Cache, answers: _Answers, kind: str, scope: str, build: Callable[[], bytes],
                 max_age_s: float, params: dict | None = None) -> Reply:
    """One cached answer: the body of (kind, scope, params) from `cache` (built by `build` on a
    miss), with its ETag (304 on If-None-Match), `fromCache`, and gzip when the client takes it.
    The database or a cache wait unavailable → 503, `_NotFound` from the build → 404."""
    try:
        got = cache.get_or_build(kind, scope, params or {}, build)
    except (PoolTimeout, DatabaseUnavailable) as e:
        return envelope.error_reply("database_unavailable", str(e), 503)
    except (CacheWaitTimeout, CacheBuildAborted) as e:
        return envelope.error_reply("busy", str(e), 503)
    except _NotFound as e:
        return envelope.error_reply("not_found", str(e), 404)
    v = answers.get(kind, got.key, got.body)
    headers = [("ETag", v.etag), ("Cache-Control", f"public, max-age={max_age_s:g}"),
               ("Vary", "Accept-Encoding"), ("Content-Type", "application/json"),
               ("X-Cache", "HIT" if got.from_cache else "MISS")]
    if _matches_etag(environ.get("HTTP_IF_NONE_MATCH"), v.etag[2:]):
        return Reply(304, b"", headers)
    body = v.plain(got.from_cache)
    if len(body) >= GZIP_MIN_BYTES and _accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING")):
        return Reply(200, answers.gzipped(v, got.from_cache), headers + [("Content-Encoding", "gzip")])
    return Reply(200, body, headers)


def install(app: "ConsoleApp", pool: Pool, cache: Cache) -> _Answers:
    """Route the three endpoints as direct routes of `app` (console/app.py ConsoleApp)."""
    answers = _Answers()

    def serve(environ: dict, kind: str, scope: str, build: Callable[[], bytes]) -> Reply:
        return serve_cached(environ, cache, answers, kind, scope, build, MAX_AGE_S[kind])

    def route(kind: str, what: str, scope_prefix: str, fetch, encode) -> Callable[[dict, str], Reply]:
        """The handler of one endpoint: `fetch(conn, id)` (None: 404), `encode(row)` its answer."""
        def handler(environ: dict, ident: str) -> Reply:
            if not ID_PATTERN.fullmatch(ident):
                return envelope.error_reply("bad_request", f"a {what} id is 1-64 characters of A-Z a-z 0-9 . _ -",
                                            400, parameter="id")

            def build() -> bytes:
                r = read_with(pool, fetch, ident)
                if r is None:
                    raise _NotFound(f"no {'match' if kind == 'h2h' else 'standings for ' + what} {ident}")
                return _ENCODER.encode(encode(r))
            return serve(environ, kind, scope_prefix + ident, build)
        return handler

    season = route("standings", "season", "", lambda conn, i: tables_store.standings(conn, i), standings_out)
    competition = route("standings", "competition", "competition-",
                        lambda conn, i: tables_store.competition_standings(conn, i), standings_out)
    h2h = route("h2h", "match", "", lambda conn, i: tables_store.h2h(conn, i), h2h_out)

    app.direct_under("/api/standings/competition/", competition)
    app.direct_under("/api/standings/", season)
    app.direct_under("/api/matches/", h2h, suffix="/h2h")
    return answers
