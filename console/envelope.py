"""The one JSON envelope of every goald HTTP answer.

Success: `{"ok": true, ...payload}`; error: `{"ok": false, "error": {"code": ..., "message": ...}}`.
The payload's fields sit at the top level beside `ok` (the original's runbooks read
`/health/pool | jq .utilization` and grep `"ok":` from /api/health; both keep working).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import bottle
import msgspec

RESERVED = {"ok", "error"}


def ok(payload: dict[str, Any] | None = None, status: int = 200) -> bytes:
    payload = payload or {}
    clash = RESERVED & payload.keys()
    if clash:
        raise ValueError(f"payload may not use reserved keys {sorted(clash)}")
    return _reply({"ok": True, **payload}, status).to_bottle()


def typed(doc: Any, status: int = 200) -> bytes:
    """A typed answer (a msgspec Struct of console/shapes.py whose first field is `ok`), in Bottle."""
    return Reply(status, msgspec.json.encode(doc),
                 [("Content-Type", "application/json"), ("Cache-Control", "no-store")]).to_bottle()


def error(code: str, message: str, status: int, **details: Any) -> bytes:
    return error_reply(code, message, status, **details).to_bottle()


@dataclass
class Reply:
    """A whole answer, for the routes the app serves without Bottle (console/app.py ConsoleApp):
    `status` an int, `headers` (name, value) pairs, `body` the bytes to send."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def status_line(self) -> str:
        return f"{self.status} {bottle.HTTP_CODES.get(self.status, 'Unknown')}"

    def to_bottle(self) -> bytes:
        """Hand this answer to Bottle (the same route reached through Bottle, e.g. by HEAD)."""
        bottle.response.status = self.status
        for name, value in self.headers:
            bottle.response.set_header(name, value)
        return self.body


def error_reply(code: str, message: str, status: int, **details: Any) -> Reply:
    """`error()` as a Reply, touching no Bottle request state."""
    err = {"code": code, "message": message}
    if details:
        err["details"] = details
    return _reply({"ok": False, "error": err}, status)


def _reply(doc: dict[str, Any], status: int) -> Reply:
    return Reply(status, json.dumps(doc, default=str).encode(),
                 [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
