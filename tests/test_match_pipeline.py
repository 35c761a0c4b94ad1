"""The match pipeline's invariants (DESIGN.md, DOMAIN.md), each through the real router, match
actors, writer and database: out-of-order updates rejected and counted, newer stored state never
overwritten, the minute engine never moving updated_at, freeze statuses keeping their minute, a
crashed actor restarting from its row, unusual transitions logged and counted, final matches
retiring, the ingest jobs' idempotency and paging, and the read endpoints' shared bodies."""
import msgspec
import pytest
from loguru import logger

from goald.actors.jobs import ingest
from goald.actors.match_actor import LiveUpdate
from goald.match import rows, store
from goald.provider import payloads as p
from goald.simulator.clock import ManualClock
from goald.simulator.world import World
import provider_samples as ps
from match_support import harness, sql, wait_until

NOW = ps.NOW


def live(mid, status=2, **kw):
    return msgspec.convert(ps.live_item(mid, status, **kw), p.LiveMatch)


@pytest.fixture
def h(db_dsn):
    world = World(seed=1, matches=0, clock=ManualClock(NOW))
    with harness(db_dsn, world) as hh:
        hh.dsn = db_dsn
        yield hh


def tracked(h, *ids, status=1, match_time=NOW - 600):
    with h.pool.connection() as conn:
        store.upsert_objects(conn, [rows.object_row(msgspec.convert(
            ps.match_object(mid, status, match_time=match_time, updated_at=NOW - 3600), p.Match)) for mid in ids])
        conn.commit()
    h.pipeline.track(ids)
    h.settle()


def send(h, *items, at):
    h.pipeline.route_live(items, at, at)
    h.settle()
    h.pipeline.flush()


def row(h, mid, *cols):
    return sql(h.dsn, f"SELECT {', '.join(cols)} FROM matches WHERE id = %s", (mid,))[0]


def test_an_out_of_order_update_is_rejected_counted_and_changes_nothing(h):
    tracked(h, "m1")
    send(h, live("m1", 3), at=NOW)
    before = row(h, "m1", "status_id", "provider_update_time", "updated_at", "xmin::text")
    send(h, live("m1", 2, home=ps.team_score(0)), at=NOW - 10)   # an older state, delivered late
    assert row(h, "m1", "status_id", "provider_update_time", "updated_at", "xmin::text") == before
    assert before[:2] == (3, NOW)
    assert h.pipeline.counts["older"] == 1


def test_a_write_over_newer_stored_state_is_filtered_and_the_actor_takes_the_stored_state(h):
    tracked(h, "m1")
    send(h, live("m1", 2), at=NOW)
    sql(h.dsn, "UPDATE matches SET status_id = 3, provider_update_time = %s WHERE id = 'm1'", (NOW + 50,))
    send(h, live("m1", 4, kickoff_ts=NOW + 20), at=NOW + 30)      # older than what another writer stored
    assert row(h, "m1", "status_id", "provider_update_time") == (3, NOW + 50)
    h.settle()
    assert h.pipeline.counts["rejected_by_database"] == 1 and h.pipeline.counts["reloaded"] == 1
    send(h, live("m1", 4, kickoff_ts=NOW + 20), at=NOW + 60)      # newer: applied on top of the stored state
    assert row(h, "m1", "status_id", "provider_update_time", "second_half_kickoff_ts") == (4, NOW + 60, NOW + 20)


def test_the_minute_engine_moves_minute_and_text_but_never_updated_at(h):
    tracked(h, "m1")
    send(h, live("m1", 2, kickoff_ts=NOW - 30), at=NOW)
    updated = row(h, "m1", "updated_at")
    texts = []
    for second in range(1, 200):
        h.clock.set(NOW + second)
        h.step(poll=False)
        texts.append(row(h, "m1", "minute_text")[0])
    assert texts[0] == "1'" and "2'" in texts and "4'" in texts
    assert texts.index("2'") == 29          # NOW - 30 + 60 s: the text changes at that very second
    assert row(h, "m1", "updated_at") == updated


@pytest.mark.parametrize("status, text", [(3, "HT"), (10, "INT"), (9, "DELAY"), (8, "FT")])
def test_freeze_statuses_keep_the_minute_they_froze_at(h, status, text):
    tracked(h, "m1")
    send(h, live("m1", 2, kickoff_ts=NOW - 44 * 60), at=NOW)
    assert row(h, "m1", "minute", "minute_text") == (45, "45'")
    send(h, live("m1", status, kickoff_ts=0), at=NOW + 5)
    for second in range(10, 600, 30):
        h.clock.set(NOW + second)
        h.step(poll=False)
    assert row(h, "m1", "minute", "minute_text") == (45, text)


def test_a_crashed_match_actor_restarts_from_its_row_and_goes_on(h):
    tracked(h, "m1")
    send(h, live("m1", 2, kickoff_ts=NOW - 120), at=NOW)
    first = h.pipeline.registry["m1"]
    first.tell(LiveUpdate(None, NOW + 1, NOW + 1))          # a poisonous message: the actor crashes
    wait_until(lambda: h.pipeline.registry.get("m1") not in (None, first))
    send(h, live("m1", 3, kickoff_ts=0), at=NOW + 2)
    assert row(h, "m1", "status_id", "first_half_kickoff_ts", "minute_text") == (3, NOW - 120, "HT")


def test_an_unusual_transition_is_applied_logged_with_its_fields_and_counted(h):
    events = []
    sink = logger.add(lambda m: events.append(m.record["extra"]), level="WARNING",
                      filter=lambda r: r["extra"].get("event") == "match.transition_unusual")
    try:
        tracked(h, "m1")
        send(h, live("m1", 2), at=NOW)
        send(h, live("m1", 7), at=NOW + 2)          # first half straight to penalties
    finally:
        logger.remove(sink)
    assert row(h, "m1", "status_id")[0] == 7
    assert h.pipeline.counts["unusual"] == 1
    assert [(e["match_id"], e["status_id"], e["from_status"], e["provider_update_time"]) for e in events] == [
        ("m1", 7, 2, NOW + 2)]


def test_a_match_that_ended_retires_its_actor_after_retire_after_s(h):
    h.cfg = h.cfg.__class__(values={**h.cfg.values, "match.retire_after_s": 0.05}, sources=h.cfg.sources,
                            path=None, warnings=[], jobs={})
    tracked(h, "m1", "m2")
    send(h, live("m1", 4), live("m2", 4), at=NOW)
    send(h, live("m1", 8), at=NOW + 2)
    wait_until(lambda: "m1" not in h.pipeline.registry)
    assert "m2" in h.pipeline.registry and h.pipeline.counts["retired"] == 1
    assert row(h, "m1", "status_id", "finished_after", "minute_text") == (8, "regular", "FT")


def test_an_item_of_an_untracked_known_match_starts_its_actor_and_applies_in_order(h):
    tracked(h)   # nothing tracked
    with h.pool.connection() as conn:
        store.upsert_objects(conn, [rows.object_row(msgspec.convert(ps.match_object("m9", 1), p.Match))])
        conn.commit()
    untracked = h.pipeline.route_live([live("m9", 2)], NOW, NOW)
    assert [i.id for i in untracked] == ["m9"]
    h.pipeline.track(["m9"])
    h.pipeline.route_live([live("m9", 2, kickoff_ts=NOW - 60)], NOW, NOW)   # buffered until it starts
    h.pipeline.route_live([live("m9", 3, kickoff_ts=0)], NOW + 1, NOW + 1)
    h.settle()
    h.pipeline.flush()
    assert row(h, "m9", "status_id", "first_half_kickoff_ts") == (3, NOW - 60)


DAY = 1_780_000_000 - 1_780_000_000 % 86400


@pytest.fixture
def busy(db_dsn):
    world = World(seed=3, matches=250, clock=ManualClock(DAY + 19 * 3600 + 17))
    with harness(db_dsn, world) as hh:
        hh.dsn = db_dsn
        yield hh


def test_running_the_diary_sync_twice_in_a_row_changes_no_row_count_and_no_updated_at(busy):
    h = busy
    first = h.run_job(ingest.daily_diary)
    h.settle()
    h.pipeline.flush()
    assert first["inserted"] > 200 and first["started"] > 50
    snapshot = "SELECT (SELECT count(*) FROM matches), (SELECT max(updated_at) FROM matches), " \
               "(SELECT sum(xmin::text::bigint) FROM matches), (SELECT count(*) FROM teams), " \
               "(SELECT max(updated_at) FROM teams), (SELECT count(*) FROM competitions), (SELECT count(*) FROM seasons)"
    before = sql(h.dsn, snapshot)
    second = h.run_job(ingest.daily_diary)
    h.settle()
    h.pipeline.flush()
    assert sql(h.dsn, snapshot) == before
    assert second["inserted"] == second["updated"] == second["reference_written"] == second["started"] == 0


def test_the_recent_sync_pages_until_an_empty_page_and_goes_on_from_its_cursor(busy):
    h = busy
    out = h.run_job(ingest.recent_sync)
    assert out["pages"] >= 1 and out["matches"] > 0
    with h.pool.connection() as conn:
        cursor = store.cursor_get(conn, ingest.RECENT_CURSOR)
    assert cursor == max(m["updated_at"] for m in h.world.recent_list(0, 1)[-1:]) or cursor > 0
    h.feed.calls = 0
    again = h.run_job(ingest.recent_sync)
    assert again["inserted"] == 0 and h.feed.calls >= 1


def test_live_matches_show_in_the_live_endpoint_from_the_first_detail_live_poll_on_a_fresh_database(busy):
    h = busy
    h.step()
    status, doc = h.get_json("/api/matches/live")
    live_now = [m for m in h.world.detail_live() if m["score"][1] in (2, 3, 4, 5, 7)]
    assert status == 200 and doc["ok"] and doc["count"] >= len(live_now) > 10
    one = next(m for m in doc["matches"] if m["status_id"] == 2)
    assert one["minute_text"].endswith("'") and one["short_status"] == "1H" and one["home_team"]["name"]


def test_the_read_endpoints_share_one_body_per_change_and_answer_304_to_its_etag(busy):
    h = busy
    h.step()
    h.bodies.builds = 0
    answers = [h.get("/api/matches/live") for _ in range(200)]
    assert {a[0] for a in answers} == {200} and len({a[2] for a in answers}) == 1
    assert h.bodies.builds == 1
    etag = answers[0][1]["etag"]
    status, headers, body = h.get("/api/matches/live", {"If-None-Match": etag})
    assert status == 304 and body == b"" and headers["etag"] == etag
    h.clock.advance(61)
    h.step()                      # minutes move: a new version, a new body
    status, headers, body = h.get("/api/matches/live", {"If-None-Match": etag})
    assert status == 200 and headers["etag"] != etag and h.bodies.builds == 2


@pytest.mark.parametrize("path, status, code", [
    ("/api/matches/diary", 400, "bad_request"), ("/api/matches/diary?date=2026-13-01", 400, "bad_request"),
    ("/api/matches/diary?date=yesterday", 400, "bad_request"), ("/api/matches/nosuchmatch", 404, "not_found"),
    ("/api/matches/" + "x" * 65, 400, "bad_request"),
])
def test_bad_parameters_and_unknown_matches_get_an_error_in_the_envelope(h, path, status, code):
    got, doc = h.get_json(path)
    assert got == status and doc["ok"] is False and doc["error"]["code"] == code and doc["error"]["message"]


def test_the_diary_endpoint_lists_the_days_matches_by_kick_off(busy):
    h = busy
    h.run_job(ingest.daily_diary)
    import datetime

    date = datetime.datetime.fromtimestamp(DAY, tz=datetime.timezone.utc).strftime("%Y-%m-%d")
    status, doc = h.get_json(f"/api/matches/diary?date={date}")
    times = [m["match_time"] for m in doc["matches"]]
    assert status == 200 and doc["date"] == date and doc["count"] == len(times) > 100
    assert times == sorted(times) and all(DAY <= t < DAY + 86400 for t in times)


def test_a_client_that_accepts_gzip_gets_the_body_compressed_once_with_its_own_etag(busy):
    import gzip

    h = busy
    h.step()
    plain = h.get("/api/matches/live")
    zipped = [h.get("/api/matches/live", {"Accept-Encoding": "gzip, deflate"}) for _ in range(3)]
    assert zipped[0][1]["content-encoding"] == "gzip" and zipped[0][1]["vary"] == "Accept-Encoding"
    assert gzip.decompress(zipped[0][2]) == plain[2] and len(zipped[0][2]) < len(plain[2]) / 3
    assert zipped[0][2] is zipped[2][2] or zipped[0][2] == zipped[2][2]
    assert zipped[0][1]["etag"] != plain[1]["etag"]
    status, _, _ = h.get("/api/matches/live", {"Accept-Encoding": "gzip", "If-None-Match": zipped[0][1]["etag"]})
    assert status == 304
    refused = h.get("/api/matches/live", {"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused[1] and refused[2] == plain[2]


def test_a_rebuilt_listing_re_encodes_only_the_matches_that_changed_and_equals_the_typed_encoding(busy):
    from goald.console import matches_api
    from goald.match import read

    h = busy
    h.step()
    h.get("/api/matches/live")
    before = h.bodies.fragments.encoded
    h.clock.advance(15)     # about a quarter of the running matches' minutes move
    h.step()
    _, _, body = h.get("/api/matches/live")
    doc = msgspec.json.decode(body, type=matches_api.MatchList)   # the typed shape, strictly
    with h.pool.connection() as conn:
        rows = read.live(conn, int(__import__("time").time()))
    typed = matches_api._ENCODER.encode(matches_api.MatchList(True, len(rows), [matches_api.match_out(r) for r in rows]))
    assert body == typed and doc.count == len(rows) > 10
    assert 0 < h.bodies.fragments.encoded - before < len(rows) * 0.6


def test_a_body_is_rebuilt_at_most_every_min_age_however_often_the_data_change(db_dsn):
    from goald.console.matches_api import SharedBodies
    from goald.match.changes import Changes

    now = [100.0]
    changes = Changes()
    bodies = SharedBodies(changes, max_age_s=1.0, clock=lambda: now[0], min_age_s=0.25)
    built = []

    def build():
        built.append(now[0])
        return b"{}"
    for step in range(10):            # the data change every 100 ms for a second
        now[0] = 100.0 + step / 10
        changes.bump()
        bodies.get(("k",), build)
    assert [round(b - 100, 1) for b in built] == [0.0, 0.3, 0.6, 0.9]
    now[0] += 0.05
    changes.bump()
    bodies.get(("k",), build)          # a change within min_age of the last build: the body waits
    assert len(built) == 4
    now[0] += 0.3
    bodies.get(("k",), build)          # then it is built at the next request
    assert len(built) == 5
    now[0] += 0.3
    bodies.get(("k",), build)
    assert len(built) == 5             # nothing moved: the same body


def test_an_unchanged_detail_live_item_is_not_told_again_until_its_last_event_stamp_is_due(h):
    tracked(h, "m1")
    item = live("m1", 2, kickoff_ts=NOW - 60)
    send(h, item, at=NOW)
    stamp = row(h, "m1", "last_event_ts")[0]
    told = h.pipeline.counts["applied"] + h.pipeline.counts.get("unchanged", 0)
    for k in range(1, 10):
        h.pipeline.route_live([item], NOW, NOW + 2 * k)
    h.settle()
    assert h.pipeline.counts["unchanged"] == 9 and h.pipeline.counts["applied"] + 9 == told + 9
    send(h, item, at=NOW + 31)           # SEEN_STAMP_S later: told, and the stamp refreshed
    assert row(h, "m1", "last_event_ts")[0] == NOW + 31 > stamp
    send(h, live("m1", 3, kickoff_ts=0), at=NOW + 33)   # a changed item always goes through
    assert row(h, "m1", "status_id")[0] == 3


def test_the_read_endpoints_answer_from_the_database_alone_never_asking_the_provider(busy):
    h = busy
    h.step()
    calls = h.feed.calls
    mid = next(iter(h.pipeline.registry))
    for path in ("/api/matches/live", f"/api/matches/{mid}", "/api/matches/diary?date=2026-05-28"):
        for _ in range(5):
            assert h.get(path)[0] == 200
        h.clock.advance(3)
    assert h.feed.calls == calls


def test_while_a_body_is_rebuilt_other_requests_get_the_previous_body_and_only_the_first_waits():
    import gevent.event
    from goald.console.matches_api import SharedBodies
    from goald.match.changes import Changes

    changes = Changes()
    bodies = SharedBodies(changes, max_age_s=1.0, min_age_s=0.0)
    release = gevent.event.Event()
    builds = []

    def slow_build():
        builds.append(changes.version)
        release.wait(5)
        return b'{"v":%d}' % changes.version

    first = gevent.spawn(bodies.get, ("k",), slow_build)
    gevent.sleep(0.01)
    waiter = gevent.spawn(bodies.get, ("k",), slow_build)   # nothing to fall back on: it waits
    gevent.sleep(0.01)
    assert not waiter.ready()
    release.set()
    assert first.get(timeout=5).body == waiter.get(timeout=5).body == b'{"v":0}' and len(builds) == 1
    release.clear()
    changes.bump()
    rebuilding = gevent.spawn(bodies.get, ("k",), slow_build)
    gevent.sleep(0.01)
    during = [bodies.get(("k",), slow_build) for _ in range(3)]   # answered at once, with the old body
    assert [d.body for d in during] == [b'{"v":0}'] * 3 and bodies.served_stale == 3
    release.set()
    assert rebuilding.get(timeout=5).body == b'{"v":1}' and len(builds) == 2
    assert bodies.get(("k",), slow_build).body == b'{"v":1}'


def test_a_body_older_than_the_stale_limit_is_not_served_while_rebuilding():
    import gevent.event
    from goald.console.matches_api import SharedBodies
    from goald.match.changes import Changes

    now = [0.0]
    changes = Changes()
    bodies = SharedBodies(changes, max_age_s=1.0, min_age_s=0.0, stale_limit_s=5.0, clock=lambda: now[0])
    release = gevent.event.Event()
    bodies.get(("k",), lambda: b"old")
    now[0] = 6.0
    changes.bump()
    rebuilding = gevent.spawn(bodies.get, ("k",), lambda: (release.wait(5), b"new")[1])
    gevent.sleep(0.01)
    waiter = gevent.spawn(bodies.get, ("k",), lambda: b"never")
    gevent.sleep(0.01)
    assert not waiter.ready()            # 6 s old: it waits for the rebuild instead
    release.set()
    assert waiter.get(timeout=5).body == rebuilding.get(timeout=5).body == b"new"


def test_a_get_answered_directly_and_a_head_answered_by_bottle_carry_the_same_status_and_headers(busy):
    h = busy
    h.step()
    status, headers, body = h.get("/api/matches/live", {"Accept-Encoding": "gzip"})
    environ_head = {"Accept-Encoding": "gzip"}
    path = "/api/matches/live"
    import io
    env = {"REQUEST_METHOD": "HEAD", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "test",
           "SERVER_PORT": "80", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http",
           "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_ACCEPT_ENCODING": environ_head["Accept-Encoding"]}
    out = {}

    def start_response(st, hdrs, exc_info=None):
        out["status"], out["headers"] = int(st.split()[0]), {k.lower(): v for k, v in hdrs}
    head_body = b"".join(h.app(env, start_response))
    assert status == out["status"] == 200 and head_body == b""
    for name in ("etag", "content-encoding", "vary", "cache-control", "content-type"):
        assert headers[name] == out["headers"][name], name
    assert int(headers["content-length"]) == len(body)
    not_modified = h.get(path, {"Accept-Encoding": "gzip", "If-None-Match": headers["etag"]})
    assert not_modified[0] == 304 and "content-length" not in not_modified[1]


def test_a_direct_route_that_fails_answers_500_in_the_envelope_and_logs_it(busy, monkeypatch):
    from loguru import logger
    from goald.match import read

    h = busy
    records = []
    sink = logger.add(lambda m: records.append(m), level="ERROR")
    monkeypatch.setattr(read, "live_keys", lambda *a: 1 / 0)
    try:
        status, doc = h.get_json("/api/matches/live")
    finally:
        logger.remove(sink)
    assert status == 500 and doc == {"ok": False, "error": {"code": "internal",
                                                            "message": "internal error; the server log has the details"}}
    assert [r.record["extra"]["event"] for r in records] == ["http.unhandled"]
    assert "ZeroDivisionError" in records[0].record["message"]
