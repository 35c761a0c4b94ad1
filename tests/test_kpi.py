"""`goald kpi`: the seeds' before/after figures, computed from crafted ledger rows in a real
database (goald.kpi.analyse) and through the command line as an operator runs it."""
import json
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from support import goald

from goald import exitcodes, kpi

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)        # a scheduled minute, well inside the window
SINCE, UNTIL = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)
JOBS = ["ingest_fixtures", "ingest_live", "ingest_odds", "ingest_lineups",
        "recompute_tables", "refresh_views", "purge_cache", "sync_players"]
STAGGER_OFFSETS = [0, 15, 30, 45, 5, 25, 10, 40]


@pytest.fixture
def conn(db_dsn):
    c = psycopg2.connect(db_dsn)
    c.autocommit = True
    yield c
    c.close()


def add_run(conn, job, scheduled_at, *, offset_s=0, duration_ms=45, outcome="succeeded",
            started=True, queries=1, staggered=False, held=None):
    """One job_runs row; a started run begins at scheduled_at + offset_s and lasts duration_ms.
    `held`: the stretches in which it held a connection, as (from, to) seconds after its start
    (db_spans; [] is '{}'); None leaves db_spans NULL, as in a ledger from before migration 0004."""
    start = scheduled_at + timedelta(seconds=offset_s) if started else None
    end = start + timedelta(milliseconds=duration_ms) if started and duration_ms is not None \
        and outcome != "running" else None
    spans = None if held is None else [us(start + timedelta(seconds=t)) for pair in held for t in pair]
    with conn.cursor() as cur:
        cur.execute("""INSERT INTO job_runs (job, scheduled_at, outcome, node, started_at, finished_at,
                                             duration_ms, offset_s, staggered, queries_issued, db_spans)
                       VALUES (%s, %s, %s, 'n1', %s, %s, %s, %s, %s, %s, %s::int8[])""",
                    (job, scheduled_at, outcome, start, end, duration_ms if end else None, offset_s,
                     staggered, queries if started else None, spans))


def us(t):
    """Microseconds since the epoch, as db_spans holds them."""
    return (t - kpi.EPOCH) // timedelta(microseconds=1)


def add_lock_skip(conn, job, scheduled_at):
    with conn.cursor() as cur:
        cur.execute("INSERT INTO job_lock_skips (job, scheduled_at, node) VALUES (%s, %s, 'n2')",
                    (job, scheduled_at))


def add_pool_sample(conn, sampled_at, utilization, waiting=0, peak=None):
    with conn.cursor() as cur:
        cur.execute("""INSERT INTO pool_samples (sampled_at, node, active, idle, waiting, total, max,
                                                 utilization, peak_utilization)
                       VALUES (%s, 'n1', 0, 0, %s, 0, 20, %s, %s)""",
                    (sampled_at, waiting, utilization, peak))


def report(conn, since=SINCE, until=UNTIL):
    return kpi.analyse(conn, since, until)


def job(rep, name):
    return next(j for j in rep["jobs"] if j["job"] == name)


# --- concurrency ------------------------------------------------------------------------------

def test_peak_concurrency_counts_runs_overlapping_at_the_same_instant(conn):
    for name in JOBS:
        add_run(conn, name, T0)
    c = report(conn)["concurrency"]
    assert c["peak_concurrent"] == 8
    assert c["peak_concurrent_at"] == "2024-05-01T12:00:00+00:00"
    assert c["peak_db_concurrent"] == 8
    assert (c["peak_starts_per_second"], c["peak_starts_per_second_at"]) == (8, "2024-05-01T12:00:00+00:00")
    assert (c["peak_starts_per_minute"], c["peak_starts_per_minute_at"]) == (8, "2024-05-01T12:00:00+00:00")


def test_jobs_staggered_across_the_minute_never_run_at_the_same_time(conn):
    for name, offset in zip(JOBS, STAGGER_OFFSETS):
        add_run(conn, name, T0, offset_s=offset, staggered=offset > 0)
    rep = report(conn)
    c = rep["concurrency"]
    assert c["peak_concurrent"] == 1
    assert c["peak_concurrent_at"] == "2024-05-01T12:00:00+00:00"    # the first of the equal peaks
    assert c["peak_starts_per_second"] == 1
    assert c["peak_starts_per_minute"] == 8
    assert rep["start_seconds"] == {str(s): 1 for s in sorted(STAGGER_OFFSETS)}
    assert rep["distinct_start_seconds"] == 8


def test_a_run_ending_exactly_as_another_starts_does_not_overlap_it(conn):
    add_run(conn, "a", T0, duration_ms=1000)
    add_run(conn, "b", T0, offset_s=1, duration_ms=1000)
    add_run(conn, "c", T0, offset_s=1, duration_ms=500, queries=0)
    c = report(conn)["concurrency"]
    assert (c["peak_concurrent"], c["peak_concurrent_at"]) == (2, "2024-05-01T12:00:01+00:00")


def test_without_recorded_spans_a_run_that_queried_counts_as_a_db_job_for_its_whole_run(conn):
    for i, name in enumerate(JOBS[:5]):               # db_spans NULL: a ledger from before 0004
        add_run(conn, name, T0, duration_ms=2000, queries=3 if i < 2 else 0)
    add_run(conn, "later_db_job", T0, offset_s=10, duration_ms=100, queries=5)
    c = report(conn)["concurrency"]
    assert c["peak_concurrent"] == 5
    assert (c["peak_db_concurrent"], c["peak_db_concurrent_at"]) == (2, "2024-05-01T12:00:00+00:00")


def test_a_run_without_recorded_spans_overlaps_every_connection_stretch_inside_it(conn):
    add_run(conn, "old_row", T0, duration_ms=2000, queries=3)                    # NULL: all 2 s
    add_run(conn, "recorded", T0, offset_s=1, duration_ms=500, held=[(0.2, 0.3)])
    add_run(conn, "old_row_no_queries", T0, offset_s=1, duration_ms=500, queries=0)
    c = report(conn)["concurrency"]
    assert c["peak_concurrent"] == 3
    assert (c["peak_db_concurrent"], c["peak_db_concurrent_at"]) == (2, "2024-05-01T12:00:01.200000+00:00")


def test_a_run_holding_a_connection_only_at_its_end_is_no_db_overlap_with_a_run_it_overlaps(conn):
    # Live Stats Sync from :45 for 19.4 s, writing at its end; Referral Tier 2 at :00 meanwhile.
    add_run(conn, "live_stats_sync", T0 - timedelta(seconds=15), duration_ms=19_400, held=[(19.3, 19.4)])
    add_run(conn, "referral_tier2", T0, duration_ms=46, held=[(0.001, 0.045)])
    rep = report(conn)
    c = rep["concurrency"]
    assert (c["peak_concurrent"], c["peak_concurrent_at"]) == (2, "2024-05-01T12:00:00+00:00")
    assert (c["peak_db_concurrent"], c["peak_db_concurrent_at"]) == (1, "2024-05-01T12:00:00.001000+00:00")
    assert "using the database 1 at 2024-05-01T12:00:00.001000+00:00" in kpi.render_text(rep)


def test_runs_whose_connection_stretches_overlap_count_as_two_db_jobs(conn):
    # Live Stats Sync upserting every second of its 19.4 s: one upsert lands on Referral Tier 2.
    add_run(conn, "live_stats_sync", T0 - timedelta(seconds=15), duration_ms=19_400,
            held=[(t, t + 0.1) for t in range(19)])
    add_run(conn, "referral_tier2", T0, duration_ms=46, held=[(0.001, 0.045)])
    add_run(conn, "purge_cache", T0, duration_ms=46, queries=0, held=[])         # no database
    c = report(conn)["concurrency"]
    assert c["peak_concurrent"] == 3
    assert (c["peak_db_concurrent"], c["peak_db_concurrent_at"]) == (2, "2024-05-01T12:00:00.001000+00:00")


def test_a_connection_stretch_ending_as_another_begins_does_not_overlap_it(conn):
    add_run(conn, "a", T0, duration_ms=1000, held=[(0.0, 0.5)])
    add_run(conn, "b", T0, duration_ms=1000, held=[(0.5, 0.9)])
    c = report(conn)["concurrency"]
    assert c["peak_concurrent"] == 2
    assert (c["peak_db_concurrent"], c["peak_db_concurrent_at"]) == (1, "2024-05-01T12:00:00+00:00")


def test_a_long_run_is_checked_against_every_run_that_starts_while_it_runs(conn):
    add_run(conn, "before", T0 - timedelta(seconds=1), duration_ms=2000, held=[(0.0, 2.0)])
    add_run(conn, "long", T0, duration_ms=30_000, held=[(20.0, 21.0)])              # outlasts before
    add_run(conn, "early", T0, offset_s=5, duration_ms=1000, held=[(0.0, 1.0)])      # long not holding
    add_run(conn, "later", T0, offset_s=20, duration_ms=800, held=[(0.5, 0.6)])      # long holding
    c = report(conn)["concurrency"]
    assert (c["peak_db_concurrent"], c["peak_db_concurrent_at"]) == (2, "2024-05-01T12:00:20.500000+00:00")


def test_runs_that_never_touched_the_database_do_not_count_as_db_jobs_even_with_queries(conn):
    for name in JOBS:
        add_run(conn, name, T0, duration_ms=1000, queries=3, held=[])       # '{}': never held one
    c = report(conn)["concurrency"]
    assert c["peak_concurrent"] == 8
    assert (c["peak_db_concurrent"], c["peak_db_concurrent_at"]) == (0, None)
    add_run(conn, "writer", T0, duration_ms=1000, held=[(0.25, 0.5)])
    c = report(conn)["concurrency"]
    assert (c["peak_db_concurrent"], c["peak_db_concurrent_at"]) == (1, "2024-05-01T12:00:00.250000+00:00")


def test_a_run_still_running_occupies_the_rest_of_the_window(conn):
    add_run(conn, "stuck", T0, outcome="running", duration_ms=None)
    add_run(conn, "hourly", T0 + timedelta(hours=3))
    rep = report(conn)
    assert rep["concurrency"]["peak_concurrent"] == 2
    assert rep["concurrency"]["peak_concurrent_at"] == "2024-05-01T15:00:00+00:00"
    assert job(rep, "stuck")["outcomes"]["running"] == 1
    assert job(rep, "stuck")["runs"] == 0                    # not finished: not a run yet


def test_overlapping_runs_of_the_same_job_are_counted_as_pairs(conn):
    add_run(conn, "slow", T0, duration_ms=150_000)                         # 12:00:00 - 12:02:30
    add_run(conn, "slow", T0 + timedelta(minutes=1), duration_ms=10_000)   # inside the first
    add_run(conn, "slow", T0 + timedelta(minutes=2), duration_ms=10_000)   # inside the first
    add_run(conn, "slow", T0 + timedelta(minutes=3), duration_ms=10_000)   # alone
    add_run(conn, "slow", T0 + timedelta(minutes=4), outcome="skipped_overlap", started=False)
    add_run(conn, "other", T0 + timedelta(minutes=1), duration_ms=10_000)  # another job: no pair
    o = report(conn)["overlaps"]
    assert o == {"same_job_pairs": 2, "skipped_overlap": 1}


def test_start_seconds_histogram_lists_only_seconds_with_starts(conn):
    for minute in range(20):
        add_run(conn, "a", T0 + timedelta(minutes=minute))
        add_run(conn, "b", T0 + timedelta(minutes=minute), offset_s=15)
    rep = report(conn)
    assert rep["start_seconds"] == {"0": 20, "15": 20}
    assert rep["distinct_start_seconds"] == 2
    assert rep["concurrency"]["peak_starts_per_minute"] == 2
    assert "start seconds (2 distinct)  :00 ×20  :15 ×20" in kpi.render_text(rep)


# --- per-job figures --------------------------------------------------------------------------

def test_duration_mean_p95_and_max_cover_finished_runs_only(conn):
    for i in range(20):
        add_run(conn, "sync", T0 + timedelta(minutes=i), duration_ms=10 * (i + 1))   # 10 .. 200
    add_run(conn, "sync", T0 + timedelta(hours=1), outcome="running", duration_ms=None)
    add_run(conn, "sync", T0 + timedelta(hours=2), outcome="missed", started=False)
    d = job(report(conn), "sync")["duration_ms"]
    assert d == {"mean": 105.0, "p95": 190.5, "max": 200.0}   # p95: continuous, 190 + 0.05 * 10


def test_outcomes_list_every_value_with_zeros_and_success_rate_counts_started_runs(conn):
    plan = ["succeeded"] * 7 + ["failed", "timed_out", "interrupted", "missed", "skipped_disabled",
                                "skipped_overlap", "running"]
    for i, outcome in enumerate(plan):
        started = outcome in kpi.STARTED or outcome == "running"
        add_run(conn, "ingest", T0 + timedelta(minutes=i), outcome=outcome, started=started)
    rep = report(conn)
    j = job(rep, "ingest")
    assert j["outcomes"] == {"running": 1, "succeeded": 7, "failed": 1, "timed_out": 1,
                             "skipped_overlap": 1, "skipped_lock": 0, "skipped_disabled": 1,
                             "missed": 1, "interrupted": 1}
    assert j["runs"] == 10
    assert j["success_rate"] == 70.0
    assert rep["totals"] == {"runs": 10, "succeeded": 7, "failed": 1, "timed_out": 1,
                             "interrupted": 1, "missed": 1, "skipped_lock": 0, "success_rate": 70.0}


def test_a_job_that_never_started_has_no_success_rate_or_durations(conn):
    add_run(conn, "off", T0, outcome="skipped_disabled", started=False)
    j = job(report(conn), "off")
    assert j["runs"] == 0 and j["success_rate"] is None
    assert j["duration_ms"] == {"mean": None, "p95": None, "max": None}


def test_staggered_runs_and_distinct_offsets_are_reported_per_job(conn):
    for i, offset in enumerate([15, 15, 30, 0]):
        add_run(conn, "odds", T0 + timedelta(minutes=i), offset_s=offset, staggered=offset > 0)
    j = job(report(conn), "odds")
    assert j["staggered_runs"] == 3
    assert j["offsets"] == [0, 15, 30]


def test_lock_skips_are_counted_per_job_from_their_own_table(conn):
    add_run(conn, "live", T0)
    for i in range(3):
        add_lock_skip(conn, "live", T0 + timedelta(minutes=i))
    add_lock_skip(conn, "tables", T0)        # lock-skipped here, run by another instance's ledger
    rep = report(conn)
    assert job(rep, "live")["lock_skips"] == 3
    assert job(rep, "tables")["lock_skips"] == 1 and job(rep, "tables")["runs"] == 0
    assert [j["job"] for j in rep["jobs"]] == ["live", "tables"]
    assert rep["totals"]["skipped_lock"] == 4


def test_rows_outside_the_half_open_window_are_excluded(conn):
    for at in (SINCE - timedelta(microseconds=1), SINCE, UNTIL - timedelta(seconds=1), UNTIL):
        add_run(conn, "edge", at, duration_ms=10)
        add_lock_skip(conn, "edge", at)
        add_pool_sample(conn, at, 10.0 if SINCE <= at < UNTIL else 99.0)
    rep = report(conn)
    assert rep["window"] == {"since": "2024-05-01T00:00:00+00:00", "until": "2024-05-02T00:00:00+00:00"}
    assert job(rep, "edge")["runs"] == 2
    assert job(rep, "edge")["lock_skips"] == 2
    assert rep["pool"]["samples"] == 2 and rep["pool"]["utilization_max"] == 10.0


def test_pool_utilization_mean_max_p95_and_longest_wait(conn):
    values = [10.0, 20.0, 30.0, 40.0, 12.5]
    for i, u in enumerate(values):
        add_pool_sample(conn, T0 + timedelta(seconds=10 * i), u, waiting=i % 3)
    p = report(conn)["pool"]
    assert p == {"samples": 5, "utilization_mean": 22.5, "utilization_max": 40.0,
                 "utilization_p95": 38.0, "waiting_max": 2, "at_max": "2024-05-01T12:00:30+00:00"}


def test_an_empty_window_reports_zeros_and_nulls(conn):
    rep = report(conn)
    assert rep["jobs"] == []
    assert rep["pool"] == {"samples": 0, "utilization_mean": None, "utilization_max": None,
                           "utilization_p95": None, "waiting_max": None, "at_max": None}
    assert rep["concurrency"]["peak_concurrent"] == 0 and rep["concurrency"]["peak_concurrent_at"] is None
    assert rep["totals"]["runs"] == 0 and rep["totals"]["success_rate"] is None
    assert rep["start_seconds"] == {} and rep["distinct_start_seconds"] == 0
    assert "no runs in this window" in kpi.render_text(rep)
    json.dumps(rep)


def test_analyse_streams_in_its_own_read_only_transaction_and_leaves_the_connection_idle(conn, db_dsn):
    for name in JOBS:
        add_run(conn, name, T0, queries=0)
    add_run(conn, JOBS[0], T0 + timedelta(milliseconds=10))                # same job, overlapping
    c = psycopg2.connect(db_dsn)               # not autocommit: a snapshot and a server-side cursor
    try:
        rep = kpi.analyse(c, SINCE, UNTIL)
        assert c.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    finally:
        c.close()
    assert rep == report(conn)                 # the autocommit (client-side cursor) path agrees
    assert rep["concurrency"]["peak_concurrent"] == 9 and rep["concurrency"]["peak_db_concurrent"] == 1
    assert rep["overlaps"]["same_job_pairs"] == 1


# --- text rendering ---------------------------------------------------------------------------

def test_text_report_marks_the_seeds_thresholds(conn):
    for name in JOBS[:4]:
        add_run(conn, name, T0)                             # 4 at once: above the alert level 3
    add_pool_sample(conn, T0, 35.0)
    add_pool_sample(conn, T0 + timedelta(seconds=10), 55.0)
    text = kpi.render_text(report(conn))
    assert "pool utilization mean 45.0% max 55.0% (2 samples)" in text
    marks = [line for line in text.splitlines() if line.startswith("  [")]
    assert marks[0].startswith("  [warn]") and "utilization mean" in marks[0]    # 45 %: < 40, > 60
    assert marks[1].startswith("  [warn]") and "utilization max" in marks[1]     # 55 %: < 50, > 70
    assert marks[2].startswith("  [ALERT]") and "concurrent jobs" in marks[2]    # 4: target 1, > 3
    for name in JOBS[:4]:
        assert name in text


def test_pool_max_counts_the_peak_between_samples_when_the_sample_itself_saw_an_idle_pool(conn):
    add_pool_sample(conn, T0, 0.0, peak=87.5)  # eight jobs held the pool for 50 ms between samples
    add_pool_sample(conn, T0 + timedelta(seconds=10), 5.0, peak=5.0)
    p = report(conn)["pool"]
    assert p["utilization_max"] == 87.5 and p["utilization_mean"] == 2.5
    assert p["at_max"] == "2024-05-01T12:00:00+00:00"


def test_one_job_at_a_time_and_a_quiet_pool_pass(conn):
    for name, offset in zip(JOBS, STAGGER_OFFSETS):
        add_run(conn, name, T0, offset_s=offset)
    add_pool_sample(conn, T0, 12.0)
    text = kpi.render_text(report(conn))
    marks = [line for line in text.splitlines() if line.startswith("  [")]
    assert len(marks) == 3 and all(m.startswith("  [pass]") for m in marks), marks


# --- time options -----------------------------------------------------------------------------

NOW = datetime(2024, 5, 10, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize("text, expected", [
    ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
    ("2024-05-01T12:00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("15m", NOW - timedelta(minutes=15)),
    ("24h", NOW - timedelta(hours=24)),
    ("7d", NOW - timedelta(days=7)),
])
def test_time_options_accept_iso_8601_and_durations_ago(text, expected):
    assert kpi.parse_time(text, "--since", NOW) == expected


def test_the_window_defaults_to_the_last_24_hours():
    assert kpi.parse_window(None, None, NOW) == (NOW - timedelta(hours=24), NOW)


# --- the command line -------------------------------------------------------------------------

def seed_two_jobs(conn, at):
    for i in range(4):
        add_run(conn, "ingest_live", at + timedelta(minutes=i), duration_ms=40 + i)
        add_run(conn, "recompute_tables", at + timedelta(minutes=i), offset_s=15, duration_ms=100,
                staggered=True, outcome="failed" if i == 3 else "succeeded")
    add_pool_sample(conn, at, 12.0)
    add_pool_sample(conn, at + timedelta(seconds=10), 35.0)


def test_kpi_json_matches_the_ledger(conn, db_dsn, tmp_path):
    seed_two_jobs(conn, T0)
    out = goald(["kpi", "--since", "2024-05-01", "--until", "2024-05-02T00:00:00Z", "--json"], tmp_path,
                GOALD_DATABASE_URL=db_dsn)
    assert out.returncode == exitcodes.OK, out.stderr
    doc = json.loads(out.stdout)
    assert doc == report(conn)
    assert [j["job"] for j in doc["jobs"]] == ["ingest_live", "recompute_tables"]
    assert job(doc, "recompute_tables")["success_rate"] == 75.0
    assert doc["start_seconds"] == {"0": 4, "15": 4}
    assert doc["concurrency"]["peak_concurrent"] == 1


def test_kpi_relative_since_covers_only_recent_runs(conn, db_dsn, tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    add_run(conn, "recent", now - timedelta(minutes=30))
    add_run(conn, "old", now - timedelta(hours=2))
    out = goald(["kpi", "--since", "1h", "--json"], tmp_path, GOALD_DATABASE_URL=db_dsn)
    assert out.returncode == exitcodes.OK, out.stderr
    assert [j["job"] for j in json.loads(out.stdout)["jobs"]] == ["recent"]
    out = goald(["kpi", "--json"], tmp_path, GOALD_DATABASE_URL=db_dsn)       # default: last 24 h
    assert [j["job"] for j in json.loads(out.stdout)["jobs"]] == ["old", "recent"]


def test_kpi_text_names_the_jobs_and_the_pool_line(conn, db_dsn, tmp_path):
    seed_two_jobs(conn, T0)
    out = goald(["kpi", "--since", "2024-05-01", "--until", "2024-05-02"], tmp_path, GOALD_DATABASE_URL=db_dsn)
    assert out.returncode == exitcodes.OK, out.stderr
    assert "ingest_live" in out.stdout and "recompute_tables" in out.stdout
    assert "pool utilization mean 23.5% max 35.0% (2 samples)" in out.stdout
    assert ":00 ×4  :15 ×4" in out.stdout


def test_kpi_rejects_an_unreadable_since_with_the_usage_exit_code(tmp_path):
    out = goald(["kpi", "--since", "yesterdayish"], tmp_path,
                GOALD_DATABASE_URL="postgresql://u@127.0.0.1:1/x")   # never reached
    assert out.returncode == exitcodes.CONFIG
    err = out.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("goald kpi: --since 'yesterdayish' is not a time")
    assert "24h" in err and "2024-05-01" in err


def test_kpi_rejects_a_window_that_ends_before_it_starts(tmp_path):
    out = goald(["kpi", "--since", "1h", "--until", "2h"], tmp_path,
                GOALD_DATABASE_URL="postgresql://u@127.0.0.1:1/x")
    assert out.returncode == exitcodes.CONFIG
    err = out.stderr.strip()
    assert len(err.splitlines()) == 1 and "--since" in err and "--until" in err, err


def test_kpi_with_an_unreachable_database_exits_with_the_database_code(tmp_path):
    out = goald(["kpi"], tmp_path, GOALD_DATABASE_URL="postgresql://u:pw@127.0.0.1:1/x")
    assert out.returncode == exitcodes.DATABASE
    assert out.stderr.strip().startswith("goald kpi: ")
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_kpi_on_a_database_without_the_ledger_says_to_migrate(empty_db_dsn, tmp_path):
    out = goald(["kpi"], tmp_path, GOALD_DATABASE_URL=empty_db_dsn)
    assert out.returncode == exitcodes.DATABASE
    err = out.stderr.strip()
    assert err.startswith("goald kpi: ") and "goald migrate" in err and len(err.splitlines()) == 1, err


def test_kpi_is_listed_in_help(tmp_path):
    out = goald(["kpi", "--help"], tmp_path)
    assert out.returncode == 0 and "goald kpi" in out.stdout and "--since" in out.stdout
