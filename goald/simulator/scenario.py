"""Scenario files: hand-written matches played on a clock of their own, beside the generated day
or alone, with the expectations that say what the feed must show when (docs/simulator.md has
the format).

A scenario's clock starts at its scheduled kick-off ("00:00"); times are `MM:SS` of elapsed real
time (minutes may exceed 99, e.g. "152:30"; a leading "-" is before the kick-off). Placing a
scenario at `at` seconds (World's `scenarios=[(scenario, at), ...]`) puts its kick-off at
`clock.now() - at`, so any window of a match can be watched in minutes.

`load(path)` reads and validates one file: the shape, every event against the match rules (by
building a trial timeline) and every expectation. Whatever is wrong raises `ScenarioError`, one
line naming the file and the offending match and event; nothing else escapes for any file
content. `parse_at("44:30")` is the clock parser (ScenarioError on bad text); `list_shipped()`
the files in goald/simulator/scenarios/.

Runs in whatever greenlet calls it; `load` reads its file (the only I/O), nothing here blocks
otherwise.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from goald.simulator.timeline import KINDS, TEAM_KINDS, Event, Timeline, TimelineError

SHIPPED = Path(__file__).resolve().parent / "scenarios"
_AT = re.compile(r"^(-?)(\d{1,4}):([0-5]\d)$")
EVENT_KEYS = {"at", "event", "team", "player", "assist", "assist2", "player_in", "player_out", "minutes", "reason",
              "result", "text", "match_time"}
EXPECT_KEYS = {"at", "status_id", "minute_text", "score", "home_scores", "away_scores", "kickoff", "in_detail_live"}
MATCH_KEYS = {"competition", "competition_type", "home", "away", "knockout", "corners", "timeline", "expect"}
EVENT_TYPES = sorted(KINDS - {"scheduled"})


class ScenarioError(ValueError):
    """A scenario file that cannot be played; the message is one line naming the file."""


def parse_at(text) -> int:
    """Seconds of "MM:SS" (or "-MM:SS"); ints and floats are taken as seconds."""
    if isinstance(text, bool):
        raise ScenarioError(f"bad time {text!r}: expected MM:SS, e.g. 44:30")
    if isinstance(text, (int, float)):
        return int(text)
    m = _AT.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ScenarioError(f"bad time {text!r}: expected MM:SS (minutes 0-9999, seconds 00-59), e.g. 44:30")
    seconds = int(m.group(2)) * 60 + int(m.group(3))
    return -seconds if m.group(1) else seconds


def format_at(seconds: int) -> str:
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    return f"{sign}{seconds // 60:02d}:{seconds % 60:02d}"


@dataclass
class ScenarioEvent:
    at: int
    kind: str
    fields: dict


@dataclass
class Expectation:
    at: int
    status_id: int | None = None
    minute_text: str | None = None
    score: list | None = None          # display score [home, away]
    home_scores: list | None = None
    away_scores: list | None = None
    kickoff: int | None = None         # scenario-clock second of the current half's kick-off; -1: none (0)
    in_detail_live: bool | None = None


@dataclass
class ScenarioMatch:
    competition: str
    competition_type: int               # 1 league, 2 cup
    home: str
    away: str
    knockout: bool
    corners: bool
    events: list[ScenarioEvent]
    expect: list[Expectation] = field(default_factory=list)

    def timeline_events(self, base: int, player_id) -> list[Event]:
        """The events at Unix second base + at; `player_id(team, name)` gives player ids."""
        out = []
        for e in self.events:
            f = e.fields
            side = {"home": 1, "away": 2}.get(f.get("team"), 0)
            team = self.home if side == 1 else self.away

            def person(key: str):
                return (player_id(team, f[key]), f[key]) if f.get(key) else None

            out.append(Event(base + e.at, e.kind, side=side,
                             player=person("player_out") if e.kind == "substitution" else person("player"),
                             assist=person("assist"), assist2=person("assist2"), player_in=person("player_in"),
                             minutes=f.get("minutes", 0), reason=f.get("reason", 0), result=f.get("result", 0),
                             text=f.get("text", ""),
                             match_time=base + parse_at(f["match_time"]) if f.get("match_time") else 0))
        return out

    @property
    def first_at(self) -> int:
        return min([0] + [e.at for e in self.events])


@dataclass
class Scenario:
    name: str
    path: Path
    description: str
    matches: list[ScenarioMatch]


def list_shipped() -> list[Path]:
    """The scenario files shipped with goald, by name."""
    return sorted(SHIPPED.glob("*.json"))


def load(path) -> Scenario:
    path = Path(path)
    label = path.name
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ScenarioError(f"{label}: cannot read it: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{label}: not UTF-8 text") from None
    except ValueError as e:
        raise ScenarioError(f"{label}: not JSON: {e}") from None
    try:
        return _scenario(raw, path, label)
    except ScenarioError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as e:  # a shape not foreseen
        raise ScenarioError(f"{label}: malformed: {type(e).__name__}: {e}") from None


def _fail(label: str, where: str, reason: str):
    raise ScenarioError(f"{label}: {where}: {reason}" if where else f"{label}: {reason}")


def _scenario(raw, path: Path, label: str) -> Scenario:
    if not isinstance(raw, dict):
        _fail(label, "", "the top level must be a JSON object with \"matches\"")
    unknown = set(raw) - {"name", "description", "matches"}
    if unknown:
        _fail(label, "", f"unknown keys {sorted(unknown)} (known: name, description, matches)")
    matches = raw.get("matches")
    if not isinstance(matches, list) or not matches:
        _fail(label, "", "\"matches\" must be a non-empty list")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name:
        _fail(label, "", "\"name\" must be a non-empty string")
    description = raw.get("description", "")
    if not isinstance(description, str):
        _fail(label, "", "\"description\" must be a string")
    return Scenario(name, path, description, [_match(m, i, label) for i, m in enumerate(matches, start=1)])


def _match(raw, i: int, label: str) -> ScenarioMatch:
    where = f"match {i}"
    if not isinstance(raw, dict):
        _fail(label, where, "must be a JSON object")
    unknown = set(raw) - MATCH_KEYS
    if unknown:
        _fail(label, where, f"unknown keys {sorted(unknown)} (known: {', '.join(sorted(MATCH_KEYS))})")
    for key in ("home", "away"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            _fail(label, where, f"missing \"{key}\" (the {key} team's name)")
    if raw["home"] == raw["away"]:
        _fail(label, where, "\"home\" and \"away\" must be different teams")
    where = f"match {i} ({raw['home']} v {raw['away']})"
    competition = raw.get("competition", "Scenario League")
    ctype = raw.get("competition_type", "league")
    if not isinstance(competition, str) or not competition.strip():
        _fail(label, where, "\"competition\" must be a non-empty name")
    if ctype not in ("league", "cup"):
        _fail(label, where, f"\"competition_type\" must be \"league\" or \"cup\", not {ctype!r}")
    for key in ("knockout", "corners"):
        if key in raw and not isinstance(raw[key], bool):
            _fail(label, where, f"\"{key}\" must be true or false")
    timeline = raw.get("timeline")
    if not isinstance(timeline, list) or not timeline:
        _fail(label, where, "\"timeline\" must be a non-empty list of events")
    events = [_event(e, j, label, where) for j, e in enumerate(timeline, start=1)]
    expect = raw.get("expect", [])
    if not isinstance(expect, list):
        _fail(label, where, "\"expect\" must be a list")
    match = ScenarioMatch(competition, 2 if ctype == "cup" else 1, raw["home"], raw["away"],
                          raw.get("knockout", ctype == "cup"), raw.get("corners", True), events,
                          [_expect(x, j, label, where) for j, x in enumerate(expect, start=1)])
    base = 10 ** 9
    try:
        Timeline("trial", match.timeline_events(base, lambda team, name: name), match_time=base,
                 created_at=base + match.first_at - 3600, home=match.home, away=match.away)
    except TimelineError as e:
        bad = events[e.index]
        _fail(label, f"{where} event {e.index + 1} ({bad.kind} at {format_at(bad.at)})", e.reason)
    return match


def _event(raw, j: int, label: str, where: str) -> ScenarioEvent:
    if not isinstance(raw, dict):
        _fail(label, f"{where} event {j}", "must be a JSON object like {\"at\": \"12:30\", \"event\": \"goal\"}")
    kind = raw.get("event")
    at_text = raw.get("at")
    here = f"{where} event {j} ({kind} at {at_text})"
    try:
        at = parse_at(at_text) if isinstance(at_text, str) else parse_at(None)
    except ScenarioError as e:
        _fail(label, here, str(e))
    if kind not in KINDS or kind == "scheduled":
        _fail(label, here, f"unknown event type {kind!r} (known: {', '.join(EVENT_TYPES)})")
    unknown = set(raw) - EVENT_KEYS
    if unknown:
        _fail(label, here, f"unknown keys {sorted(unknown)} (known: {', '.join(sorted(EVENT_KEYS))})")
    if kind in TEAM_KINDS and raw.get("team") not in ("home", "away"):
        _fail(label, here, "needs \"team\": \"home\" or \"away\"")
    if "team" in raw and raw["team"] not in ("home", "away"):
        _fail(label, here, "\"team\" must be \"home\" or \"away\"")
    for key in ("player", "assist", "assist2", "player_in", "player_out", "text"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            _fail(label, here, f"\"{key}\" must be a non-empty string")
    for key in ("minutes", "reason", "result"):
        if key in raw and (not isinstance(raw[key], int) or isinstance(raw[key], bool) or raw[key] < 0):
            _fail(label, here, f"\"{key}\" must be a whole number, 0 or more")
    if kind == "injury_time" and not raw.get("minutes"):
        _fail(label, here, "needs \"minutes\": the announced stoppage (1 or more)")
    if kind == "note" and not raw.get("text"):
        _fail(label, here, "needs \"text\": the tlive line")
    if "match_time" in raw:
        if kind != "resume":
            _fail(label, here, "\"match_time\" belongs to a resume after a delay")
        try:
            parse_at(raw["match_time"] if isinstance(raw["match_time"], str) else None)
        except ScenarioError as e:
            _fail(label, here, f"\"match_time\": {e}")
    return ScenarioEvent(at, kind, {k: v for k, v in raw.items() if k not in ("at", "event")})


def _expect(raw, j: int, label: str, where: str) -> Expectation:
    here = f"{where} expect {j}"
    if not isinstance(raw, dict):
        _fail(label, here, "must be a JSON object like {\"at\": \"44:59\", \"status_id\": 2}")
    unknown = set(raw) - EXPECT_KEYS
    if unknown:
        _fail(label, here, f"unknown keys {sorted(unknown)} (known: {', '.join(sorted(EXPECT_KEYS))})")
    try:
        at = parse_at(raw.get("at") if isinstance(raw.get("at"), str) else None)
    except ScenarioError as e:
        _fail(label, here, str(e))
    if len(raw) < 2:
        _fail(label, here, "checks nothing: give status_id, minute_text, score, ...")
    status = raw.get("status_id")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool) or not 0 <= status <= 13):
        _fail(label, here, f"\"status_id\" must be a match state 0-13, not {status!r}")
    if "minute_text" in raw and not isinstance(raw["minute_text"], str):
        _fail(label, here, "\"minute_text\" must be a string")
    for key, size in (("score", 2), ("home_scores", 7), ("away_scores", 7)):
        v = raw.get(key)
        if v is not None and (not isinstance(v, list) or len(v) != size
                              or not all(isinstance(x, int) and not isinstance(x, bool) for x in v)):
            _fail(label, here, f"\"{key}\" must be a list of {size} whole numbers")
    kickoff = raw.get("kickoff", None)
    if "kickoff" in raw:
        try:
            kickoff = -1 if kickoff is None else parse_at(kickoff if isinstance(kickoff, str) else None)
        except ScenarioError as e:
            _fail(label, here, f"\"kickoff\": {e} (or null for none)")
    if "in_detail_live" in raw and not isinstance(raw["in_detail_live"], bool):
        _fail(label, here, "\"in_detail_live\" must be true or false")
    return Expectation(at, status, raw.get("minute_text"), raw.get("score"), raw.get("home_scores"),
                       raw.get("away_scores"), kickoff, raw.get("in_detail_live"))
