"""Cache keys: a readable head, then a hash of every parameter.

`cache_key("goald", "standings", "39", {"season": "2025"})` is `goald:standings:39:<digest>`, the
digest being blake2b (8 bytes, hex) of the canonical JSON (sorted keys, compact separators) of
`{"kind": kind, "scope": scope, **params}`: parameter dicts equal up to order give the same key,
and any differing value gives another. `index_name` is the key's head without the digest: every
param variant of one (kind, scope) shares it, which is how `Cache.invalidate` finds them all.

Pure functions, called in the caller's greenlet. A bad kind, scope, prefix or parameter is a
programming error: ValueError, raised before anything is read or built.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

EMPTY_SCOPE = "-"
_VALUE_TYPES = (str, int, float, bool, type(None))


def check_part(what: str, value: str) -> str:
    """`value` if it may be a part of a key: a non-empty str with no ':' and no whitespace."""
    if not isinstance(value, str) or not value or ":" in value or any(ch.isspace() for ch in value):
        raise ValueError(f"cache {what} {value!r} must be a non-empty string without ':' or whitespace")
    return value


def index_name(prefix: str, kind: str, scope: str) -> str:
    """`<prefix>:<kind>:<scope>`: the index every param variant of (kind, scope) is stored under."""
    return f"{check_part('prefix', prefix)}:{check_part('kind', kind)}:{check_part('scope', scope or EMPTY_SCOPE)}"


def cache_key(prefix: str, kind: str, scope: str, params: Mapping[str, Any]) -> str:
    """`<prefix>:<kind>:<scope>:<digest>`; scope "" is written "-"."""
    head = index_name(prefix, kind, scope)
    for name, value in params.items():
        if not isinstance(name, str):
            raise ValueError(f"cache parameter name {name!r} must be a string")
        if not isinstance(value, _VALUE_TYPES):
            raise ValueError(f"cache parameter {name}={value!r} must be str, int, float, bool or None, "
                             f"not {type(value).__name__}")
        if name in ("kind", "scope"):
            raise ValueError(f"cache parameter name {name!r} is reserved")
    doc = {"kind": kind, "scope": scope or EMPTY_SCOPE, **params}
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return f"{head}:{hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()}"
