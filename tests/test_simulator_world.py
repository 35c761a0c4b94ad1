"""The simulator's football day (goald/simulator/world.py and timeline.py): the same seed gives the
same day, every state exists at every instant, the score arrays and kick-off timestamps follow
the provider's rules, and the incremental endpoints keep to their windows. Time is a ManualClock
stepped by the tests; nothing sleeps.
"""
import json
import random
import re
import time
from collections import Counter

import pytest

from goald.simulator.clock import ManualClock
from goald.simulator.timeline import Event, Timeline, TimelineError
from goald.simulator.world import MIN_FULL_COVERAGE, World

DAY = 1_780_000_000 - 1_780_000_000 % 86400  # a UTC midnight
GOAL_TYPES = {1, 8, 17}
LIVE = {2, 3, 4, 5, 7}


def payloads(world: World) -> str:
    """Every endpoint's payload at the world's now, as the JSON the server would send."""
    first = world.matches[0]
    bundle = {
        "detail_live": world.detail_live(), "diary": world.diary(world.day), "data_update": world.data_update(),
        "recent": [world.recent_list(0, page) for page in (1, 2)], "analysis": world.analysis(first.id),
        "season": world.season_table(first.comp.season_id), "table_live": world.table_live(),
        "competitions": world.competitions(page=1), "teams": world.teams(page=1),
    }
    return json.dumps(bundle, sort_keys=True)


def default_day():
    clock = ManualClock(DAY)
    return World(seed=2, matches=400, clock=clock, day=DAY), clock


@pytest.fixture(scope="module")
def day():
    """The default day (400 matches), its clock at 00:00 of the day; tests here never move it."""
    return default_day()


@pytest.fixture
def moving_day():
    """The same day for a test that steps the clock."""
    return default_day()


def state_counts(world: World, t: float) -> tuple[Counter, Counter]:
    statuses, phases = Counter(), Counter()
    for m in world.matches:
        s = m.timeline.state_at(t)
        if s is not None:
            statuses[s.status_id] += 1
            phases[s.phase] += 1
    return statuses, phases


# --- determinism --------------------------------------------------------------------------------

def test_one_seed_gives_the_same_day_twice_payload_for_payload_and_another_seed_a_different_one():
    worlds = [World(seed=seed, matches=300, clock=ManualClock(DAY + 14 * 3600)) for seed in (11, 11, 12)]
    first, again, other = (payloads(w) for w in worlds)
    assert first == again
    assert other != first
    assert set(worlds[0].match_ids()).isdisjoint(worlds[2].match_ids())
    for w in worlds:
        w.clock.advance(2 * 3600 + 17)
    assert payloads(worlds[0]) == payloads(worlds[1]) != payloads(worlds[2])


def test_ids_are_fifteen_lowercase_letters_or_digits_and_never_repeat(day):
    world, _ = day
    ids = world.match_ids() + [c.id for c in world.ref.competitions] + [t.id for t in world.ref.teams]
    ids += [p[0] for m in world.matches[:50] for team in (m.home, m.away) for p in world.ref.squad(team)]
    assert all(re.fullmatch(r"[0-9a-z]{15}", i) for i in ids)
    assert len(set(ids)) == len(ids)


# --- coverage -----------------------------------------------------------------------------------

def test_at_every_hour_of_the_day_every_live_status_is_in_detail_live_and_every_other_state_exists(moving_day):
    world, clock = moving_day
    rng = random.Random(5)
    instants = sorted([DAY + h * 3600 for h in range(24)] + [DAY + rng.randrange(86400) for _ in range(8)])
    for t in instants:
        clock.set(t)
        live = Counter(item["score"][1] for item in world.detail_live())
        statuses, phases = state_counts(world, t)
        when = f"at {(t - DAY) // 3600:02d}:{(t - DAY) % 3600 // 60:02d}"
        assert all(live[s] for s in (2, 3, 4, 5, 7)), f"{when}: live statuses {dict(live)}"
        assert all(statuses[s] for s in (1, 8, 9, 10, 12)), f"{when}: statuses {dict(statuses)}"
        assert phases["ET1"] and phases["ET2"], f"{when}: phases {dict(phases)}"


def test_the_minimum_match_count_still_covers_every_state_at_every_five_minutes():
    clock = ManualClock(DAY)
    world = World(seed=9, matches=MIN_FULL_COVERAGE, clock=clock, day=DAY)
    for t in range(DAY, DAY + 86400, 300):
        clock.set(t)
        statuses, phases = state_counts(world, t)
        assert all(statuses[s] for s in (1, 2, 3, 4, 5, 7, 8, 9, 10, 12)), (t - DAY, dict(statuses))
        assert phases["ET1"] and phases["ET2"] and phases["PEN"], (t - DAY, dict(phases))


def test_the_day_holds_long_stoppages_late_goals_cup_shootouts_and_realistic_breaks(day):
    world, _ = day
    end = DAY + 2 * 86400
    incidents = [(m, i) for m in world.matches for i in m.timeline.state_at(end).incidents]
    assert any(i["type"] == 19 and i["time"] == 45 and i["add_time"] == 14 for _, i in incidents)
    assert any(i["type"] in GOAL_TYPES and i["time"] == 90 and i.get("add_time", 0) >= 13 for _, i in incidents)
    assert all(1 <= i["add_time"] <= 14 for _, i in incidents if i["type"] == 19)
    shootouts = 0
    for m in world.matches:
        events = m.timeline.events
        kinds = [e.kind for e in events]
        if "half_time" in kinds and "second_half" in kinds and "interrupt" not in kinds:
            half_time = events[kinds.index("second_half")].t - events[kinds.index("half_time")].t
            assert 900 <= half_time <= 1020, (m.id, half_time)
        if "extra_time_break" in kinds:
            assert 60 <= events[kinds.index("extra_time_second_half")].t - events[kinds.index("extra_time_break")].t <= 75
        kicks = Counter(e.side for e in events if e.kind in ("shootout_goal", "shootout_miss"))
        if kicks:
            shootouts += 1
            assert min(kicks.values()) >= 4 and max(kicks.values()) >= 5, (m.id, kicks)
    assert shootouts >= 100
    cards = Counter(i["type"] for _, i in incidents)
    assert cards[3] > cards[4] > 0 and cards[9] > 0 and cards[28] > 0 and cards[17] > 0


# --- the score array and the kick-off timestamp ---------------------------------------------------

def test_the_shootout_score_is_never_added_to_goals_and_the_overtime_score_includes_regular_time(day):
    world, _ = day
    end = DAY + 2 * 86400
    checked_et = 0
    for m in world.matches:
        s = m.timeline.state_at(end)
        for side, scores in ((1, s.home_scores), (2, s.away_scores)):
            goals = [i for i in s.incidents if i["type"] in GOAL_TYPES and i["position"] == side]
            regular = sum(1 for t, _ in _goal_events(m, side) if t < _et_start(m))
            assert scores[0] == regular, (m.id, scores)
            assert scores[6] == sum(1 for i in s.incidents if i["type"] == 29 and i["position"] == side)
            if "extra_time" in _kinds(m):
                checked_et += 1
                assert scores[5] == len(goals) >= scores[0], (m.id, scores)
            else:
                assert scores[5] == 0
    assert checked_et > 100


def _kinds(m):
    return {e.kind for e in m.timeline.events}


def _et_start(m):
    return next((e.t for e in m.timeline.events if e.kind == "extra_time"), float("inf"))


def _goal_events(m, side):
    return [(e.t, e) for e in m.timeline.events if e.kind in ("goal", "penalty_goal", "own_goal") and e.side == side]


def test_overtime_score_is_zero_before_extra_time_and_regular_goals_stop_counting_in_it():
    t0 = 1_000_000
    home, away = ("h1", "Home One"), ("a1", "Away One")
    events = [Event(t0, "kickoff"), Event(t0 + 600, "goal", side=1, player=home),
              Event(t0 + 2820, "half_time"), Event(t0 + 3780, "second_half"),
              Event(t0 + 5000, "goal", side=2, player=away), Event(t0 + 6800, "end_of_regular_time"),
              Event(t0 + 7100, "extra_time"), Event(t0 + 7500, "goal", side=1, player=home),
              Event(t0 + 8100, "extra_time_break"), Event(t0 + 8170, "extra_time_second_half"),
              Event(t0 + 9000, "goal", side=2, player=away), Event(t0 + 9200, "penalties"),
              Event(t0 + 9400, "shootout_goal", side=1, player=home),
              Event(t0 + 9470, "shootout_miss", side=2, player=away), Event(t0 + 9900, "end")]
    tl = Timeline("m1", events, match_time=t0, created_at=t0 - 86400)
    at = lambda dt: tl.state_at(t0 + dt)  # noqa: E731
    assert at(6900).home_scores[:2] + at(6900).home_scores[5:] == [1, 1, 0, 0]
    assert at(7100).home_scores[5] == 1 and at(7100).away_scores[5] == 1  # extra time starts: regular copied
    assert at(7600).home_scores[0] == 1 and at(7600).home_scores[5] == 2
    final = at(9900)
    assert final.home_scores == [1, 1, 0, 0, 0, 2, 1] and final.away_scores == [1, 0, 0, 0, 0, 2, 0]
    assert final.status_id == 8 and final.short_status == "PEN" and final.minute_text == "FT"


def test_kickoff_ts_is_the_current_halfs_kickoff_in_every_state_of_a_cup_tie(moving_day):
    world, clock = moving_day
    ties = [m for m in world.matches if "penalties" in _kinds(m) and m.timeline.events[1].t > clock.now()][:6]
    checks = []
    for m in ties:
        starts = {e.kind: e.t for e in m.timeline.events}
        for kind, status in (("kickoff", 2), ("second_half", 4), ("extra_time", 5), ("extra_time_second_half", 5)):
            checks += [(starts[kind] + dt, m.id, status, starts[kind]) for dt in (0, 61, 600)]
        checks.append((starts["half_time"] + 30, m.id, 3, starts["kickoff"]))
        checks.append((starts["extra_time_break"] + 30, m.id, 5, starts["extra_time"]))
        checks.append((starts["end"], m.id, 8, 0))
    assert len(checks) == 6 * 15
    for t, match_id, status, kickoff in sorted(checks):
        clock.set(t)
        item = next(i for i in world.detail_live() if i["id"] == match_id)
        assert item["score"][1] == status and item["score"][4] == kickoff, (match_id, t, item["score"])
        assert world.state(match_id).kickoff_ts == kickoff


def test_minute_text_follows_the_providers_formula_at_the_stoppage_boundaries():
    ko1, ko2, ko3, ko4 = 0, 3700, 7300, 8400
    events = [Event(ko1, "kickoff"), Event(2900, "half_time"), Event(ko2, "second_half"),
              Event(7000, "end_of_regular_time"), Event(ko3, "extra_time"), Event(8330, "extra_time_break"),
              Event(ko4, "extra_time_second_half"), Event(9500, "penalties"), Event(10500, "end")]
    tl = Timeline("m2", [Event(e.t + 10**6, e.kind) for e in events], match_time=10**6, created_at=0)
    expected = {-1: "", 0: "1'", 59: "1'", 60: "2'", 2699: "45'", 2700: "45+1'", 2770: "45+2'", 2899: "45+4'",
                2900: "HT", ko2: "46'", ko2 + 2699: "90'", ko2 + 2700: "90+1'", 7000: "BT", ko3: "91'",
                ko3 + 899: "105'", ko3 + 900: "105+1'", 8330: "BT", ko4: "106'", ko4 + 899: "120'",
                ko4 + 900: "120+1'", 9500: "PEN", 10500: "FT"}
    for dt, text in expected.items():
        assert tl.minute_at(10**6 + dt)[0] == text, (dt, tl.minute_at(10**6 + dt))
    assert tl.minute_at(10**6 + 2770)[1:] == (45, 2)


def test_a_timeline_against_the_rules_is_refused_naming_the_event():
    with pytest.raises(TimelineError) as e:
        Timeline("x", [Event(10, "kickoff"), Event(20, "half_time"), Event(30, "goal", side=1)], match_time=10,
                 created_at=0)
    assert e.value.index == 2 and "not allowed in HT" in str(e.value)
    with pytest.raises(TimelineError) as e:
        Timeline("x", [Event(10, "kickoff"), Event(5, "goal", side=1)], match_time=10, created_at=0)
    assert e.value.index == 1 and "earlier" in e.value.reason
    with pytest.raises(TimelineError):
        Timeline("x", [Event(10, "kickoff"), Event(20, "goal")], match_time=10, created_at=0)


# --- detail_live, update times and the incremental endpoints ---------------------------------------

def test_detail_live_holds_exactly_the_matches_live_or_changed_in_the_last_120_minutes(moving_day):
    world, clock = moving_day
    clock.set(max(clock.now(), DAY + 15 * 3600 + 33))
    now = clock.now()
    listed = {i["id"] for i in world.detail_live()}
    for m in world.matches:
        s = m.timeline.state_at(now)
        active = [e.t for e in m.timeline.events if e.kind not in ("scheduled", "lineup") and e.t <= now]
        expected = s is not None and (s.status_id in LIVE or bool(active) and now - s.update_time < 7200)
        assert (m.id in listed) == expected, (m.id, s.status_id if s else None)


def test_detail_live_is_built_once_per_second_and_a_match_is_rebuilt_only_after_an_event(moving_day):
    world, clock = moving_day
    clock.set(max(clock.now(), DAY + 16 * 3600))
    first = world.detail_live()
    clock.advance(0.5)
    assert world.detail_live() is first
    by_id = {i["id"]: i for i in first}
    clock.advance(0.5)
    later = world.detail_live()
    now = clock.now()
    unchanged = [i for i in later if i["id"] in by_id and world.match(i["id"]).index_at(now) ==
                 world.match(i["id"]).index_at(now - 1)]
    assert unchanged and all(i is by_id[i["id"]] for i in unchanged)


def test_update_time_never_decreases_as_time_moves_forward_and_is_the_last_event_so_far():
    clock = ManualClock(DAY - 3600)
    world = World(seed=4, matches=200, clock=clock, day=DAY)
    sample = world.matches[::4]
    last = {}
    while clock.now() < DAY + 86400:
        clock.advance(997)
        now = clock.now()
        for m in sample:
            obj = m.match_object(now)
            if obj is None:
                continue
            assert obj["updated_at"] >= last.get(m.id, 0)
            assert obj["updated_at"] == max(e.t for e in m.timeline.events if e.t <= now)
            assert world.state(m.id).update_time == obj["updated_at"]
            last[m.id] = obj["updated_at"]
    assert len(last) == len(sample)


def test_data_update_holds_only_what_changed_in_the_last_120_seconds(moving_day):
    world, clock = moving_day
    clock.set(max(clock.now(), DAY + 17 * 3600))
    seen = Counter()
    for _ in range(30):
        clock.advance(53)
        now = clock.now()
        for type_id, items in world.data_update().items():
            for item in items:
                assert now - 120 < item["update_time"] <= now
                seen[type_id] += 1
    assert seen["1"] and seen["3"] and seen["2"]
    lineup = next(e for m in world.matches for e in m.timeline.events if e.kind == "lineup" and e.t > clock.now())
    owner = next(m for m in world.matches if lineup in m.timeline.events)
    clock.set(lineup.t)
    assert {"match_id": owner.id, "update_time": lineup.t} in world.data_update()["1"]
    clock.set(lineup.t + 120)
    assert all(i.get("match_id") != owner.id for i in world.data_update().get("1", []))


def test_recent_list_gives_1000_a_page_then_an_empty_page_and_every_changed_match_once():
    clock = ManualClock(DAY + 20 * 3600)
    world = World(seed=6, matches=1200, clock=clock)
    pages = [world.recent_list(0, page) for page in (1, 2, 3)]
    assert len(pages[0]) == 1000 and 0 < len(pages[1]) < 1000 and pages[2] == []
    ids = [o["id"] for p in pages for o in p]
    assert sorted(ids) == sorted(world.match_ids())
    since = int(clock.now()) - 3600
    changed = world.recent_list(since, 1)
    expected = {m.id for m in world.matches if m.match_object(clock.now())["updated_at"] >= since}
    assert [o["id"] for o in changed] and sorted(o["id"] for o in changed) == sorted(expected)
    assert [o["updated_at"] for o in changed] == sorted(o["updated_at"] for o in changed)
    assert world.recent_list(since, 2) == []


def test_the_diary_covers_the_24_hours_from_tsp_and_accepts_a_date(day):
    world, clock = day
    results, extra = world.diary(DAY)
    assert results and all(DAY <= r["match_time"] < DAY + 86400 for r in results)
    date = time.strftime("%Y%m%d", time.gmtime(DAY))
    assert world.diary(date) == (results, extra)
    teams = {t["id"] for t in extra["team"]}
    assert all(r["home_team_id"] in teams and r["away_team_id"] in teams for r in results)
    assert {r["competition_id"] for r in results} == {c["id"] for c in extra["competition"]}
    previous, _ = world.diary(DAY - 86400)
    assert previous and all(r["match_time"] < DAY for r in previous)


def test_unknown_ids_give_none(day):
    world, _ = day
    assert world.analysis("nosuchmatch0000") is None and world.season_table("nosuchseason000") is None
    assert world.state("nosuchmatch0000") is None and world.match("nosuchmatch0000") is None
    assert world.competitions(uuid="nosuchcomp00000") == [] and world.teams(uuid="nosuchteam00000") == []


def test_every_payload_decodes_with_goalds_provider_decoders_without_a_rejection(moving_day):
    decode = pytest.importorskip("goald.provider.decode")
    world, clock = moving_day
    clock.set(max(clock.now(), DAY + 18 * 3600 + 5))
    now = clock.now()

    def body(results, **extra):
        return json.dumps({"code": 0, "results": results, **extra})

    results, extra = world.diary(DAY)
    checks = {
        "detail_live": decode.detail_live(body(world.detail_live()), now),
        "diary": decode.diary(body(results, results_extra=extra), now),
        "recent": decode.recent_list(body(world.recent_list(0, 1)), now),
        "data_update": decode.data_update(body(world.data_update()), now),
        "analysis": decode.analysis(body(world.analysis(world.matches[7].id)), now),
        "season": decode.season_table(body(world.season_table(world.matches[150].comp.season_id)), now),
        "table_live": decode.table_live(body(world.table_live()), now),
        "competitions": decode.competitions(body(world.competitions(page=1)), now),
        "teams": decode.teams(body(world.teams(page=1)), now),
    }
    assert {name: d.rejections for name, d in checks.items() if d.rejections} == {}
    assert len(checks["detail_live"].items) == len(world.detail_live()) > 0
