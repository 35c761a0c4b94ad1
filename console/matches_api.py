"""The public match endpoints: `GET /api/matches/live`, `/api/matches/diary?date=YYYY-MM-DD` and
`/api/matches/<id>`. Database only (goald/match/read.py), never the provider; clients never compute
anything (minute, text, display score and status vocabulary are all in the answer).

**Shared bodies.** A response body is built once per change of the match data and shared by every
request until the next change: `SharedBodies` keeps, per route and parameters, the encoded body,
its ETag and the `Changes.version` it was built at (goald/match/changes.py; every writer of this
process bumps it). A body is rebuilt when the version moved (at most every MIN_AGE_S) or after
`max_age_s` (writes of other nodes, and the not-started matches whose kick-off time passes, move
no version here). One request rebuilds it (single flight), so a thousand clients cost one query;
the others meanwhile get the body it replaces (or, when there is none yet, wait for the build). `If-None-Match` with the current ETag answers 304 without a body. A client that accepts
gzip gets the body compressed once per version, not per request (its own ETag; `Vary:
Accept-Encoding`).

Handlers run in the request's greenlet (gevent.pywsgi), as direct routes of the ConsoleApp for GET
(console/app.py) and as Bottle routes for HEAD; an unexpected error is the app's (a logged 500 in
the envelope, never a traceback); bad parameters are a 400 in the envelope.
The answer's shapes are the msgspec Structs below (the OpenAPI document of the public API is to be
generated from them).
"""
from __future__ import annotations

import gzip
import hashlib
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

import gevent.event
import msgspec

from goald.console import envelope
from goald.console.envelope import Reply
from goald.db.pool import DatabaseUnavailable, Pool, PoolTimeout
from goald.match import read
from goald.match.changes import Changes
from goald.match.state import STATUS_NAMES, short_status

if TYPE_CHECKING:
    from goald.console.app import ConsoleApp

MAX_ID_LENGTH = 64
BUILD_WAIT_S = 10.0
MIN_AGE_S = 0.2   # at most five rebuilds a second per body, however often the data change
STALE_LIMIT_S = 5.0   # while rebuilding, the previous body is served if it is younger than this
GZIP_LEVEL = 2    # 2,000 live matches (2.5 MB): 304 KB in 9 ms; level 1 is 7 % larger and no faster, 6 twice as slow
GZIP_MIN_BYTES = 1024


class Named(msgspec.Struct, omit_defaults=False):
    id: str | None
    name: str | None
    logo: str | None


class Side(msgspec.Struct):
    display: int            # what a scoreboard shows: overtime score once there is one, else regular
    regular: int
    half_time: int
    overtime: int
    penalties: int          # the shoot-out, never added to goals
    red_cards: int
    yellow_cards: int
    corners: int | None     # None: the provider has no corner data for this match


class Kickoffs(msgspec.Struct):
    first_half: int | None
    second_half: int | None
    extra_time: int | None
    extra_time_second_half: int | None


class MatchOut(msgspec.Struct):
    id: str
    competition: Named
    season_id: str | None
    home_team: Named
    away_team: Named
    match_time: int                 # scheduled kick-off, Unix seconds UTC
    status_id: int
    status: str                     # readable: "first half", "ended", ...
    short_status: str               # NS 1H HT 2H ET BT P FT AET PEN PST INT ABD CANC
    period: str
    minute: int | None
    added_minute: int | None        # the N of 45+N'
    announced_added_minute: int | None
    minute_text: str
    home: Side
    away: Side
    kickoffs: Kickoffs
    finished_after: str | None      # regular | extra_time | penalties
    ended_reason: str | None
    stale_reason: str | None        # set while the data is delayed
    provider_update_time: int | None
    updated_at: str


class Incident(msgspec.Struct):
    seq: int
    type: int
    position: int | None
    time: int | None
    add_time: int | None
    player_id: str | None
    player_name: str | None
    home_score: int | None
    away_score: int | None


class Stat(msgspec.Struct):
    type: int
    home: int
    away: int


class TeamStats(msgspec.Struct):
    team_id: str
    side: str                       # home | away (| other: a team id that is neither)
    stats: dict[str, int]           # the provider's named statistics that are known (live stats sync)


class MatchDetail(MatchOut):
    incidents: list[Incident] = []
    stats: list[Stat] = []
    team_stats: list[TeamStats] = []
    # Per half (p1, p2, o1, o2, ft): statistic id (STATUS_CODE.md "Half-time Statistics") and values.
    half_stats: dict[str, list[Stat]] = {}
    data_completeness: int = 0      # bits: 1 first half, 2 second half, 4 full time statistics stored


class MatchList(msgspec.Struct):
    ok: bool
    count: int
    matches: list[MatchOut]


class DiaryList(MatchList):
    date: str = ""


class OneMatch(msgspec.Struct):
    ok: bool
    match: MatchDetail


_ENCODER = msgspec.json.Encoder()


def match_out(r: dict, cls=MatchOut, **extra) -> MatchOut:
    def side(s: str) -> Side:
        return Side(r[f"{s}_display"], r[f"{s}_regular"], r[f"{s}_half_time"], r[f"{s}_overtime"],
                    r[f"{s}_penalties"], r[f"{s}_red_cards"], r[f"{s}_yellow_cards"], r[f"{s}_corners"])
    return cls(
        id=r["id"], competition=Named(r["competition_id"], r["competition_name"], r["competition_logo"]),
        season_id=r["season_id"], home_team=Named(r["home_team_id"], r["home_name"], r["home_logo"]),
        away_team=Named(r["away_team_id"], r["away_name"], r["away_logo"]), match_time=r["match_time"],
        status_id=r["status_id"], status=STATUS_NAMES.get(r["status_id"], "unknown"),
        short_status=short_status(r["period"], r["finished_after"]), period=r["period"], minute=r["minute"],
        added_minute=r["added_minute"], announced_added_minute=r["announced_added_minute"],
        minute_text=r["minute_text"], home=side("home"), away=side("away"),
        kickoffs=Kickoffs(r["first_half_kickoff_ts"], r["second_half_kickoff_ts"], r["overtime_kickoff_ts"],
                          r["overtime_second_kickoff_ts"]),
        finished_after=r["finished_after"], ended_reason=r["ended_reason"], stale_reason=r["stale_reason"],
        provider_update_time=r["provider_update_time"],
        updated_at=r["updated_at"].astimezone(timezone.utc).isoformat(timespec="milliseconds"), **extra)


@dataclass
class _Body:
    version: int
    built_at: float
    body: bytes
    etag: str
    _gzipped: bytes | None = None

    def gzipped(self) -> bytes:
        """The body gzip-compressed, once (by the build: SharedBodies.get)."""
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, GZIP_LEVEL, mtime=0)
        return self._gzipped

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'   # a strong ETag differs per content encoding


class SharedBodies:
    """Encoded bodies per key, rebuilt once per data version (or after max_age_s), single flight.

    While a body is being rebuilt, requests for it are answered with the body it replaces, as
    long as that one is younger than `stale_limit_s` (a rebuild takes a query and ~15 ms of
    encoding and compression: 100 clients must not all wait on it every time the data move).
    Only a request with no body to fall back on (the first, or after a rebuild hung past the
    limit) waits for the one build."""

    def __init__(self, changes: Changes, max_age_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 min_age_s: float = MIN_AGE_S, stale_limit_s: float = STALE_LIMIT_S):
        """A body is rebuilt when the data's version moved (but not within `min_age_s` of its
        last build: 2,000 live matches change every tick), and at the latest after `max_age_s`."""
        self.changes, self.max_age_s, self.clock, self.min_age_s = changes, max_age_s, clock, min_age_s
        self.stale_limit_s = stale_limit_s
        self._bodies: dict[tuple, _Body] = {}
        self._building: dict[tuple, gevent.event.AsyncResult] = {}
        self.builds = 0
        self.served = 0
        self.served_stale = 0

    def get(self, key: tuple, build: Callable[[], bytes]) -> _Body:
        self.served += 1
        cached = self._bodies.get(key)
        if cached is not None:
            age = self.clock() - cached.built_at
            if (cached.version == self.changes.version and age < self.max_age_s) or age < self.min_age_s:
                return cached
        waiting = self._building.get(key)
        if waiting is not None:
            if cached is not None and self.clock() - cached.built_at < self.stale_limit_s:
                self.served_stale += 1
                return cached
            return waiting.get(timeout=BUILD_WAIT_S)
        result = self._building[key] = gevent.event.AsyncResult()
        try:
            version, started = self.changes.version, self.clock()
            body = build()
            gevent.sleep(0)                  # let the requests served the previous body go first
            fresh = _Body(version, started, body, etag_of(body))
            if len(body) >= GZIP_MIN_BYTES:
                gevent.sleep(0)
                fresh.gzipped()              # inside the flight: no request pays for it
            self.builds += 1
            if len(self._bodies) > 10_000:     # diary dates and match ids are many: keep memory bounded
                self._bodies.clear()
            self._bodies[key] = fresh
            result.set(fresh)
            return fresh
        except BaseException as e:
            result.set_exception(e)          # the waiters get the error too; errors are never kept
            raise
        finally:
            del self._building[key]


class Fragments:
    """Each listed match's encoded answer, kept with the key it was built from (goald/match/read.py
    `_KEYS`): a rebuilt list re-encodes (and fetches in full) only the matches whose key changed,
    so 2,000 live matches of which 30 changed cost a narrow query, 30 rows and a join of bytes."""

    MAX = 50_000

    def __init__(self) -> None:
        self._by_id: dict[str, tuple[tuple, bytes]] = {}
        self.encoded = 0

    def listing(self, conn, keys: list[tuple[str, tuple]], **top) -> bytes:
        stale = [mid for mid, key in keys if self._by_id.get(mid, (None,))[0] != key]
        if len(self._by_id) + len(stale) > self.MAX:
            self._by_id.clear()
            stale = [mid for mid, _ in keys]
        wanted = dict(keys)
        for r in read.by_ids(conn, stale):
            self._by_id[r["id"]] = (wanted[r["id"]], _ENCODER.encode(match_out(r)))
            self.encoded += 1
        frags = [self._by_id[mid][1] for mid, _ in keys if mid in self._by_id]   # a row deleted meanwhile: left out
        head = b",".join(b'"%s":%s' % (k.encode(), _ENCODER.encode(v)) for k, v in top.items())
        return b'{"ok":true,"count":%d,"matches":[%s]%s}' % (len(frags), b",".join(frags),
                                                             b"," + head if head else b"")


def read_with(pool: Pool, fn, *args):
    """`fn(conn, *args)` on a pooled connection, in a read-only transaction rolled back after it
    (the request's greenlet; PoolTimeout / DatabaseUnavailable propagate: the caller's 503)."""
    with pool.connection(timeout_s=5.0) as conn:
        try:
            return fn(conn, *args)
        finally:
            conn.rollback()


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def install(app: "ConsoleApp", pool: Pool, changes: Changes, max_age_s: float = 1.0, share_details: bool = True,
            details_max_age_s: float = 1.0) -> SharedBodies:
    """Route the three endpoints as direct routes of `app`, a ConsoleApp (console/app.py). With
    `share_details` off (cache.match_details, the seeds' CACHE_MATCH_DETAILS), one match's answer
    is built for every request; otherwise it is shared and at most `details_max_age_s` old."""
    bodies = SharedBodies(changes, max_age_s)
    details = SharedBodies(changes, details_max_age_s)
    fragments = Fragments()

    def query(fn, *args):
        return read_with(pool, fn, *args)

    def serve(environ: dict, key: tuple, build: Callable[[], bytes], shared_in: SharedBodies | None = bodies) -> Reply:
        try:
            shared = shared_in.get(key, build) if shared_in is not None else _unshared(build)
        except (PoolTimeout, DatabaseUnavailable) as e:
            return envelope.error_reply("database_unavailable", str(e), 503)
        except _NotFound as e:
            return envelope.error_reply("not_found", str(e), 404)
        compress = len(shared.body) >= GZIP_MIN_BYTES and _accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING"))
        etag = shared.gzip_etag if compress else shared.etag
        headers = [("ETag", etag), ("Cache-Control", "no-cache"), ("Vary", "Accept-Encoding"),
                   ("Content-Type", "application/json")]
        if _matches_etag(environ.get("HTTP_IF_NONE_MATCH"), etag):
            return Reply(304, b"", headers)
        if compress:
            return Reply(200, shared.gzipped(), headers + [("Content-Encoding", "gzip")])
        return Reply(200, shared.body, headers)

    def live(environ: dict) -> Reply:
        def build():
            return query(lambda conn: fragments.listing(conn, read.live_keys(conn, int(time.time()))))
        return serve(environ, ("live",), build)

    def diary(environ: dict) -> Reply:
        raw = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING") or "")).get("date", "")
        try:
            day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            return envelope.error_reply("bad_request", "date must be a day as YYYY-MM-DD (UTC), e.g. "
                                        f"?date={datetime.now(timezone.utc):%Y-%m-%d}", 400, parameter="date")
        start = int(day.timestamp())

        def build():
            return query(lambda conn: fragments.listing(conn, read.diary_keys(conn, start), date=raw))
        return serve(environ, ("diary", start), build)

    def one(environ: dict, match_id: str) -> Reply:
        if not match_id or len(match_id) > MAX_ID_LENGTH or not match_id.isascii() or not match_id.isprintable():
            return envelope.error_reply("bad_request", f"a match id is 1-{MAX_ID_LENGTH} printable ASCII characters",
                                        400, parameter="id")

        def build():
            r = query(read.one, match_id)
            if r is None:
                raise _NotFound(f"no match {match_id}")
            detail = match_out(r, MatchDetail, incidents=[Incident(**i) for i in r["incidents"]],
                               stats=[Stat(**s) for s in r["stats"]],
                               team_stats=[TeamStats(**t) for t in r["team_stats"]],
                               half_stats={h: [Stat(**s) for s in rows] for h, rows in r["half_stats"].items()},
                               data_completeness=r["data_completeness"])
            return _ENCODER.encode(OneMatch(True, detail))
        return serve(environ, ("one", match_id), build, details if share_details else None)

    app.direct("/api/matches/live", live)
    app.direct("/api/matches/diary", diary)
    app.direct_under("/api/matches/", one)
    bodies.fragments = fragments
    bodies.details = details
    return bodies


class _NotFound(Exception):
    pass


def _unshared(build: Callable[[], bytes]) -> _Body:
    body = build()
    return _Body(0, 0.0, body, etag_of(body))


def _accepts_gzip(header: str | None) -> bool:
    """Accept-Encoding names gzip with a non-zero quality (`gzip`, `gzip;q=0.5`, `*`)."""
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"))
    return False


def _matches_etag(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))
