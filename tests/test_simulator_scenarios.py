"""Scenario files (goald/simulator/scenario.py): every shipped scenario, placed anywhere on its
clock, shows the status and minute text its expectations name at each expected second; placing a
scenario at `at` puts its kick-off that long before now; scenarios play beside the generated day;
a file with an error is refused with one line naming the file and the offending event. Time is a
ManualClock stepped by the tests; nothing sleeps.
"""
import json

import pytest

from goald.simulator import scenario
from goald.simulator.clock import ManualClock
from goald.simulator.scenario import ScenarioError
from goald.simulator.world import World

T0 = 1_780_000_000
SHIPPED = {p.stem: p for p in scenario.list_shipped()}
PLACEMENTS = [-120, 0, "44:30", "late"]  # late: five minutes before the scenario's last check


def display(scores: list) -> int:
    """The score people see: overtime when it is > 0, else regular time."""
    return scores[5] if scores[5] > 0 else scores[0]


def play(name: str, at) -> list[str]:
    """Place the scenario at `at`, step the clock to every expectation still ahead and return what
    differs from it."""
    sc = scenario.load(SHIPPED[name])
    if at == "late":
        at = max(e.at for m in sc.matches for e in m.expect) - 300
    clock = ManualClock(T0)
    world = World(seed=1, matches=0, clock=clock, scenarios=[(sc, at)])
    placed = world.placements[0]
    checks = sorted((e.at, j, e) for j, m in enumerate(sc.matches) for e in m.expect)
    wrong, checked = [], 0
    for at_s, j, e in checks:
        if placed.start + at_s < clock.now():
            continue
        clock.set(placed.start + at_s)
        checked += 1
        match_id = placed.match_ids[j]
        s = world.state(match_id)
        got = {"status_id": s.status_id, "minute_text": s.minute_text,
               "score": [display(s.home_scores), display(s.away_scores)], "home_scores": s.home_scores,
               "away_scores": s.away_scores,
               "kickoff": -1 if s.kickoff_ts == 0 else s.kickoff_ts - placed.start,
               "in_detail_live": match_id in {i["id"] for i in world.detail_live()}}
        for key, value in got.items():
            want = getattr(e, key)
            if want is not None and value != want:
                wrong.append(f"{scenario.format_at(at_s)} {key}: got {value!r}, expected {want!r}")
        item = next((i for i in world.detail_live() if i["id"] == match_id), None)
        if item is not None:
            assert item["score"][1] == s.status_id and item["score"][2] == s.home_scores
    assert checked, f"{name} at {at}: no expectation left to check"
    return wrong


@pytest.mark.parametrize("at", PLACEMENTS)
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_scenario_shows_the_expected_status_and_minute_text_wherever_it_is_placed(name, at):
    assert play(name, at) == []


def test_the_shipped_scenarios_are_the_seven_documented_ones_each_with_several_checks():
    assert set(SHIPPED) == {"extra_time_and_penalties", "first_half_stoppage_14", "delayed_kickoff",
                            "interrupted_resumes", "abandoned", "long_half_time", "stuck_live"}
    for path in SHIPPED.values():
        sc = scenario.load(path)
        assert sc.name == path.stem and all(len(m.expect) >= 8 for m in sc.matches)
        assert any(e.minute_text for m in sc.matches for e in m.expect)


def test_placing_a_scenario_at_44_30_puts_its_kickoff_44_and_a_half_minutes_before_now():
    clock = ManualClock(T0)
    sc = scenario.load(SHIPPED["first_half_stoppage_14"])
    world = World(seed=1, matches=0, clock=clock, scenarios=[(sc, scenario.parse_at("44:30"))])
    placed = world.placements[0]
    assert placed.start == T0 - 2670 and placed.clock("46:10") == T0 + 100
    state = world.state(placed.match_ids[0])
    assert state.kickoff_ts == T0 - 2670 and state.minute_text == "45'"
    assert [i["id"] for i in world.detail_live()] == placed.match_ids


def test_scenarios_play_beside_the_generated_day_and_appear_in_its_lists():
    clock = ManualClock(T0)
    played = [(scenario.load(SHIPPED["extra_time_and_penalties"]), "119:40"),
              (scenario.load(SHIPPED["delayed_kickoff"]), "10:00")]
    world = World(seed=3, matches=60, clock=clock, scenarios=played)
    assert world.generated == 60 and len(world.match_ids()) == 62
    tie, delayed = (p.match_ids[0] for p in world.placements)
    assert world.state(tie).status_id == 5 and world.state(tie).minute_text == "91'"
    assert world.state(delayed).status_id == 9
    day_start = int(T0 - T0 % 86400)
    listed = {r["id"] for r in world.diary(day_start)[0]} | {r["id"] for r in world.diary(day_start - 86400)[0]}
    assert {tie, delayed} <= listed
    assert {tie, delayed} <= {o["id"] for o in world.recent_list(int(T0) - 900, 1)}
    assert tie in {o["id"] for o in world.recent_list(int(T0) - 10, 1)}
    assert "Scenario Cup" in {c["name"] for c in world.competitions(page=1)}
    assert {"Northbridge Rovers", "Crossgate Athletic"} <= {t["name"] for t in world.teams(page=1)}


def test_a_delayed_kickoff_gets_its_new_match_time_when_it_is_rescheduled():
    clock = ManualClock(T0)
    world = World(seed=1, matches=0, clock=clock, scenarios=[(scenario.load(SHIPPED["delayed_kickoff"]), 0)])
    placed = world.placements[0]
    m = world.sim_match(placed.match_ids[0])
    assert m.match_object(clock.now())["match_time"] == placed.start
    clock.set(placed.clock("25:00"))
    assert m.match_object(clock.now())["match_time"] == placed.clock("40:00")


def test_a_stuck_match_stops_updating_and_stays_in_detail_live_for_hours():
    clock = ManualClock(T0)
    world = World(seed=1, matches=0, clock=clock, scenarios=[(scenario.load(SHIPPED["stuck_live"]), "95:30")])
    match_id = world.placements[0].match_ids[0]
    frozen = world.state(match_id).update_time
    assert frozen == int(T0)
    for _ in range(12):
        clock.advance(1800)
        assert world.state(match_id).update_time == frozen and world.state(match_id).status_id == 4
        assert match_id in {i["id"] for i in world.detail_live()}
    assert world.recent_list(frozen + 1, 1) == []


def test_a_long_half_time_is_a_freeze_with_no_update_for_35_minutes():
    clock = ManualClock(T0)
    world = World(seed=1, matches=0, clock=clock, scenarios=[(scenario.load(SHIPPED["long_half_time"]), "46:30")])
    placed = world.placements[0]
    while clock.now() < placed.clock("81:29"):
        clock.advance(min(60, placed.clock("81:29") - clock.now()))
        assert world.state(placed.match_ids[0]).update_time == placed.clock("46:30")
    clock.set(placed.clock("81:30"))
    assert world.state(placed.match_ids[0]).update_time == placed.clock("81:30")


def test_parse_at_reads_minutes_and_seconds_and_refuses_anything_else():
    assert scenario.parse_at("44:30") == 2670
    assert scenario.parse_at("152:30") == 9150
    assert scenario.parse_at("-05:00") == -300
    assert scenario.parse_at("00:00") == 0
    for bad in ("44", "44:60", "ab:cd", "1:2", "", "44:30:00", None):
        with pytest.raises(ScenarioError):
            scenario.parse_at(bad)


# --- files with errors --------------------------------------------------------------------------

GOOD_MATCH = {"home": "A Town", "away": "B City",
              "timeline": [{"at": "00:00", "event": "kickoff"}, {"at": "12:00", "event": "goal", "team": "home"},
                           {"at": "46:00", "event": "half_time"}],
              "expect": [{"at": "12:00", "status_id": 2}]}


def with_match(**change) -> dict:
    match = json.loads(json.dumps(GOOD_MATCH))
    match.update(change)
    return {"matches": [match]}


def timeline_with(event: dict, index: int = 1) -> list:
    timeline = json.loads(json.dumps(GOOD_MATCH["timeline"]))
    timeline[index] = event
    return timeline


BAD_FILES = {
    "bad_time": (with_match(timeline=timeline_with({"at": "12:75", "event": "goal", "team": "home"})),
                 ["match 1", "event 2 (goal at 12:75)", "bad time"]),
    "bad_time_text": (with_match(timeline=timeline_with({"at": "twelve", "event": "goal", "team": "home"})),
                      ["event 2 (goal at twelve)", "MM:SS"]),
    "unknown_type": (with_match(timeline=timeline_with({"at": "12:00", "event": "goooal", "team": "home"})),
                     ["event 2 (goooal at 12:00)", "unknown event type"]),
    "out_of_order": (with_match(timeline=timeline_with({"at": "50:00", "event": "goal", "team": "home"}, 1)
                                + [{"at": "51:00", "event": "second_half"}]),
                     ["event 3 (half_time at 46:00)", "earlier than the event before it"]),
    "not_allowed": (with_match(timeline=GOOD_MATCH["timeline"] + [{"at": "50:00", "event": "goal", "team": "away"}]),
                    ["event 4 (goal at 50:00)", "not allowed in HT"]),
    "no_team_for_goal": (with_match(timeline=timeline_with({"at": "12:00", "event": "goal"})),
                         ["event 2 (goal at 12:00)", "\"team\""]),
    "missing_home": ({"matches": [{k: v for k, v in GOOD_MATCH.items() if k != "home"}]},
                     ["match 1", "missing \"home\""]),
    "missing_away": (with_match(away=""), ["match 1", "missing \"away\""]),
    "no_matches": ({"name": "x"}, ["\"matches\""]),
    "bad_expect": (with_match(expect=[{"at": "12:00", "status_id": 99}]), ["expect 1", "status_id"]),
    "empty_expect": (with_match(expect=[{"at": "12:00"}]), ["expect 1", "checks nothing"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_scenario_file_with_an_error_raises_one_line_naming_the_file_and_the_offending_event(tmp_path, case):
    content, fragments = BAD_FILES[case]
    path = tmp_path / f"{case}.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ScenarioError) as e:
        scenario.load(path)
    message = str(e.value)
    assert message.startswith(f"{case}.json: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "", "\"just a string\"", "{\"matches\": [7]}",
                                  "{\"matches\": [{\"home\": \"A\", \"away\": \"B\", \"timeline\": [[]]}]}"])
def test_a_file_that_is_not_a_scenario_at_all_raises_scenario_error_never_anything_else(tmp_path, text):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(ScenarioError) as e:
        scenario.load(path)
    assert str(e.value).startswith("broken.json: ") and "\n" not in str(e.value)


def test_a_missing_file_raises_scenario_error_naming_it(tmp_path):
    with pytest.raises(ScenarioError, match=r"^nowhere\.json: cannot read it"):
        scenario.load(tmp_path / "nowhere.json")


def test_a_good_file_loads_with_its_events_on_the_scenario_clock(tmp_path):
    path = tmp_path / "good.json"
    path.write_text(json.dumps(with_match()))
    sc = scenario.load(path)
    assert sc.name == "good" and [e.at for e in sc.matches[0].events] == [0, 720, 2760]
    assert sc.matches[0].expect[0].status_id == 2
