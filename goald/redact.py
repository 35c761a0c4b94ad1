"""Keeping secrets out of output: DSN passwords and registered secret values.

Pure functions, safe to call from any greenlet. `redact()` is applied to every log record
(goald/logs.py) and to every secret setting shown by `goald config`.
"""
from __future__ import annotations

import re
import threading

MASK = "***"

# scheme://user:password@host  →  scheme://user:***@host   (postgres, redis, amqp, http, ...)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<tail>@)")
# libpq keyword form: password=secret  /  password='se cret'
_KW_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
# query-string secrets: ?password=..., &secret=..., &token=...
_QS_SECRET = re.compile(r"(?P<head>[?&](?:password|secret|token|api_key)=)(?P<pw>[^&\s]+)", re.IGNORECASE)

_lock = threading.Lock()
_registered: set[str] = set()


def mask_dsn(dsn: str) -> str:
    """Return `dsn` with its password replaced by ***; host, port, user and database stay visible."""
    if not dsn:
        return dsn
    out = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["tail"], dsn)
    out = _KW_PASSWORD.sub(lambda m: m["head"] + MASK, out)
    return _QS_SECRET.sub(lambda m: m["head"] + MASK, out)


def register_secret(value: str) -> None:
    """Remember a secret value so that `redact()` removes it wherever it appears (4+ chars only).

    For a URL only its password is registered: the rest (host, database) is not secret and is
    what an operator needs to read in an error.
    """
    if not value:
        return
    if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", value):
        m = _URL_PASSWORD.search(value)
        value = m["pw"] if m else ""
    if len(value) >= 4:
        with _lock:
            _registered.add(value)


def redact(text: str) -> str:
    """Mask DSN passwords and every registered secret value in `text`."""
    if not text:
        return text
    out = mask_dsn(text)
    with _lock:
        secrets = sorted(_registered, key=len, reverse=True)
    for s in secrets:
        if s in out:
            out = out.replace(s, MASK)
    return out
