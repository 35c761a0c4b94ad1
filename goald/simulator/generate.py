"""The generated day's matches: when each one kicks off and what happens in it.

Owns the coverage guarantee (docs/simulator.md): `plan_day` lays out deterministic rotations
first, so that at every instant of the day some match is in each state, then spreads ordinary
matches over the day with a realistic hourly profile:
- a cup tie every 14 minutes from 21:00 the evening before, each going to extra time and
  penalties on a fixed frame (kick-off, second half at +63:00, extra time at +117:00, shoot-out at
  +152:00; the stoppage, half-time and break lengths vary inside the frame). The frame makes every
  phase of a tie last longer than the 14-minute step, so ties cover 1, 2, 3, 4, 5, 7 and 8;
- a delayed kick-off every 60 minutes (status 9 for 61-90 minutes, then kick-off, a new time or
  a cancellation), an interruption every 45 minutes (status 10 for 46-60 minutes, then play
  resumes, the match is cut in half (11) or ended (8)), two cancelled matches (one the day
  before, so status 12 exists from 00:00) and one match of the evening before (20:00), ended by
  00:00.
`MIN_FULL_COVERAGE` is how many matches the rotations take; below it the rotations are thinned
and the guarantee is gone. `match_events` turns one plan into timeline events.

Runs in whatever greenlet calls it (World's constructor): pure CPU, never blocks, no I/O; its
randomness comes only from the `random.Random` streams passed in.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from goald.simulator.timeline import Event

TIE_STEP, TIE_FIRST = 840, -3 * 3600
TIE_SECOND_HALF, TIE_EXTRA_TIME, TIE_PENALTIES = 3780, 7020, 9120
DELAY_STEP, DELAY_FIRST, DELAY_MIN = 3600, -3600, 3660
INT_STEP, INT_FIRST, INT_MIN = 2700, -2700, 2760
DAY = 86400
N_TIES = (DAY + TIE_STEP - TIE_FIRST) // TIE_STEP + 1
N_DELAYS = (DAY - DELAY_MIN - DELAY_FIRST) // DELAY_STEP + 2
N_INTERRUPTS = (DAY - INT_MIN - INT_FIRST) // INT_STEP + 2
MIN_FULL_COVERAGE = N_TIES + N_DELAYS + N_INTERRUPTS + 3
HOURLY = (3, 2, 1, 1, 1, 1, 1, 2, 3, 4, 6, 8, 10, 12, 12, 13, 15, 17, 19, 19, 15, 10, 6, 4)


@dataclass
class Plan:
    role: str          # tie, delayed, interrupted, cancelled, ordinary
    n: int             # ordinal within the role: drives the rotations
    match_time: int    # scheduled kick-off
    anchor: int = 0    # tie: kick-off; delayed: delay start; interrupted: interruption start; cancelled: when


def plan_day(rng: random.Random, day: int, matches: int) -> list[Plan]:
    required = [Plan("tie", i, day + TIE_FIRST + i * TIE_STEP, day + TIE_FIRST + i * TIE_STEP)
                for i in range(N_TIES)]
    for j in range(N_DELAYS):
        start = day + DELAY_FIRST + j * DELAY_STEP
        required.append(Plan("delayed", j, start + 600, start))
    for j in range(N_INTERRUPTS):
        required.append(Plan("interrupted", j, 0, day + INT_FIRST + j * INT_STEP))
    required += [Plan("cancelled", 0, day + 6 * 3600, day - 20 * 3600),
                 Plan("cancelled", 1, day + 17 * 3600, day + 9 * 3600),
                 Plan("ordinary", 0, day - 4 * 3600)]  # over by 22:30: an ended match at 00:00
    if matches < len(required):
        step = len(required) / max(1, matches)
        return [required[int(i * step)] for i in range(matches)]
    plans = required
    hours = list(range(-4, 24))
    weights = [HOURLY[h % 24] for h in hours]
    for n in range(matches - len(required)):
        hour = rng.choices(hours, weights)[0]
        plans.append(Plan("ordinary", n, day + hour * 3600 + rng.choice((0, 15, 30, 45)) * 60))
    return plans


def poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class MatchGen:
    """Events of one match (see `match_events`). Squads are lists of (id, name, position)."""

    def __init__(self, rng: random.Random, squads: dict, corners: bool, strengths: tuple[float, float]):
        self.rng, self.corners = rng, corners
        self.on = {s: list(squads[s][:11]) for s in (1, 2)}
        self.bench = {s: list(squads[s][11:]) for s in (1, 2)}
        self.subs_left = {1: 5, 2: 5}
        self.came_on: list = []
        self.booked: set = set()
        avg = (strengths[0] + strengths[1]) / 2
        self.lam = {1: 1.45 * strengths[0] / avg, 2: 1.15 * strengths[1] / avg}
        self.events: list[Event] = []

    def ri(self, a: int, b: int) -> int:
        """rng.randint(a, b), cheaper (the generator draws hundreds of thousands)."""
        return a + int(self.rng.random() * (b - a + 1))

    def add(self, t: int, kind: str, **kw) -> None:
        self.events.append(Event(int(t), kind, **kw))

    def _pick(self, side: int, weights: dict, exclude=()) -> tuple[str, str]:
        pool = [p for p in self.on[side] if p not in exclude and weights.get(p[2], 0)] or self.on[side]
        p = self.rng.choices(pool, [weights.get(q[2], 1) for q in pool])[0]
        return p[0], p[1]

    def half(self, start: int, length: int, nominal: int, second: bool, goals: dict | None = None,
             late_goal: int | None = None, interrupt: tuple | None = None) -> bool:
        """Play one half of `length` play seconds from `start`; `goals` {side: n} forces the
        goals, `late_goal` is a play offset with a home or away goal, `interrupt` is
        (play offset, length, outcome: resume/abandon/end). False when the match stopped."""
        rng, f = self.rng, length / 2700
        ri = self.ri
        plan: list[tuple[int, str, int]] = []
        for side in (1, 2):
            n = goals[side] if goals is not None else poisson(rng, self.lam[side] * length / 5400)
            plan += [(ri(40, length - 25), "goal", side) for _ in range(n)]
            if self.corners:
                plan += [(ri(20, length - 10), "corner", side) for _ in range(poisson(rng, 2.4 * f))]
            plan += [(ri(60, length - 10), "yellow", side)
                     for _ in range(poisson(rng, (1.1 if second else 0.7) * f))]
            plan += [(ri(20, length - 10), "shot_on", side) for _ in range(poisson(rng, 2.0 * f))]
            plan += [(ri(20, length - 10), "shot_off", side) for _ in range(poisson(rng, 3.2 * f))]
            if rng.random() < 0.03:
                plan.append((ri(300, length - 30), "red", side))
            if rng.random() < 0.04:
                plan.append((ri(300, length - 30), "penalty_missed", side))
            if second and nominal == 2700:
                plan += [(rng.choice((ri(900, 1500), ri(1500, 2500))), "substitution", side)
                         for _ in range(ri(3, 5))]
            elif nominal == 900 and rng.random() < 0.5:
                plan.append((ri(60, 700), "substitution", side))
        if late_goal is not None:
            plan.append((late_goal, "goal", rng.choice((1, 2))))
        if rng.random() < 0.1:
            plan.append((ri(300, length - 60), "var", 0))
        stoppage = max(1, (length - nominal) // 60)
        plan.append((nominal - ri(10, 40), "injury_time", 0))
        plan.sort()
        times = [0] + [p[0] for p in plan] + [length]
        for a, b in zip(times, times[1:]):  # the provider's stats keep moving: no gap of 105 s or more
            t = a + ri(70, 100)
            while t < b - 5:
                plan.append((t, "stats", 0))
                t += ri(70, 100)
        plan.sort()
        ip, il, outcome = interrupt if interrupt else (length + 1, 0, "resume")
        interrupted, first = False, len(self.events)
        for offset, kind, side in plan:
            if offset >= ip and not interrupted:
                interrupted = True
                self._sort(first)
                self.add(start + ip, "interrupt")
                self.add(start + ip + il, outcome)
                if outcome != "resume":
                    return False
                first = len(self.events)
            t = start + offset + (il if interrupted else 0)
            self._play(t, kind, side, stoppage, start + (ip - 5 if offset < ip else length + il - 5))
        self._sort(first)
        if not interrupted and interrupt:
            self.add(start + ip, "interrupt")
            self.add(start + ip + il, outcome)
            return outcome == "resume"
        return True

    def _sort(self, first: int) -> None:
        """Events from `first` in time order (stable: a VAR check stays after its goal)."""
        self.events[first:] = sorted(self.events[first:], key=lambda e: e.t)

    def _play(self, t: int, kind: str, side: int, stoppage: int, limit: int) -> None:
        rng = self.rng
        if kind == "goal":
            other = 3 - side
            roll = rng.random()
            if roll < 0.04:
                self.add(t, "own_goal", side=side, player=self._pick(other, {"D": 4, "M": 2, "G": 1}))
                return
            scorer = self._pick(side, {"F": 6, "M": 3, "D": 1})
            if roll < 0.12:
                self.add(t, "penalty_goal", side=side, player=scorer)
            else:
                assist = self._pick(side, {"F": 3, "M": 5, "D": 2}, exclude=[p for p in self.on[side]
                                                                               if p[0] == scorer[0]])
                self.add(t, "goal", side=side, player=scorer, assist=assist if rng.random() < 0.7 else None)
            if rng.random() < 0.12:
                self.add(min(limit, t + rng.randint(40, 100)), "var", side=side, reason=1, result=1)
        elif kind in ("yellow", "red"):
            who = self._pick(side, {"D": 4, "M": 4, "F": 2})
            if who[0] in self.booked:
                kind = "red"  # a second yellow: sent off
            self.add(t, kind, side=side, player=who, reason=rng.choice((1, 1, 1, 5, 7, 15, 19)))
            self.booked.add(who[0])
            if kind == "red":
                self.on[side] = [p for p in self.on[side] if p[0] != who[0]]
        elif kind == "substitution":
            if not self.subs_left[side] or not self.bench[side]:
                return
            out = self._pick(side, {"D": 2, "M": 3, "F": 3}, exclude=self.came_on)
            incoming = next((p for p in self.bench[side] if p[2] != "G"), self.bench[side][0])
            self.bench[side].remove(incoming)
            self.came_on.append(incoming)
            self.on[side] = [p for p in self.on[side] if p[0] != out[0]] + [incoming]
            self.subs_left[side] -= 1
            self.add(t, "substitution", side=side, player=out, player_in=(incoming[0], incoming[1]),
                     reason=rng.choice((4, 4, 4, 3)))
        elif kind == "penalty_missed":
            self.add(t, kind, side=side, player=self._pick(side, {"F": 5, "M": 3}))
        elif kind == "injury_time":
            self.add(t, kind, minutes=stoppage)
        elif kind == "var":
            self.add(t, kind, reason=4, result=9)
        else:
            self.add(t, kind, side=side)

    def notes(self, start: int, end: int, text: str, step: tuple[int, int] = (80, 110)) -> None:
        """tlive lines through a break, `step` seconds apart (the provider keeps talking)."""
        t = start + self.rng.randint(*step)
        while t < end - 20:
            self.add(t, "note", text=text)
            t += self.rng.randint(*step)

    def shootout(self, start: int) -> int:
        """Penalties from `start` (status 7 already): 5 rounds or more; returns the end time."""
        rng = self.rng
        first = rng.choice((1, 2))
        while True:
            kicks, score, taken = [], {1: 0, 2: 0}, {1: 0, 2: 0}
            while True:
                side = first if taken[1] == taken[2] else 3 - first
                scored = rng.random() < 0.76
                taken[side] += 1
                score[side] += scored
                kicks.append((side, scored))
                rounds = max(5, taken[1], taken[2])
                if score[1] > score[2] + rounds - taken[2] or score[2] > score[1] + rounds - taken[1]:
                    break
            if max(taken.values()) >= 5:
                break
        gaps = [rng.randint(62, 80) for _ in kicks]
        pause, tail = rng.randint(180, 240), rng.randint(20, 40)
        pause = max(pause, 900 + rng.randint(0, 90) - sum(gaps[1:]) - tail)
        self.notes(start, start + pause, "The teams gather for the penalty shoot-out")
        t = start + pause
        order = {s: [p for p in self.on[s] if p[2] != "G"] + [p for p in self.on[s] if p[2] == "G"] for s in (1, 2)}
        count = {1: 0, 2: 0}
        for (side, scored), gap in zip(kicks, [0] + gaps[1:]):
            t += gap
            taker = order[side][count[side] % len(order[side])]
            count[side] += 1
            self.add(t, "shootout_goal" if scored else "shootout_miss", side=side, player=(taker[0], taker[1]))
            if rng.random() < 0.03 and taker[0] not in self.booked:
                self.booked.add(taker[0])
                self.add(t + 15, "yellow", side=side, player=(taker[0], taker[1]), reason=15)
        return t + tail


def _stoppage(rng: random.Random, late: bool) -> int:
    if late:
        return 14
    return rng.choices((1, 2, 3, 4, 5, 6, 7, 8, 9), (8, 22, 24, 18, 12, 7, 4, 3, 2))[0]


def match_events(plan: Plan, rng: random.Random, gen: MatchGen, lineups: bool, knockout: bool) -> list[Event]:
    """The events of the match `plan` describes (see the module docstring)."""
    if plan.role == "cancelled":
        gen.add(plan.anchor, "cancel")
        return gen.events
    if plan.role == "tie":
        _tie(plan.anchor, rng, gen, lineups)
        return gen.events
    if plan.role == "delayed":
        start, length = plan.anchor, rng.randint(DELAY_MIN, 5400)
        if lineups:
            gen.add(plan.match_time - 3600, "lineup")
        gen.add(start, "delay")
        outcome = plan.n % 5
        if outcome == 4:
            gen.add(start + length, "cancel")
            return gen.events
        kickoff = start + length
        if outcome == 3:
            kickoff += 1800
            gen.add(start + length, "resume", match_time=kickoff)
        _ordinary(kickoff, rng, gen, knockout, 0)
        return gen.events
    if plan.role == "interrupted":
        second = plan.n % 2 == 0
        length = rng.randint(INT_MIN, 3600)
        outcome = ("resume", "resume", "resume", "resume", "abandon", "end")[plan.n % 6]
        s1, ht = _stoppage(rng, False), rng.randint(900, 1020)
        len1 = (45 + s1) * 60 + rng.randint(0, 55)
        offset = rng.randint(600, 1800) if second else rng.randint(1200, 2400)
        kickoff = plan.anchor - (len1 + ht + offset if second else offset)
        plan.match_time = kickoff
        if lineups:
            gen.add(kickoff - 3600, "lineup")
        _ordinary(kickoff, rng, gen, knockout, 0, s1=s1, ht=ht, extra=len1,
                  interrupt=(2 if second else 1, offset, length, outcome))
        return gen.events
    if lineups:
        gen.add(plan.match_time - 3600, "lineup")
    _ordinary(plan.match_time, rng, gen, knockout, plan.n)
    return gen.events


def _ordinary(kickoff: int, rng: random.Random, gen: MatchGen, knockout: bool, n: int, s1: int | None = None,
              ht: int | None = None, extra: int | None = None, interrupt: tuple | None = None) -> None:
    """A match from its kick-off: 90 minutes, extra time and penalties when a knockout is level.
    Rotations by n: every 12th a 14-minute first-half stoppage, every 9th a 14-minute second-half
    one with a goal at 90+13', every 40th gets stuck in the second half (no more updates)."""
    s1 = s1 if s1 is not None else _stoppage(rng, n % 12 == 5)
    late = n % 9 == 4
    len1 = extra if extra is not None else (45 + s1) * 60 + rng.randint(0, 55)
    len2 = (45 + _stoppage(rng, late)) * 60 + rng.randint(0, 55)
    ht = ht if ht is not None else rng.randint(900, 1020)
    cut = kickoff + len1 + ht + rng.randint(1500, 2400) if n % 40 == 17 else None
    gen.add(kickoff, "kickoff")
    i1 = interrupt[1:] if interrupt and interrupt[0] == 1 else None
    i2 = interrupt[1:] if interrupt and interrupt[0] == 2 else None
    if not gen.half(kickoff, len1, 2700, False, interrupt=i1):
        return
    end1 = kickoff + len1 + (i1[1] if i1 else 0)
    gen.add(end1, "half_time")
    gen.notes(end1, end1 + ht, "Half-time: the players are in the dressing rooms",
                  (300, 420))
    ko2 = end1 + ht
    gen.add(ko2, "second_half")
    if not gen.half(ko2, len2, 2700, True, late_goal=(3420 + rng.randint(0, 50)) if late else None, interrupt=i2):
        return
    end2 = ko2 + len2 + (i2[1] if i2 else 0)
    if cut is not None:
        gen.events = [e for e in gen.events if e.t <= cut]
        return
    home, away = _goals(gen.events)
    if not knockout or home != away:
        gen.add(end2, "end")
        return
    gen.add(end2, "end_of_regular_time")
    ko3 = end2 + rng.randint(240, 360)
    gen.notes(end2, ko3, "Extra time to come")
    gen.add(ko3, "extra_time")
    et1 = 900 + rng.randint(1, 3) * 60 + rng.randint(0, 40)
    gen.half(ko3, et1, 900, False)
    gen.add(ko3 + et1, "extra_time_break")
    ko4 = ko3 + et1 + rng.randint(60, 75)
    gen.add(ko4, "extra_time_second_half")
    et2 = 900 + rng.randint(1, 3) * 60 + rng.randint(0, 40)
    gen.half(ko4, et2, 900, True)
    home, away = _goals(gen.events)
    if home != away:
        gen.add(ko4 + et2, "end")
        return
    gen.add(ko4 + et2, "penalties")
    gen.add(gen.shootout(ko4 + et2), "end")


def _goals(events: list[Event]) -> tuple[int, int]:
    h = sum(1 for e in events if e.kind in ("goal", "penalty_goal", "own_goal") and e.side == 1)
    return h, sum(1 for e in events if e.kind in ("goal", "penalty_goal", "own_goal") and e.side == 2)


def _tie(kickoff: int, rng: random.Random, gen: MatchGen, lineups: bool) -> None:
    """A cup tie on the fixed frame (see the module docstring): level after 90 and 120 minutes."""
    if lineups:
        gen.add(kickoff - 3600, "lineup")
    total = rng.choices((0, 1, 2, 3), (30, 40, 25, 5))[0]
    split = {s: sum(rng.random() < 0.45 for _ in range(total)) for s in (1, 2)}
    et_goals = rng.choices((0, 1), (75, 25))[0]
    gen.add(kickoff, "kickoff")
    len1 = (45 + rng.randint(1, 2)) * 60 + rng.randint(0, 50)
    gen.half(kickoff, len1, 2700, False, goals=split)
    gen.add(kickoff + len1, "half_time")
    gen.notes(kickoff + len1, kickoff + TIE_SECOND_HALF, "Half-time: the players are in the dressing rooms",
                  (300, 420))
    ko2 = kickoff + TIE_SECOND_HALF
    gen.add(ko2, "second_half")
    pause = rng.randint(240, 360)
    len2 = TIE_EXTRA_TIME - TIE_SECOND_HALF - pause
    gen.half(ko2, len2, 2700, True, goals={s: total - split[s] for s in (1, 2)})
    gen.add(ko2 + len2, "end_of_regular_time")
    ko3 = kickoff + TIE_EXTRA_TIME
    gen.notes(ko2 + len2, ko3, "Extra time to come")
    gen.add(ko3, "extra_time")
    et1 = 900 + rng.randint(1, 2) * 60 + rng.randint(0, 30)
    first = {s: (rng.random() < 0.5) * et_goals for s in (1, 2)}
    gen.half(ko3, et1, 900, False, goals=first)
    gen.add(ko3 + et1, "extra_time_break")
    ko4 = ko3 + et1 + rng.randint(60, 75)
    gen.add(ko4, "extra_time_second_half")
    pens = kickoff + TIE_PENALTIES
    gen.half(ko4, pens - ko4, 900, True, goals={s: et_goals - first[s] for s in (1, 2)})
    gen.add(pens, "penalties")
    gen.add(gen.shootout(pens), "end")
