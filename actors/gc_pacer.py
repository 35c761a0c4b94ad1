"""GC pacing: Python's cyclic collector, moved off the instants when jobs start.

Left automatic, the collector runs whenever allocations cross its threshold, which under load is
often in the burst of job starts at a whole second: bench/tick_precision.py measured gen0/gen1
passes of 10-17 ms and full passes of 75-125 ms landing on job starts (load p99 13-20 ms). Every
occurrence is a whole second and its claim is dispatched CLAIM_LEAD_S before, so the stretch
around x.300 s is quiet. `run()` turns automatic collection off and collects there each second:
gen0 every second, gen1 every 10 s, everything every 60 s, skipping a second whose next dispatch
is closer than MIN_QUIET_S. `restore()` turns automatic collection back on.

`freeze_once()` moves what exists at start-up (modules, configuration) out of every later full
pass with `gc.freeze()`, once per process, called by the composition root before the actor tree
starts: freezing at every clock start would pin every actor alive at that moment forever (their
garbage never collected after they stop), and a restart would pin more each time.

`run()` is a helper greenlet of the clock actor (the clock knows the next dispatch); the clock's
`stopping()` calls `restore()`, on a normal stop and after a crash alike. Nothing here raises.
"""
from __future__ import annotations

import gc
import time
from typing import Callable

import gevent

PHASE_S = 0.3          # collect at x.300 s
MIN_QUIET_S = 0.2      # ... unless the clock dispatches within this
GEN1_EVERY = 10
FULL_EVERY = 60


_frozen = False


def freeze_once() -> bool:
    """gc.freeze() the start-up objects, the first time only; True when it froze now."""
    global _frozen
    if _frozen:
        return False
    gc.collect()
    gc.freeze()
    _frozen = True
    return True


def run(next_dispatch_at: Callable[[], float], full_every: int | None = None) -> None:
    full_every = full_every or FULL_EVERY
    gc.disable()
    n = 0
    try:
        while True:
            gevent.sleep(1.0 + PHASE_S - time.time() % 1.0)
            if next_dispatch_at() - time.time() < MIN_QUIET_S:
                continue
            n += 1
            gc.collect(2 if n % full_every == 0 else 1 if n % GEN1_EVERY == 0 else 0)
    finally:
        restore()


def restore() -> None:
    gc.enable()
