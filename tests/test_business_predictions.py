"""AI predictions (sql/0015, goald/business/predictions*.py, actors/jobs/predictions.py): the
matcher's names, window, ambiguity, confidence, retries and give-up; the results' markets, the
half-time defect case (0-0 at half time is lost, never void), when each market settles, void only
when the score cannot exist, settled once; two instances at once; query budgets at two sizes;
the demo seed."""
import time
from datetime import date, datetime, timezone

import gevent
import gevent.event
import pytest

from goald import config
from goald.actors.context import JobContext
from goald.actors.jobs import predictions as jobs
from goald.actors.ledger import Occurrence
from goald.business import predictions, predictions_results
from support import sql

NOW = int(time.time())


def run(pool, job, **env):
    ctx = JobContext(occurrence=Occurrence(job.__name__, time.time()), pool=pool,
                     config=config.load(None, env, search=False), node="t", cancel=gevent.event.Event())
    return job(ctx), ctx.queries


def competition(dsn, cid, name, short=None):
    sql(dsn, "INSERT INTO competitions (id, name, short_name) VALUES (%s, %s, %s)", (cid, name, short))


def team(dsn, tid, name, short=None):
    sql(dsn, "INSERT INTO teams (id, name, short_name) VALUES (%s, %s, %s)", (tid, name, short))


def match(dsn, mid, home, away, comp, kickoff, status=1, ft=(0, 0), ht=(0, 0), second_half=False):
    sql(dsn, "INSERT INTO matches (id, home_team_id, away_team_id, competition_id, match_time, status_id, "
             "home_regular, away_regular, home_half_time, away_half_time, second_half_kickoff_ts) "
             "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (mid, home, away, comp, kickoff, status, *ft, *ht, kickoff + 3600 if second_half else None))


def predict(dsn, ext, home, away, league, at, minute=0, score=(0, 0), market="home_win"):
    return sql(dsn, "INSERT INTO ai_predictions (external_id, home_team_name, away_team_name, league_name, "
                    "predicted_at, minute_at_prediction, home_score_at, away_score_at, market) "
                    "VALUES (%s, %s, %s, %s, to_timestamp(%s), %s, %s, %s, %s) RETURNING id",
               (ext, home, away, league, at, minute, *score, market))[0][0]


def row(dsn, pid):
    return dict(zip(("match_id", "match_confidence", "unmatched_reason", "status", "result_note", "match_attempts"),
                    sql(dsn, "SELECT match_id, match_confidence, unmatched_reason, status, result_note, match_attempts "
                             "FROM ai_predictions WHERE id = %s", (pid,))[0]))


@pytest.fixture
def bundesliga(db_dsn):
    competition(db_dsn, "c1", "Bundesliga", "BL")
    team(db_dsn, "bay", "Bayern München", "Bayern")
    team(db_dsn, "bvb", "Borussia Dortmund", "BVB")
    team(db_dsn, "s04", "FC Schalke 04")
    team(db_dsn, "koe", "1. FC Köln")
    match(db_dsn, "m1", "bay", "bvb", "c1", NOW - 1800, status=2, ft=(1, 0))      # 30 minutes in
    match(db_dsn, "m2", "s04", "koe", "c1", NOW - 1800, status=2)                 # the same evening
    return db_dsn


# --- the matcher --------------------------------------------------------------------------------

def test_accented_and_prefixed_names_are_matched_with_a_confidence(pool, bundesliga):
    dsn = bundesliga
    a = predict(dsn, "ai-1", "FC Bayern Munchen", "Borussia Dortmund", "Germany: Bundesliga", NOW - 300, minute=25,
                score=(1, 0))
    b = predict(dsn, "ai-2", "Schalke 04", "Köln", "", NOW - 300, minute=25)     # no league: less sure
    out, _ = run(pool, jobs.prediction_matcher)
    assert out["tried"] == 2 and out["matched"] == 2, out
    ra, rb = row(dsn, a), row(dsn, b)
    assert ra["match_id"] == "m1" and ra["unmatched_reason"] is None and 0.9 <= ra["match_confidence"] <= 1
    assert rb["match_id"] == "m2" and 0.5 <= rb["match_confidence"] < ra["match_confidence"]
    assert sql(dsn, "SELECT goald_name_norm('FC Bayern München'), goald_name_norm('bayern munchen')") == \
        [("bayern munchen", "bayern munchen")]


def test_a_match_outside_the_window_is_refused_and_says_so(pool, bundesliga):
    dsn = bundesliga
    pid = predict(dsn, "ai-1", "Bayern München", "Borussia Dortmund", "Bundesliga", NOW - 7 * 86400, minute=10)
    out, _ = run(pool, jobs.prediction_matcher)
    assert out["no_candidate"] == 1 and out["matched"] == 0
    r = row(dsn, pid)
    assert r["match_id"] is None and r["unmatched_reason"] == "no candidate within window" and r["status"] == "void"


def test_two_equally_good_candidates_leave_the_prediction_unmatched_as_ambiguous(pool, bundesliga):
    dsn = bundesliga
    competition(dsn, "c2", "Club Friendlies")
    match(dsn, "m1b", "bay", "bvb", "c2", NOW - 1800, status=2, ft=(1, 0))       # the same pair, the same time
    vague = predict(dsn, "ai-1", "Bayern", "Dortmund", "", NOW - 300, minute=25)
    named = predict(dsn, "ai-2", "Bayern", "Dortmund", "Friendlies", NOW - 300, minute=25)
    out, _ = run(pool, jobs.prediction_matcher)
    assert out["ambiguous"] == 1 and out["matched"] == 1, out
    r = row(dsn, vague)
    assert r["match_id"] is None and r["unmatched_reason"] == "ambiguous: 2 candidates" and r["status"] == "pending"
    assert row(dsn, named)["match_id"] == "m1b"                 # the league decides between them


def test_a_second_run_changes_nothing(pool, bundesliga):
    dsn = bundesliga
    predict(dsn, "ai-1", "Bayern München", "BVB", "Bundesliga", NOW - 300, minute=25)
    predict(dsn, "ai-2", "Nobody United", "Borussia Dortmund", "Bundesliga", NOW - 300, minute=25)
    first, _ = run(pool, jobs.prediction_matcher)
    assert first["tried"] == 2 and first["matched"] == 1
    before = sql(dsn, "SELECT * FROM ai_predictions ORDER BY id")
    second, _ = run(pool, jobs.prediction_matcher)
    assert second["tried"] == 0 and sql(dsn, "SELECT * FROM ai_predictions ORDER BY id") == before


def test_an_unmatched_prediction_is_retried_matched_once_its_match_appears_and_given_up_after_a_day(pool, bundesliga):
    dsn = bundesliga
    team(dsn, "ars", "Arsenal")
    team(dsn, "che", "Chelsea FC")
    later = predict(dsn, "ai-1", "Arsenal", "Chelsea", "Premier League", NOW - 600, minute=5)
    old = predict(dsn, "ai-2", "Arsenal", "Chelsea", "Premier League", NOW - 2 * 86400, minute=5)
    run(pool, jobs.prediction_matcher)
    assert row(dsn, later)["unmatched_reason"] == "no candidate within window" and row(dsn, later)["status"] == "pending"
    assert row(dsn, old)["status"] == "void" and row(dsn, old)["result_note"] == "unmatched: no candidate within window"
    match(dsn, "m9", "ars", "che", None, NOW - 900, status=2)                     # the schedule arrives late
    assert run(pool, jobs.prediction_matcher)[0]["tried"] == 0                  # not before match_retry_s
    sql(dsn, "UPDATE ai_predictions SET match_tried_at = match_tried_at - interval '1 hour'")
    out, _ = run(pool, jobs.prediction_matcher)
    assert out == {"tried": 1, "matched": 1, "ambiguous": 0, "no_candidate": 0, "low_confidence": 0, "given_up": 0}
    r = row(dsn, later)
    assert r["match_id"] == "m9" and r["unmatched_reason"] is None and r["match_attempts"] == 2
    assert row(dsn, old)["match_attempts"] == 1                                  # given up: never tried again


def test_two_matchers_at_once_match_each_prediction_once(pool, db_dsn):
    competition(db_dsn, "c1", "League")
    sql(db_dsn, "INSERT INTO teams (id, name) SELECT 't' || i, 'Team ' || chr(65 + i %% 26) || i FROM generate_series(1, 600) i")
    sql(db_dsn, "INSERT INTO matches (id, home_team_id, away_team_id, competition_id, match_time, status_id) "
                "SELECT 'm' || i, 't' || (2 * i - 1), 't' || (2 * i), 'c1', %s, 2 FROM generate_series(1, 300) i",
        (NOW - 1800,))
    sql(db_dsn, "INSERT INTO ai_predictions (external_id, home_team_name, away_team_name, league_name, predicted_at, "
                "minute_at_prediction, market) SELECT 'ai-' || i, 'FC Team ' || chr(65 + (2 * i - 1) %% 26) || (2 * i - 1), "
                "'Team ' || chr(65 + (2 * i) %% 26) || (2 * i), 'League', to_timestamp(%s), 25, 'btts' "
                "FROM generate_series(1, 300) i", (NOW - 300,))

    def matcher():
        total = 0
        while True:
            out, _ = run(pool, jobs.prediction_matcher, GOALD_PREDICTIONS_BATCH_SIZE="40")
            if not out["tried"]:
                return total
            total += out["matched"]
    totals = [g.value for g in gevent.joinall([gevent.spawn(matcher), gevent.spawn(matcher)], raise_error=True)]
    assert sum(totals) == 300 and all(t > 0 for t in totals), totals
    assert sql(db_dsn, "SELECT count(*), count(DISTINCT match_id), max(match_attempts) FROM ai_predictions "
                       "WHERE match_id = 'm' || substr(external_id, 4)") == [(300, 300, 1)]


# --- the results --------------------------------------------------------------------------------

CASES = [   # market, full time, half time, outcome
    ("home_win", (2, 1), (0, 0), "won"), ("home_win", (1, 1), (1, 0), "lost"), ("draw", (1, 1), (0, 1), "won"),
    ("away_win", (0, 2), (0, 0), "won"), ("away_win", (2, 2), (0, 0), "lost"), ("home_or_draw", (1, 1), (0, 0), "won"),
    ("draw_or_away", (3, 0), (0, 0), "lost"), ("home_or_away", (0, 0), (0, 0), "lost"),
    ("btts", (1, 1), (0, 0), "won"), ("btts", (2, 0), (1, 0), "lost"), ("btts_no", (2, 0), (0, 0), "won"),
    ("over_0_5", (0, 0), (0, 0), "lost"), ("over_1_5", (1, 1), (0, 0), "won"), ("over_2_5", (2, 0), (2, 0), "lost"),
    ("over_2_5", (2, 1), (0, 0), "won"), ("over_3_5", (2, 2), (0, 0), "won"), ("over_4_5", (3, 2), (0, 0), "won"),
    ("under_1_5", (1, 0), (0, 0), "won"), ("under_2_5", (2, 1), (0, 0), "lost"), ("under_3_5", (2, 1), (0, 0), "won"),
    ("ht_home_win", (0, 3), (1, 0), "won"), ("ht_draw", (2, 0), (0, 0), "won"), ("ht_away_win", (2, 0), (0, 0), "lost"),
    ("ht_btts", (1, 1), (1, 1), "won"), ("ht_over_0_5", (3, 0), (0, 0), "lost"), ("ht_over_0_5", (1, 0), (1, 0), "won"),
    ("ht_over_1_5", (2, 0), (1, 0), "lost"), ("ht_over_2_5", (3, 0), (3, 0), "won"),
    ("ht_under_0_5", (2, 0), (0, 0), "won"), ("ht_under_1_5", (2, 0), (2, 0), "lost"),
]


def settle_cases(dsn, pool, cases, status=8, **kw):
    team(dsn, "h", "Home")
    team(dsn, "a", "Away")
    ids = []
    for i, (market, ft, ht, _) in enumerate(cases):
        match(dsn, f"x{i}", "h", "a", None, NOW - 7200, status=status, ft=ft, ht=ht, **kw)
        pid = predict(dsn, f"ai-{i}", "Home", "Away", "", NOW - 7000, minute=3, market=market)
        sql(dsn, "UPDATE ai_predictions SET match_id = %s, match_confidence = 1, match_final = true WHERE id = %s",
            (f"x{i}", pid))
        ids.append(pid)
    out, _ = run(pool, jobs.prediction_results)
    return out, [row(dsn, pid) for pid in ids]


def test_every_market_is_won_or_lost_from_the_right_score(pool, db_dsn):
    out, rows = settle_cases(db_dsn, pool, CASES)
    assert [r["status"] for r in rows] == [c[3] for c in CASES]
    assert out["void"] == 0 and out["won"] + out["lost"] == len(CASES)
    assert rows[0]["result_note"] == "FT 2-1" and rows[CASES.index(("ht_over_0_5", (3, 0), (0, 0), "lost"))][
        "result_note"] == "HT 0-0"
    assert {m for m, *_ in CASES} == set(predictions_results.MARKETS)       # every market has a case


def test_the_markets_of_the_code_are_the_ones_the_table_accepts(db_dsn):
    check = sql(db_dsn, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'ai_predictions'::regclass "
                        "AND pg_get_constraintdef(oid) LIKE '%%market%%'")[0][0]
    import re
    assert set(re.findall(r"'([a-z0-9_]+)'::text", check)) == set(predictions_results.MARKETS)


def test_a_goalless_half_time_settles_ht_over_0_5_as_lost_not_void(pool, db_dsn):
    out, [r] = settle_cases(db_dsn, pool, [("ht_over_0_5", (0, 0), (0, 0), "lost")], status=4)
    assert out == {"won": 0, "lost": 1, "void": 0} and r["status"] == "lost" and r["result_note"] == "HT 0-0"


def test_half_time_markets_settle_at_half_time_while_full_time_markets_wait_for_the_end(pool, db_dsn):
    cases = [("ht_over_0_5", (1, 0), (1, 0), "won"), ("over_0_5", (1, 0), (1, 0), "pending")]
    out, rows = settle_cases(db_dsn, pool, cases, status=3)
    assert [r["status"] for r in rows] == ["won", "pending"] and out == {"won": 1, "lost": 0, "void": 0}
    sql(db_dsn, "UPDATE matches SET status_id = 4")
    assert run(pool, jobs.prediction_results)[0] == {"won": 0, "lost": 0, "void": 0}     # second half: still waits
    sql(db_dsn, "UPDATE matches SET status_id = 8, home_regular = 2")
    out, _ = run(pool, jobs.prediction_results)
    assert out == {"won": 1, "lost": 0, "void": 0}
    assert sql(db_dsn, "SELECT market, status, result_note FROM ai_predictions ORDER BY id") == [
        ("ht_over_0_5", "won", "HT 1-0"), ("over_0_5", "won", "FT 2-0")]


def test_not_started_live_delayed_or_interrupted_matches_settle_nothing(pool, db_dsn):
    for status in (1, 2, 9, 10, 13):
        sql(db_dsn, "TRUNCATE ai_predictions, matches, teams CASCADE")
        out, rows = settle_cases(db_dsn, pool, [("ht_draw", (0, 0), (0, 0), ""), ("draw", (0, 0), (0, 0), "")],
                                 status=status)
        assert out == {"won": 0, "lost": 0, "void": 0} and {r["status"] for r in rows} == {"pending"}, status


def test_a_cancelled_match_voids_and_an_abandoned_one_voids_only_what_it_never_reached(pool, db_dsn):
    out, rows = settle_cases(db_dsn, pool, [("btts", (1, 1), (1, 0), ""), ("ht_over_0_5", (1, 1), (1, 0), "")],
                             status=12)
    assert [(r["status"], r["result_note"]) for r in rows] == [("void", "void: match cancelled")] * 2
    sql(db_dsn, "TRUNCATE ai_predictions, matches, teams CASCADE")
    out, rows = settle_cases(db_dsn, pool, [("btts", (1, 1), (1, 0), ""), ("ht_over_0_5", (1, 1), (1, 0), "")],
                             status=11, second_half=True)        # abandoned in the second half
    assert [(r["status"], r["result_note"]) for r in rows] == [("void", "void: match abandoned before full time"),
                                                              ("won", "HT 1-0")]
    sql(db_dsn, "TRUNCATE ai_predictions, matches, teams CASCADE")
    out, rows = settle_cases(db_dsn, pool, [("ht_under_0_5", (0, 0), (0, 0), "")], status=11)   # in the first half
    assert rows[0]["status"] == "void" and rows[0]["result_note"] == "void: match abandoned before half time"


def test_a_prediction_is_settled_once_and_a_later_score_change_does_not_settle_it_again(pool, db_dsn):
    out, [r] = settle_cases(db_dsn, pool, [("over_2_5", (2, 1), (0, 0), "won")])
    assert r["status"] == "won"
    stamp = sql(db_dsn, "SELECT settled_at FROM ai_predictions")
    sql(db_dsn, "UPDATE matches SET home_regular = 0, away_regular = 0")          # a correction afterwards
    assert run(pool, jobs.prediction_results)[0] == {"won": 0, "lost": 0, "void": 0}
    assert sql(db_dsn, "SELECT status, result_note FROM ai_predictions") == [("won", "FT 2-1")]
    assert sql(db_dsn, "SELECT settled_at FROM ai_predictions") == stamp


# --- query budgets ------------------------------------------------------------------------------

def population(dsn, n):
    """n matches (half ended 2-1 at 1-0, half live) and one prediction of each, names varied."""
    sql(dsn, "TRUNCATE ai_predictions, matches, teams, competitions CASCADE")
    competition(dsn, "c1", "League")
    sql(dsn, "INSERT INTO teams (id, name) SELECT 't' || i, 'Team x' || substr(md5(i::text), 1, 10) || ' Town' "
             "FROM generate_series(1, %s) i",
        (2 * n,))
    sql(dsn, "INSERT INTO matches (id, home_team_id, away_team_id, competition_id, match_time, status_id, home_regular, "
             "away_regular, home_half_time) SELECT 'm' || i, 't' || (2 * i - 1), 't' || (2 * i), 'c1', "
             "%s - (i %% 50) * 60, CASE WHEN i %% 2 = 0 THEN 8 ELSE 4 END, 2, 1, 1 FROM generate_series(1, %s) i",
        (NOW - 7200, n))
    sql(dsn, "INSERT INTO ai_predictions (external_id, home_team_name, away_team_name, league_name, predicted_at, "
             "minute_at_prediction, market) SELECT 'ai-' || i, "
             "'FC Team x' || substr(md5((2 * i - 1)::text), 1, 10) || ' Town', "
             "'Team x' || substr(md5((2 * i)::text), 1, 10) || ' Town', 'League', to_timestamp(%s - (i %% 50) * 60 + 600), 10, "
             "CASE WHEN i %% 3 = 0 THEN 'ht_over_0_5' ELSE 'over_2_5' END FROM generate_series(1, %s) i",
        (NOW - 7200, n))


def test_queries_per_run_are_the_same_for_100_and_5000_predictions_and_at_most_ten(pool, db_dsn):
    counts = {}
    for n in (100, 5000):
        population(db_dsn, n)
        matched, counts[("matcher", n)] = run(pool, jobs.prediction_matcher)
        assert matched["matched"] == n, matched
        settled, counts[("results", n)] = run(pool, jobs.prediction_results)
        assert settled["won"] + settled["lost"] == sql(db_dsn, "SELECT count(*) FROM ai_predictions "
                                                               "WHERE status <> 'pending'")[0][0] > 0
    assert 1 <= counts[("matcher", 100)] == counts[("matcher", 5000)] <= 10, counts
    assert 1 <= counts[("results", 100)] == counts[("results", 5000)] <= 10, counts


# --- import and demo ----------------------------------------------------------------------------

def test_an_import_is_idempotent_on_the_ais_id(pool, db_dsn):
    rows = [{"external_id": "x1", "home_team_name": "A", "away_team_name": "B", "market": "btts",
             "predicted_at": datetime.now(timezone.utc)}]
    with pool.connection() as conn:
        assert predictions.import_predictions(conn, rows) == 1
        assert predictions.import_predictions(conn, rows + [{**rows[0], "external_id": "x2"}]) == 1
    assert sql(db_dsn, "SELECT count(*) FROM ai_predictions") == [(2,)]


def test_the_demo_seed_makes_predictions_from_the_matches_present_and_none_without_matches(pool, bundesliga):
    dsn = bundesliga
    with pool.connection() as conn, conn.cursor() as cur:
        assert predictions.seed_demo(cur, 1, date.today()) == 2
        conn.commit()
        cur.execute("TRUNCATE matches CASCADE")
        assert predictions.seed_demo(cur, 2, date.today()) == 0
        conn.rollback()
    out, _ = run(pool, jobs.prediction_matcher)
    assert out["tried"] == 2


def test_demo_predictions_of_a_live_match_are_never_ahead_of_it(pool, db_dsn):
    now = int(time.time())
    sql(db_dsn, "INSERT INTO teams (id, name) VALUES ('h', 'Home Town'), ('a', 'Away City')")
    for i in range(20):                            # twenty live matches, each in its 20th minute
        sql(db_dsn, "INSERT INTO matches (id, home_team_id, away_team_id, match_time, status_id, minute) "
                    "VALUES (%s, 'h', 'a', %s, 2, 20)", (f"live{i}", now - 19 * 60))
    with pool.connection() as conn, conn.cursor() as cur:
        assert predictions.seed_demo(cur, 7, date.today()) == 20
        conn.commit()
    assert sql(db_dsn, "SELECT count(*) FILTER (WHERE predicted_at > now()), max(minute_at_prediction) "
                       "FROM ai_predictions") == [(0, 20)]
