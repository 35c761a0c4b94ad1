"""Provider payloads map onto the match table's columns: decoded from the simulator's answers,
written with plain SQL into a migrated database, and read back as the provider meant them (the
display score generated, corners without data NULL, the shoot-out never added to goals)."""
import msgspec
import psycopg2

from goald.match import rows
from goald.provider import decode
from goald.simulator.clock import ManualClock
from goald.simulator.world import World

DAY = 1_780_000_000 - 1_780_000_000 % 86400


def page(results):
    return msgspec.json.encode({"code": 0, "results": results})


def test_every_live_item_of_a_busy_evening_becomes_columns_the_table_accepts_and_reads_back(db_dsn):
    world = World(seed=9, matches=250, clock=ManualClock(DAY + 19 * 3600))
    raw = {item["id"]: item for item in world.detail_live()}
    decoded = decode.detail_live(page(list(raw.values())), world.clock.now())
    assert not decoded.rejections and decoded.items
    conn = psycopg2.connect(db_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        for item in decoded.items:
            cols = rows.from_live(item)
            cols["match_time"] = world.state(item.id).match_time
            names = ", ".join(cols)
            cur.execute(f"INSERT INTO matches ({names}) VALUES ({', '.join(['%s'] * len(cols))})", list(cols.values()))
        cur.execute("SELECT id, home_regular, away_regular, home_overtime, away_overtime, home_penalties, "
                    "away_penalties, home_display, away_display, home_corners, away_corners, status_id FROM matches")
        stored = {r[0]: r[1:] for r in cur.fetchall()}
    conn.close()
    assert set(stored) == set(raw)
    for mid, item in raw.items():
        home, away = item["score"][2], item["score"][3]
        shown = (home[5] if home[5] > 0 else home[0], away[5] if away[5] > 0 else away[0])
        corners = tuple(None if c < 0 else c for c in (home[4], away[4]))
        assert stored[mid] == (home[0], away[0], home[5], away[5], home[6], away[6], *shown, *corners,
                               item["score"][1]), mid


def test_diary_match_objects_become_rows_the_table_accepts_with_empty_ids_null(db_dsn):
    world = World(seed=9, matches=200, clock=ManualClock(DAY + 12 * 3600))
    results, _ = world.diary(DAY)
    decoded = decode.diary(msgspec.json.encode({"code": 0, "results": results, "results_extra": {}}),
                           world.clock.now())
    assert not decoded.rejections and decoded.items
    conn = psycopg2.connect(db_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        for m in decoded.items:
            cols = rows.from_match(m)
            cur.execute(f"INSERT INTO matches ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
                        list(cols.values()))
        cur.execute("SELECT id, match_time, provider_update_time, venue_id, status_id FROM matches")
        stored = {r[0]: r[1:] for r in cur.fetchall()}
    conn.close()
    for m in decoded.items:
        assert stored[m.id] == (m.match_time, m.updated_at, m.venue_id or None, m.status_id)
