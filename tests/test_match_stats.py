"""The live stats sync and the data completeness validator (actors/jobs/stats.py) through the real
jobs, feed decoders and database: team statistics merged per team without a known value ever
replaced by a missing one, idempotent runs, matches the database does not know skipped and
counted, half statistics fetched for ended matches and marked complete, a match the provider has
nothing for asked again a bounded number of times, and all of it in the match's API answer."""
import msgspec
import pytest

from goald.actors.jobs import ingest, stats as jobs
from goald.match import stats_store
from goald.provider import decode
from goald.simulator.clock import ManualClock
from goald.simulator.world import World
from match_support import harness, sql

DAY = 1_780_000_000 - 1_780_000_000 % 86400
_ENC = msgspec.json.Encoder()


@pytest.fixture
def busy(db_dsn):
    world = World(seed=3, matches=250, clock=ManualClock(DAY + 19 * 3600 + 17))
    with harness(db_dsn, world) as hh:
        hh.dsn = db_dsn
        hh.run_job(ingest.daily_diary)
        hh.step()
        hh.settle()
        hh.pipeline.flush()
        yield hh


def stats_page(*items):
    return decode.team_stats(_ENC.encode({"code": 0, "results": list(items)}), 0)


def test_the_live_sync_stores_each_changed_matchs_team_statistics_and_the_api_shows_them(busy):
    h = busy
    listed = h.world.team_stats()
    assert len(listed) > 5
    out = h.run_job(jobs.live_stats)
    assert out["matches"] == len(listed) and out["changed"] == len(listed) and out["unknown"] == 0
    one = listed[0]
    status, doc = h.get_json(f"/api/matches/{one['id']}")
    assert status == 200
    got = {t["team_id"]: (t["side"], t["stats"]) for t in doc["match"]["team_stats"]}
    sim = h.world.sim_match(one["id"])
    assert got[sim.home.id][0] == "home" and got[sim.away.id][0] == "away"
    sent = [{k: v for k, v in team.items() if k != "team_id"} for team in one["stats"]]
    assert got[sim.home.id][1] == sent[0] and got[sim.away.id][1] == sent[1]
    assert h.run_job(jobs.live_stats)["changed"] == 0          # the same list again: nothing written


def test_a_statistic_left_out_later_keeps_its_known_value(busy):
    h = busy
    mid = h.world.team_stats()[0]["id"]
    h.feed.team_stats = lambda: stats_page({"id": mid, "stats": [{"team_id": "t1", "goals": 1, "shots": 5}]})
    h.run_job(jobs.live_stats)
    h.feed.team_stats = lambda: stats_page({"id": mid, "stats": [{"team_id": "t1", "goals": 2}]})
    assert h.run_job(jobs.live_stats)["changed"] == 1
    assert sql(h.dsn, "SELECT stats FROM match_team_stats WHERE match_id = %s AND team_id = 't1'", (mid,)) == [
        ({"goals": 2, "shots": 5},)]


def test_statistics_of_a_match_the_database_does_not_know_are_skipped_and_counted(busy):
    h = busy
    h.feed.team_stats = lambda: stats_page({"id": "nope", "stats": [{"team_id": "t1", "goals": 1}]})
    out = h.run_job(jobs.live_stats)
    assert out == {"matches": 1, "changed": 0, "unknown": 1, "rejected": 0}


def ended(h):
    return [r[0] for r in sql(h.dsn, "SELECT id FROM matches WHERE status_id = 8 ORDER BY id")]


def test_the_validator_fetches_the_half_statistics_of_ended_matches_and_marks_them_complete_once(busy):
    h = busy
    done = ended(h)
    assert len(done) > 20
    first = h.run_job(jobs.data_completeness)
    assert (first["candidates"], first["fetch_failed"]) == (min(len(done), jobs.COMPLETENESS_BATCH), 0)
    complete = [r[0] for r in sql(h.dsn, "SELECT id FROM matches WHERE data_completeness = 7")]
    marked = sql(h.dsn, "SELECT count(*) FROM matches WHERE data_completeness > 0")[0][0]
    assert marked == first["completeness_changed"] and len(complete) > 20
    mid = complete[0]
    halves = h.world.half_team_stats(mid)
    doc = h.get_json(f"/api/matches/{mid}")[1]["match"]
    assert doc["data_completeness"] == 7 and set(doc["half_stats"]) == {"p1", "p2", "ft"}
    assert {str(s["type"]): [s["home"], s["away"]] for s in doc["half_stats"]["ft"]} == halves["ft"]
    assert h.run_job(jobs.data_completeness)["candidates"] == 0   # nothing is asked again at once
    h.clock.advance(jobs.COMPLETENESS_RETRY_S + 1)
    again = h.run_job(jobs.data_completeness)                 # idempotent: only the incomplete are asked again
    assert again["candidates"] == len(done) - len(complete) and again["rows_written"] == 0
    assert again["completeness_changed"] == 0


def test_a_match_the_provider_has_no_half_statistics_for_is_asked_again_later_a_bounded_number_of_times(busy):
    h = busy
    h.feed.half_team_stats = lambda mid: decode.half_team_stats(b'{"code": 0, "results": {}}', 0)
    asked = []
    for k in range(jobs.COMPLETENESS_ATTEMPTS + 2):
        out = h.run_job(jobs.data_completeness)
        asked.append(out["candidates"])
        assert out["completeness_changed"] == 0
        assert h.run_job(jobs.data_completeness)["candidates"] == 0      # not again before the retry time
        h.clock.advance(jobs.COMPLETENESS_RETRY_S + 1)
    n = len(ended(h))
    assert asked == [n] * jobs.COMPLETENESS_ATTEMPTS + [0, 0]
    assert sql(h.dsn, "SELECT min(attempts), max(attempts) FROM match_stats_checks") == [
        (jobs.COMPLETENESS_ATTEMPTS, jobs.COMPLETENESS_ATTEMPTS)]


def test_completeness_bits_are_only_ever_added(db_dsn, busy):
    h = busy
    mid = ended(h)[0]
    with h.pool.connection() as conn:
        full = decode.half_team_stats(_ENC.encode({"code": 0, "results": h.world.half_team_stats(mid)}), 0).items[0]
        stats_store.write_half_stats(conn, {mid: full}, h.clock.now())
        stats_store.write_half_stats(conn, {mid: None}, h.clock.now())     # a later empty answer
        conn.commit()
    assert sql(h.dsn, "SELECT data_completeness FROM matches WHERE id = %s", (mid,)) == [(7,)]
