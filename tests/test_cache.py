"""The read API's cache (goald/cache/): keys, single flight, errors, invalidation, Redis outages.

Redis is real: the shared server of the test run (`redis_url`) with a random prefix per test
whose keys are deleted afterwards, and for outages a redis-server of the test's own, killed,
paused or restarted on its port. Concurrency is gevent's (conftest.py patches the process).
"""
import hashlib
import json
import re
import socket
import time
import uuid

import gevent
import gevent.event
import pytest
import redis
from loguru import logger

from goald import config
from goald.cache import (Cache, CacheBuildAborted, CacheWaitTimeout, KindPolicy, MemoryBackend, RedisBackend,
                         cache_key, from_config)
from goald.cache.cache import MAX_MISSED

from support import OwnRedis, wait_for

KINDS = {"standings": KindPolicy(True, 60.0), "h2h": KindPolicy(True, 1800.0),
         "match_details": KindPolicy(True, 5.0)}


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


class Builds:
    """A build function that counts its calls and answers `body` (after `sleep_s`)."""

    def __init__(self, body=b'{"ok":true}', sleep_s=0.0):
        self.body, self.sleep_s, self.calls = body, sleep_s, 0

    def __call__(self):
        self.calls += 1
        if self.sleep_s:
            gevent.sleep(self.sleep_s)
        return self.body


def events(lines, name):
    return [line for line in lines if line.get("event") == name]


@pytest.fixture
def prefix(redis_url):
    """A prefix of this test's own; every Redis key under it is deleted afterwards."""
    p = "t" + uuid.uuid4().hex[:12]
    yield p
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=p + ":*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", "redis"])
def backend(request, redis_url, prefix):
    if request.param == "memory":
        return MemoryBackend()
    return RedisBackend(redis_url)


def make_cache(backend, prefix, **kw):
    return Cache(backend, prefix=prefix, kinds=kw.pop("kinds", KINDS), **kw)


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()


# --- keys ---------------------------------------------------------------------------------------

def test_parameters_in_another_order_give_the_same_key():
    assert cache_key("goald", "h2h", "m1", {"a": 1, "b": "x", "c": None}) == \
        cache_key("goald", "h2h", "m1", {"c": None, "b": "x", "a": 1})


def test_any_changed_parameter_value_or_type_gives_another_key():
    base = cache_key("goald", "h2h", "m1", {"a": 1, "b": "x"})
    for other in ({"a": 2, "b": "x"}, {"a": 1, "b": "y"}, {"a": "1", "b": "x"}, {"a": True, "b": "x"},
                  {"a": 1.5, "b": "x"}, {"a": 1}, {"a": 1, "b": "x", "c": None}):
        assert cache_key("goald", "h2h", "m1", other) != base, other
    assert cache_key("goald", "h2h", "m2", {"a": 1, "b": "x"}) != base
    assert cache_key("goald", "standings", "m1", {"a": 1, "b": "x"}) != base


def test_the_key_starts_with_prefix_kind_and_scope_then_the_hash_of_the_canonical_parameters():
    key = cache_key("goald", "standings", "39", {"season": "2025", "live": True})
    assert re.fullmatch(r"goald:standings:39:[0-9a-f]{16}", key), key
    canonical = json.dumps({"kind": "standings", "scope": "39", "season": "2025", "live": True},
                           sort_keys=True, separators=(",", ":"))
    assert key.endswith(":" + hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest())
    assert cache_key("goald", "standings", "", {}).startswith("goald:standings:-:")


def test_a_kind_or_scope_with_a_colon_or_whitespace_is_a_value_error():
    for kind, scope in (("stand:ings", "39"), ("stand ings", "39"), ("", "39"), ("standings", "3:9"),
                        ("standings", "3 9"), ("standings", "39\n")):
        with pytest.raises(ValueError):
            cache_key("goald", kind, scope, {})


def test_a_parameter_value_that_is_not_a_scalar_is_a_value_error():
    for value in ([1], {"x": 1}, b"bytes", object()):
        with pytest.raises(ValueError, match="must be str, int, float, bool or None"):
            cache_key("goald", "h2h", "m1", {"a": value})


# --- memory and Redis alike ---------------------------------------------------------------------

def test_a_miss_builds_and_stores_then_the_next_call_is_a_hit_without_building(backend, prefix):
    cache, build = make_cache(backend, prefix), Builds(b"table")
    first = cache.get_or_build("standings", "39", {"season": "2025"}, build)
    second = cache.get_or_build("standings", "39", {"season": "2025"}, build)
    assert (first.body, first.from_cache, second.body, second.from_cache) == (b"table", False, b"table", True)
    assert first.key == second.key and build.calls == 1
    counts = cache.describe()["kinds"]["standings"]
    assert (counts["misses"], counts["hits"], counts["stores"]) == (1, 1, 1)


def test_a_memory_entry_expires_after_its_ttl_and_is_built_again():
    clock = FakeClock()
    cache = make_cache(MemoryBackend(clock=clock), "goald", kinds={"h2h": KindPolicy(True, 10.0)})
    build = Builds()
    cache.get_or_build("h2h", "m1", {}, build)
    clock.now += 9.9
    assert cache.get_or_build("h2h", "m1", {}, build).from_cache
    clock.now += 0.2
    again = cache.get_or_build("h2h", "m1", {}, build)
    assert not again.from_cache and build.calls == 2
    assert cache.backend.describe()["entries"] == 1      # the expired entry was dropped, not kept beside


def test_a_redis_entry_expires_after_its_ttl_and_is_built_again(redis_url, prefix):
    cache = make_cache(RedisBackend(redis_url), prefix, kinds={"h2h": KindPolicy(True, 0.2)})
    build = Builds()
    cache.get_or_build("h2h", "m1", {}, build)
    assert cache.get_or_build("h2h", "m1", {}, build).from_cache
    gevent.sleep(0.3)
    assert not cache.get_or_build("h2h", "m1", {}, build).from_cache
    assert build.calls == 2


def test_a_thousand_concurrent_callers_of_one_key_cause_one_build_and_all_get_its_body(backend, prefix):
    cache, build = make_cache(backend, prefix), Builds(b'{"h2h":[1,2,3]}', sleep_s=0.05)
    callers = [gevent.spawn(cache.get_or_build, "h2h", "m1", {"limit": 10}, build) for _ in range(1000)]
    gevent.joinall(callers, timeout=30, raise_error=True)
    answers = [g.value for g in callers]
    assert build.calls == 1
    assert {a.body for a in answers} == {b'{"h2h":[1,2,3]}'}
    assert sorted(a.from_cache for a in answers).count(False) == 1     # only the builder caused a query
    counts = cache.describe()["kinds"]["h2h"]
    assert (counts["misses"], counts["singleflight_saved"], counts["hits"], counts["stores"]) == (1, 999, 0, 1)
    assert cache.describe()["flights"] == 0
    assert cache.get_or_build("h2h", "m1", {"limit": 10}, build).from_cache
    assert cache.describe()["kinds"]["h2h"]["hits"] == 1


def test_a_build_error_reaches_the_caller_and_every_waiter_and_nothing_is_stored(backend, prefix):
    cache = make_cache(backend, prefix)
    calls = []

    def failing():
        calls.append(1)
        gevent.sleep(0.05)
        raise LookupError("no such season")

    callers = [gevent.spawn(cache.get_or_build, "standings", "39", {}, failing) for _ in range(20)]
    gevent.joinall(callers, timeout=10)
    assert len(calls) == 1
    assert all(isinstance(g.exception, LookupError) and str(g.exception) == "no such season" for g in callers)
    build = Builds(b"fine now")
    after = cache.get_or_build("standings", "39", {}, build)
    assert (after.body, after.from_cache, build.calls) == (b"fine now", False, 1)
    counts = cache.describe()["kinds"]["standings"]
    assert (counts["build_errors"], counts["stores"]) == (1, 1)


def test_invalidate_removes_every_param_variant_of_a_scope_and_nothing_of_other_scopes(backend, prefix):
    cache, build = make_cache(backend, prefix), Builds()
    for params in ({}, {"season": "2024"}, {"season": "2025", "live": True}):
        cache.get_or_build("standings", "39", params, build)
    cache.get_or_build("standings", "40", {}, build)
    cache.get_or_build("h2h", "39", {}, build)
    assert cache.invalidate("standings", "39") == 3
    assert build.calls == 5
    for params in ({}, {"season": "2024"}, {"season": "2025", "live": True}):
        assert not cache.get_or_build("standings", "39", params, build).from_cache
    assert cache.get_or_build("standings", "40", {}, build).from_cache
    assert cache.get_or_build("h2h", "39", {}, build).from_cache
    assert build.calls == 8
    assert cache.describe()["kinds"]["standings"]["invalidations"] == 1


def test_invalidate_kind_removes_every_scope_of_that_kind_and_nothing_of_other_kinds(backend, prefix):
    cache, build = make_cache(backend, prefix), Builds()
    for scope in ("39", "40", "41"):
        cache.get_or_build("standings", scope, {"season": "2025"}, build)
    cache.get_or_build("h2h", "39", {}, build)
    assert cache.invalidate_kind("standings") == 3
    assert not any(cache.get_or_build("standings", s, {"season": "2025"}, build).from_cache for s in ("39", "40", "41"))
    assert cache.get_or_build("h2h", "39", {}, build).from_cache


def test_a_build_in_flight_while_invalidate_runs_is_answered_to_its_callers_but_not_stored(backend, prefix):
    cache, release = make_cache(backend, prefix), gevent.event.Event()

    def slow_old():
        release.wait(5)
        return b"old"

    owner = gevent.spawn(cache.get_or_build, "match_details", "m1", {}, slow_old)
    waiter = gevent.spawn(cache.get_or_build, "match_details", "m1", {}, slow_old)
    wait_for(lambda: cache.describe()["kinds"]["match_details"]["singleflight_saved"] == 1, what="the waiter")
    cache.invalidate("match_details", "m1")
    release.set()
    gevent.joinall([owner, waiter], timeout=5, raise_error=True)
    assert (owner.value.body, waiter.value.body) == (b"old", b"old")
    build = Builds(b"new")
    after = cache.get_or_build("match_details", "m1", {}, build)
    assert (after.body, after.from_cache, build.calls) == (b"new", False, 1)
    assert cache.describe()["kinds"]["match_details"]["stores"] == 1     # the new body only


def test_a_caller_arriving_after_invalidate_does_not_join_the_stale_flight(backend, prefix):
    cache, release = make_cache(backend, prefix), gevent.event.Event()

    def slow_old():
        release.wait(5)
        return b"old"

    owner = gevent.spawn(cache.get_or_build, "match_details", "m1", {}, slow_old)
    wait_for(lambda: cache.describe()["flights"] == 1, what="the flight")
    gevent.sleep(0.01)
    cache.invalidate("match_details", "m1")
    fresh = cache.get_or_build("match_details", "m1", {}, Builds(b"new"))
    release.set()
    owner.join(5)
    assert (owner.value.body, fresh.body, fresh.from_cache) == (b"old", b"new", False)
    later = cache.get_or_build("match_details", "m1", {}, Builds(b"other"))
    assert (later.body, later.from_cache) == (b"new", True)     # the stale flight did not overwrite it


def test_a_disabled_kind_builds_on_every_call_and_stores_nothing(backend, prefix):
    kinds = dict(KINDS, h2h=KindPolicy(False, 1800.0))
    cache, build = make_cache(backend, prefix, kinds=kinds), Builds(b"fresh")
    answers = [cache.get_or_build("h2h", "m1", {}, build) for _ in range(3)]
    assert build.calls == 3 and not any(a.from_cache for a in answers)
    assert backend.get(answers[0].key) is None
    counts = cache.describe()["kinds"]["h2h"]
    assert (counts["bypassed"], counts["misses"], counts["hits"], counts["stores"]) == (3, 0, 0, 0)


# --- waiting --------------------------------------------------------------------------------------

def test_a_waiter_past_wait_s_gets_cache_wait_timeout_naming_the_key_and_the_wait():
    cache = make_cache(MemoryBackend(), "goald", wait_s=0.1)
    owner = gevent.spawn(cache.get_or_build, "h2h", "m1", {}, Builds(b"late", sleep_s=0.5))
    gevent.sleep(0)
    started = time.monotonic()
    with pytest.raises(CacheWaitTimeout) as caught:
        cache.get_or_build("h2h", "m1", {}, Builds())
    assert 0.09 < time.monotonic() - started < 0.4
    assert caught.value.key in str(caught.value) and "0.1s" in str(caught.value)
    assert owner.get(timeout=5).body == b"late"


def test_the_waiters_of_a_killed_flight_get_cache_build_aborted_and_the_next_call_builds_again():
    cache = make_cache(MemoryBackend(), "goald")
    owner = gevent.spawn(cache.get_or_build, "h2h", "m1", {}, Builds(sleep_s=5))
    gevent.sleep(0)
    waiter = gevent.spawn(cache.get_or_build, "h2h", "m1", {}, Builds())
    gevent.sleep(0.01)
    owner.kill()
    waiter.join(5)
    assert isinstance(waiter.exception, CacheBuildAborted)
    build = Builds(b"again")
    assert cache.get_or_build("h2h", "m1", {}, build).body == b"again" and build.calls == 1


# --- listeners ------------------------------------------------------------------------------------

def test_listeners_hear_published_invalidations_and_not_those_from_other_nodes():
    cache, heard = make_cache(MemoryBackend(), "goald"), []
    cache.listeners.append(lambda kind, scope: heard.append((kind, scope)))
    cache.invalidate("standings", "39")
    cache.invalidate_kind("h2h")
    cache.invalidate("standings", "40", publish=False)
    cache.invalidate_kind("match_details", publish=False)
    assert heard == [("standings", "39"), ("h2h", "*")]


def test_a_failing_listener_is_logged_and_neither_the_invalidation_nor_the_next_listener_is_lost(log_lines):
    cache, heard, build = make_cache(MemoryBackend(), "goald"), [], Builds()

    def broken(kind, scope):
        raise ConnectionError("peer gone")

    cache.listeners += [broken, lambda kind, scope: heard.append((kind, scope))]
    cache.get_or_build("standings", "39", {}, build)
    assert cache.invalidate("standings", "39") == 1
    assert heard == [("standings", "39")]
    assert not cache.get_or_build("standings", "39", {}, build).from_cache
    failed = events(log_lines(), "cache.listener_failed")
    assert len(failed) == 1 and failed[0]["error_type"] == "ConnectionError" and failed[0]["level"] == "WARNING"


# --- outages --------------------------------------------------------------------------------------

def test_a_redis_outage_is_answered_by_building_logged_once_and_caching_resumes_when_it_is_back(
        own_redis, log_lines):
    cache = make_cache(RedisBackend(own_redis.url, socket_timeout_s=0.2, connect_timeout_s=0.2), "goald",
                       retry_s=0.2)
    build = Builds(b"standings")
    assert not cache.get_or_build("standings", "39", {}, build).from_cache
    assert cache.get_or_build("standings", "39", {}, build).from_cache

    own_redis.kill()
    during = []
    for _ in range(30):
        during.append(cache.get_or_build("standings", "39", {}, build))
    gevent.sleep(0.25)                      # past retry_s: the next call probes Redis, still dead
    for _ in range(30):
        during.append(cache.get_or_build("standings", "39", {}, build))
    assert all(a.body == b"standings" and not a.from_cache for a in during)
    assert build.calls == 1 + 60
    state = cache.describe()
    assert state["backend_up"] is False and state["kinds"]["standings"]["degraded"] == 60
    assert state["backend_errors"] == 2     # the first failure and the one probe, not one per call
    down = events(log_lines(), "cache.backend_down")
    assert len(down) == 1
    assert down[0]["level"] == "WARNING" and down[0]["error_type"] == "ConnectionError"
    assert own_redis.url in down[0]["msg"] and "answering from the database" in down[0]["msg"]

    own_redis.start()
    gevent.sleep(0.25)
    back = cache.get_or_build("standings", "39", {}, build)     # the probe: Redis lost its data, a miss
    assert not back.from_cache and build.calls == 62
    assert cache.get_or_build("standings", "39", {}, build).from_cache
    assert cache.get_or_build("standings", "39", {}, build).from_cache
    assert build.calls == 62 and cache.describe()["backend_up"] is True
    lines = log_lines()
    assert len(events(lines, "cache.backend_back")) == 1 and len(events(lines, "cache.backend_down")) == 1


def test_concurrent_callers_during_an_outage_still_share_one_build_per_key(own_redis):
    cache = make_cache(RedisBackend(own_redis.url, socket_timeout_s=0.2, connect_timeout_s=0.2), "goald",
                       retry_s=60)
    own_redis.kill()
    cache.get_or_build("h2h", "warm-up", {}, Builds())      # finds out Redis is down
    build = Builds(b"from the database", sleep_s=0.05)
    callers = [gevent.spawn(cache.get_or_build, "h2h", "m1", {}, build) for _ in range(200)]
    gevent.joinall(callers, timeout=10, raise_error=True)
    assert build.calls == 1 and {g.value.body for g in callers} == {b"from the database"}


def test_a_failing_set_after_a_build_still_answers_the_built_body_and_marks_redis_down(own_redis, log_lines):
    cache = make_cache(RedisBackend(own_redis.url), "goald", retry_s=60)
    admin = own_redis.admin()
    admin.config_set("maxmemory", 1)     # reads still work, every write is refused (OOM)
    admin.config_set("maxmemory-policy", "noeviction")
    answer = cache.get_or_build("h2h", "m1", {}, Builds(b"built"))
    assert (answer.body, answer.from_cache) == (b"built", False)
    assert cache.describe()["backend_up"] is False and cache.describe()["kinds"]["h2h"]["stores"] == 0
    down = events(log_lines(), "cache.backend_down")
    assert len(down) == 1 and down[0]["error_type"] == "OutOfMemoryError"
    admin.close()


def test_an_invalidation_missed_during_an_outage_is_replayed_before_redis_is_read_again(own_redis, log_lines):
    cache = make_cache(RedisBackend(own_redis.url, socket_timeout_s=0.2, connect_timeout_s=0.2), "goald",
                       retry_s=0.3)
    cache.get_or_build("standings", "39", {"season": "2025"}, Builds(b"old table"))
    admin = own_redis.admin()
    admin.execute_command("CLIENT", "PAUSE", 700, "ALL")      # Redis keeps its data but answers nothing
    paused_at = time.monotonic()
    assert cache.invalidate("standings", "39") == 0
    assert cache.describe()["backend_up"] is False and cache.describe()["invalidations_pending"] == 1
    gevent.sleep(max(0.0, 0.8 - (time.monotonic() - paused_at)))
    assert admin.exists(cache.backend.index_key("goald:standings:39"))    # the stale entry is still there
    answer = cache.get_or_build("standings", "39", {"season": "2025"}, Builds(b"new table"))
    assert (answer.body, answer.from_cache) == (b"new table", False)
    assert cache.describe()["invalidations_pending"] == 0 and cache.describe()["backend_up"] is True
    assert len(events(log_lines(), "cache.backend_back")) == 1
    admin.close()


def test_missed_invalidations_past_the_limit_become_whole_kinds():
    cache = make_cache(RedisBackend("redis://127.0.0.1:1/0", connect_timeout_s=0.1), "goald", retry_s=60)
    for i in range(MAX_MISSED + 5):
        cache.invalidate("match_details", f"m{i}")
    cache.invalidate("h2h", "m1")
    assert cache._missed == {("match_details", None): None, ("h2h", "m1"): None}


# --- readiness, memory bounds, configuration, secrets ----------------------------------------------

def test_ready_says_memory_redis_ok_or_redis_unreachable_with_the_error_type(redis_url):
    assert make_cache(MemoryBackend(), "goald").ready() == (True, "memory")
    assert make_cache(RedisBackend(redis_url), "goald").ready() == (True, "redis ok")
    dead = make_cache(RedisBackend("redis://127.0.0.1:1/0"), "goald")
    assert dead.ready() == (False, "redis unreachable: ConnectionError")
    assert dead.describe()["backend_up"] is True      # a ping does not decide the request path's state


def test_the_memory_backend_keeps_at_most_max_entries_dropping_the_oldest_first():
    backend = MemoryBackend(max_entries=100)
    for i in range(250):
        backend.set(f"k{i}", b"v", 60.0, f"idx{i % 7}")
    state = backend.describe()
    assert state["entries"] == 100 and state["evicted"] == 150
    assert backend.get("k149") is None and backend.get("k150") == b"v" and backend.get("k249") == b"v"
    assert sum(len(keys) for keys in backend._indexes.values()) == 100    # indexes forget evicted keys
    assert backend.delete_index("idx0") == len([i for i in range(150, 250) if i % 7 == 0])


def test_from_config_builds_a_memory_cache_by_default_with_the_kind_policies_of_the_settings():
    cfg = config.load(search=False, environ={"CACHE_H2H": "false", "GOALD_CACHE_MATCH_DETAILS_TTL_S": "2",
                                             "GOALD_CACHE_MEMORY_MAX_ENTRIES": "77", "GOALD_CACHE_PREFIX": "blue"})
    cache = from_config(cfg)
    assert isinstance(cache.backend, MemoryBackend) and cache.backend.max_entries == 77
    assert cache.prefix == "blue" and (cache.wait_s, cache.retry_s) == (5.0, 5.0)
    assert cache.kinds == {"standings": KindPolicy(True, 60.0), "h2h": KindPolicy(False, 1800.0),
                           "match_details": KindPolicy(True, 2.0), "predictions": KindPolicy(True, 30.0)}


def test_from_config_with_use_redis_builds_a_redis_cache_on_the_url_and_connects_nothing():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"redis://127.0.0.1:{listener.getsockname()[1]}/3"
        cfg = config.load(search=False, environ={"USE_REDIS_CACHE": "1", "REDIS_URL": url})
        cache = from_config(cfg)
        assert isinstance(cache.backend, RedisBackend) and cache.backend.url == url
        assert cache.describe()["backend"] == url
        listener.settimeout(0.3)
        with pytest.raises(socket.timeout):
            listener.accept()                    # construction opened no connection...
        pinging = gevent.spawn(cache.ready)
        conn, _ = listener.accept()              # ...the first use does (this test can see one)
        conn.close()
        pinging.join(5)


def test_from_config_pointing_at_a_dead_redis_constructs_and_answers_from_the_database():
    cfg = config.load(search=False, environ={"GOALD_CACHE_USE_REDIS": "true",
                                             "GOALD_CACHE_REDIS_URL": "redis://127.0.0.1:1/0"})
    cache = from_config(cfg)
    answer = cache.get_or_build("standings", "39", {}, Builds(b"db"))
    assert (answer.body, answer.from_cache, cache.backend_up) == (b"db", False, False)


def test_the_redis_description_and_log_lines_never_contain_its_password():
    raw = []
    sink = logger.add(lambda message: raw.append(str(message) + json.dumps(message.record["extra"], default=str)),
                      level="DEBUG", format="{message}")      # before goald's redaction
    try:
        backend = RedisBackend("redis://:s3cret@127.0.0.1:1/0")
        cache = make_cache(backend, "goald")
        cache.get_or_build("standings", "39", {}, Builds())
        shown = json.dumps(cache.describe()) + json.dumps(backend.describe()) + repr(cache.ready())
    finally:
        logger.remove(sink)
    assert cache.describe()["backend"] == "redis://:***@127.0.0.1:1/0"
    assert any("cache.backend_down" in line for line in raw)
    assert "s3cret" not in shown and not any("s3cret" in line for line in raw)
