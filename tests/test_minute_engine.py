"""The minute engine against DOMAIN.md's rules, and against the simulator at every second of every
shipped scenario: two implementations written apart (goald/match/minute.py from the feed the
pipeline sees; the simulator's timelines from the events) must agree on the period's text, the
minute and the stoppage at each second, across both halves' stoppage, the break before extra
time, both extra-time halves and their break, penalties, delays, interruptions and abandonment."""
import pytest

from goald.match import minute as m
from goald.simulator import scenario as scenario_mod
from goald.simulator.clock import ManualClock
from goald.simulator.world import World

KO = 1_780_000_000


def at(tracked, seconds_after, kickoff=KO):
    return m.minute_at(tracked, kickoff + seconds_after)


@pytest.mark.parametrize("after, text, minute, added", [
    (0, "1'", 1, None), (59, "1'", 1, None), (60, "2'", 2, None), (44 * 60 + 59, "45'", 45, None),
    (45 * 60, "45+1'", 45, 1), (46 * 60 + 10, "45+2'", 45, 2), (58 * 60 + 59, "45+14'", 45, 14),
])
def test_the_first_half_minute_is_the_providers_formula_floored_and_never_clamped_at_45(after, text, minute, added):
    tracked = m.track(m.Tracked(), 2, KO)
    assert at(tracked, after) == m.Minute(minute, added, text)


def test_the_second_half_and_both_extra_time_halves_count_from_their_own_kick_offs():
    t = m.track(m.Tracked(), 2, KO)
    t = m.track(t, 3, KO)
    t = m.track(t, 4, KO + 3600)
    assert at(t, 0, KO + 3600).text == "46'" and at(t, 44 * 60 + 30, KO + 3600).text == "90'"
    assert at(t, 47 * 60, KO + 3600) == m.Minute(90, 3, "90+3'")
    t = m.track(t, 4, KO + 3600, [{"type": 12, "time": 90}])
    assert t.period == m.BREAK_BEFORE_EXTRA_TIME and at(t, 50 * 60, KO + 3600).text == "BT"
    t = m.track(t, 5, KO + 7000)
    assert t.period == m.EXTRA_TIME_FIRST and at(t, 0, KO + 7000).text == "91'"
    assert at(t, 15 * 60 + 5, KO + 7000) == m.Minute(105, 1, "105+1'")
    t = m.track(t, 5, KO + 7000, [{"type": 11, "time": 105}])
    assert t.period == m.EXTRA_TIME_BREAK and at(t, 17 * 60, KO + 7000).text == "BT"
    t = m.track(t, 5, KO + 8100, [{"type": 11, "time": 105}])
    assert t.period == m.EXTRA_TIME_SECOND and at(t, 0, KO + 8100).text == "106'"  # not 108' on from the first half
    assert at(t, 18 * 60, KO + 8100) == m.Minute(120, 4, "120+4'")
    assert (t.first, t.second, t.extra, t.extra_second) == (KO, KO + 3600, KO + 7000, KO + 8100)


def test_kick_off_timestamps_are_set_once_on_their_transitions_and_never_rewritten():
    t = m.track(m.Tracked(), 2, KO)
    assert m.track(t, 2, KO + 99).first == KO  # a later score[4] in the first half rewrites nothing
    t = m.track(m.track(t, 3, 0), 4, KO + 3600)
    assert m.track(t, 4, KO + 4000).second == KO + 3600
    assert m.track(m.Tracked(), 2, 0).first is None  # 0 is "unknown", never a kick-off


@pytest.mark.parametrize("status, text", [(3, "HT"), (7, "PEN"), (8, "FT"), (9, "DELAY"), (10, "INT"),
                                          (11, "ABD"), (12, "CAN"), (1, "")])
def test_freeze_statuses_keep_the_stored_minute_and_show_their_text(status, text):
    stored = m.Minute(45, 3, "45+3'")
    t = m.track(m.track(m.Tracked(), 2, KO), status, 0)
    assert m.minute_at(t, KO + 99_999, stored) == m.Minute(45, 3, text)


def test_an_unknown_status_is_an_unknown_period_with_an_empty_text_not_an_error():
    t = m.track(m.Tracked(), 99, KO)
    assert t.period == m.UNKNOWN and m.minute_at(t, KO).text == ""


def shipped():
    return sorted(scenario_mod.list_shipped())


@pytest.mark.parametrize("path", shipped(), ids=lambda p: p.stem)
def test_at_every_second_of_every_shipped_scenario_the_engine_agrees_with_the_simulator(path):
    scenario = scenario_mod.load(path)
    clock = ManualClock(KO)
    world = World(seed=1, matches=0, clock=clock, scenarios=[(scenario, -120)])  # kick-off two minutes ahead
    placement = world.placements[0]
    tracked = {mid: m.Tracked() for mid in placement.match_ids}
    stored = {mid: None for mid in placement.match_ids}
    last = max(e.at for spec in scenario.matches for e in spec.events) + 300
    disagreements, seconds = [], 0
    while clock.now() <= placement.start + last:
        for mid in placement.match_ids:
            st = world.state(mid)
            tracked[mid] = m.track(tracked[mid], st.status_id, st.kickoff_ts, st.incidents)
            got = m.minute_at(tracked[mid], clock.now(), stored[mid])
            stored[mid] = got
            want_minute = st.minute if got.minute is not None or st.minute is None else None
            if got.text != st.minute_text or (tracked[mid].period in m._RUNNING and (got.minute, got.added) != (
                    want_minute, st.added_minute)):
                disagreements.append((round(clock.now() - placement.start), st.status_id, got, st.minute_text,
                                      st.minute, st.added_minute))
        seconds += 1
        clock.advance(1)
    assert seconds > 90 * 60
    assert not disagreements, disagreements[:5]
