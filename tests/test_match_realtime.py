"""One scenario played in real time: the built-in simulator over HTTP (as `goald simulate
--scenario first_half_stoppage_14 --at ...`), a real `goald run` polling it every 2 s, and the
public API sampled across the half-time whistle. Every answer is what the simulator showed at
some instant of the last 2.6 s (the 2-second poll plus the writer's tick), and both the first
half's stoppage text (45+N') and HT are seen."""
import time

import requests

from goald.simulator import service
from goald.simulator.clock import WallClock
from match_support import PERIOD_OF_PHASE
from support import wait_for

LAG_S = 2.6
HALF_TIME_AT = 58 * 60 + 50     # the scenario's half_time event
LEAD_S = 40                     # --at this long before the whistle: goald starts and shows the match first


def expected(timeline, t):
    st = timeline.state_at(t)
    return None if st is None else (st.status_id, PERIOD_OF_PHASE[st.phase], st.minute_text)


def test_a_scenario_in_real_time_crosses_half_time_in_the_api_within_the_poll_interval(db_dsn, processes):
    clock = WallClock()   # real time: goald's minute engine runs on its own clock
    at = HALF_TIME_AT - LEAD_S
    sim = service.build(matches=0, scenarios=["first_half_stoppage_14"], at=f"{at // 60}:{at % 60:02d}",
                        clock=clock).start()
    try:
        placement = sim.world.placements[0]
        mid = placement.match_ids[0]
        timeline = sim.world.match(mid)
        g = processes(GOALD_DATABASE_URL=db_dsn, GOALD_PROVIDER_BASE_URL=sim.url, GOALD_PROVIDER_USER=sim.user,
                      GOALD_PROVIDER_SECRET=sim.secret)
        g.wait_ready()

        def shown():
            r = requests.get(g.url(f"/api/matches/{mid}"), timeout=5)
            if r.status_code != 200:
                return None
            m = r.json()["match"]
            return m["status_id"], m["period"], m["minute_text"]

        wait_for(lambda: shown() is not None and shown()[2].startswith("45+"), timeout_s=30,
                 what="goald shows the match in its first-half stoppage")
        assert clock.now() < placement.start + HALF_TIME_AT - 3, "goald took too long to start for this test"
        samples = []
        while clock.now() < placement.start + HALF_TIME_AT + 10:
            samples.append((clock.now(), shown()))
            time.sleep(0.2)
        assert g.stop() == 0
    finally:
        sim.stop()
    wrong = []
    for t, got in samples:
        window = {expected(timeline, t - k / 10) for k in range(int(LAG_S * 10) + 1)}
        if got not in window:
            wrong.append((round(t - placement.start), got, sorted(x for x in window if x)))
    assert not wrong, wrong[:5]
    texts = [got[2] for _, got in samples]
    assert any(x.startswith("45+") for x in texts) and "HT" in texts
    assert texts.index("HT") > 0 and all(x == "HT" for x in texts[texts.index("HT"):])
