"""GET /api/predictions (console/predictions_api.py) through the real console app, database and
cache: every filter, keyset pages in a stable order, bad parameters as 400s in the envelope,
ETag / 304 and gzip, answers from the cache, and the prediction jobs invalidating them."""
import gzip
import time

import gevent.event
import msgspec
import pytest

from goald import config
from goald.actors.context import JobContext
from goald.actors.jobs import predictions as jobs
from goald.actors.ledger import Occurrence
from goald.cache.backends import MemoryBackend
from goald.cache.cache import Cache, KindPolicy
from goald.console.app import AppContext, make_app
from goald.console.predictions_api import PredictionList
from support import sql, wsgi_get

NOW = int(time.time())
DAY = time.strftime("%Y-%m-%d", time.gmtime(NOW - 300))


class Api:
    def __init__(self, pool, dsn):
        self.pool, self.dsn = pool, dsn
        self.cache = Cache(MemoryBackend(), prefix="t", kinds={"standings": KindPolicy(True, 60.0),
                                                              "h2h": KindPolicy(True, 60.0),
                                                              "predictions": KindPolicy(True, 60.0)})
        self.app = make_app(AppContext(pool=pool, node="t", database="t", embedded=False, cache=self.cache))

    def get(self, path, headers=None):
        return wsgi_get(self.app, path, headers)

    def json(self, path):
        status, _, body = self.get(path)
        return status, msgspec.json.decode(body)

    def run(self, job):
        ctx = JobContext(occurrence=Occurrence(job.__name__, time.time()), pool=self.pool,
                         config=config.load(None, {}, search=False), node="t", cancel=gevent.event.Event(),
                         cache=self.cache)
        return job(ctx)


@pytest.fixture
def api(pool, db_dsn):
    sql(db_dsn, "INSERT INTO competitions (id, name) VALUES ('c1', 'Premier League'), ('c2', 'La Liga')")
    sql(db_dsn, "INSERT INTO teams (id, name) VALUES ('ars', 'Arsenal'), ('che', 'Chelsea'), ('rma', 'Real Madrid'), "
                "('fcb', 'FC Barcelona')")
    sql(db_dsn, "INSERT INTO matches (id, home_team_id, away_team_id, competition_id, match_time, status_id, "
                "home_regular, away_regular) VALUES ('m1', 'ars', 'che', 'c1', %s, 2, 1, 0), "
                "('m2', 'rma', 'fcb', 'c2', %s, 2, 0, 0)", (NOW - 1800, NOW - 1800))
    rows = [("p1", "Arsenal FC", "Chelsea", "Premier League", NOW - 300, "home_win"),
            ("p2", "Arsenal", "Chelsea FC", "Premier League", NOW - 200, "btts"),
            ("p3", "Real Madrid", "Barcelona", "LaLiga", NOW - 250, "over_2_5"),
            ("p4", "Nobody Athletic", "Chelsea", "", NOW - 100, "draw"),
            ("p5", "Arsenal", "Chelsea", "Premier League", NOW - 86400 * 3 - 100, "away_win")]   # days ago
    for i in range(20):      # a page's worth more, all at one instant: the id breaks the tie
        rows.append((f"q{i}", "Real Madrid", "FC Barcelona", "La Liga", NOW - 400, "btts_no"))
    for ext, home, away, league, at, market in rows:
        sql(db_dsn, "INSERT INTO ai_predictions (external_id, home_team_name, away_team_name, league_name, "
                    "predicted_at, minute_at_prediction, market) VALUES (%s, %s, %s, %s, to_timestamp(%s), 20, %s)",
            (ext, home, away, league, at, market))
    a = Api(pool, db_dsn)
    a.run(jobs.prediction_matcher)
    return a


def externals(doc):
    return [p["external_id"] for p in doc["predictions"]]


def test_every_filter_selects_what_it_names(api):
    status, everything = api.json("/api/predictions?limit=200")
    assert status == 200 and everything["ok"] is True and everything["count"] == 25
    assert everything["next_cursor"] is None and everything["fromCache"] is False
    by_ext = {p["external_id"]: p for p in everything["predictions"]}
    assert by_ext["p1"]["matched"] is True and by_ext["p1"]["match"]["id"] == "m1"
    assert by_ext["p1"]["match"]["home_team"]["name"] == "Arsenal" and by_ext["p1"]["match"]["competition"]["name"] \
        == "Premier League" and by_ext["p1"]["match"]["status"] == "first half"
    assert by_ext["p4"]["matched"] is False and by_ext["p4"]["match"] is None \
        and by_ext["p4"]["unmatched_reason"] == "no candidate within window"
    assert set(externals(api.json(f"/api/predictions?date={DAY}&limit=200")[1])) == set(by_ext) - {"p5"}
    assert set(externals(api.json("/api/predictions?competition=c1")[1])) == {"p1", "p2"}
    assert set(externals(api.json("/api/predictions?match=m2&limit=200")[1])) == {"p3"} | {f"q{i}" for i in range(20)}
    assert set(externals(api.json("/api/predictions?matched=false")[1])) == {"p4", "p5"}
    assert len(externals(api.json("/api/predictions?matched=true&limit=200")[1])) == 23
    assert set(externals(api.json("/api/predictions?status=void")[1])) == {"p5"}        # given up: days old
    assert externals(api.json("/api/predictions?status=won")[1]) == []
    assert set(externals(api.json("/api/predictions?competition=c1&date=" + DAY)[1])) == {"p1", "p2"}


def test_pages_follow_one_stable_order_newest_first_without_repeats_or_gaps(api):
    _, whole = api.json("/api/predictions?limit=200")
    order = externals(whole)
    assert order[:4] == ["p4", "p2", "p3", "p1"] and order[-1] == "p5"
    at = [p["predicted_at"] for p in whole["predictions"]]
    assert at == sorted(at, reverse=True)
    ids = [p["id"] for p in whole["predictions"] if p["external_id"].startswith("q")]
    assert ids == sorted(ids, reverse=True)                         # equal instants: by id
    seen, cursor, pages = [], None, 0
    while True:
        status, page = api.json("/api/predictions?limit=7" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200 and page["limit"] == 7 and page["count"] <= 7
        seen += externals(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == order and pages == 4
    assert api.json("/api/predictions")[1]["count"] == 25 and api.json("/api/predictions")[1]["limit"] == 50


@pytest.mark.parametrize("query, parameter", [
    ("date=2026-13-01", "date"), ("date=yesterday", "date"), ("competition=a:b", "competition"),
    ("match=" + "x" * 65, "match"), ("status=maybe", "status"), ("matched=yes", "matched"), ("limit=0", "limit"),
    ("limit=201", "limit"), ("limit=ten", "limit"), ("limit=-5", "limit"), ("cursor=abc", "cursor"),
    ("cursor=99999999999999999.1", "cursor"),
])
def test_a_bad_parameter_is_a_400_in_the_envelope_naming_it(api, query, parameter):
    status, doc = api.json("/api/predictions?" + query)
    assert status == 400 and doc["ok"] is False and doc["error"]["code"] == "bad_request"
    assert doc["error"]["details"]["parameter"] == parameter and parameter in doc["error"]["message"]


def test_answers_come_from_the_cache_with_an_etag_304_and_gzip(api):
    status, headers, body = api.get("/api/predictions?limit=200")
    assert status == 200 and headers["x-cache"] == "MISS" and headers["etag"].startswith('W/"')
    status, headers2, body2 = api.get("/api/predictions?limit=200")
    assert headers2["x-cache"] == "HIT" and headers2["etag"] == headers["etag"]
    assert msgspec.json.decode(body2)["fromCache"] is True
    assert msgspec.json.decode(body2, type=PredictionList).count == 25
    assert api.get("/api/predictions?limit=200", {"If-None-Match": headers["etag"]})[0] == 304
    status, zipped_headers, zipped = api.get("/api/predictions?limit=200", {"Accept-Encoding": "gzip"})
    assert zipped_headers.get("content-encoding") == "gzip" and gzip.decompress(zipped) == body2
    before = api.pool.stats().queries
    api.get("/api/predictions?limit=200")
    assert api.pool.stats().queries == before                        # cached: no query
    assert api.get("/api/predictions?limit=199")[1]["x-cache"] == "MISS"     # another key


def test_a_results_run_that_settles_invalidates_the_cached_answers_and_one_that_does_not_keeps_them(api):
    assert api.json("/api/predictions?status=won")[1]["count"] == 0
    assert api.json("/api/predictions?status=won")[1]["fromCache"] is True
    assert api.run(jobs.prediction_results) == {"won": 0, "lost": 0, "void": 0}
    assert api.json("/api/predictions?status=won")[1]["fromCache"] is True          # nothing changed
    sql(api.dsn, "UPDATE matches SET status_id = 8 WHERE id = 'm1'")                 # Arsenal won 1-0
    assert api.run(jobs.prediction_results) == {"won": 1, "lost": 1, "void": 0}
    status, doc = api.json("/api/predictions?status=won")
    assert status == 200 and doc["fromCache"] is False and externals(doc) == ["p1"]
    assert doc["predictions"][0]["result_note"] == "FT 1-0" and doc["predictions"][0]["settled_at"]


def test_a_matcher_run_that_matches_invalidates_the_cached_answers(api):
    assert api.json("/api/predictions?matched=false")[1]["count"] == 2
    assert api.json("/api/predictions?matched=false")[1]["fromCache"] is True
    sql(api.dsn, "INSERT INTO teams (id, name) VALUES ('nob', 'Nobody Athletic')")
    sql(api.dsn, "INSERT INTO matches (id, home_team_id, away_team_id, competition_id, match_time, status_id) "
                 "VALUES ('m3', 'nob', 'che', 'c1', %s, 2)", (NOW - 1200,))
    sql(api.dsn, "UPDATE ai_predictions SET match_tried_at = match_tried_at - interval '1 hour'")
    assert api.run(jobs.prediction_matcher)["matched"] == 1
    status, doc = api.json("/api/predictions?matched=false")
    assert doc["fromCache"] is False and externals(doc) == ["p5"]
