"""The match tables refuse what DOMAIN.md's invariants forbid, whoever writes: a kick-off
timestamp rewritten or cleared, provider_update_time going backwards, and updated_at moved by the
minute engine (or by a write that changes nothing). Plain SQL against a freshly migrated database."""
import psycopg2
import pytest

KO = 1_780_000_000


@pytest.fixture
def conn(db_dsn):
    c = psycopg2.connect(db_dsn)
    c.autocommit = True
    with c.cursor() as cur:
        cur.execute("INSERT INTO matches (id, match_time, status_id) VALUES ('m1', %s, 1)", (KO,))
    yield c
    c.close()


def run(conn, sql, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def updated_at(conn):
    return run(conn, "SELECT updated_at FROM matches WHERE id = 'm1'")[0][0]


@pytest.mark.parametrize("column", ["first_half_kickoff_ts", "second_half_kickoff_ts", "overtime_kickoff_ts",
                                    "overtime_second_kickoff_ts"])
def test_a_kickoff_timestamp_once_set_is_never_rewritten_nor_cleared_even_by_direct_sql(conn, column):
    run(conn, f"UPDATE matches SET {column} = %s WHERE id = 'm1'", (KO,))
    for value in (KO + 60, None):
        with pytest.raises(psycopg2.Error) as e:
            run(conn, f"UPDATE matches SET {column} = %s WHERE id = 'm1'", (value,))
        assert e.value.pgcode == "GD001" and column in e.value.pgerror and "written once" in e.value.pgerror
    run(conn, f"UPDATE matches SET {column} = %s, status_id = 2 WHERE id = 'm1'", (KO,))  # the same value is fine
    assert run(conn, f"SELECT {column}, status_id FROM matches WHERE id = 'm1'") == [(KO, 2)]


def test_provider_update_time_only_moves_forward(conn):
    run(conn, "UPDATE matches SET provider_update_time = %s WHERE id = 'm1'", (KO + 100,))
    for older in (KO + 99, None):
        with pytest.raises(psycopg2.Error) as e:
            run(conn, "UPDATE matches SET provider_update_time = %s, home_regular = 1 WHERE id = 'm1'", (older,))
        assert e.value.pgcode == "GD002"
    run(conn, "UPDATE matches SET provider_update_time = %s WHERE id = 'm1'", (KO + 100,))  # the same update again
    run(conn, "UPDATE matches SET provider_update_time = %s WHERE id = 'm1'", (KO + 101,))
    assert run(conn, "SELECT provider_update_time, home_regular FROM matches WHERE id = 'm1'") == [(KO + 101, 0)]


def test_the_minute_engines_writes_never_move_updated_at_and_data_changes_always_do(conn):
    before = updated_at(conn)
    run(conn, "UPDATE matches SET period = 'first_half', minute = 45, added_minute = 3, minute_text = '45+3''', "
              "last_minute_update_ts = %s, last_event_ts = %s, updated_at = now() + interval '1 day' "
              "WHERE id = 'm1'", (KO, KO))
    assert updated_at(conn) == before  # not even when the writer sets it
    run(conn, "UPDATE matches SET status_id = 1, home_regular = 0 WHERE id = 'm1'")  # nothing changes
    assert updated_at(conn) == before
    run(conn, "UPDATE matches SET home_regular = 1 WHERE id = 'm1'")
    assert updated_at(conn) > before


def test_the_display_score_is_the_overtime_score_once_there_is_one_and_never_adds_the_shoot_out(conn):
    run(conn, "UPDATE matches SET home_regular = 1, away_regular = 1 WHERE id = 'm1'")
    assert run(conn, "SELECT home_display, away_display FROM matches WHERE id = 'm1'") == [(1, 1)]
    run(conn, "UPDATE matches SET home_overtime = 2, away_overtime = 1, home_penalties = 4, away_penalties = 5 "
              "WHERE id = 'm1'")
    assert run(conn, "SELECT home_display, away_display FROM matches WHERE id = 'm1'") == [(2, 1)]


@pytest.mark.parametrize("sql", [
    "UPDATE matches SET status_id = 14 WHERE id = 'm1'",
    "UPDATE matches SET home_regular = -1 WHERE id = 'm1'",
    "UPDATE matches SET home_corners = -1 WHERE id = 'm1'",  # no data is NULL, not the provider's -1
    "UPDATE matches SET finished_after = 'golden_goal' WHERE id = 'm1'",
])
def test_absurd_values_are_refused_by_the_table(conn, sql):
    with pytest.raises(psycopg2.IntegrityError):
        run(conn, sql)


def test_stats_and_incidents_go_with_their_match(conn):
    run(conn, "INSERT INTO match_stats VALUES ('m1', 2, 3, 1)")
    run(conn, "INSERT INTO match_incidents (match_id, seq, type, position, time, add_time) VALUES ('m1', 0, 1, 1, 45, 3)")
    run(conn, "DELETE FROM matches WHERE id = 'm1'")
    assert run(conn, "SELECT (SELECT count(*) FROM match_stats) + (SELECT count(*) FROM match_incidents)") == [(0,)]
