"""Match safety (DOMAIN.md, staleness and stuck matches), on a stepped clock through the real
pipeline, jobs and database: stale after 120 s (900 s at half-time), the watchdog's ladder in
order, freeze after 30 minutes of half-time, `stale_reason` in the API while stale and gone once
data arrive, and stuck matches ended only on the provider's evidence, never over a later update."""
import msgspec
import pytest
from loguru import logger

from goald.actors.jobs import safety as jobs
from goald.match import rows, store
from goald.provider import payloads as p
from goald.provider.errors import Decoded, ProviderUnavailable
from goald.simulator.clock import ManualClock
from goald.simulator.world import World
import provider_samples as ps
from match_support import harness, sql

NOW = ps.NOW
MIN = 60
HOME, AWAY = ps.team_score(2), ps.team_score(0, 0, 0, 2, 1)      # a stuck match's score (2-0)


def live(mid, status=2, **kw):
    return msgspec.convert(ps.live_item(mid, status, **kw), p.LiveMatch)


def obj(mid, status, updated_at, match_time=NOW - 3600, **kw):
    return msgspec.convert(ps.match_object(mid, status, match_time=match_time, updated_at=updated_at, **kw), p.Match)


class Provider:
    """The reconcile's answers: match id → a match object, None (no object), or an exception."""

    def __init__(self):
        self.answers, self.calls = {}, []

    def __call__(self, mid):
        self.calls.append(mid)
        answer = self.answers.get(mid)
        if isinstance(answer, Exception):
            raise answer
        return Decoded([answer] if answer is not None else [], [])


@pytest.fixture
def h(db_dsn):
    world = World(seed=1, matches=0, clock=ManualClock(NOW - 4 * 3600))   # room for each test's past
    with harness(db_dsn, world) as hh:
        hh.dsn = db_dsn
        hh.provider = Provider()
        hh.feed.match = hh.provider
        yield hh


@pytest.fixture
def events():
    seen = []
    sink = logger.add(lambda m: seen.append(m.record["extra"]), level="DEBUG",
                      filter=lambda r: str(r["extra"].get("event", "")).startswith("match."))
    yield seen
    logger.remove(sink)


def tracked(h, mid, match_time=NOW - 3600):
    with h.pool.connection() as conn:
        store.upsert_objects(conn, [rows.object_row(obj(mid, 1, NOW - 7200, match_time=match_time))])
        conn.commit()
    h.pipeline.track([mid])
    h.settle()


def send(h, *items, at):
    h.clock.set(at)
    h.pipeline.route_live(items, at, at)
    h.settle()
    h.pipeline.flush()


def run(h, body, at):
    h.clock.set(at)
    out = h.run_job(body)
    h.settle()
    h.pipeline.flush()
    return out


def row(h, mid, *cols):
    return sql(h.dsn, f"SELECT {', '.join(cols)} FROM matches WHERE id = %s", (mid,))[0]


def names(events, mid="m1"):
    return [e["event"] for e in events if e.get("match_id") == mid and e["event"] in (
        "match.stale", "match.stale_reconciled", "match.stale_error", "match.frozen", "match.ended_by_goald")]


# --- staleness ----------------------------------------------------------------------------------

@pytest.mark.parametrize("status, limit", [(2, 120), (4, 120), (3, 900)])
def test_a_live_match_is_stale_after_its_limit_without_provider_data_and_not_before(h, status, limit):
    tracked(h, "m1")
    send(h, live("m1", status), at=NOW)
    run(h, jobs.match_watchdog, NOW + limit - 1)
    assert row(h, "m1", "stale_level", "stale_reason") == (0, None)
    run(h, jobs.match_watchdog, NOW + limit + 1)
    level, reason = row(h, "m1", "stale_level", "stale_reason")
    assert level == 1 and f"no provider data for {limit + 1} s" in reason


def test_an_unchanged_provider_message_keeps_a_live_match_fresh(h):
    tracked(h, "m1")
    item = live("m1", 2)
    for at in range(NOW, NOW + 600, 2):          # the provider reports it, nothing changes
        h.clock.set(at)
        h.pipeline.route_live([item], at, at)
        if at % 30 == 0:
            h.settle()
            h.pipeline.flush()
            run(h, jobs.match_watchdog, at)
    assert row(h, "m1", "stale_level", "stale_reason") == (0, None)


def test_the_ladder_warns_then_reconciles_then_logs_an_error_in_that_order_and_once(h, events):
    tracked(h, "m1")
    send(h, live("m1", 2), at=NOW)
    h.provider.answers["m1"] = obj("m1", 2, NOW - 300)       # the provider has nothing newer
    steps = []
    for k, at in enumerate(range(NOW + 121, NOW + 121 + 5 * 30, 30)):
        run(h, jobs.match_watchdog, at)
        steps.append((row(h, "m1", "stale_level")[0], len(h.provider.calls)))
    assert names(events) == ["match.stale", "match.stale_reconciled", "match.stale_error"]
    assert steps == [(1, 0), (2, 1), (3, 1), (3, 1), (3, 1)]   # the reconcile is the second step, once
    error = next(e for e in events if e["event"] == "match.stale_error")
    assert error["last_event_ts"] == NOW and error["provider_update_time"] == NOW and "no provider data" in \
        error["stale_reason"]


def test_a_reconcile_that_brings_newer_data_ends_the_stale_episode(h, events):
    tracked(h, "m1")
    send(h, live("m1", 2), at=NOW)
    h.provider.answers["m1"] = obj("m1", 2, NOW + 200, home=ps.team_score(1))   # a goal the feed missed
    run(h, jobs.match_watchdog, NOW + 130)
    run(h, jobs.match_watchdog, NOW + 160)
    assert row(h, "m1", "stale_level", "stale_reason", "home_regular", "last_event_ts") == (0, None, 1, NOW + 160)
    assert "match.stale_error" not in names(events)


def test_half_time_over_30_minutes_is_a_freeze_logged_as_an_error_and_reconciled(h, events):
    tracked(h, "m1")
    send(h, live("m1", 2, kickoff_ts=NOW - 46 * MIN), at=NOW - 120)
    send(h, live("m1", 3, kickoff_ts=0), at=NOW)                  # half-time from NOW
    h.provider.answers["m1"] = obj("m1", 3, NOW - 10)
    item = live("m1", 3, kickoff_ts=0)
    for at in range(NOW + 30, NOW + 31 * MIN + 1, 30):           # the feed keeps saying half-time
        send(h, item, at=at)
        run(h, jobs.match_watchdog, at)
        if at <= NOW + 30 * MIN:
            assert row(h, "m1", "stale_level")[0] == 0, at - NOW
    level, reason = row(h, "m1", "stale_level", "stale_reason")
    assert level == 4 and reason.startswith("frozen: half-time for 3")
    assert names(events) == ["match.frozen"] and h.provider.calls == ["m1"]
    send(h, live("m1", 4, kickoff_ts=NOW + 32 * MIN), at=NOW + 32 * MIN)   # the second half begins
    assert row(h, "m1", "stale_level", "stale_reason") == (0, None)


def test_stale_reason_is_in_the_api_while_stale_and_gone_after_the_next_provider_message(h):
    tracked(h, "m1")
    item = live("m1", 2)
    send(h, item, at=NOW)
    run(h, jobs.match_watchdog, NOW + 121)
    status, body = h.get_json("/api/matches/m1")
    assert status == 200 and "no provider data for 121 s" in body["match"]["stale_reason"]
    listed = {m["id"]: m for m in h.get_json("/api/matches/live")[1]["matches"]}
    assert listed["m1"]["stale_reason"] == body["match"]["stale_reason"]
    send(h, item, at=NOW + 125)                                  # the same state, reported again
    assert row(h, "m1", "stale_level", "stale_reason", "stale_since") == (0, None, None)
    assert h.get_json("/api/matches/m1")[1]["match"]["stale_reason"] is None
    listed = {m["id"]: m for m in h.get_json("/api/matches/live")[1]["matches"]}
    assert listed["m1"]["stale_reason"] is None


def test_a_flag_left_on_a_match_that_is_no_longer_live_is_cleared(h):
    tracked(h, "m1")
    send(h, live("m1", 2), at=NOW)
    run(h, jobs.match_watchdog, NOW + 121)
    sql(h.dsn, "UPDATE matches SET status_id = 8, provider_update_time = provider_update_time + 1 WHERE id = 'm1'")
    run(h, jobs.match_watchdog, NOW + 151)
    assert row(h, "m1", "stale_level", "stale_reason") == (0, None)


# --- stuck matches ------------------------------------------------------------------------------

@pytest.mark.parametrize("match_time", [NOW - 122 * MIN, NOW - 170 * MIN], ids=["on_time", "kick_off_delayed_50_min"])
def test_a_match_with_14_minutes_of_second_half_stoppage_is_not_ended(h, match_time):
    tracked(h, "m1", match_time=match_time)
    send(h, live("m1", 2, kickoff_ts=NOW - 122 * MIN), at=NOW - 121 * MIN)
    send(h, live("m1", 3, kickoff_ts=0), at=NOW - 74 * MIN)
    ko2 = NOW - 58 * MIN - 30
    send(h, live("m1", 4, kickoff_ts=ko2), at=ko2)
    send(h, live("m1", 4, kickoff_ts=ko2, home=ps.team_score(1)), at=NOW)   # 90+14'
    assert row(h, "m1", "minute_text")[0] == "90+14'"
    h.provider.answers["m1"] = obj("m1", 4, NOW - 600)
    out = run(h, jobs.stuck_matches, NOW + 30)
    assert out["candidates"] == 0 and h.provider.calls == []
    assert row(h, "m1", "status_id", "ended_reason") == (4, None)


def test_a_match_missing_from_detail_live_is_not_ended(h, events):
    tracked(h, "m1", match_time=NOW - 60 * MIN)
    send(h, live("m1", 4, kickoff_ts=NOW - 10 * MIN), at=NOW)      # second half, then gone from the feed
    h.provider.answers["m1"] = obj("m1", 4, NOW - 30, match_time=NOW - 60 * MIN)
    for at in range(NOW + 2, NOW + 40 * MIN, 2):
        h.clock.set(at)
        h.step()                                                   # detail_live polls: m1 is not in them
        if at % 30 == 0:
            run(h, jobs.match_watchdog, at)
        if at % 600 == 0:
            run(h, jobs.stuck_matches, at)
    assert row(h, "m1", "status_id", "ended_reason")[0] == 4
    assert row(h, "m1", "stale_level")[0] == 3
    assert "match.ended_by_goald" not in names(events)


def stuck(h, mid="m1"):
    """A second half that kicked off 80 minutes ago (scheduled kick-off 165 minutes ago)."""
    tracked(h, mid, match_time=NOW - 165 * MIN)
    send(h, live(mid, 4, kickoff_ts=NOW - 80 * MIN, home=HOME, away=AWAY), at=NOW - 30 * MIN)


def test_a_stuck_match_is_ended_only_after_a_reconcile_found_nothing_newer(h, events):
    stuck(h)
    h.provider.answers["m1"] = obj("m1", 4, NOW - 40 * MIN, home=ps.team_score(2))
    out = run(h, jobs.stuck_matches, NOW)
    assert h.provider.calls == ["m1"] and out["ended"] == 1
    status, said, reason, updated, text = row(h, "m1", "status_id", "provider_status_id", "ended_reason",
                                               "provider_update_time", "minute_text")
    assert (status, said, updated, text) == (8, 4, NOW - 30 * MIN, "FT")
    assert reason.startswith("stuck in the second half") and "nothing newer" in reason
    assert names(events) == ["match.ended_by_goald"]
    assert h.get_json("/api/matches/m1")[1]["match"]["ended_reason"] == reason


@pytest.mark.parametrize("answer", [None, ProviderUnavailable("match/recent/list", "timeout", "timed out")],
                         ids=["no_object", "provider_down"])
def test_a_stuck_match_is_not_ended_without_the_providers_evidence(h, answer):
    stuck(h)
    h.provider.answers["m1"] = answer
    out = run(h, jobs.stuck_matches, NOW)
    assert h.provider.calls == ["m1"] and out["ended"] == 0 and out["reconcile_failed"] == 1
    assert row(h, "m1", "status_id", "ended_reason") == (4, None)


def test_a_stuck_match_whose_reconcile_brings_its_end_is_ended_by_the_provider(h):
    stuck(h)
    h.provider.answers["m1"] = obj("m1", 8, NOW - 5 * MIN, home=ps.team_score(3))
    out = run(h, jobs.stuck_matches, NOW)
    assert out["newer"] == 1 and out["ended"] == 0
    assert row(h, "m1", "status_id", "ended_reason", "home_regular") == (8, None, 3)


def test_a_provider_update_after_goald_ended_a_match_still_applies(h, events):
    stuck(h)
    h.provider.answers["m1"] = obj("m1", 4, NOW - 40 * MIN)
    run(h, jobs.stuck_matches, NOW)
    assert row(h, "m1", "status_id")[0] == 8
    # The same state again (the feed still lists it): the ending stands.
    send(h, live("m1", 4, kickoff_ts=NOW - 80 * MIN, home=HOME, away=AWAY), at=NOW + 10)
    assert row(h, "m1", "status_id", "provider_status_id")[0:2] == (8, 4)
    # Something new: the provider wins over goald's ending.
    send(h, live("m1", 4, kickoff_ts=NOW - 80 * MIN, home=ps.team_score(3)), at=NOW + 20)
    assert row(h, "m1", "status_id", "ended_reason", "home_regular", "provider_update_time") == (4, None, 3, NOW + 20)
    assert row(h, "m1", "second_half_kickoff_ts")[0] == NOW - 80 * MIN     # written once, kept
    send(h, live("m1", 8, kickoff_ts=0, home=ps.team_score(3)), at=NOW + 30)
    assert row(h, "m1", "status_id", "ended_reason", "provider_status_id") == (8, None, 8)


def test_a_match_object_for_a_match_goald_ended_applies_only_when_it_says_something_new(h):
    stuck(h)
    h.provider.answers["m1"] = obj("m1", 4, NOW - 40 * MIN, match_time=NOW - 165 * MIN)
    run(h, jobs.stuck_matches, NOW)
    h.pipeline.untrack("m1")                       # its actor retired: the ingest jobs upsert objects
    h.settle()
    with h.pool.connection() as conn:
        same = obj("m1", 4, NOW + 60, match_time=NOW - 165 * MIN, home=HOME, away=AWAY)
        assert store.upsert_objects(conn, [rows.object_row(same, NOW + 60)]) == (0, 0, [])
        newer = obj("m1", 8, NOW + 90, match_time=NOW - 165 * MIN, home=HOME, away=AWAY)
        assert store.upsert_objects(conn, [rows.object_row(newer, NOW + 90)]) == (0, 1, [])
        conn.commit()
    assert row(h, "m1", "status_id", "ended_reason", "provider_update_time") == (8, None, NOW + 90)


# --- the shipped scenarios through the safety jobs ---------------------------------------------------

def test_through_the_shipped_scenarios_the_safety_jobs_end_only_the_stuck_match_and_leave_no_violation(db_dsn,
                                                                                                       events):
    from goald.actors.jobs import ingest
    from goald.match import audit
    from goald.simulator import scenario as scenario_mod

    start = 1_780_000_000 - 1_780_000_000 % 600
    names_ = ("stuck_live", "long_half_time", "first_half_stoppage_14", "extra_time_and_penalties")
    shipped = {s.name: s for s in map(scenario_mod.load, scenario_mod.list_shipped())}
    world = World(seed=1, matches=0, clock=ManualClock(start), scenarios=[(shipped[n], -120) for n in names_])
    ids = {p.scenario.name: p.match_ids[0] for p in world.placements}
    calls = []
    with harness(db_dsn, world) as h:
        h.dsn = db_dsn
        real = h.feed.match
        h.feed.match = lambda mid: calls.append((mid, int(h.clock.now() - start))) or real(mid)
        h.run_job(ingest.daily_diary)
        while h.clock.now() < start + 175 * MIN:
            h.clock.advance(1)
            at = int(h.clock.now())
            h.step(poll=at % 2 == 0)                # detail_live every 2 s, like goald
            if at % 30 == 13:
                h.run_job(jobs.match_watchdog)
            if at % 600 == 10:
                h.run_job(jobs.stuck_matches)
            if at - start == 80 * MIN:      # 33:30 into the 35-minute half-time
                assert row(h, ids["long_half_time"], "stale_level")[0] == 4
        h.settle()
        h.pipeline.flush()
        with h.pool.connection() as conn:
            checked, violations = audit.run(conn, h.clock.now())
            conn.rollback()
        assert checked == len(ids) and not violations, [v.line() for v in violations]
        ended = {n: row(h, mid, "status_id", "ended_reason") for n, mid in ids.items()}
    stuck_id = ids["stuck_live"]
    assert ended["stuck_live"][0] == 8 and ended["stuck_live"][1].startswith("stuck in the second half")
    assert all(reason is None and status == 8 for n, (status, reason) in ended.items() if n != "stuck_live"), ended
    goald_ended = [e for e in events if e["event"] == "match.ended_by_goald"]
    assert [e["match_id"] for e in goald_ended] == [stuck_id]
    # Reconciled once, at the first stuck check past its deadline (it kicked off 2 minutes in: 150
    # minutes after that is 152:00; the checks run at :10 of every tenth minute), and ended then.
    assert [t for mid, t in calls if mid == stuck_id] == [160 * MIN + 10]
    frozen = [e for e in events if e["event"] == "match.frozen"]
    assert [e["match_id"] for e in frozen] == [ids["long_half_time"]]
