"""In-process counters of the provider client, per endpoint: what `/health/provider` shows now and
what `/metrics` exports (goald/metrics.py `ProviderCollector`).

Per endpoint: calls (attempts are calls plus retries), successes, retries, failures by reason,
throttles, refusals by reason, rejections (of whole bodies and of single items) by reason, calls
whose body was rejected as a whole, calls aborted (killed by a job's timeout or a shutdown), items
decoded, and the latency of the last `LATENCY_WINDOW` answered requests (p50, p95, max) and of all
of them (count, sum). Each call ends in exactly one of ok, failures, refusals, body_rejected,
throttled, backed_off, circuit_refused or aborted. Written by the greenlet that made the call, read
by the console's request greenlet; no I/O, no locks (greenlets switch only at I/O, and nothing here
does any).
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

LATENCY_WINDOW = 512


@dataclass
class EndpointStats:
    group: str
    calls: int = 0
    ok: int = 0
    attempts: int = 0
    retries: int = 0
    throttled: int = 0        # throttle answers (HTTP 429, code 429)
    backed_off: int = 0       # calls refused before any I/O while the group backs off after one
    circuit_refused: int = 0
    body_rejected: int = 0    # calls whose body was rejected as a whole (PayloadRejected)
    aborted: int = 0          # calls killed mid-way (a job's timeout, a shutdown): neither outcome
    items: int = 0
    items_reused: int = 0     # items equal to the previous answer's, not decoded again (ItemMemo)
    failures: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)
    rejections: Counter = field(default_factory=Counter)
    latency_count: int = 0
    latency_sum_s: float = 0.0
    recent_latency_s: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    last_error: str = ""

    def latency(self, seconds: float) -> None:
        self.latency_count += 1
        self.latency_sum_s += seconds
        self.recent_latency_s.append(seconds)

    def as_dict(self) -> dict:
        recent = sorted(self.recent_latency_s)
        return {
            "group": self.group, "calls": self.calls, "ok": self.ok, "attempts": self.attempts,
            "retries": self.retries, "throttled": self.throttled, "backed_off": self.backed_off,
            "circuit_refused": self.circuit_refused, "body_rejected": self.body_rejected, "aborted": self.aborted,
            "items": self.items, "items_reused": self.items_reused, "failures": dict(self.failures), "refusals": dict(self.refusals),
            "rejections": dict(self.rejections), "last_error": self.last_error,
            "latency_sum_s": self.latency_sum_s,
            "latency_ms": {
                "count": self.latency_count,
                "mean": _ms(self.latency_sum_s / self.latency_count) if self.latency_count else None,
                "p50": _ms(_quantile(recent, 0.50)), "p95": _ms(_quantile(recent, 0.95)),
                "max": _ms(recent[-1]) if recent else None, "window": len(recent),
            },
        }


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
