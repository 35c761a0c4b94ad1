"""Chaos switches of the simulator: how its answers misbehave, set at start (`--chaos`) or while
it runs (`POST /sim/chaos`), so tests can flip them mid-run.

A probability switch (0..1) applies to each provider request independently, drawn from the
server's seeded random generator; `only` restricts every switch to some endpoint paths. The
switches, in the order a request meets them:

| switch | value | the answer |
|---|---|---|
| `latency_ms` | ms | every answer waits this long first |
| `timeout` | p | no answer at all (the connection stays open `hang_s`, then closes) |
| `http_5xx` | p | HTTP 503 |
| `http_429` | p | HTTP 429 with Retry-After: 1 |
| `throttle` | p | HTTP 200 `{"code": 429, ...}` |
| `err` | p | HTTP 200 `{"err": ...}` |
| `malformed` | p | a body that is not JSON |
| `truncated` | p | the body cut off in the middle (a complete HTTP answer) |
| `wrong_types` | p | each item, with probability p, gets one field of the wrong type |
| `out_of_order` | p | an answer of an earlier second (older update times after newer ones) |
| `duplicate` | p | every item of the page twice |
| `vanish` | fraction or ids | those matches are missing from `detail_live` (they go on, unseen) |
| `stuck` | ids | those matches stay as they were when stuck: live, never updated again |

Pure data and parsing; no I/O. Parsing errors are `ChaosError` with one line naming the switch.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

PROBABILITIES = ("timeout", "http_5xx", "http_429", "throttle", "err", "malformed", "truncated", "wrong_types",
                 "out_of_order", "duplicate")


class ChaosError(ValueError):
    """A switch or value that does not exist or does not parse."""


@dataclass
class Chaos:
    latency_ms: float = 0.0
    hang_s: float = 30.0
    timeout: float = 0.0
    http_5xx: float = 0.0
    http_429: float = 0.0
    throttle: float = 0.0
    err: float = 0.0
    malformed: float = 0.0
    truncated: float = 0.0
    wrong_types: float = 0.0
    out_of_order: float = 0.0
    duplicate: float = 0.0
    vanish: float = 0.0
    vanish_ids: set[str] = field(default_factory=set)
    stuck_ids: set[str] = field(default_factory=set)
    only: set[str] = field(default_factory=set)
    version: int = 0  # bumped by every change: the server's cached answers of older versions are stale

    def applies(self, path: str) -> bool:
        return not self.only or path in self.only

    def as_dict(self) -> dict:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = sorted(v) if isinstance(v, set) else v
        return out

    def update(self, changes: dict) -> None:
        """Apply `{"switch": value, ...}` (the control endpoint's JSON, or parsed `--chaos`);
        all or nothing: a bad entry changes no switch."""
        if not isinstance(changes, dict):
            raise ChaosError("chaos: expected an object of switches, e.g. {\"http_5xx\": 1}")
        staged = {}
        for name, value in changes.items():
            staged[name] = _value(name, value)
        for name, value in staged.items():
            setattr(self, name, value)
        self.version += 1

    def reset(self) -> None:
        version = self.version
        for f in fields(self):
            setattr(self, f.name, f.default_factory() if callable(f.default_factory) else f.default)
        self.version = version + 1


def _value(name: str, value):
    if name in PROBABILITIES or name == "vanish":
        v = _number(name, value)
        if not 0.0 <= v <= 1.0:
            raise ChaosError(f"chaos {name}: {value!r} is not a probability between 0 and 1")
        return v
    if name in ("latency_ms", "hang_s"):
        v = _number(name, value)
        if not 0.0 <= v <= 3_600_000:
            raise ChaosError(f"chaos {name}: {value!r} is out of range")
        return v
    if name in ("vanish_ids", "stuck_ids", "only"):
        items = value.split("+") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple, set)) or not all(isinstance(i, str) and i for i in items):
            raise ChaosError(f"chaos {name}: expected a list of ids (or a+b+c), got {value!r}")
        return set(items)
    raise ChaosError(f"chaos: no switch {name!r}; known: {', '.join(f.name for f in fields(Chaos))}")


def _number(name: str, value) -> float:
    if isinstance(value, bool):
        raise ChaosError(f"chaos {name}: {value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ChaosError(f"chaos {name}: {value!r} is not a number") from None


def parse_flags(flags: list[str]) -> dict:
    """`--chaos http_5xx=0.2 --chaos stuck_ids=a+b` → {"http_5xx": "0.2", "stuck_ids": "a+b"}."""
    out = {}
    for flag in flags:
        for part in flag.split(","):
            name, sep, value = part.strip().partition("=")
            if not sep or not name:
                raise ChaosError(f"chaos: {part!r} is not switch=value (e.g. http_5xx=0.2)")
            out[name] = value
    return out
