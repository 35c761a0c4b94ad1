"""Every shipped scenario replayed through the whole pipeline with a stepped clock: the simulator's
feed → decoders → detail_live job → match actors → batched writes → PostgreSQL → the public API.
At every second, for every scenario match, the API's status, period and minute text equal what the
simulator says the match shows at that second (45+2', 90+4', 105+1', 120+4', the breaks, PEN, FT,
delays, interruptions), every match that ends is seen ending exactly once, and `goald audit
matches` finds no violation afterwards."""
import collections

import pytest
from loguru import logger

from goald.actors.jobs import ingest
from goald.match import audit
from goald.simulator import scenario as scenario_mod
from goald.simulator.clock import ManualClock
from goald.simulator.world import World
from match_support import PERIOD_OF_PHASE, harness

START = 1_780_000_000 - 1_780_000_000 % 60


@pytest.fixture
def transitions():
    seen = []
    sink = logger.add(lambda m: seen.append(m.record["extra"]), level="INFO",
                      filter=lambda r: r["extra"].get("event") in ("match.transition", "match.transition_unusual"))
    yield seen
    logger.remove(sink)


def test_every_shipped_scenario_shows_in_the_api_what_the_simulator_shows_at_every_second(db_dsn, transitions):
    scenarios = [scenario_mod.load(p) for p in sorted(scenario_mod.list_shipped())]
    clock = ManualClock(START)
    # All scenarios at once, kicking off two minutes in (a match before kick-off is in no feed yet).
    world = World(seed=1, matches=0, clock=clock, scenarios=[(s, -120) for s in scenarios])
    ids = [mid for p in world.placements for mid in p.match_ids]
    last = max(p.start + max(e.at for spec in p.scenario.matches for e in spec.events) for p in world.placements)
    wrong, checked, seconds = [], 0, 0
    with harness(db_dsn, world) as h:
        h.run_job(ingest.daily_diary)
        h.settle()
        h.pipeline.flush()
        assert set(ids) <= set(h.pipeline.registry), "the diary tracks every scenario match"
        while clock.now() <= last + 600:
            h.step()
            for mid in ids:
                want = world.state(mid)
                status, doc = h.get_json(f"/api/matches/{mid}")
                assert status == 200, doc
                got = doc["match"]
                expected = (want.status_id, PERIOD_OF_PHASE[want.phase], want.minute_text)
                actual = (got["status_id"], got["period"], got["minute_text"])
                checked += 1
                if actual != expected:
                    wrong.append((mid, int(clock.now() - START), expected, actual))
            seconds += 1
            clock.advance(1)
        counts = dict(h.pipeline.counts)
        with h.pool.connection() as conn:
            violations = audit.run(conn, clock.now())[1]
            conn.rollback()
    assert not violations, [v.line() for v in violations[:5]]
    assert seconds > 150 * 60 and checked >= seconds * len(scenarios)
    assert not wrong, f"{len(wrong)} wrong answers of {checked}; first: {wrong[:5]}"
    ends = collections.Counter(t["match_id"] for t in transitions if t["status_id"] in (8, 11, 12))
    ended = {mid for mid in ids if world.state(mid).status_id in (8, 11, 12)}
    assert ended and set(ends) == ended and set(ends.values()) == {1}, ends
    assert counts.get("older", 0) == 0 and counts.get("unusual", 0) == 0 and counts["transitions"] > 30, counts
