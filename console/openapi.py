"""`GET /api/openapi.json`: the OpenAPI 3.1 document of goald's HTTP endpoints, generated from the
msgspec Structs the handlers encode with (msgspec.json.schema_components), so the document and
the answers cannot drift apart; `ENDPOINTS` is the one list of what is documented, and a test
checks it against the app's routes in both directions.

The public read API (`/api/...`) is described field by field. The operations endpoints
(`/health/pool`, `/health/actors`, `/health/provider`, `/health/cache`) are introspection whose
contents follow the daemon's internals: they are documented as envelope objects (`ok` plus free
fields). `/metrics` is Prometheus text, not JSON. Built once per process (pure CPU, in the first
request's greenlet); raises nothing at request time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from goald import __version__
from goald.console import shapes
from goald.console.matches_api import MAX_ID_LENGTH, DiaryList, MatchList, OneMatch
from goald.console.predictions_api import CURSOR_PATTERN, MAX_LIMIT, PredictionList
from goald.console.tables_api import ID_PATTERN, H2HOut, StandingsOut

REF = "#/components/schemas/{name}"
TABLE_ID = {"type": "string", "pattern": f"^{ID_PATTERN.pattern}$"}
MATCH_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": "^[\\x21-\\x7e]+$",
            "description": f"1-{MAX_ID_LENGTH} printable ASCII characters"}
H2H_MATCH_ID = {**TABLE_ID, "description": "1-64 characters of A-Z a-z 0-9 . _ -"}


@dataclass(frozen=True)
class Param:
    name: str
    where: str              # path | query
    schema: dict
    description: str
    required: bool = True


@dataclass(frozen=True)
class Endpoint:
    path: str               # OpenAPI template, e.g. /api/matches/{id}
    summary: str
    response: Any           # a msgspec Struct; None: an envelope object with free fields; "text": text/plain
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    etag: bool = False      # answers 304 to If-None-Match
    tag: str = "read"
    description: str = ""
    extra: dict = field(default_factory=dict)


def _id(name: str, schema: dict, what: str) -> Param:
    return Param(name, "path", schema, what)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/api/matches/live", "Live matches (and not-started ones past their kick-off)", MatchList,
             errors=(503,), etag=True),
    Endpoint("/api/matches/diary", "One day's matches (UTC)", DiaryList,
             params=(Param("date", "query", {"type": "string", "format": "date"}, "the day, YYYY-MM-DD (UTC)"),),
             errors=(400, 503), etag=True),
    Endpoint("/api/matches/{id}", "One match with incidents, statistics and completeness", OneMatch,
             params=(_id("id", MATCH_ID, "match id"),), errors=(400, 404, 503), etag=True),
    Endpoint("/api/matches/{id}/h2h", "Head-to-head and recent form of a match's teams (cached)", H2HOut,
             params=(_id("id", H2H_MATCH_ID, "match id"),), errors=(400, 404, 503), etag=True),
    Endpoint("/api/standings/{season_id}", "A season's standings (cached)", StandingsOut,
             params=(_id("season_id", TABLE_ID, "season id"),), errors=(400, 404, 503), etag=True),
    Endpoint("/api/standings/competition/{competition_id}", "The standings of a competition's current season "
             "(cached)", StandingsOut, params=(_id("competition_id", TABLE_ID, "competition id"),),
             errors=(400, 404, 503), etag=True),
    Endpoint("/api/predictions", "AI predictions, newest first, with their matched match (cached)", PredictionList,
             params=(Param("date", "query", {"type": "string", "format": "date"},
                           "the UTC day of predicted_at, YYYY-MM-DD", required=False),
                     Param("competition", "query", TABLE_ID, "the matched match's competition id", required=False),
                     Param("match", "query", TABLE_ID, "the matched match's id", required=False),
                     Param("status", "query", {"type": "string", "enum": ["pending", "won", "lost", "void"]},
                           "the prediction's result", required=False),
                     Param("matched", "query", {"type": "string", "enum": ["true", "false"]},
                           "linked to a match or not", required=False),
                     Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
                           f"predictions per page, 1-{MAX_LIMIT}", required=False),
                     Param("cursor", "query", {"type": "string", "pattern": f"^{CURSOR_PATTERN.pattern}$"},
                           "the previous page's next_cursor", required=False)),
             errors=(400, 503), etag=True),
    Endpoint("/api/health", "The process is up and its database answers", shapes.HealthOut, errors=(503,),
             tag="operations"),
    Endpoint("/api/ready", "Ready to serve current data: database and provider (a cache outage only degrades)",
             shapes.ReadyOut, errors=(503,), tag="operations"),
    Endpoint("/api/openapi.json", "This document", "openapi", tag="operations"),
    Endpoint("/health/pool", "The connection pool: active, idle, waiting, total, utilization, counters", None,
             tag="operations"),
    Endpoint("/health/actors", "The supervision tree: states, restarts, last failures", None, errors=(503,),
             tag="operations"),
    Endpoint("/health/provider", "The provider client: breakers, back-offs, per-endpoint counters", None,
             errors=(503,), tag="operations"),
    Endpoint("/health/cache", "The read API's cache: backend, hits, misses, single-flight savings", None,
             errors=(503,), tag="operations"),
    Endpoint("/metrics", "Prometheus metrics (text exposition format, not JSON)", "text", tag="operations"),
)

_STATUS_TEXT = {200: "OK", 304: "Not modified (If-None-Match matched the ETag)", 400: "Bad parameter",
                404: "Not found", 503: "Unavailable (database, a cache wait, or not ready)"}


def document(paths: set[str] | None = None) -> dict:
    """The OpenAPI document; `paths` limits it to the routed endpoints (None: all of ENDPOINTS)."""
    endpoints = [e for e in ENDPOINTS if paths is None or e.path in paths]
    structs = [e.response for e in endpoints if isinstance(e.response, type)] + [shapes.ErrorOut]
    _, components = msgspec.json.schema_components(structs, ref_template=REF)
    out_paths: dict[str, dict] = {}
    for e in endpoints:
        media = "text/plain" if e.response == "text" else "application/json"
        responses: dict[str, dict] = {"200": {"description": _STATUS_TEXT[200], "content": {
            media: {"schema": _schema(e.response)}}}}
        if e.etag:
            responses["200"]["headers"] = {"ETag": {"schema": {"type": "string"}}}
            responses["304"] = {"description": _STATUS_TEXT[304]}
        for status in e.errors:
            responses[str(status)] = {"description": _STATUS_TEXT[status], "content": {
                "application/json": {"schema": {"$ref": REF.format(name="ErrorOut")}}}}
        op = {"summary": e.summary, "operationId": _operation_id(e.path), "tags": [e.tag], "responses": responses}
        if e.params:
            op["parameters"] = [{"name": p.name, "in": p.where, "required": p.required, "description": p.description,
                                 "schema": p.schema} for p in e.params]
        out_paths[e.path] = {"get": op}
    return {
        "openapi": "3.1.0",
        "info": {"title": "goald", "version": __version__,
                 "description": "goald's read API: live matches, diaries, match details, standings, head-to-head "
                                "and AI predictions "
                                "from its database (never the provider), in one JSON envelope (`ok`, and `error` "
                                "with `code` and `message` on failure). Cached answers say so (`fromCache`)."},
        "paths": out_paths,
        "components": {"schemas": components},
    }


def _schema(response: Any) -> dict:
    if isinstance(response, type):
        return {"$ref": REF.format(name=response.__name__)}
    if response == "text":
        return {"type": "string"}
    if response == "openapi":
        return {"type": "object", "required": ["openapi", "paths"]}
    return {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}},
            "additionalProperties": True}


def _operation_id(path: str) -> str:
    words = [w.strip("{}").replace(".", "_") for w in path.strip("/").split("/")]
    return "get_" + "_".join(w for w in words if w)


def template_of(rule: str) -> str:
    """A Bottle rule as an OpenAPI path template (`/api/matches/<segment>/h2h` → `/api/matches/{}/h2h`):
    parameter names aside, for comparing routes with ENDPOINTS."""
    import re

    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", rule)
