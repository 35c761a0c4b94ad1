"""goald's side of bench/tick_precision.py's load phase: 2,000 busy match-like actors fed by a provider.

Imported by tick_precision.py after gevent's monkey-patching (pykka ThreadingActors are greenlets).
The work itself (`Provider`, `apply_update`, the feeding schedule `buckets`, `calibrate`) is in
bench/_tick_work.py, shared with APScheduler's process (bench/_tick_apscheduler.py), which runs the
same work on the same schedule with threads.

- `feeder` is one greenlet: every 10 ms it sends `Update(snapshot)` to the 1 % of the matches whose
  random phase falls in that slot, so every match gets one update per second at its own phase
  (2,000 tells/s in total, spread evenly: no synchronised burst);
- `MatchActor` (a SupervisedActor under a `matches` supervisor, like goald's other actors) applies
  the snapshot (`apply_update`: parse, diff, update its state, render a delta) into a shared dict
  standing in for the cache, and every `db_every`-th message writes one small UPDATE through
  goald's pool.
"""
from __future__ import annotations

import random
import time

import gevent

from goald.actors.base import SupervisedActor
from _tick_work import Provider, Update, apply_update, buckets, calibrate, feed  # noqa: F401  (re-exported)


class MatchActor(SupervisedActor):
    kind = "match"

    def __init__(self, *, name: str, parent, match_id: int, pool, db_every: int, counters: dict, cache: dict):
        super().__init__(name=name, parent=parent)
        self.match_id, self.pool, self.db_every = match_id, pool, db_every
        self.counters, self.cache = counters, cache
        self.state: dict = {}
        # A random start for the write counter: the matches' writes are spread, not one burst.
        self.n = random.randrange(db_every) if db_every else 0

    def handle(self, message):
        if not isinstance(message, Update):
            return super().handle(message)
        delta = apply_update(self.state, message.payload)
        if delta is not None:
            self.cache[self.match_id] = delta
        self.n += 1
        self.counters["messages"] += 1
        if self.db_every and self.n % self.db_every == 0:
            s = self.state
            try:
                with self.pool.connection(timeout_s=2.0) as conn, conn.cursor() as cur:
                    cur.execute("UPDATE bench_matches SET status = %s, minute = %s, home = %s, away = %s, "
                                "updated_at = now() WHERE id = %s",
                                (s["status"], s["minute"], s["score"]["home"], s["score"]["away"], self.match_id))
                    conn.commit()
                self.counters["db_writes"] += 1
            except Exception:  # a load actor must not crash the bench; the count shows it
                self.counters["db_errors"] += 1
        return None


def feeder(refs: list, provider: Provider, counters: dict, slots: int = 100, tick_s: float = 0.01) -> None:
    """Each match once per `slots * tick_s` seconds, at a random phase (bench/_tick_work.py `feed`)."""
    feed(len(refs), lambda i, update: refs[i].tell(update), provider, counters, gevent.sleep,
         slots=slots, tick_s=tick_s)
