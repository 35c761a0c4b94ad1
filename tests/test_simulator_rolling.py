"""A simulator that outlives its day: at midnight the next day's matches arrive, the evening's
late matches play on to their end, and by morning only the new day is left, with matches in every
live status again."""
from goald.simulator.clock import ManualClock
from goald.simulator.rolling import KEEP_S, RollingDays

DAY = 1_780_000_000 - 1_780_000_000 % 86400
LIVE = {2, 3, 4, 5, 7}


def live(world):
    return {item["id"]: item for item in world.detail_live()}


def test_matches_live_at_midnight_play_on_beside_the_new_days_and_end_normally():
    clock = ManualClock(DAY + 86400 - 10 * 60)  # 23:50
    world = RollingDays(seed=4, matches=200, clock=clock)
    before = {i: m for i, m in live(world).items() if m["score"][1] in LIVE}
    assert before
    clock.advance(20 * 60)  # 00:10 the next day
    after = live(world)
    assert set(before) <= set(after), "a match live at 23:50 vanished at midnight"
    assert len(world.summary()["days"]) == 2
    today, yesterday = set(world.current.match_ids()), set(world.previous.match_ids())
    assert set(after) & today and not today & yesterday  # the new day's matches, under new ids
    clock.advance(4 * 3600)  # 04:10: the evening's matches are over, but for the stuck ones
    still = [world.previous.state(i) for i in world.previous.match_ids()]
    still = [st for st in still if st is not None and st.status_id in LIVE]
    assert all(st.update_time < clock.now() - 3600 for st in still)  # stuck: silent for over an hour


def test_recent_lists_over_two_days_hold_every_changed_match_once():
    clock = ManualClock(DAY + 86400 - 60)  # 23:59
    world = RollingDays(seed=4, matches=200, clock=clock)
    clock.advance(2 * 3600)  # 01:59: two days answer
    ids, page = [], 1
    while chunk := world.recent_list(0, page):
        ids.extend(o["id"] for o in chunk)
        page += 1
    assert len(ids) == len(set(ids)) == len(world.match_ids())


def test_after_the_morning_only_the_new_day_is_served_with_every_live_status():
    clock = ManualClock(DAY + 86400 - 60)
    world = RollingDays(seed=4, matches=200, clock=clock)
    old = set(world.match_ids())
    clock.advance(60 + KEEP_S + 6 * 3600)  # 12:00 the next day
    now_live = live(world)
    assert not set(now_live) & old and world.summary()["days"] == [DAY + 86400]
    assert {m["score"][1] for m in now_live.values()} >= LIVE


def test_every_endpoint_answers_from_rolling_days_what_the_days_world_answers():
    from goald.simulator.endpoints import HANDLERS
    from goald.simulator.world import World

    clock = ManualClock(DAY + 19 * 3600)       # one day: RollingDays must answer as its World does
    rolling = RollingDays(seed=4, matches=200, clock=clock)
    world = World(seed=4, matches=200, clock=clock, day=DAY)
    ended = next(i for i in world.match_ids() if world.state(i) is not None and world.state(i).status_id == 8)
    season = world.sim_match(ended).comp.season_id
    params = {"match/recent/list": {"uuid": ended}, "match/analysis": {"uuid": ended},
              "match/half/team_stats/detail": {"uuid": ended}, "season/recent/table/detail": {"uuid": season},
              "match/diary": {"date": ""}}
    for path, handler in HANDLERS.items():
        assert handler(rolling, params.get(path, {})) == handler(world, params.get(path, {})), path
    assert rolling.sim_match(ended).id == ended
