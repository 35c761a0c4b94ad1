"""When a job is due: 5-field cron (UTC) or a fixed interval, each with a second offset.

Pure functions and values, no I/O: the clock actor, `goald jobs` and the collision check use them.
Times are UTC epoch seconds (floats); occurrences are whole seconds, so two jobs "start in the same
second" exactly when their occurrence times are equal.

A *period* is the nominal instant an occurrence belongs to, before the offset (the cron minute, or
the multiple of the interval); the run ledger identifies an occurrence by job and period, so that
instances using different offsets for one job still run each period once. Occurrence = period +
offset, and since an offset is always below the period, each occurrence has exactly one period.

- `cron` occurrences are the cron expression's minutes (croniter, UTC) plus `offset_s` seconds.
- `every_s` occurrences are the multiples of the interval since the Unix epoch plus `offset_s`,
  so every instance of goald (and every restart) computes the same instants: the run ledger's
  UNIQUE (job, scheduled_at) relies on it.

The effective offset is the catalog's offset unless stagger is off globally (`JOB_STAGGER_ENABLED`
/ the `stagger.enabled` flag) or for that job (`JOB_STAGGER_<JOB>=0` / `job.<name>.stagger`); then 0,
which is the seeds' "everything at :00".
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timezone

from croniter import CroniterBadDateError, croniter

# The collision check looks this far ahead: a day covers every-N-minute and hourly jobs.
COLLISION_HORIZON_S = 86400
# Interval jobs more frequent than this are pollers, judged among themselves (see collisions()).
POLLER_BELOW_S = 60
# A cron expression must fire at least once after this instant (2000-01-01; croniter looks up to
# 50 years ahead, so leap days count): '0 0 30 2 *' parses but never does.
NEVER_FIRES_FROM = 946684800.0


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message says what is wrong and gives an example."""


@dataclass(frozen=True)
class Schedule:
    """`cron` (5 fields, UTC) xor `every_s`; `offset_s` is added to every occurrence."""

    cron: str | None = None
    every_s: int | None = None
    offset_s: int = 0

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every_s is None):
            raise ScheduleError("a schedule is a cron expression or an interval (every_s), not both or neither")
        if self.cron is not None:
            fields = self.cron.split()
            if len(fields) != 5:
                raise ScheduleError(f"cron {self.cron!r} must have 5 fields (minute hour day month weekday), "
                                    f"e.g. '*/5 * * * *'")
            if not croniter.is_valid(self.cron):
                raise ScheduleError(f"cron {self.cron!r} is not a valid expression, e.g. '*/5 * * * *'")
            try:  # valid but impossible (February 30th) is rejected too: it would never run
                croniter(self.cron, NEVER_FIRES_FROM).get_next(float)
            except CroniterBadDateError:
                raise ScheduleError(f"cron {self.cron!r} never fires (no such date); e.g. '0 0 28 2 *' "
                                    f"for February 28th") from None
            if not 0 <= self.offset_s < 60:
                raise ScheduleError(f"offset {self.offset_s}s must be within the minute (0..59) for cron")
        else:
            if not isinstance(self.every_s, int) or self.every_s < 1:
                raise ScheduleError(f"interval {self.every_s!r} must be a whole number of seconds >= 1")
            if not 0 <= self.offset_s < max(self.every_s, 1):
                raise ScheduleError(f"offset {self.offset_s}s must be below the interval ({self.every_s}s)")

    def with_offset(self, offset_s: int) -> "Schedule":
        return Schedule(cron=self.cron, every_s=self.every_s, offset_s=offset_s)

    def describe(self) -> str:
        """'*/5 * * * * +5s' or 'every 30s +10s'."""
        base = self.cron if self.cron is not None else f"every {self.every_s}s"
        return f"{base} +{self.offset_s}s" if self.offset_s else base

    def next_after(self, t: float) -> float:
        """The first occurrence strictly after epoch second `t`."""
        if self.every_s is not None:
            k = math.floor((t - self.offset_s) / self.every_s) + 1
            return float(k * self.every_s + self.offset_s)
        base = datetime.fromtimestamp(t - self.offset_s, tz=timezone.utc)
        nxt = croniter(self.cron, base).get_next(float)
        return float(nxt + self.offset_s)

    def period_after(self, p: float) -> float:
        """The first period (nominal instant, offset excluded) strictly after epoch second `p`."""
        return self.with_offset(0).next_after(p) if self.offset_s else self.next_after(p)

    def periods(self, after: float, until: float, limit: int | None = None) -> list[float]:
        """Periods in (after, until], oldest first, at most `limit`."""
        return (self.with_offset(0) if self.offset_s else self).occurrences(after, until, limit)

    def occurrences(self, after: float, until: float, limit: int | None = None) -> list[float]:
        """Occurrences in (after, until], oldest first, at most `limit`."""
        out: list[float] = []
        if self.every_s is not None:
            t = self.next_after(after)
            while t <= until and (limit is None or len(out) < limit):
                out.append(t)
                t += self.every_s
            return out
        base = datetime.fromtimestamp(after - self.offset_s, tz=timezone.utc)
        it = croniter(self.cron, base)
        while limit is None or len(out) < limit:
            t = it.get_next(float) + self.offset_s
            if t > until:
                break
            out.append(float(t))
        return out

    def period_s(self) -> float:
        """Typical gap between occurrences (the smallest over the next day)."""
        if self.every_s is not None:
            return float(self.every_s)
        ts = self.occurrences(0.0, COLLISION_HORIZON_S, limit=1441)
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        return min(gaps) if gaps else float(COLLISION_HORIZON_S)


def next_at_phase(now: float, interval_s: float, phase_s: float) -> float:
    """The first instant at least `interval_s` after `now` that lies `phase_s` past a whole second:
    the runtime's own periodic database work (heartbeats, flag polls) keeps off whole seconds,
    where jobs start."""
    return math.ceil(now + interval_s - phase_s) + phase_s


def effective_offset(offset_s: int, stagger_enabled: bool, job_stagger: bool) -> int:
    """The offset the clock uses: the catalog's, or 0 when stagger is off globally or for the job."""
    return offset_s if (stagger_enabled and job_stagger) else 0


@dataclass(frozen=True)
class Collision:
    first: str
    second: str
    at: float          # the first shared start second
    count: int         # shared start seconds within the horizon
    second_of_minute: int

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.at, tz=timezone.utc).strftime("%H:%M:%S")
        return (f"{self.first} and {self.second} both start at :{self.second_of_minute:02d} "
                f"(first at {when} UTC, {self.count}× in the next 24 h)")


def is_poller(schedule: Schedule) -> bool:
    """A sub-minute poller: an interval job that runs more often than once a minute."""
    return schedule.every_s is not None and schedule.every_s < POLLER_BELOW_S


def collisions(schedules: dict[str, Schedule], now: float, horizon_s: float = COLLISION_HORIZON_S) -> list[Collision]:
    """Every pair of jobs that would start in the same second within the horizon, judged in two
    classes (docs/operations.md, "Collisions"): jobs of a minute or longer against each other, and
    sub-minute pollers against each other. A poller meeting a longer job is not a collision: a job
    every 2 s starts in every other second, so no offset could keep it apart, and a poller's run is
    a request and a routing pass that holds a database connection for milliseconds, if at all.

    `schedules` holds only the jobs that count (enabled), with their effective offsets.
    """
    starts = {name: set(s.occurrences(now, now + horizon_s)) for name, s in schedules.items()}
    found = []
    for a, b in itertools.combinations(sorted(starts), 2):
        if is_poller(schedules[a]) != is_poller(schedules[b]):
            continue
        shared = starts[a] & starts[b]
        if shared:
            first = min(shared)
            found.append(Collision(a, b, first, len(shared), int(first) % 60))
    return found
