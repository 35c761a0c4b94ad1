"""Team statistics of the simulated world: `match/team_stats/list` and
`match/half/team_stats/detail` results in the documented shapes.

Both are read off a match's timeline, from the same technical statistics its detail_live items
carry (STATUS_CODE.md's technical and half-time statistic ids agree for these: 2 corners,
3 yellow, 4 red, 21 shots on target, 22 off target, 23 attacks, 24 dangerous attacks, 25
possession), plus goals from the score, so every endpoint tells one story. The list holds the
matches whose statistics changed in the last 120 s (an event of theirs in that window while they
had statistics); a team's entry has every documented field: those the timeline models (goals,
cards, corners, shots, possession) from it, the rest as plausible counts per minute played. Half statistics exist once a half is over: `p1` from half-time on, `ft` and `p2` (full
time less the first half; possession is the full-time share) once the match has ended.

Runs in the server's request greenlets: pure CPU, never blocks, no I/O, raises nothing.
"""
from __future__ import annotations

import zlib

from goald.simulator.payloads import SimMatch
from goald.simulator.timeline import STATUS_OF

CHANGED_WINDOW_S = 120
POSSESSION = 25
# The documented team statistics the timeline does not model, as counts per minute played (drawn
# once from each name, so they are stable and plausible: passes dozens a half, woodwork rarely).
_PER_MINUTE = {
    "passes": 5.0, "passes_accuracy": 4.2, "key_passes": 0.12, "crosses": 0.2, "crosses_accuracy": 0.06,
    "long_balls": 0.6, "long_balls_accuracy": 0.3, "dribble": 0.15, "dribble_succ": 0.08, "clearances": 0.25,
    "blocked_shots": 0.04, "interceptions": 0.12, "tackles": 0.2, "tackles_succ": 0.13, "duels": 1.1,
    "duels_won": 0.55, "fouls": 0.13, "was_fouled": 0.13, "offsides": 0.025, "freekicks": 0.15,
    "big_chance_missed": 0.015, "big_chance_created": 0.03, "hit_woodwork": 0.005, "fastbreaks": 0.04,
    "fastbreak_shots": 0.015, "poss_losts": 1.2, "aerial_won": 0.18, "aerial_lost": 0.18, "ground_won": 0.4,
    "ground_lost": 0.4, "duel_won": 0.4, "duel_lost": 0.4,
}


def _snap_at(sim: SimMatch, t: float):
    k = sim.timeline.index_at(t)
    return sim.timeline.snap(k) if k else None


def _technical(sim: SimMatch, snap) -> dict[int, tuple[int, int]]:
    """Statistic id → (home, away) at that snap (goals as id 1); {} before the match has any."""
    out = {s["type"]: (s["home"], s["away"]) for s in sim.timeline.stats_list(snap)}
    if not out:
        return {}
    return {1: (snap.home[0], snap.away[0]), **out}


def team_stats_item(sim: SimMatch, now: float) -> dict | None:
    """The match's `match/team_stats/list` item, or None when its statistics did not change in
    the last 120 s."""
    snap = _snap_at(sim, now)
    if snap is None or now - snap.t >= CHANGED_WINDOW_S:
        return None
    tech = _technical(sim, snap)
    if not tech:
        return None
    names = {1: "goals", 2: "corner_kicks", 3: "yellow_cards", 4: "red_cards", 21: "shots_on_target",
             25: "ball_possession"}
    minutes = snap.stats[0] / 60
    teams = []
    for i, team in enumerate((sim.home, sim.away)):
        entry = {"team_id": team.id, **{names[k]: v[i] for k, v in tech.items() if k in names}}
        shots_on, shots_off = tech.get(21, (0, 0))[i], tech.get(22, (0, 0))[i]
        share = tech.get(POSSESSION, (50, 50))[i] / 50
        entry.update({
            "shots": shots_on + shots_off, "shots_ibox": (shots_on + shots_off + 1) // 2,
            "shots_obox": (shots_on + shots_off) // 2, "goals_against": tech[1][1 - i],
            "assists": max(0, tech[1][i] - 1), "penalty": 0, "yellow2red_cards": 0, "freekick_goals": 0,
            "fastbreak_goals": 0,
        })
        for name, rate in _PER_MINUTE.items():
            wobble = 0.8 + (zlib.crc32(f"{sim.id}{team.id}{name}".encode()) % 40) / 100
            entry[name] = int(minutes * rate * wobble * (share if name.startswith("pass") else 1.0))
        teams.append(entry)
    return {"id": sim.id, "stats": teams}


def half_stats(sim: SimMatch, now: float) -> dict:
    """The match's `match/half/team_stats/detail` results ({} when no half is over yet)."""
    tl = sim.timeline
    k = tl.index_at(now)
    half_time = ended = None
    for i in range(k):
        status = STATUS_OF[tl.snaps[i].phase]
        if status == 3 and half_time is None:
            half_time = tl.snaps[i]
        if status == 8:
            ended = tl.snaps[i]
            break
    out: dict = {}
    p1 = _technical(sim, half_time) if half_time is not None else {}
    if p1:
        out["p1"] = {str(t): list(v) for t, v in p1.items()}
    ft = _technical(sim, ended) if ended is not None else {}
    if ft:
        out["ft"] = {str(t): list(v) for t, v in ft.items()}
        if p1:
            out["p2"] = {str(t): (list(v) if t == POSSESSION else [max(0, v[0] - p1.get(t, (0, 0))[0]),
                                                                   max(0, v[1] - p1.get(t, (0, 0))[1])])
                         for t, v in ft.items()}
    return out

