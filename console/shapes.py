"""The shapes of the envelope's error answer and of the health and readiness answers, as msgspec
Structs: console/app.py encodes with them and console/openapi.py documents them (the match,
standings and h2h shapes live beside their handlers: console/matches_api.py, console/tables_api.py).
Plain data; no I/O.
"""
from __future__ import annotations

from typing import Any

import msgspec


class ErrorBody(msgspec.Struct):
    code: str                           # bad_request | not_found | database_unavailable | busy | not_ready | ...
    message: str
    details: dict[str, Any] | None = None


class ErrorOut(msgspec.Struct):
    """Every error answer: `{"ok": false, "error": {...}}`."""
    ok: bool
    error: ErrorBody


class DatabaseHealth(msgspec.Struct):
    ok: bool
    embedded: bool
    latency_ms: float


class HealthOut(msgspec.Struct):
    """`GET /api/health`: the process is up and its database answers."""
    ok: bool
    status: str                         # "up"
    version: str
    node: str
    uptime_s: float
    database: DatabaseHealth
    # node, leading, since, changes; feed: the change feed's sent / received counts, invalidations
    # sent / received, connected (several nodes on one database: goald/db/cluster.py)
    cluster: dict[str, Any] | None


class Check(msgspec.Struct):
    ok: bool
    detail: str


class ReadyOut(msgspec.Struct):
    """`GET /api/ready` when ready: database and provider fine; `degraded` when the cache is not
    (the answers then come from the database)."""
    ok: bool
    ready: bool
    degraded: bool
    checks: dict[str, Check]            # database, provider, cache
