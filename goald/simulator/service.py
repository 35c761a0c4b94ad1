"""Putting a simulator together: world, scenarios, chaos and server, for `goald simulate`, the
demo feed of `goald run` and the tests.

`build(...)` resolves scenario names (a path, or the name of a shipped scenario without `.json`),
parses `--at` and the chaos flags, and returns an unstarted `SimulatorServer`. Everything that
can be wrong with the arguments raises ScenarioError, ChaosError or SimulatorSetupError with one
line naming the argument. Runs in the caller's greenlet; reads scenario files, nothing else.
"""
from __future__ import annotations

import time
from pathlib import Path

from goald.simulator import scenario as scenario_mod
from goald.simulator.chaos import Chaos, parse_flags
from goald.simulator.clock import WallClock
from goald.simulator.server import DEFAULT_RATE, DEFAULT_SECRET, DEFAULT_USER, SimulatorServer
from goald.simulator.rolling import RollingDays
from goald.simulator.world import World


class SimulatorSetupError(ValueError):
    pass


def resolve_scenario(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    shipped = {p.stem: p for p in scenario_mod.list_shipped()}
    if name in shipped:
        return shipped[name]
    raise SimulatorSetupError(f"--scenario {name}: no such file, and no shipped scenario of that name "
                              f"(shipped: {', '.join(sorted(shipped))})")


def _day_time_offset(text: str) -> float:
    """`--day-time 19:00`: the offset that puts today's clock at that UTC time of day."""
    hours, sep, minutes = text.partition(":")
    try:
        h, m = int(hours), int(minutes or "0")
    except ValueError:
        h = m = -1
    if not (0 <= h < 24 and 0 <= m < 60) or not sep:
        raise SimulatorSetupError(f"--day-time {text!r}: expected HH:MM (UTC), e.g. 19:00")
    now = time.time()
    return (now - now % 86400) + h * 3600 + m * 60 - now


def build(*, seed: int = 1, matches: int = 400, scenarios: list[str] = (), at: str = "00:00",
          chaos_flags: list[str] = (), host: str = "127.0.0.1", port: int = 0, user: str | None = None,
          secret: str | None = None, rate: int | None = None, clock=None,
          day_time: str | None = None) -> SimulatorServer:
    if matches < 0:
        raise SimulatorSetupError(f"--matches {matches}: must be 0 or more")
    if rate is not None and rate < 0:
        raise SimulatorSetupError(f"--rate {rate}: must be 0 (no limit) or more")
    clock = clock or WallClock(_day_time_offset(day_time) if day_time else 0.0)
    offset = scenario_mod.parse_at(at)
    played = [(scenario_mod.load(resolve_scenario(s)), offset) for s in scenarios]
    chaos = Chaos()
    chaos.update(parse_flags(list(chaos_flags)))
    # With scenarios the world is the day they were placed in; without, it rolls on at midnight.
    world = World(seed=seed, matches=matches, clock=clock, scenarios=played) if played else \
        RollingDays(seed, matches, clock)
    return SimulatorServer(world, clock, host=host, port=port, user=user or DEFAULT_USER,
                           secret=secret or DEFAULT_SECRET, rate=DEFAULT_RATE if rate is None else rate,
                           chaos=chaos, seed=seed)
