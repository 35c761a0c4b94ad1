"""The `tlive` commentary lines of the simulator's matches: the default text of each event kind
(an event's own `text` replaces it). Plain functions and constants; runs in whatever greenlet
calls it, never blocks, no I/O, raises nothing.
"""
from __future__ import annotations


def _name(p: tuple | None) -> str:
    return p[1] if p else "a player"


SILENT = frozenset({"stats", "shot_on", "shot_off", "note"})
"""Kinds with no incident and no default text line."""
_FIXED_TEXT = {
    "second_half": "The second half is under way", "extra_time": "Extra time is under way",
    "extra_time_second_half": "The second half of extra time is under way", "delay": "The kick-off is delayed",
    "cancel": "The match is cancelled", "interrupt": "The match is interrupted", "abandon": "The match is abandoned",
    "lineup": "The line-ups are out",
}
_VAR_REASON = {1: "goal awarded", 2: "goal not awarded", 3: "penalty awarded", 4: "penalty not awarded",
               5: "red card given", 6: "card upgrade", 7: "mistaken identity", 8: "corner awarded",
               9: "corner not awarded"}
_VAR_RESULT = {1: "goal confirmed", 2: "goal cancelled", 3: "penalty confirmed", 4: "penalty cancelled",
               5: "red card confirmed", 6: "red card cancelled", 7: "card upgrade confirmed",
               8: "card upgrade cancelled", 9: "the original decision stands", 10: "the original decision changed",
               11: "corner confirmed", 12: "corner cancelled"}
_PLAYER_TEXT = {
    "penalty_missed": "Penalty missed by {p} ({team})", "yellow": "Yellow card: {p} ({team})",
    "red": "Red card: {p} ({team})", "card_upgrade": "Card upgraded to red: {p} ({team})",
    "shootout_goal": "Shoot-out: {p} ({team}) scores, {sh}-{sa}",
    "shootout_miss": "Shoot-out: {p} ({team}) misses, {sh}-{sa}",
}
_SCORE_TEXT = {
    "half_time": "Half-time: {score}", "end_of_regular_time": "End of regular time: {score}. Extra time to come",
    "extra_time_break": "End of the first half of extra time: {score}",
    "penalties": "{score}: a penalty shoot-out decides it",
}


def default_text(tl, ev, home: list, away: list, et: bool) -> str:
    """The tlive line of event `ev` of timeline `tl` (home/away: the score arrays after it)."""
    k = ev.kind
    if k in _FIXED_TEXT:
        return _FIXED_TEXT[k]
    team = tl.home_name if ev.side == 1 else tl.away_name
    if k in _PLAYER_TEXT:
        return _PLAYER_TEXT[k].format(p=_name(ev.player), team=team, sh=home[6], sa=away[6])
    if k == "corner":
        return f"Corner to {team}"
    if k == "substitution":
        return f"Substitution, {team}: {_name(ev.player_in)} on for {_name(ev.player)}"
    if k == "injury_time":
        return f"{ev.minutes} minute{'s' if ev.minutes != 1 else ''} of added time"
    if k == "var":
        return f"VAR check: {_VAR_REASON.get(ev.reason, 'an incident')}, {_VAR_RESULT.get(ev.result, 'decision pending')}"
    if k == "kickoff":
        return f"Kick-off: {tl.home_name} v {tl.away_name}"
    if k == "resume":
        return "A new kick-off time is set" if ev.match_time else "The match resumes"
    i = 5 if et else 0
    score = f"{tl.home_name} {home[i]}-{away[i]} {tl.away_name}"
    if k in _SCORE_TEXT:
        return _SCORE_TEXT[k].format(score=score)
    if k == "end":
        return f"Full time: {score}" + (f" (penalties {home[6]}-{away[6]})" if home[6] or away[6] else "")
    if k in ("goal", "penalty_goal", "own_goal"):
        how = {"goal": "Goal!", "penalty_goal": "Goal from the penalty spot!", "own_goal": "Own goal!"}[k]
        assist = f", assisted by {_name(ev.assist)}" if ev.assist and k != "own_goal" else ""
        return f"{how} {_name(ev.player)} ({team}){assist}. {score}"
    return ""
