"""CORS for the public read API: browser pages of the origins in `console.cors_origins` may read
`/api/...` (GET and HEAD, with If-None-Match; the ETag and X-Cache headers exposed). Other paths
(health, metrics, the operator console) never get CORS headers. A preflight (OPTIONS with
Access-Control-Request-Method) of an allowed origin gets 204 with the allowed method and
headers; of another origin a 403 in the envelope. Runs in the request's greenlet, inside
ConsoleApp.__call__ (console/app.py), only for requests that carry an Origin header.
"""
from __future__ import annotations

from typing import Callable

from goald.console import envelope

ALLOWED_METHODS = "GET, HEAD, OPTIONS"
ALLOWED_HEADERS = ("accept", "accept-encoding", "accept-language", "cache-control", "if-none-match")
EXPOSED = "ETag, X-Cache"
MAX_AGE_S = 600


def parse_origins(text: str) -> tuple[str, ...]:
    """`console.cors_origins` as a tuple of origins (without a trailing slash), or ("*",)."""
    origins = tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())
    return ("*",) if "*" in origins else origins


class Cors:
    def __init__(self, origins: tuple[str, ...]):
        self.origins = origins
        self.any = origins == ("*",)

    def allowed(self, origin: str) -> bool:
        return self.any or origin in self.origins

    def __call__(self, environ: dict, start_response, serve: Callable) -> list[bytes]:
        origin = environ.get("HTTP_ORIGIN", "")
        path = environ.get("PATH_INFO") or "/"
        if not path.startswith("/api/"):
            return serve(environ, start_response)
        allow = [("Access-Control-Allow-Origin", "*" if self.any else origin), ("Vary", "Origin")]
        if environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            return self._preflight(environ, start_response, origin, allow)
        if not self.allowed(origin):
            return serve(environ, start_response)

        def with_cors(status, headers, exc_info=None):
            return start_response(status, list(headers) + allow + [("Access-Control-Expose-Headers", EXPOSED)],
                                  exc_info)
        return serve(environ, with_cors)

    def _preflight(self, environ, start_response, origin, allow) -> list[bytes]:
        method = environ["HTTP_ACCESS_CONTROL_REQUEST_METHOD"].strip().upper()
        asked = [h.strip().lower() for h in environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "").split(",")
                 if h.strip()]
        refused = [h for h in asked if h not in ALLOWED_HEADERS]
        if not self.allowed(origin) or method not in ("GET", "HEAD") or refused:
            why = (f"origin {origin} may not read this API" if not self.allowed(origin)
                   else f"method {method} is not allowed" if method not in ("GET", "HEAD")
                   else f"headers not allowed: {', '.join(refused)}")
            reply = envelope.error_reply("cors_refused", why, 403)
            start_response(reply.status_line, reply.headers + [("Content-Length", str(len(reply.body)))])
            return [reply.body]
        start_response("204 No Content", allow + [
            ("Access-Control-Allow-Methods", ALLOWED_METHODS),
            ("Access-Control-Allow-Headers", ", ".join(ALLOWED_HEADERS)),
            ("Access-Control-Max-Age", str(MAX_AGE_S))])
        return [b""]
