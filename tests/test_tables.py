"""Standings and head-to-head (actors/jobs/tables.py, goald/match/tables_store.py,
console/tables_api.py) through the real jobs, decoders, database and console app, fed from a
simulator World: live tables for live seasons and season tables for the rest, nothing written
when nothing changed, an older or partly rejected table never replacing a stored one, the h2h of
upcoming matches, and the endpoints' answers: names resolved, 400 / 404 in the envelope,
`fromCache`, invalidation by the syncs, ETag and gzip, and their query budgets."""
import gzip

import msgspec
import pytest

from goald.actors.jobs import ingest, tables as jobs
from goald.cache.backends import MemoryBackend
from goald.cache.cache import Cache, KindPolicy
from goald.match import tables_store
from goald.match.state import LIVE_STATUSES
from goald.provider import decode
from goald.simulator.clock import ManualClock
from goald.simulator.world import World
from match_support import harness, sql

DAY = 1_780_000_000 - 1_780_000_000 % 86400
_ENC = msgspec.json.Encoder()


@pytest.fixture
def evening(db_dsn):
    """A busy evening: matches live, others ended today and still to come."""
    world = World(seed=3, matches=250, clock=ManualClock(DAY + 19 * 3600 + 17))
    with harness(db_dsn, world) as h:
        h.dsn = db_dsn
        h.cache = Cache(MemoryBackend(), prefix="t", kinds={"standings": KindPolicy(True, 60.0),
                                                             "h2h": KindPolicy(True, 60.0)})
        h.use_cache(h.cache)
        h.run_job(ingest.daily_diary)
        h.step()
        h.settle()
        h.pipeline.flush()
        yield h


def live_seasons(h):
    return {r[0] for r in sql(h.dsn, "SELECT DISTINCT season_id FROM matches WHERE status_id = ANY(%s)",
                              (list(LIVE_STATUSES),))}


def test_the_standings_sync_takes_live_seasons_from_the_live_table_and_the_others_from_season_tables(evening):
    h = evening
    live = live_seasons(h)
    assert live
    out = h.run_job(jobs.standings_sync)
    assert out["fetch_failed"] == 0 and out["changed"] == out["seasons"] > len(live)
    stored = dict(sql(h.dsn, "SELECT season_id, source FROM standings"))
    from_live_table = {t["season_id"] for t in h.world.table_live()}
    assert {s for s, src in stored.items() if src == "live"} == from_live_table & stored.keys()
    league_live = {s for s in live if s in from_live_table}
    assert league_live and all(stored[s] == "live" for s in league_live)
    # Every line of a stored table is the simulator's line for that team.
    sid = sorted(league_live)[0]
    sim = next(t for t in h.world.table_live() if t["season_id"] == sid)
    want = {(r["team_id"], r["position"], r["points"], r["total"], r["goals"]) for t in sim["tables"] for r in t["rows"]}
    got = set(sql(h.dsn, "SELECT team_id, position, points, played, goals_for FROM standing_rows WHERE season_id = %s",
                  (sid,)))
    assert got == want


def test_a_second_standings_run_with_nothing_new_writes_nothing(evening):
    h = evening
    assert h.run_job(jobs.standings_sync)["changed"] > 0
    again = h.run_job(jobs.standings_sync)
    assert again["changed"] == 0 and again["due"] == 0    # season tables are not due again at once


def table_doc(season_id, team_points, updated_at, source="season"):
    rows = [{"team_id": t, "position": i + 1, "points": p, "total": 3, "won": 1, "draw": 0, "loss": 2, "goals": 4,
             "goals_against": 5, "goal_diff": -1, "updated_at": updated_at} for i, (t, p) in enumerate(team_points)]
    decoded = decode.season_table(_ENC.encode({"code": 0, "results": {"tables": [{"id": "tb1", "rows": rows}]}}), 0)
    return tables_store.season_doc(season_id, decoded.items, decoded.extra, source)


def test_an_older_table_never_replaces_a_newer_one_and_equal_content_is_not_rewritten(db_dsn):
    import psycopg2

    with psycopg2.connect(db_dsn) as conn:
        assert tables_store.write_standings(conn, [table_doc("s1", [("a", 9), ("b", 3)], 200)]) == [("s1", None)]
        assert tables_store.write_standings(conn, [table_doc("s1", [("a", 6), ("b", 3)], 100)]) == []   # older
        assert tables_store.write_standings(conn, [table_doc("s1", [("a", 9), ("b", 3)], 300)]) == []   # same lines
        assert tables_store.write_standings(conn, [table_doc("s1", [("b", 12), ("a", 9)], 400)]) == [("s1", None)]
        with conn.cursor() as cur:
            cur.execute("SELECT team_id, position, points FROM standing_rows WHERE season_id = 's1' ORDER BY position")
            assert cur.fetchall() == [("b", 1, 12), ("a", 2, 9)]


def test_a_season_table_with_a_rejected_line_keeps_the_stored_table(evening):
    h = evening
    h.run_job(jobs.standings_sync)
    sid = sql(h.dsn, "SELECT season_id FROM standings WHERE source = 'season' ORDER BY season_id LIMIT 1")[0][0]
    before = sql(h.dsn, "SELECT team_id, points FROM standing_rows WHERE season_id = %s ORDER BY team_id", (sid,))
    bad = {"tables": [{"id": "tb1", "rows": [{"team_id": "x", "position": 1, "points": 3, "total": -1}]}]}
    h.feed.season_table = lambda season_id: decode.season_table(_ENC.encode({"code": 0, "results": bad}), 0)
    sql(h.dsn, "UPDATE standings SET fetched_at = now() - interval '1 day'")
    out = h.run_job(jobs.standings_sync)
    assert out["rejected"] > 0
    assert sql(h.dsn, "SELECT team_id, points FROM standing_rows WHERE season_id = %s ORDER BY team_id", (sid,)) == before


def test_the_standings_endpoint_answers_with_names_from_the_cache_after_the_first_request(evening):
    h = evening
    h.run_job(jobs.standings_sync)
    sid = sorted(live_seasons(h) & {t["season_id"] for t in h.world.table_live()})[0]
    status, first = h.get_json(f"/api/standings/{sid}")
    assert status == 200 and first["ok"] is True and first["fromCache"] is False and first["source"] == "live"
    status, second = h.get_json(f"/api/standings/{sid}")
    assert status == 200 and second["fromCache"] is True
    assert {k: v for k, v in first.items() if k != "fromCache"} == {k: v for k, v in second.items() if k != "fromCache"}
    names = dict(sql(h.dsn, "SELECT id, name FROM teams"))
    rows = [r for t in first["tables"] for r in t["rows"]]
    assert rows and all(r["team"]["name"] == names.get(r["team"]["id"]) for r in rows)
    assert [r["position"] for r in first["tables"][0]["rows"]] == sorted(r["position"] for r in first["tables"][0]["rows"])
    assert first["competition"]["id"] and first["competition"]["name"]
    status, by_comp = h.get_json(f"/api/standings/competition/{first['competition']['id']}")
    assert status == 200 and by_comp["season_id"] == sid


def test_a_changed_table_invalidates_its_cached_answer(evening):
    h = evening
    h.run_job(jobs.standings_sync)
    sid = sql(h.dsn, "SELECT season_id FROM standings WHERE source = 'season' ORDER BY season_id LIMIT 1")[0][0]
    assert h.get_json(f"/api/standings/{sid}")[1]["fromCache"] is False
    assert h.get_json(f"/api/standings/{sid}")[1]["fromCache"] is True
    team = sql(h.dsn, "SELECT team_id FROM standing_rows WHERE season_id = %s ORDER BY position LIMIT 1", (sid,))[0][0]
    h.feed.season_table = lambda season_id: decode.season_table(_ENC.encode({"code": 0, "results": {"tables": [
        {"id": "tb9", "rows": [{"team_id": team, "position": 1, "points": 99, "total": 33, "won": 33, "draw": 0,
                                "loss": 0, "goals": 99, "goals_against": 0, "goal_diff": 99,
                                "updated_at": 2_000_000_000}]}]}}), 0)
    sql(h.dsn, "UPDATE standings SET fetched_at = now() - interval '1 day'")
    assert h.run_job(jobs.standings_sync)["changed"] > 0
    status, doc = h.get_json(f"/api/standings/{sid}")
    assert status == 200 and doc["fromCache"] is False and doc["tables"][0]["rows"][0]["points"] == 99


def test_bad_and_unknown_ids_get_400_and_404_in_the_envelope(evening):
    h = evening
    for path in ("/api/standings/a:b", "/api/standings/" + "x" * 65, "/api/matches/%20/h2h",
                 "/api/standings/competition/a%3Ab"):
        status, doc = h.get_json(path)
        assert status == 400 and doc["ok"] is False and doc["error"]["code"] == "bad_request", path
    for path in ("/api/standings/nope", "/api/standings/competition/nope", "/api/matches/nope/h2h"):
        status, doc = h.get_json(path)
        assert status == 404 and doc["error"]["code"] == "not_found", path


def test_the_h2h_sync_fetches_upcoming_matches_once_and_the_endpoint_names_every_team(evening):
    h = evening
    upcoming = [r[0] for r in sql(h.dsn, "SELECT id FROM matches WHERE status_id = 1 AND match_time BETWEEN %s AND %s",
                                  (int(h.clock.now()), int(h.clock.now()) + 2 * 86400))]
    assert upcoming
    out = h.run_job(jobs.h2h_sync)
    assert out["due"] == len(upcoming) and out["fetch_failed"] == 0 and out["changed"] == len(upcoming)
    again = h.run_job(jobs.h2h_sync)
    assert again["due"] == 0 and again["changed"] == 0
    mid = upcoming[0]
    status, doc = h.get_json(f"/api/matches/{mid}/h2h")
    assert status == 200 and doc["available"] is True and doc["fromCache"] is False
    sim = h.world.analysis(mid)
    assert [r["match_id"] for r in doc["vs"]] == [r[0] for r in sim["history"]["vs"]]
    assert len(doc["home_recent"]) == len(sim["history"]["home"]) and len(doc["away_next"]) == len(sim["future"]["away"])
    row = sim["history"]["home"][0]
    got = doc["home_recent"][0]
    assert (got["home"]["team"]["id"], got["home"]["goals"], got["away"]["goals"]) == (row[5][0], row[5][2], row[6][2])
    assert doc["home_team"]["name"] and doc["away_team"]["name"]


def test_a_match_whose_h2h_is_not_synced_yet_answers_available_false(evening):
    h = evening
    mid = sql(h.dsn, "SELECT id FROM matches WHERE status_id = 8 ORDER BY id LIMIT 1")[0][0]
    status, doc = h.get_json(f"/api/matches/{mid}/h2h")
    assert status == 200 and doc["available"] is False and doc["vs"] == [] and doc["fetched_at"] is None


def first_standings_answer(h):
    """Sync the standings, then read the first season's once (a miss): (season id, ETag)."""
    h.run_job(jobs.standings_sync)
    sid = sql(h.dsn, "SELECT season_id FROM standings ORDER BY season_id LIMIT 1")[0][0]
    status, headers, _ = h.get(f"/api/standings/{sid}")
    assert status == 200 and headers["etag"].startswith('W/"') and headers["x-cache"] == "MISS"
    return sid, headers["etag"]


def test_etag_answers_304_and_a_body_is_hashed_and_compressed_once_not_per_request(evening):
    h = evening
    sid, etag = first_standings_answer(h)
    status, headers, body304 = h.get(f"/api/standings/{sid}", {"If-None-Match": etag})
    assert status == 304 and body304 == b"" and headers["etag"] == etag
    answers = h.app.config["goald.table_answers"]
    prepared, compressed = answers.prepared, answers.compressed
    for _ in range(3):
        status, headers, zbody = h.get(f"/api/standings/{sid}", {"Accept-Encoding": "gzip"})
        assert status == 200 and headers["content-encoding"] == "gzip" and headers["etag"] == etag
        doc = msgspec.json.decode(gzip.decompress(zbody))
        assert doc["season_id"] == sid and doc["fromCache"] is True
    assert answers.prepared == prepared and answers.compressed - compressed == 1


def test_a_body_the_cache_replaced_gets_a_new_etag_and_new_variants(evening):
    h = evening
    sid, first = first_standings_answer(h)
    sql(h.dsn, "UPDATE standing_rows SET points = points + 1 WHERE season_id = %s", (sid,))
    h.cache.invalidate("standings", sid)
    status, headers, body = h.get(f"/api/standings/{sid}")
    assert status == 200 and headers["etag"] != first and headers["x-cache"] == "MISS"
    assert msgspec.json.decode(body)["fromCache"] is False
    status, headers, _ = h.get(f"/api/standings/{sid}", {"If-None-Match": first})
    assert status == 200                                 # the old ETag no longer matches


@pytest.mark.parametrize("path_of", [
    lambda h: f"/api/standings/{sql(h.dsn, 'SELECT season_id FROM standings ORDER BY season_id LIMIT 1')[0][0]}",
    lambda h: "/api/standings/competition/"
              f"{sql(h.dsn, 'SELECT competition_id FROM standings ORDER BY season_id LIMIT 1')[0][0]}",
    lambda h: f"/api/matches/{sql(h.dsn, 'SELECT match_id FROM match_h2h ORDER BY 1 LIMIT 1')[0][0]}/h2h",
], ids=["standings", "standings_by_competition", "h2h"])
def test_an_uncached_request_stays_within_its_query_budget_and_a_cached_one_issues_none(evening, path_of):
    h = evening
    h.run_job(jobs.standings_sync)
    h.run_job(jobs.h2h_sync)
    path = path_of(h)
    before = h.pool.stats().queries
    assert h.get_json(path)[0] == 200
    uncached = h.pool.stats().queries - before
    assert 1 <= uncached <= 5
    before = h.pool.stats().queries
    status, doc = h.get_json(path)
    assert status == 200 and doc["fromCache"] is True and h.pool.stats().queries == before


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_thousand_concurrent_requests_for_one_uncached_standings_key_cause_one_database_query(evening, backend):
    import uuid

    import gevent

    from goald.cache.backends import RedisBackend

    h = evening
    h.run_job(jobs.standings_sync)
    sid = sql(h.dsn, "SELECT season_id FROM standings ORDER BY season_id LIMIT 1")[0][0]
    store = MemoryBackend() if backend == "memory" else RedisBackend("redis://127.0.0.1:6379/0")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    h.use_cache(Cache(store, prefix=prefix, kinds={"standings": KindPolicy(True, 60.0), "h2h": KindPolicy(True, 60.0)}))
    real = tables_store.standings

    def slow(conn, season_id):        # a query slow enough for every request to arrive while it runs
        gevent.sleep(0.2)
        return real(conn, season_id)
    tables_store.standings = slow
    try:
        before = h.pool.stats().queries
        answers = [g.get() for g in gevent.joinall([gevent.spawn(h.get_json, f"/api/standings/{sid}")
                                                    for _ in range(1000)], raise_error=True)]
        assert h.pool.stats().queries - before == 1
    finally:
        tables_store.standings = real
        if backend == "redis":
            store.delete_index(f"{prefix}:standings:{sid}")
    assert all(status == 200 and doc["season_id"] == sid for status, doc in answers)
    assert sum(not doc["fromCache"] for _, doc in answers) == 1
    kinds = h.cache.describe()["kinds"]["standings"]
    assert kinds["misses"] == 1 and kinds["singleflight_saved"] == 999


def test_with_redis_stopped_every_read_endpoint_answers_200_from_the_database_and_hits_resume_after(evening,
                                                                                                   tmp_path):
    import gevent

    from goald.cache.backends import RedisBackend
    from support import OwnRedis

    h = evening
    h.run_job(jobs.standings_sync)
    h.run_job(jobs.h2h_sync)
    server = OwnRedis(tmp_path)
    server.start()
    try:
        h.use_cache(Cache(RedisBackend(server.url, socket_timeout_s=0.2, connect_timeout_s=0.2), prefix="t",
                          kinds={"standings": KindPolicy(True, 60.0), "h2h": KindPolicy(True, 60.0)}, retry_s=0.2))
        sid, cid = sql(h.dsn, "SELECT season_id, competition_id FROM standings ORDER BY season_id LIMIT 1")[0]
        mid = sql(h.dsn, "SELECT match_id FROM match_h2h ORDER BY 1 LIMIT 1")[0][0]
        cached = [f"/api/standings/{sid}", f"/api/standings/competition/{cid}", f"/api/matches/{mid}/h2h"]
        others = ["/api/matches/live", f"/api/matches/{mid}", "/api/matches/diary?date=2026-05-28", "/api/ready"]
        for path in cached:
            assert h.get(path)[0] == 200
            assert h.get(path)[1]["x-cache"] == "HIT"
        server.kill()
        for _ in range(3):
            for path in cached + others:
                status, headers, body = h.get(path)
                assert status == 200, (path, body)
                if path in cached:
                    assert headers["x-cache"] == "MISS" and msgspec.json.decode(body)["fromCache"] is False
        status, doc = h.get_json("/api/ready")
        assert doc["degraded"] is True and doc["checks"]["cache"]["ok"] is False
        server.start()
        gevent.sleep(0.25)                     # past retry_s: the next request tries Redis again
        for path in cached:
            assert h.get(path)[0] == 200       # a miss: the restarted Redis is empty
            status, headers, body = h.get(path)
            assert status == 200 and headers["x-cache"] == "HIT" and msgspec.json.decode(body)["fromCache"] is True
    finally:
        server.kill()


def test_a_reference_sync_that_wrote_teams_invalidates_the_cached_standings_and_h2h(evening):
    h = evening
    h.run_job(jobs.standings_sync)
    h.run_job(jobs.h2h_sync)
    sid = sql(h.dsn, "SELECT season_id FROM standings ORDER BY season_id LIMIT 1")[0][0]
    mid = sql(h.dsn, "SELECT match_id FROM match_h2h ORDER BY 1 LIMIT 1")[0][0]
    for path in (f"/api/standings/{sid}", f"/api/matches/{mid}/h2h"):
        h.get_json(path)
        assert h.get_json(path)[1]["fromCache"] is True
    out = h.run_job(ingest.reference_sync)
    assert out["teams_written"] > 0
    for path in (f"/api/standings/{sid}", f"/api/matches/{mid}/h2h"):
        assert h.get_json(path)[1]["fromCache"] is False, path


@pytest.mark.parametrize("enabled", [True, False])
def test_the_match_details_switch_shares_one_matchs_answer_or_builds_it_for_every_request(evening, enabled):
    h = evening
    h.use_cache(Cache(MemoryBackend(), prefix="t", kinds={"standings": KindPolicy(True, 60.0),
                                                         "h2h": KindPolicy(True, 60.0),
                                                         "match_details": KindPolicy(enabled, 60.0)}))
    mid = sql(h.dsn, "SELECT id FROM matches ORDER BY id LIMIT 1")[0][0]
    before = h.pool.stats().queries
    answers = [h.get(f"/api/matches/{mid}")]
    first = h.pool.stats().queries - before           # the match, then its incidents, stats, ...
    answers += [h.get(f"/api/matches/{mid}") for _ in range(4)]
    assert {a[0] for a in answers} == {200} and len({a[2] for a in answers}) == 1 and first > 0
    assert h.pool.stats().queries - before == (first if enabled else 5 * first)


def test_h2h_calls_are_spaced_to_the_providers_per_minute_budget_and_a_cancelled_run_starts_no_more(pool):
    import time

    import gevent.event

    from goald import config
    from goald.actors.context import JobCancelled, JobContext
    from goald.actors.ledger import Occurrence

    assert config.load(None, {}, search=False)["h2h.calls_per_minute"] == 60     # the provider's budget
    started = []

    def fetch(i):
        started.append(time.monotonic())
        return i

    def ctx(cancel):
        return JobContext(occurrence=Occurrence("h2h_sync", time.time()), pool=pool,
                          config=config.load(None, {}, search=False), node="t", cancel=cancel)
    got, errors = jobs._fetch_each(ctx(gevent.event.Event()), ["a", "b", "c", "d"], fetch, per_minute=600)
    assert sorted(got) == ["a", "b", "c", "d"] and not errors
    assert min(b - a for a, b in zip(started, started[1:])) >= 0.09
    started.clear()
    cancel = gevent.event.Event()
    gevent.spawn_later(0.25, cancel.set)
    with pytest.raises(JobCancelled):
        jobs._fetch_each(ctx(cancel), [str(i) for i in range(50)], fetch, per_minute=600)
    assert 2 <= len(started) <= 4                   # it stopped starting calls once cancelled


def test_a_paced_h2h_run_asks_about_no_more_matches_than_fit_in_its_time(pool):
    import time

    import gevent.event

    from goald import config
    from goald.actors.context import JobContext
    from goald.actors.ledger import Occurrence

    def ctx(env, timeout_s):
        return JobContext(occurrence=Occurrence("h2h_sync", time.time()), pool=pool,
                          config=config.load(None, env, search=False), node="t", cancel=gevent.event.Event(),
                          deadline=time.time() + timeout_s)
    assert jobs.h2h_paced_limit(ctx({}, 600)) == 200                    # 200 calls at 60 a minute fit in 600 s
    assert jobs.h2h_paced_limit(ctx({"GOALD_H2H_BATCH_SIZE": "5000"}, 600)) in (479, 480)   # 80 % of 600 s, 1/s
    assert jobs.h2h_paced_limit(ctx({"GOALD_H2H_BATCH_SIZE": "5000", "GOALD_H2H_CALLS_PER_MINUTE": "0"}, 600)) == 5000
