"""The match tables' statements (goald/match/store.py) against a migrated database: idempotent
upserts, the provider_update_time guard that filters instead of failing the batch, write-once
kick-offs, incidents and statistics following their lists, and minute writes that never move
updated_at."""
import msgspec
import psycopg2
import pytest

from goald.match import rows, state, store
from goald.provider import payloads as p
import provider_samples as ps

NOW = ps.NOW


@pytest.fixture
def conn(db_dsn):
    c = psycopg2.connect(db_dsn)
    yield c
    c.close()


def match(mid, **kw):
    return msgspec.convert(ps.match_object(mid, **kw), p.Match)


def live(mid, **kw):
    return msgspec.convert(ps.live_item(mid, **kw), p.LiveMatch)


def one(conn, sql, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def test_upserting_the_same_match_objects_twice_inserts_once_and_then_writes_nothing(conn):
    objs = [rows.object_row(match(f"m{i}", status=s)) for i, s in enumerate([1, 8, 12, 2])]
    assert store.upsert_objects(conn, objs) == (4, 0, [])
    conn.commit()
    before = one(conn, "SELECT count(*), max(updated_at), sum(xmin::text::bigint) FROM matches")
    assert store.upsert_objects(conn, objs) == (0, 0, [])
    conn.commit()
    assert one(conn, "SELECT count(*), max(updated_at), sum(xmin::text::bigint) FROM matches") == before
    assert one(conn, "SELECT period, minute_text FROM matches WHERE id = 'm1'") == ("ended", "FT")
    assert one(conn, "SELECT period, minute_text FROM matches WHERE id = 'm2'") == ("cancelled", "CAN")


def test_an_older_match_object_that_says_something_else_is_left_alone_and_reported(conn):
    store.upsert_objects(conn, [rows.object_row(match("m1", status=2, updated_at=NOW))])
    stale = rows.object_row(match("m1", status=1, updated_at=NOW - 100))
    newer = rows.object_row(match("m1", status=3, updated_at=NOW + 5))
    assert store.upsert_objects(conn, [stale]) == (0, 0, ["m1"])
    assert one(conn, "SELECT status_id, provider_update_time FROM matches WHERE id = 'm1'") == (2, NOW)
    assert store.upsert_objects(conn, [newer]) == (0, 1, [])
    assert one(conn, "SELECT status_id, provider_update_time FROM matches WHERE id = 'm1'") == (3, NOW + 5)


def held_for(conn, mid):
    return state.from_row(store.load(conn, [mid])[mid])


def test_a_guarded_batch_writes_the_newer_rows_and_filters_the_older_without_failing(conn):
    store.upsert_objects(conn, [rows.object_row(match(f"m{i}", status=1, updated_at=NOW - 500)) for i in range(3)])
    outs = [state.apply_live(held_for(conn, f"m{i}"), live(f"m{i}", kickoff_ts=NOW - 60), NOW, NOW) for i in range(3)]
    assert all(o.kind == "applied" for o in outs)
    with conn.cursor() as cur:   # another writer got further with m1 meanwhile
        cur.execute("UPDATE matches SET provider_update_time = %s WHERE id = 'm1'", (NOW + 10,))
    written = store.write(conn, [o.held.snapshot() for o in outs],
                          incidents={o.held.id: o.held.incidents for o in outs},
                          stats={o.held.id: o.held.stats for o in outs})
    assert written == {"m0", "m2"}
    assert one(conn, "SELECT status_id, first_half_kickoff_ts, minute_text FROM matches WHERE id = 'm0'") == (
        2, NOW - 60, "2'")
    assert one(conn, "SELECT status_id FROM matches WHERE id = 'm1'") == (1,)
    assert one(conn, "SELECT count(*) FROM match_incidents WHERE match_id = 'm1'") == (0,)
    assert one(conn, "SELECT count(*) FROM match_incidents WHERE match_id = 'm0'") == (2,)
    assert one(conn, "SELECT count(*) FROM match_stats WHERE match_id = 'm2'") == (3,)


def test_a_written_kick_off_stays_even_when_a_later_snapshot_carries_another(conn):
    store.upsert_objects(conn, [rows.object_row(match("m1", status=1, updated_at=NOW - 500))])
    out = state.apply_live(held_for(conn, "m1"), live("m1", kickoff_ts=NOW - 60), NOW, NOW)
    store.write(conn, [out.held.snapshot()])
    snap = {**out.held.snapshot(), "first_half_kickoff_ts": NOW + 999, "provider_update_time": NOW + 1}
    assert store.write(conn, [snap]) == {"m1"}
    assert one(conn, "SELECT first_half_kickoff_ts FROM matches WHERE id = 'm1'") == (NOW - 60,)


def test_incidents_follow_the_providers_list_including_one_taken_back(conn):
    store.upsert_objects(conn, [rows.object_row(match("m1", status=1, updated_at=NOW - 500))])
    held = held_for(conn, "m1")
    out = state.apply_live(held, live("m1", n_incidents=3), NOW, NOW)
    store.write(conn, [out.held.snapshot()], incidents={"m1": out.held.incidents})
    out2 = state.apply_live(out.held, live("m1", n_incidents=2), NOW + 2, NOW + 2)
    assert out2.kind == "applied" and out2.incidents_changed
    store.write(conn, [out2.held.snapshot()], incidents={"m1": out2.held.incidents})
    assert one(conn, "SELECT count(*), max(seq) FROM match_incidents WHERE match_id = 'm1'") == (2, 1)


def test_minute_writes_change_only_what_changed_and_never_move_updated_at(conn):
    store.upsert_objects(conn, [rows.object_row(match("m1", status=1, updated_at=NOW - 500))])
    out = state.apply_live(held_for(conn, "m1"), live("m1", kickoff_ts=NOW - 60), NOW, NOW)
    store.write(conn, [out.held.snapshot()])
    conn.commit()
    updated = one(conn, "SELECT updated_at FROM matches WHERE id = 'm1'")
    ticked = state.tick(out.held, NOW + 60)
    assert ticked.row["minute_text"] == "3'"
    assert store.write_light(conn, [{c: ticked.row[c] for c in state.MINUTE_COLUMNS} | {
        "id": "m1", "last_event_ts": ticked.row["last_event_ts"]}]) == (1, 0)
    assert store.write_light(conn, [{c: ticked.row[c] for c in state.MINUTE_COLUMNS} | {
        "id": "m1", "last_event_ts": ticked.row["last_event_ts"]}]) == (0, 0)
    conn.commit()
    assert one(conn, "SELECT minute_text, updated_at FROM matches WHERE id = 'm1'") == ("3'", updated[0])


def test_reference_rows_are_upserted_once_and_a_short_record_never_blanks_a_full_one(conn):
    full = [{"id": "t1", "name": "Example FC", "short_name": "EFC", "logo": "x.png", "provider_updated_at": NOW}]
    assert store.upsert_reference(conn, "teams", full) == (1, 0)
    assert store.upsert_reference(conn, "teams", full) == (0, 0)
    assert store.upsert_reference(conn, "teams", [{"id": "t1", "name": "Example FC"}]) == (0, 0)
    assert one(conn, "SELECT short_name, logo FROM teams WHERE id = 't1'") == ("EFC", "x.png")
    assert store.upsert_reference(conn, "teams", [{"id": "t1", "name": "Old", "provider_updated_at": NOW - 9}]) == (0, 0)
    assert store.upsert_reference(conn, "teams", [{"id": "t1", "name": "New", "provider_updated_at": NOW + 9}]) == (0, 1)


def test_ingest_cursors_only_move_forward(conn):
    assert store.cursor_get(conn, "recent_list") is None
    store.cursor_set(conn, "recent_list", 100)
    store.cursor_set(conn, "recent_list", 50)
    assert store.cursor_get(conn, "recent_list") == 100
