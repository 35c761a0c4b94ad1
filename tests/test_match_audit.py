"""`goald audit matches`: each invariant it checks catches a row that breaks it, a consistent
database passes, and the command lists each violation and exits 1 (0 when clean)."""
import msgspec
import psycopg2
import pytest

from goald.match import audit, rows, state, store
from goald.provider import payloads as p
import provider_samples as ps
from support import goald

NOW = ps.NOW


@pytest.fixture
def conn(db_dsn):
    c = psycopg2.connect(db_dsn)
    yield c
    c.close()


def good(conn, mid, status=4):
    """A consistent match in the second half (through the real state engine and writer)."""
    store.upsert_objects(conn, [rows.object_row(msgspec.convert(
        ps.match_object(mid, 1, match_time=NOW - 4000, updated_at=NOW - 5000), p.Match), NOW - 5000)])
    held = state.from_row(store.load(conn, [mid])[mid])
    for status_id, ko, at in ((2, NOW - 3900, NOW - 3800), (3, 0, NOW - 1000), (status, NOW - 600, NOW - 500)):
        held = state.apply_live(held, msgspec.convert(ps.live_item(mid, status_id, kickoff_ts=ko), p.LiveMatch),
                                at, at).held
    store.write(conn, [held.snapshot()])
    conn.commit()


def violations(conn):
    return [(v.check, v.match_id) for v in audit.run(conn, NOW)[1]]


BREAKS = {
    "live_without_kickoff": "UPDATE matches SET status_id = 5 WHERE id = 'bad'",
    "kickoffs_in_order": "UPDATE matches SET overtime_kickoff_ts = second_half_kickoff_ts - 10 WHERE id = 'bad'",
    "minute_in_range": "UPDATE matches SET minute = 30, minute_text = '30''' WHERE id = 'bad'",
    "score_parts": "UPDATE matches SET home_half_time = home_regular + 1 WHERE id = 'bad'",
    "ended_with_evidence": "UPDATE matches SET status_id = 8, period = 'ended', minute_text = 'FT', "
                           "provider_status_id = 4 WHERE id = 'bad'",
    "stale_flag_fresh": "UPDATE matches SET stale_level = 1, stale_reason = 'no data', stale_since = last_event_ts - 5 "
                        "WHERE id = 'bad'",
}


def test_a_consistent_database_has_no_violation(conn):
    good(conn, "ok1")
    good(conn, "ok2", status=2)
    assert audit.run(conn, NOW) == (2, [])


@pytest.mark.parametrize("check", sorted(BREAKS))
def test_each_invariant_catches_the_match_that_breaks_it_and_only_that_one(conn, check):
    good(conn, "ok")
    good(conn, "bad")
    with conn.cursor() as cur:
        cur.execute(BREAKS[check])
    conn.commit()
    assert [c for c, mid in violations(conn) if mid == "bad"][:1] == [check]
    assert [mid for _, mid in violations(conn)] == ["bad"] * len(violations(conn))


def test_a_match_first_seen_at_half_time_without_a_minute_is_no_violation(conn):
    store.upsert_objects(conn, [rows.object_row(msgspec.convert(
        ps.match_object("m1", 3, match_time=NOW - 3000, updated_at=NOW - 10), p.Match), NOW - 10)])
    conn.commit()
    assert violations(conn) == []
    with conn.cursor() as cur:          # but a running half whose kick-off is known has its minute
        cur.execute("UPDATE matches SET status_id = 2, period = 'first_half', first_half_kickoff_ts = %s, "
                    "minute_text = '' WHERE id = 'm1'", (NOW - 600,))
    conn.commit()
    assert violations(conn) == [("minute_in_range", "m1")]


def test_a_match_goald_ended_with_its_reason_is_no_violation(conn):
    good(conn, "m1")
    held = state.end_by_goald(state.from_row(store.load(conn, ["m1"])["m1"]), "stuck in the second half", NOW)
    assert store.write(conn, [held.snapshot()]) == {"m1"}
    conn.commit()
    assert violations(conn) == []


def test_the_command_lists_each_violation_and_exits_1_and_0_when_clean(conn, db_dsn, tmp_path):
    good(conn, "bad")
    clean = goald(["audit", "matches"], tmp_path, GOALD_DATABASE_URL=db_dsn)
    assert clean.returncode == 0 and "1 match(es) checked against 6 invariants: no violation" in clean.stdout
    with conn.cursor() as cur:
        cur.execute(BREAKS["score_parts"])
    conn.commit()
    bad = goald(["audit", "matches"], tmp_path, GOALD_DATABASE_URL=db_dsn)
    assert bad.returncode == 1, bad.stderr
    assert bad.stdout.splitlines()[0].startswith("match bad: score_parts: score 1-0: regular 1-0, half-time 2-0, overtime 0-0")
    assert "1 violation(s)" in bad.stdout


def test_the_command_on_a_database_without_the_match_tables_says_to_migrate(empty_db_dsn, tmp_path):
    out = goald(["audit", "matches"], tmp_path, GOALD_DATABASE_URL=empty_db_dsn)
    assert out.returncode == 3 and "run `goald migrate` first" in out.stderr and "Traceback" not in out.stderr
