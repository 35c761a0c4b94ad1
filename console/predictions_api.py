"""`GET /api/predictions`: the AI predictions, newest first, with their matched match.

Query parameters (all optional): `date` (YYYY-MM-DD, the UTC day of predicted_at), `competition`
(the matched match's competition id), `match` (a match id), `status` (pending | won | lost |
void), `matched` (true | false), `limit` (1..MAX_LIMIT, default DEFAULT_LIMIT) and `cursor`
(the previous page's `next_cursor`: keyset pagination on (predicted_at, id), stable while rows
arrive). A bad parameter is a 400 in the envelope naming it (`error.details.parameter`); an
unknown parameter is ignored. Database only (goald/business/predictions.py `page`, one query).

**Cached** like the standings (console/tables_api.py `serve_cached`): cache kind `predictions`
(cache.predictions, cache.predictions_ttl_s), one entry per combination of parameters under the
scope `list`, which the prediction jobs invalidate whole when they match or settle anything
(actors/jobs/predictions.py), on every node. ETag / 304, gzip, `fromCache` as the last field.
Routed only when the cache knows the kind (every cache made from the settings does).

The handler runs in the request's greenlet as a direct route of the ConsoleApp (console/app.py);
anything unexpected is the app's logged 500.
"""
from __future__ import annotations

import re
import urllib.parse
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import msgspec

from goald.business import predictions
from goald.cache.cache import Cache
from goald.console import envelope
from goald.console.envelope import Reply
from goald.console.matches_api import Named, read_with
from goald.console.tables_api import _Answers, serve_cached
from goald.db.pool import Pool
from goald.match.state import STATUS_NAMES

if TYPE_CHECKING:
    from goald.console.app import ConsoleApp

KIND, SCOPE = "predictions", "list"     # actors/jobs/predictions.py invalidates the same
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_AGE_S = 15                          # what browsers and proxies may keep (Cache-Control)
ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
CURSOR_PATTERN = re.compile(r"[0-9]{1,16}\.[0-9]{1,18}")
BOOLEANS = {"true": True, "false": False}


class PredictionMatch(msgspec.Struct):
    id: str
    competition: Named
    home_team: Named
    away_team: Named
    match_time: int | None              # scheduled kick-off, Unix seconds UTC (None: the match row is gone)
    status_id: int | None
    status: str | None


class PredictionOut(msgspec.Struct):
    id: int
    external_id: str                    # the AI's id
    home_team_name: str                 # as the AI wrote them
    away_team_name: str
    league_name: str
    predicted_at: str                   # ISO 8601, UTC
    minute_at_prediction: int
    home_score_at: int                  # the score when the prediction was made
    away_score_at: int
    market: str                         # home_win, draw, btts, over_2_5, ht_over_0_5, ... (sql/0015)
    confidence: float | None            # the AI's, 0..1
    status: str                         # pending | won | lost | void
    settled_at: str | None
    result_note: str | None             # "FT 2-1", "HT 0-0", "void: match cancelled", "unmatched: ..."
    matched: bool
    match_confidence: float | None      # the matcher's, 0..1
    unmatched_reason: str | None        # "no candidate within window", "ambiguous: 2 candidates", ...
    matched_at: str | None
    match: PredictionMatch | None


class PredictionList(msgspec.Struct):
    ok: bool
    count: int
    limit: int
    next_cursor: str | None             # pass as `cursor` for the next page; None: this is the last
    predictions: list[PredictionOut]
    fromCache: bool = False             # the last field (console/tables_api.py)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(timezone.utc).isoformat(timespec="seconds")


def _f(x) -> float | None:
    return None if x is None else round(float(x), 3)


def prediction_out(r: dict) -> PredictionOut:
    match = None
    if r["match_id"] is not None:
        match = PredictionMatch(
            r["match_id"], Named(r["competition_id"], r["competition_name"], r["competition_logo"]),
            Named(r["home_team_id"], r["home_name"], r["home_logo"]), Named(r["away_team_id"], r["away_name"],
                                                                         r["away_logo"]),
            r["match_time"], r["status_id"],
            STATUS_NAMES.get(r["status_id"], "unknown") if r["status_id"] is not None else None)
    return PredictionOut(
        r["id"], r["external_id"], r["home_team_name"], r["away_team_name"], r["league_name"], _iso(r["predicted_at"]),
        r["minute_at_prediction"], r["home_score_at"], r["away_score_at"], r["market"], _f(r["confidence"]),
        r["status"], _iso(r["settled_at"]), r["result_note"], r["match_id"] is not None, _f(r["match_confidence"]),
        r["unmatched_reason"], _iso(r["matched_at"]), match)


class BadParameter(ValueError):
    def __init__(self, parameter: str, message: str):
        self.parameter = parameter
        super().__init__(message)


def parse_query(query: str) -> tuple[predictions.Filters, int, str | None, dict]:
    """(filters, limit, cursor text, the canonical parameters: the cache key's) of a query string;
    BadParameter for a value that is not what the parameter takes."""
    raw: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query or "", keep_blank_values=True):
        raw.setdefault(name, value)
    day = competition = match = status = cursor = None
    matched = None
    limit = DEFAULT_LIMIT
    if "date" in raw:
        try:
            day = datetime.strptime(raw["date"], "%Y-%m-%d").date()
        except ValueError:
            raise BadParameter("date", "date must be a day as YYYY-MM-DD (UTC), e.g. "
                                       f"?date={datetime.now(timezone.utc):%Y-%m-%d}") from None
    for name in ("competition", "match"):
        if name in raw and not ID_PATTERN.fullmatch(raw[name]):
            raise BadParameter(name, f"{name} is an id of 1-64 characters of A-Z a-z 0-9 . _ -")
    competition, match = raw.get("competition"), raw.get("match")
    if "status" in raw:
        if raw["status"] not in predictions.STATUSES:
            raise BadParameter("status", f"status must be one of {', '.join(predictions.STATUSES)}")
        status = raw["status"]
    if "matched" in raw:
        if raw["matched"] not in BOOLEANS:
            raise BadParameter("matched", "matched must be true or false")
        matched = BOOLEANS[raw["matched"]]
    if "limit" in raw:
        text = raw["limit"]
        if not (text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= MAX_LIMIT):
            raise BadParameter("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
        limit = int(text)
    if "cursor" in raw:
        if not CURSOR_PATTERN.fullmatch(raw["cursor"]):
            raise BadParameter("cursor", "cursor must be a next_cursor of an earlier answer")
        cursor = raw["cursor"]
    params = {"date": day.isoformat() if day else None, "competition": competition, "match": match,
              "status": status, "matched": matched, "limit": limit, "cursor": cursor}
    return predictions.Filters(day, competition, match, status, matched), limit, cursor, params


_ENCODER = msgspec.json.Encoder()


def install(app: "ConsoleApp", pool: Pool, cache: Cache) -> _Answers | None:
    """Route GET /api/predictions as a direct route of `app`, when `cache` knows the kind."""
    if KIND not in cache.kinds:
        return None
    answers = _Answers()

    def handler(environ: dict) -> Reply:
        try:
            filters, limit, cursor_text, params = parse_query(environ.get("QUERY_STRING") or "")
            after = predictions.parse_cursor(cursor_text) if cursor_text else None
        except BadParameter as e:
            return envelope.error_reply("bad_request", str(e), 400, parameter=e.parameter)
        except (ValueError, OverflowError):
            return envelope.error_reply("bad_request", "cursor must be a next_cursor of an earlier answer", 400,
                                        parameter="cursor")

        def build() -> bytes:
            rows, nxt = read_with(pool, predictions.page, filters, limit, after)
            return _ENCODER.encode(PredictionList(True, len(rows), limit,
                                                  predictions.cursor_text(nxt) if nxt else None,
                                                  [prediction_out(r) for r in rows]))
        return serve_cached(environ, cache, answers, KIND, SCOPE, build, MAX_AGE_S, params)

    app.direct("/api/predictions", handler)
    return answers
