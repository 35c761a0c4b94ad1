"""The one JSON envelope of every goald HTTP answer.

Success: `{"ok": true, ...payload}`; error: `{"ok": false, "error": {"code": ..., "message": ...}}`.
The payload's fields sit at the top level beside `ok` (the original's runbooks read
`/health/pool | jq .utilization` and grep `"ok":` from /api/health; both keep working).
"""
from __future__ import annotations

import json
from typing import Any

import bottle

RESERVED = {"ok", "error"}


def ok(payload: dict[str, Any] | None = None, status: int = 200) -> str:
    payload = payload or {}
    clash = RESERVED & payload.keys()
    if clash:
        raise ValueError(f"payload may not use reserved keys {sorted(clash)}")
    return _send({"ok": True, **payload}, status)


def error(code: str, message: str, status: int, **details: Any) -> str:
    err = {"code": code, "message": message}
    if details:
        err["details"] = details
    return _send({"ok": False, "error": err}, status)


def _send(doc: dict[str, Any], status: int) -> str:
    bottle.response.status = status
    bottle.response.content_type = "application/json"
    bottle.response.set_header("Cache-Control", "no-store")
    return json.dumps(doc, default=str)
