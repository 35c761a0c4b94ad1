"""Restart policy of one supervised child: restart type, backoff and its own restart budget.

Pure bookkeeping (no actors, no I/O), shared by the static supervisor (actors/supervisor.py) and
the dynamic one (actors/dynamic.py); each child has its own `RestartState`, updated in its
supervisor's greenlet.

- restart types (Erlang/OTP): `permanent` is always restarted, `transient` only after a crash,
  `temporary` never;
- budget: more than `max_restarts` restarts of *this child* within `max_seconds` exhausts it
  (the supervisor then escalates, or gives the child up, as its spec says). Budgets are per child
  so that one slow minute of the database, felt by every child once, cannot spend a shared budget
  and take down siblings that were fine;
- backoff: the first restart after a child ran well is immediate (as in OTP: a crash is usually
  a bad message or a lost connection, and the fresh actor is wanted at once); each further crash
  in a row waits base * 2^(n-2) seconds, capped at `backoff_max_s`, times a random factor in
  [0.5, 1]. A child that ran longer than `max_seconds` since its last start is back to "ran well".
"""
from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

PERMANENT, TRANSIENT, TEMPORARY = "permanent", "transient", "temporary"
RESTART_TYPES = (PERMANENT, TRANSIENT, TEMPORARY)
ESCALATE, GIVE_UP = "escalate", "give_up"

DEFAULT_MAX_RESTARTS = 5
DEFAULT_MAX_SECONDS = 60.0
DEFAULT_BACKOFF_BASE_S = 0.5
DEFAULT_BACKOFF_MAX_S = 30.0
DEFAULT_START_TIMEOUT_S = 30.0


@dataclass
class Intensity:
    """A supervisor's defaults for its children's budgets and backoff (settings `supervisor.*`)."""

    max_restarts: int = DEFAULT_MAX_RESTARTS
    max_seconds: float = DEFAULT_MAX_SECONDS
    backoff_base_s: float = DEFAULT_BACKOFF_BASE_S
    backoff_max_s: float = DEFAULT_BACKOFF_MAX_S
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S


def should_restart(restart: str, crashed: bool) -> bool:
    return restart == PERMANENT or (restart == TRANSIENT and crashed)


@dataclass
class RestartState:
    """One child's restart history."""

    max_restarts: int
    max_seconds: float
    restarts: int = 0                 # restarts over the child's whole life (shown in /health/actors)
    crashes_in_row: int = 0
    started_at: float | None = None
    recent: deque = field(default_factory=deque)   # times of restarts within max_seconds

    def recent_restarts(self, now: float) -> int:
        while self.recent and now - self.recent[0] > self.max_seconds:
            self.recent.popleft()
        return len(self.recent)

    def next_restart(self, now: float, intensity: Intensity) -> float | None:
        """Record an exit that is to be restarted: the delay before the restart, or None when the
        child's budget is spent (more than max_restarts within max_seconds)."""
        if self.started_at is not None and now - self.started_at > self.max_seconds:
            self.crashes_in_row = 0
        if self.recent_restarts(now) >= self.max_restarts:
            return None
        self.recent.append(now)
        self.crashes_in_row += 1
        if self.crashes_in_row == 1:
            return 0.0
        delay = min(intensity.backoff_max_s, intensity.backoff_base_s * 2 ** (self.crashes_in_row - 2))
        return delay * random.uniform(0.5, 1.0)

    def exhausted_reason(self, name: str, now: float) -> str:
        return (f"{name} exited {self.recent_restarts(now) + 1} times within {self.max_seconds:g}s "
                f"(limit {self.max_restarts})")
