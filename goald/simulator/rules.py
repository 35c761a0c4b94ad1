"""The match rules the simulator plays by: phases and the statuses they show, which event may
happen in which phase (DOMAIN.md's status flow), incident and stats type ids (STATUS_CODE.md),
and the provider's minute formula with the `minute_text` it gives (DOMAIN.md, Match rules).

Constants and pure functions; runs in whatever greenlet calls it, never blocks, no I/O, raises
nothing.
"""
from __future__ import annotations

# --- phases and statuses ----------------------------------------------------------------------

NS, DELAY, H1, HT, H2, BT0, ET1, BT, ET2, PEN, FT, INT, ABD, CAN = range(14)
PHASES = ("NS", "DELAY", "1H", "HT", "2H", "BT0", "ET1", "BT", "ET2", "PEN", "FT", "INT", "ABD", "CAN")
"""BT0: the break between regular time and extra time (status stays 4); BT: extra time's break."""
STATUS_OF = (1, 9, 2, 3, 4, 4, 5, 5, 5, 7, 8, 10, 11, 12)
LIVE_STATUSES = frozenset({2, 3, 4, 5, 7})
ACTIVE_S = 7200  # detail_live: matches active in the last 120 minutes
FROZEN_TEXT = {NS: "", DELAY: "DELAY", HT: "HT", BT0: "BT", BT: "BT", PEN: "PEN", FT: "FT", INT: "INT",
               ABD: "ABD", CAN: "CAN"}
# in-play phase -> (index of its kick-off in kos, first minute, last regular minute, match second at ko)
CLOCK = {H1: (0, 1, 45, 0), H2: (1, 46, 90, 2700), ET1: (2, 91, 105, 5400), ET2: (3, 106, 120, 6300)}
IN_PLAY = frozenset(CLOCK)

# incident types (STATUS_CODE.md, technical statistics)
GOAL, YELLOW, RED, PENALTY, SUBSTITUTION, MIDFIELD, END = 1, 3, 4, 8, 9, 11, 12
CARD_UPGRADE, PENALTY_MISSED, OWN_GOAL, INJURY_TIME, OT_END, PK_END, VAR = 15, 16, 17, 19, 26, 27, 28
SHOOTOUT_GOAL, SHOOTOUT_MISS = 29, 30
STAT_TYPES = (2, 3, 4, 21, 22, 23, 24, 25)  # corners, yellow, red, shots on/off, attacks, dangerous, possession

# --- which event may happen when --------------------------------------------------------------

_PLAY = {H1, H2, ET1, ET2}
_BREAKS = {HT, BT0, BT}
_ANY = set(range(14))
ALLOWED: dict[str, set[int]] = {
    "kickoff": {NS, DELAY}, "half_time": {H1}, "second_half": {HT}, "end_of_regular_time": {H2},
    "extra_time": {H2, BT0}, "extra_time_break": {ET1}, "extra_time_second_half": {BT},
    "penalties": {H2, BT0, ET2}, "end": {H2, ET2, PEN, INT},
    "delay": {NS}, "cancel": {NS, DELAY}, "interrupt": _PLAY, "resume": {DELAY, INT},
    "abandon": _PLAY | _BREAKS | {INT},
    "goal": _PLAY, "own_goal": _PLAY, "penalty_goal": _PLAY, "penalty_missed": _PLAY, "corner": _PLAY,
    "shot_on": _PLAY, "shot_off": _PLAY, "var": _PLAY | {PEN}, "injury_time": _PLAY, "stats": _PLAY,
    "yellow": _PLAY | _BREAKS | {PEN}, "red": _PLAY | _BREAKS | {PEN}, "card_upgrade": _PLAY | _BREAKS | {PEN},
    "substitution": _PLAY | _BREAKS, "shootout_goal": {PEN}, "shootout_miss": {PEN},
    "note": _ANY, "lineup": _ANY,
}
KINDS = frozenset(ALLOWED) | {"scheduled"}
CLOCK_ONLY = frozenset({"stats", "shot_on", "shot_off"})
TEAM_KINDS = frozenset({"goal", "own_goal", "penalty_goal", "penalty_missed", "corner", "shot_on", "shot_off",
                        "yellow", "red", "card_upgrade", "substitution", "shootout_goal", "shootout_miss"})
START = {"kickoff": H1, "second_half": H2, "extra_time": ET1, "extra_time_second_half": ET2}
INCIDENT_TYPE = {"goal": GOAL, "own_goal": OWN_GOAL, "penalty_goal": PENALTY, "penalty_missed": PENALTY_MISSED,
                  "yellow": YELLOW, "red": RED, "card_upgrade": CARD_UPGRADE, "substitution": SUBSTITUTION,
                  "var": VAR, "injury_time": INJURY_TIME, "shootout_goal": SHOOTOUT_GOAL,
                  "shootout_miss": SHOOTOUT_MISS}


def clock_minute(phase: int, kos: tuple, t: float) -> tuple[int, int, int]:
    """(minute as the formula gives it, minute capped at the half's end, added minutes) of an
    in-play phase at t."""
    ko_index, first, cap, _ = CLOCK[phase]
    m = int((t - kos[ko_index]) // 60) + first
    return (m, cap, m - cap) if m > cap else (m, m, 0)


def short_status(phase: int, ended_from: int | None) -> str:
    """API-Football's short status of a phase (FT, AET or PEN once ended, by how it ended)."""
    p = phase
    if p == FT:
        return {PEN: "PEN", ET2: "AET"}.get(ended_from, "FT")
    return {NS: "NS", DELAY: "PST", H1: "1H", HT: "HT", H2: "2H", BT0: "BT", ET1: "ET", BT: "BT", ET2: "ET",
            PEN: "P", INT: "INT", ABD: "ABD", CAN: "CANC"}[p]


def minute_text_of(phase: int, kos: tuple, t: float, frozen: tuple) -> str:
    """`minute_text` per DOMAIN.md: `12'`, `45+3'`, `90+N'`, `105+N'`, `120+N'` in play, else the
    freeze text (HT, BT, PEN, FT, DELAY, INT, ABD, CAN; empty before kick-off)."""
    if phase not in IN_PLAY:
        return FROZEN_TEXT[phase]
    m, cap, added = clock_minute(phase, kos, t)
    return f"{cap}+{added}'" if added else f"{m}'"
