"""The provider client against the simulator, one misbehaviour at a time: retries exactly as
specified (network errors, timeouts and 5xx only), refusals never retried, throttles backing off
without counting as failures, the breaker opening, half-opening on a stepped clock and closing,
calls through one breaker overlapping, bad bodies and bad items rejected with reasons, and the
credentials kept out of every message.

The simulator runs in this process on loopback (a real HTTP server, real sockets); its football
clock is a ManualClock and the client's breaker clock a stepped counter, so nothing sleeps long.
"""
import time

import gevent
import pytest
from loguru import logger

from goald.provider.client import ProviderClient
from goald.provider.errors import (CircuitOpen, PayloadRejected, ProviderRefused, ProviderThrottled,
                                   ProviderUnavailable)
from goald.simulator.clock import ManualClock
from goald.simulator.server import AUTH_ERR, SimulatorServer
from goald.simulator.world import World

DAY = 1_780_000_000 - 1_780_000_000 % 86400  # a UTC midnight
NOON = DAY + 12 * 3600
SECRET = "s3cr3t-Value-42"


class Stepped:
    """A monotonic clock the test moves."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture(scope="module")
def sim():
    clock = ManualClock(NOON)
    server = SimulatorServer(World(seed=7, matches=200, clock=clock), clock, user="goald", secret=SECRET,
                             rate=0, seed=7).start()
    yield server
    server.stop(timeout_s=0.1)


@pytest.fixture(autouse=True)
def fresh_chaos(sim):
    sim.chaos.reset()
    sim.served.clear()
    sim.peak_in_flight = 0
    sim.path_peak.clear()
    sim.rate = 0
    sim._cache.clear()
    yield
    sim.chaos.reset()


@pytest.fixture
def events():
    records = []
    sink = logger.add(lambda m: records.append(m), level="DEBUG")
    yield records
    logger.remove(sink)


def client_for(sim, user="goald", secret=SECRET, **kw):
    sleeps = []
    mono = Stepped()
    options = dict(retries=2, retry_base_s=0.5, read_timeout_s=2.0, connect_timeout_s=1.0,
                   clock=mono, sleep=sleeps.append, wall=sim.clock.now)  # the day's time, for the validation
    options.update(kw)
    client = ProviderClient(sim.url, user, secret, **options)
    client.sleeps, client.mono = sleeps, mono
    return client


def served(sim, path="match/detail_live"):
    return {outcome: n for (p, outcome), n in sim.served.items() if p == path}


def assert_backoff(sleeps, expected):
    assert len(sleeps) == len(expected), sleeps
    for got, want in zip(sleeps, expected):
        assert want * 0.8 <= got <= want * 1.2, (sleeps, expected)


# --- the healthy feed ---------------------------------------------------------------------------

def test_a_healthy_feed_decodes_every_live_match_with_no_rejection(sim):
    client = client_for(sim)
    page = client.detail_live()
    assert len(page.items) == len(sim.world.detail_live()) > 0
    assert page.rejections == []
    s = client.describe()["endpoints"]["match/detail_live"]
    assert (s["calls"], s["ok"], s["attempts"], s["retries"], s["items"]) == (1, 1, 1, 0, len(page.items))
    assert client.sleeps == []


def test_a_second_poll_of_an_unchanged_feed_reuses_every_item_and_says_so_in_the_stats(sim):
    client = client_for(sim)
    first = client.detail_live()
    second = client.detail_live()             # the simulated clock has not moved: the same answer
    assert second.items == first.items and all(a is b for a, b in zip(first.items, second.items))
    s = client.describe()["endpoints"]["match/detail_live"]
    assert s["items_reused"] == len(first.items) > 0 and s["items"] == 2 * len(first.items)


def test_latency_slows_the_answer_and_the_latency_is_measured(sim):
    sim.chaos.update({"latency_ms": 200})
    client = client_for(sim, clock=time.monotonic)
    client.detail_live()
    assert client.describe()["endpoints"]["match/detail_live"]["latency_ms"]["p50"] >= 200


# --- retries: network errors, timeouts and 5xx only ---------------------------------------------

def test_a_5xx_is_retried_twice_after_500_and_1000_ms_then_fails_as_unavailable(sim, events):
    sim.chaos.update({"http_5xx": 1})
    client = client_for(sim)
    with pytest.raises(ProviderUnavailable) as e:
        client.detail_live()
    assert e.value.reason == "http_5xx" and "after 3 attempts" in e.value.detail
    assert served(sim) == {"http_5xx": 3}
    assert_backoff(client.sleeps, [0.5, 1.0])
    names = [r.record["extra"].get("event") for r in events]
    assert names.count("provider.http.retry") == 1  # sampled: the second retry of the same kind is counted
    assert names.count("provider.http.fail") == 1
    levels = {r.record["extra"].get("event"): r.record["level"].name for r in events}
    assert levels["provider.http.retry"] == "WARNING" and levels["provider.http.fail"] == "ERROR"
    s = client.describe()["endpoints"]["match/detail_live"]
    assert (s["attempts"], s["retries"], s["failures"]) == (3, 2, {"http_5xx": 1})


def test_a_5xx_that_clears_before_the_retry_succeeds_on_the_retry(sim):
    sim.chaos.update({"http_5xx": 1})
    client = client_for(sim, sleep=lambda s: sim.chaos.update({"http_5xx": 0}))
    page = client.detail_live()
    assert page.items
    assert served(sim) == {"http_5xx": 1, "ok": 1}


def test_no_answer_within_the_read_timeout_is_retried_then_fails_as_a_timeout(sim):
    sim.chaos.update({"timeout": 1, "hang_s": 3})
    client = client_for(sim, read_timeout_s=0.2)
    with pytest.raises(ProviderUnavailable) as e:
        client.detail_live()
    assert e.value.reason == "timeout" and "0.2s (read)" in e.value.detail
    assert served(sim)["timeout"] == 3
    assert_backoff(client.sleeps, [0.5, 1.0])


def test_a_refused_connection_is_retried_then_fails_naming_the_address_but_not_the_credentials(events):
    with socket_closed_port() as port:
        client = ProviderClient(f"http://127.0.0.1:{port}", "goald", SECRET, retries=2, sleep=lambda s: None)
        with pytest.raises(ProviderUnavailable) as e:
            client.detail_live()
    assert e.value.reason == "connect" and f"127.0.0.1:{port}" in str(e.value)
    assert client.describe()["endpoints"]["match/detail_live"]["attempts"] == 3
    everything = str(e.value) + repr(client.describe()) + "".join(
        r.record["message"] + repr(r.record["extra"]) for r in events)
    assert SECRET not in everything and "goald&" not in everything


def socket_closed_port():
    import contextlib
    import socket

    @contextlib.contextmanager
    def port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        number = s.getsockname()[1]
        s.close()  # nothing listens there now
        yield number
    return port()


# --- refusals: never retried --------------------------------------------------------------------

def test_an_err_body_inside_http_200_is_a_refusal_and_is_never_retried(sim):
    sim.chaos.update({"err": 1})
    client = client_for(sim)
    with pytest.raises(ProviderRefused) as e:
        client.detail_live()
    assert e.value.reason == "err" and "Server busy" in e.value.detail
    assert served(sim) == {"err": 1} and client.sleeps == []
    assert client.describe()["groups"]["live"]["consecutive_failures"] == 0


def test_wrong_credentials_are_refused_with_the_providers_err_text_and_never_retried(sim):
    client = client_for(sim, secret="wrong")
    with pytest.raises(ProviderRefused) as e:
        client.diary(date="20260601")
    assert e.value.reason == "err" and AUTH_ERR in e.value.detail
    assert served(sim, "match/diary") == {"auth_err": 1} and client.sleeps == []


def test_an_http_4xx_is_a_refusal_and_is_never_retried(sim):
    client = client_for(sim)
    client.base_url = sim.url + "/wrong-prefix"
    with pytest.raises(ProviderRefused) as e:
        client.detail_live()
    assert e.value.reason == "http_4xx" and "404" in e.value.detail
    assert client.sleeps == [] and client.describe()["endpoints"]["match/detail_live"]["attempts"] == 1


# --- throttling: backs off, never a failure -----------------------------------------------------

@pytest.mark.parametrize("switch, wait_s", [("throttle", 2.0), ("http_429", 1.0)])
def test_a_throttle_backs_the_group_off_without_counting_as_a_failure(sim, switch, wait_s):
    sim.chaos.update({switch: 1})
    client = client_for(sim, throttle_backoff_s=2.0)
    with pytest.raises(ProviderThrottled) as e:
        client.detail_live()
    assert e.value.reason == "throttled" and e.value.retry_after_s == wait_s  # http_429 says Retry-After: 1
    assert served(sim)[switch] == 1
    sim.chaos.reset()
    with pytest.raises(ProviderThrottled) as e:  # the same group (data/update is live too) waits
        client.data_update()
    assert e.value.reason == "backing_off" and sum(served(sim, "data/update").values()) == 0
    client.mono.t += wait_s + 0.01
    assert client.data_update().rejections == []
    group = client.describe()["groups"]["live"]
    assert group["state"] == "closed" and group["consecutive_failures"] == 0
    s = client.describe()["endpoints"]["match/detail_live"]
    assert s["throttled"] == 1 and s["failures"] == {}
    # the refusal while backing off is counted apart from the throttle answers
    assert client.describe()["endpoints"]["data/update"]["backed_off"] == 1
    assert client.describe()["endpoints"]["data/update"]["throttled"] == 0


def test_more_requests_than_the_rate_allows_get_code_429(sim):
    sim.rate = 3
    client = client_for(sim)
    for _ in range(3):
        client.diary(date="20260601")
        client.mono.t += 10  # past any back-off; the rate window is the server's real second
    with pytest.raises(ProviderThrottled):
        client.diary(date="20260601")
    assert served(sim, "match/diary")["rate_429"] == 1


# --- bodies and items ---------------------------------------------------------------------------

@pytest.mark.parametrize("switch", ["malformed", "truncated"])
def test_a_body_that_is_not_whole_json_is_rejected_as_malformed_and_not_retried(sim, switch):
    sim.chaos.update({switch: 1})
    client = client_for(sim)
    with pytest.raises(PayloadRejected) as e:
        client.detail_live()
    assert e.value.reason == "malformed_json"
    assert served(sim) == {switch: 1} and client.sleeps == []
    assert client.describe()["groups"]["live"]["consecutive_failures"] == 1
    assert client.describe()["endpoints"]["match/detail_live"]["rejections"] == {"malformed_json": 1}


def test_items_with_a_field_of_the_wrong_type_are_rejected_and_the_rest_of_the_page_survives(sim, events):
    total = len(sim.world.detail_live())
    sim.chaos.update({"wrong_types": 0.3})
    client = client_for(sim)
    page = client.detail_live()
    assert 0 < len(page.rejections) < total
    assert len(page.items) + len(page.rejections) == total
    assert {r.reason for r in page.rejections} == {"wrong_type"}
    assert all("score" in r.detail for r in page.rejections)
    assert {m.id for m in page.items}.isdisjoint({r.item for r in page.rejections})
    logged = [r for r in events if r.record["extra"].get("event") == "provider.payload.rejected"]
    assert len(logged) == 1  # sampled: one line a minute per reason, the rest counted
    assert client.describe()["endpoints"]["match/detail_live"]["rejections"] == {"wrong_type": len(page.rejections)}


def test_out_of_order_answers_serve_an_earlier_seconds_page_which_still_decodes(sim):
    client = client_for(sim)
    first = {m.id: m for m in client.detail_live().items}
    sim.world.clock.advance(600)
    try:
        sim.chaos.update({"out_of_order": 1})
        older = client.detail_live()
        assert served(sim)["out_of_order"] == 1
        assert {m.id: m for m in older.items} == first
    finally:
        sim.world.clock.advance(0)


def test_duplicate_answers_hold_every_item_twice_and_decode(sim):
    sim.chaos.update({"duplicate": 1})
    page = client_for(sim).detail_live()
    ids = [m.id for m in page.items]
    assert len(ids) == 2 * len(set(ids)) > 0


def test_a_vanished_match_is_missing_from_detail_live_but_still_in_the_diary(sim):
    client = client_for(sim)
    gone = client.detail_live().items[0].id
    sim.chaos.update({"vanish_ids": [gone]})
    assert gone not in {m.id for m in client.detail_live().items}
    day = time.strftime("%Y%m%d", time.gmtime(sim.world.clock.now()))
    assert gone in {m.id for m in client.diary(date=day).items}


def test_a_stuck_match_stays_live_with_the_same_score_long_after_it_must_have_ended(sim):
    client = client_for(sim)
    live = [m for m in client.detail_live().items if m.score.status_id in (2, 4)]
    stuck = live[0]
    sim.chaos.update({"stuck_ids": [stuck.id]})
    client.detail_live()  # the moment it gets stuck
    sim.world.clock.advance(4 * 3600)
    later = {m.id: m for m in client.detail_live().items}
    assert later[stuck.id].score == stuck.score


# --- the breaker --------------------------------------------------------------------------------

def client_with_open_breaker(sim):
    """A client whose live breaker five failed calls (HTTP 503, no retries) have just opened."""
    sim.chaos.update({"http_5xx": 1})
    client = client_for(sim, retries=0)
    for _ in range(5):
        with pytest.raises(ProviderUnavailable):
            client.detail_live()
    assert client.describe()["groups"]["live"]["state"] == "open"
    return client


def test_five_failures_open_the_breaker_which_half_opens_after_120_s_and_closes_on_success(sim, events):
    sim.chaos.update({"http_5xx": 1, "only": ["match/detail_live"]})
    client = client_for(sim, retries=0)
    for _ in range(5):
        with pytest.raises(ProviderUnavailable):
            client.detail_live()
    assert client.describe()["groups"]["live"]["state"] == "open"
    with pytest.raises(CircuitOpen) as e:
        client.detail_live()
    assert e.value.retry_after_s == pytest.approx(120, abs=0.1)
    assert served(sim) == {"http_5xx": 5}  # the refused call never reached the provider
    assert client.diary(date="20260601").items is not None  # another group is not affected
    client.mono.t += 119.0
    with pytest.raises(CircuitOpen):
        client.detail_live()
    client.mono.t += 1.0
    sim.chaos.reset()
    assert client.detail_live().items
    assert client.describe()["groups"]["live"]["state"] == "closed"
    names = [r.record["extra"].get("event") for r in events]
    assert [n for n in names if n and n.startswith("provider.circuit.")] == [
        "provider.circuit.opened", "provider.circuit.half_open", "provider.circuit.closed"]


def test_a_failed_half_open_trial_opens_the_breaker_for_another_120_s(sim):
    client = client_with_open_breaker(sim)
    client.mono.t += 120.0
    with pytest.raises(ProviderUnavailable):
        client.detail_live()  # the trial
    assert client.describe()["groups"]["live"]["state"] == "open"
    client.mono.t += 119.0
    with pytest.raises(CircuitOpen):
        client.detail_live()
    assert served(sim) == {"http_5xx": 6}


def test_the_half_open_breaker_lets_exactly_one_trial_call_go(sim):
    client = client_with_open_breaker(sim)
    sim.chaos.update({"http_5xx": 0, "latency_ms": 300})
    client.mono.t += 120.0
    calls = [gevent.spawn(client.detail_live) for _ in range(3)]
    gevent.joinall(calls)
    outcomes = sorted(type(g.exception).__name__ if g.exception else "ok" for g in calls)
    assert outcomes == ["CircuitOpen", "CircuitOpen", "ok"]
    assert client.describe()["groups"]["live"]["state"] == "closed"


def test_ten_calls_of_half_a_second_through_one_breaker_overlap_instead_of_queueing(sim):
    sim.chaos.update({"latency_ms": 500})
    client = client_for(sim, clock=time.monotonic)
    started = time.monotonic()
    calls = [gevent.spawn(client.data_update) for _ in range(10)]
    gevent.joinall(calls, raise_error=True)
    elapsed = time.monotonic() - started
    assert sim.path_peak["data/update"] == 10  # all ten were at the provider at once
    assert elapsed < 2.5, elapsed  # one after another would take 5 s


def test_the_health_endpoint_data_shows_every_endpoint_and_group():
    client = ProviderClient("http://127.0.0.1:9", "u", SECRET)
    d = client.describe()
    assert set(d["groups"]) == {"live", "schedule", "stats", "reference"}
    assert "match/detail_live" in d["endpoints"] and "team/additional/list" in d["endpoints"]
    assert SECRET not in repr(d)


def test_the_requests_session_keeps_one_connection_alive_across_calls(sim):
    client = client_for(sim)
    sim.peers.clear()
    for _ in range(3):
        client.data_update()
    assert len(sim.peers) == 1, sim.peers  # one TCP connection, reused
