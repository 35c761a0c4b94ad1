"""`goald run` and its provider: with none configured, the built-in simulator serves on loopback as
the demo feed (one log line saying so and how to configure a real one) and the client points at
it; with `provider.base_url` set, no simulator runs. `/health/provider` shows the client either way,
never the credentials."""
import requests


def test_with_no_provider_goald_run_serves_the_demo_feed_on_loopback_and_says_how_to_configure_one(
        db_dsn, processes):
    g = processes(GOALD_DATABASE_URL=db_dsn, GOALD_PROVIDER_DEMO_MATCHES="200")
    g.wait_ready()
    [line] = [e for e in g.events() if e.get("event") == "provider.demo_feed"]
    url = line["url"]
    assert url.startswith("http://127.0.0.1:") and line["matches"] == 200
    assert "provider.base_url" in line["msg"] and "provider.secret" in line["msg"]
    answer = requests.get(f"{url}/v1/football/match/detail_live", params={"user": "demo", "secret": "demo"},
                          timeout=10).json()
    assert answer["code"] == 0 and len(answer["results"]) > 0
    health = requests.get(g.url("/health/provider"), timeout=5).json()
    assert health["ok"] is True and health["base_url"] == url
    assert set(health["groups"]) == {"live", "schedule", "stats", "reference"}
    assert g.stop() == 0, g.stderr
    try:
        requests.get(url, timeout=2)
        still_serving = True
    except requests.ConnectionError:
        still_serving = False
    assert not still_serving, "the demo feed outlived goald"


def test_with_a_provider_configured_goald_uses_it_and_starts_no_simulator(db_dsn, processes):
    secret = "configured-Secret-77"
    g = processes(GOALD_DATABASE_URL=db_dsn, GOALD_PROVIDER_BASE_URL="http://127.0.0.1:9/",
                  GOALD_PROVIDER_USER="someone", GOALD_PROVIDER_SECRET=secret)
    g.wait_ready()
    events = {e.get("event") for e in g.events()}
    assert "provider.configured" in events and "provider.demo_feed" not in events
    health = requests.get(g.url("/health/provider"), timeout=5)
    assert health.json()["base_url"] == "http://127.0.0.1:9"
    assert secret not in health.text and secret not in g.stderr
    assert g.stop() == 0, g.stderr


def test_a_fresh_goald_run_on_the_demo_feed_shows_live_matches_within_10_seconds_of_ready(db_dsn, processes):
    import time

    g = processes(GOALD_DATABASE_URL=db_dsn)          # defaults: the 300-match demo day
    g.wait_ready()
    ready_at = time.monotonic()
    live = []
    while time.monotonic() - ready_at < 10 and not live:
        live = requests.get(g.url("/api/matches/live"), timeout=5).json()["matches"]
        time.sleep(0.25)
    assert live, "no live match in /api/matches/live within 10 s of goald.ready"
    time.sleep(3)   # a row the diary bootstrap inserted gets its minute from its actor a moment later
    live = requests.get(g.url("/api/matches/live"), timeout=5).json()["matches"]
    assert live and all(m["minute_text"] or m["status_id"] == 1 for m in live), [
        (m["id"], m["status_id"], m["minute_text"]) for m in live if not m["minute_text"]]
    assert g.stop() == 0, g.stderr



def test_on_the_demo_feed_goald_run_makes_a_demo_population_once_the_first_matches_are_in(db_dsn, processes):
    import time

    from support import sql

    g = processes(GOALD_DATABASE_URL=db_dsn, GOALD_PROVIDER_DEMO_USERS="200")
    g.wait_ready()
    deadline = time.monotonic() + 60
    made = []
    while time.monotonic() < deadline and not made:
        made = [e for e in g.events() if e.get("event") == "demo.population"]
        time.sleep(0.25)
    assert made, g.stderr[-3000:]
    assert made[0]["users"] == 200 and made[0]["telegram_posts"] > 0 and made[0]["predictions"] > 0
    assert sql(db_dsn, "SELECT count(*) FROM app_users") == [(200,)]
    assert g.stop() == 0, g.stderr
    again = processes("again", GOALD_DATABASE_URL=db_dsn, GOALD_PROVIDER_DEMO_USERS="200")
    again.wait_ready()
    time.sleep(8)                                   # the matches are in: it would have seeded by now
    assert sql(db_dsn, "SELECT count(*) FROM app_users") == [(200,)]
    assert not [e for e in again.events() if e.get("event") == "demo.population"]
    assert again.stop() == 0, again.stderr
