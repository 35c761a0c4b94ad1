"""The synthetic match load of bench/tick_precision.py, shared by both schedulers' processes.

Pure Python, no gevent and no goald imports: bench/_tick_load.py (goald's process, patched; one
pykka actor per match) and bench/_tick_apscheduler.py (APScheduler's process, plain threads) both
run exactly this work on exactly this schedule.

- `Provider` keeps a simulated state per match (status, minute, score, an events list that grows,
  team statistics, two line-ups with player ratings) and renders a full snapshot as JSON, as a
  football data provider's push does (about 3 KB);
- `apply_update` is what a match's handler does with one snapshot: parse, diff against its state
  (status, minute, score, new events by id, changed statistics, changed player ratings), update
  the state and derived tallies, render a delta (JSON);
- `buckets` is the feeders' schedule: every match once per `slots * tick_s` (1 s) at its own
  random phase, 1 % of the matches per 10-ms slot (no synchronised burst);
- `calibrate()` measures the per-message CPU cost of `snapshot` and `apply_update` (the median).
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

STATUSES = ("1H", "HT", "2H")
EVENT_TYPES = ("goal", "yellow", "red", "sub", "var", "corner", "shot")
POSITIONS = ("GK", "DF", "DF", "DF", "DF", "MF", "MF", "MF", "FW", "FW", "FW")


@dataclass(frozen=True)
class Update:
    payload: str


class Provider:
    """Simulated provider state for `n` matches; `snapshot(i)` advances match i and renders it."""

    def __init__(self, n: int, seed: int = 7):
        self.rng = random.Random(seed)
        self.matches = [self._new(i) for i in range(n)]

    def _new(self, i: int) -> dict:
        rng = self.rng
        m = {
            "id": 100000 + i, "league": rng.randint(1, 40), "status": rng.choice(STATUSES),
            "minute": rng.randint(1, 90), "score": {"home": 0, "away": 0}, "events": [], "next_event": 1,
            "stats": {f"{side}_{k}": rng.randint(0, 10) for side in ("home", "away")
                      for k in ("shots", "on_target", "corners", "fouls", "offsides", "saves")},
            "lineups": {side: [{"id": i * 100 + j + (50 if side == "away" else 0), "name": f"Player {i}-{side}-{j}",
                                "pos": POSITIONS[j], "rating": round(rng.uniform(5.5, 8.0), 1)}
                               for j in range(11)] for side in ("home", "away")},
        }
        m["stats"]["home_possession"] = 50
        m["stats"]["away_possession"] = 50
        for _ in range(rng.randint(0, 12)):
            self._event(m)
        return m

    def _event(self, m: dict) -> None:
        rng = self.rng
        kind = rng.choice(EVENT_TYPES)
        team = rng.choice(("home", "away"))
        m["events"].append({"id": m["id"] * 1000 + m["next_event"], "minute": m["minute"], "type": kind, "team": team,
                            "player": rng.choice(m["lineups"][team])["id"], "detail": None})
        m["next_event"] += 1
        if kind == "goal":
            m["score"][team] += 1

    def snapshot(self, i: int) -> str:
        m = self.matches[i]
        rng = self.rng
        if rng.random() < 0.02:
            m["minute"] = min(m["minute"] + 1, 95)
        if rng.random() < 0.03 and len(m["events"]) < 30:
            self._event(m)
        if rng.random() < 0.3:
            k = rng.choice(list(m["stats"]))
            if not k.endswith("possession"):
                m["stats"][k] += 1
        if rng.random() < 0.2:
            p = rng.choice(m["lineups"][rng.choice(("home", "away"))])
            p["rating"] = round(min(10.0, max(3.0, p["rating"] + rng.choice((-0.1, 0.1)))), 1)
        return json.dumps({"id": m["id"], "league": m["league"], "status": m["status"], "minute": m["minute"],
                           "score": m["score"], "events": m["events"], "stats": m["stats"], "lineups": m["lineups"],
                           "ts": time.time()})


def apply_update(state: dict, raw: str) -> str | None:
    """One provider update: parse, diff against `state`, update it; the delta as JSON (or None)."""
    data = json.loads(raw)
    delta: dict = {}
    for key in ("status", "minute"):
        if state.get(key) != data[key]:
            delta[key] = state[key] = data[key]
    score = data["score"]
    if state.get("score") != score:
        delta["score"] = state["score"] = score
    seen = state.setdefault("seen", set())
    tally = state.setdefault("tally", {"home": {}, "away": {}})
    new = [ev for ev in data["events"] if ev["id"] not in seen]
    for ev in new:
        seen.add(ev["id"])
        side = tally[ev["team"]]
        side[ev["type"]] = side.get(ev["type"], 0) + 1
    if new:
        delta["events"] = new
    old_stats = state.get("stats") or {}
    changed = {k: v for k, v in data["stats"].items() if old_stats.get(k) != v}
    if changed:
        delta["stats"] = changed
        state["stats"] = data["stats"]
    ratings = state.setdefault("ratings", {})
    moved = []
    for side, players in data["lineups"].items():
        for p in players:
            if ratings.get(p["id"]) != p["rating"]:
                ratings[p["id"]] = p["rating"]
                moved.append((p["id"], p["rating"]))
    if moved:
        delta["ratings"] = moved
    st = data["stats"]
    shots = st["home_shots"] + st["away_shots"]
    state["derived"] = {
        "shot_share": (st["home_shots"] / shots) if shots else 0.5,
        "momentum": sum(1 if e["team"] == "home" else -1 for e in data["events"][-10:]),
        "goals": score["home"] + score["away"],
    }
    if not delta:
        return None
    delta["id"] = data["id"]
    delta["ts"] = data["ts"]
    return json.dumps(delta)


def calibrate(n: int = 3000) -> dict:
    """Median CPU cost (µs) of `provider.snapshot` and of `apply_update` per message, measured
    outside the hub, on warmed-up states (every match seen once before)."""
    prov = Provider(200, seed=3)
    states = [{} for _ in range(200)]
    for i in range(200):
        apply_update(states[i], prov.snapshot(i))
    snap, work = [], []
    for j in range(n):
        i = j % 200
        t0 = time.perf_counter()
        raw = prov.snapshot(i)
        t1 = time.perf_counter()
        apply_update(states[i], raw)
        t2 = time.perf_counter()
        snap.append(t1 - t0)
        work.append(t2 - t1)
    snap.sort()
    work.sort()
    return {"snapshot_us": round(snap[n // 2] * 1e6, 1), "apply_us": round(work[n // 2] * 1e6, 1),
            "payload_bytes": len(prov.snapshot(0))}


def buckets(n: int, slots: int = 100) -> list:
    """The matches (indices) fed in each of the `slots` ticks of a feeder's cycle."""
    order = list(range(n))
    random.Random(11).shuffle(order)
    return [order[k::slots] for k in range(slots)]


def feed(n: int, send, provider: "Provider", counters: dict, sleep, running=lambda: True,
         slots: int = 100, tick_s: float = 0.01) -> None:
    """The feeding schedule both processes use: every `tick_s` the 1 % of the `n` matches of the
    current slot get `send(i, Update(snapshot))`; absolute tick targets, and a late tick is counted
    (`feeder_behind`) rather than made up. `sleep` is the caller's: gevent's or time's."""
    slot_matches = buckets(n, slots)
    next_t = time.time()
    k = 0
    while running():
        for i in slot_matches[k % slots]:
            send(i, Update(provider.snapshot(i)))
        counters["sent"] += len(slot_matches[k % slots])
        k += 1
        next_t += tick_s
        delay = next_t - time.time()
        if delay > 0:
            sleep(delay)
        else:
            counters["feeder_behind"] += 1
            sleep(0)
