"""The simulator's sense of time: wall clock for the demo feed and `goald simulate`, a manual
clock for tests, which step time instead of sleeping.

Every part of the simulator (the day, scenarios, rate limits, `data/update`'s 120 s window) reads
`clock.now()` (Unix seconds, float) and nothing else. Any greenlet may call it; it never blocks.
"""
from __future__ import annotations

import time


class WallClock:
    """Real time, optionally shifted (`offset_s`), e.g. to watch another hour of the day."""

    def __init__(self, offset_s: float = 0.0):
        self.offset_s = offset_s

    def now(self) -> float:
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> float:
        """Jump ahead (the control endpoint's `advance`); returns the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset_s += seconds
        return self.now()


class ManualClock:
    """Time that moves only when told: `advance(s)` or `set(t)` (never backwards)."""

    def __init__(self, start: float):
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._now += seconds
        return self._now

    def set(self, t: float) -> float:
        if t < self._now:
            raise ValueError("the clock only moves forward")
        self._now = float(t)
        return self._now
