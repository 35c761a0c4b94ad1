"""Several goald nodes on one database (goald/db/cluster.py): one leads the match pipeline (an
advisory lock PostgreSQL releases with the session), the change feed carries one node's writes
to the others' read endpoints, and with real processes: each ingest occurrence polls the
provider once across the nodes, both APIs answer alike, and when the leader is killed with -9
the other node takes over at once. (bench/match_cluster.py is the long version: three nodes,
ten minutes.)"""
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import gevent
import psycopg2
import pytest

from goald.db.cluster import ChangeFeed, Leadership
from daemon_support import Goald

TESTS_DIR = str(Path(__file__).parent)
SPLIT = json.dumps({"position": 1, "points": 5, "played": 2, "won": 1, "drawn": 1, "lost": 0, "goals_for": 3,
                    "goals_against": 1, "goal_diff": 2})

def leadership(dsn, node, **kw):
    return Leadership(dsn, node, check_every_s=0.0, **kw)


def test_one_node_leads_and_another_takes_over_when_it_lets_go(db_dsn):
    a, b = leadership(db_dsn, "a"), leadership(db_dsn, "b")
    try:
        assert a.ensure() is True and b.ensure() is False and a.ensure() is True
        a.release()
        assert b.ensure() is True and a.ensure() is False
    finally:
        a.release()
        b.release()


def test_a_leader_whose_lock_session_dies_stands_down_and_another_node_takes_over(db_dsn):
    lost = []
    a = leadership(db_dsn, "a", on_lost=lost.append)
    b = leadership(db_dsn, "b")
    try:
        assert a.ensure()
        pid = a._conn.info.backend_pid
        with psycopg2.connect(db_dsn) as c, c.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # pg_terminate_backend only signals the backend: its session (and lock) end moments later,
        # so b asks the way a node does, again at each check, until the lock is free
        deadline = time.monotonic() + 10
        while not b.ensure() and time.monotonic() < deadline:
            gevent.sleep(0.05)
        assert b.leading is True                      # the lock went with the session
        assert a.ensure() is False and len(lost) == 1 and "lock connection failed" in lost[0]
        assert a.ensure() is False                    # it asks again, and b holds it
    finally:
        a.release()
        b.release()


def test_the_change_feed_tells_the_other_nodes_and_not_the_sender(db_dsn):
    got = {"a": 0, "b": 0}
    a = ChangeFeed(db_dsn, "a", lambda: got.__setitem__("a", got["a"] + 1))
    b = ChangeFeed(db_dsn, "b", lambda: got.__setitem__("b", got["b"] + 1))
    loops = [gevent.spawn(a.run_forever), gevent.spawn(b.run_forever)]
    try:
        gevent.sleep(0.5)
        for _ in range(3):
            a.changed()
            a.changed()                                   # coalesced with the one before
            gevent.sleep(0.3)
        deadline = time.monotonic() + 5
        while got["b"] < 3 and time.monotonic() < deadline:
            gevent.sleep(0.05)
        assert got == {"a": 0, "b": 3} and a.sent == 3
    finally:
        gevent.killall(loops)
        a.stop(1)
        b.stop(1)


def test_the_change_feed_carries_cache_invalidations_to_the_other_nodes_and_not_back(db_dsn):
    got = {"a": [], "b": []}
    a = ChangeFeed(db_dsn, "a", lambda: None, on_peer_invalidate=lambda k, s: got["a"].append((k, s)))
    b = ChangeFeed(db_dsn, "b", lambda: None, on_peer_invalidate=lambda k, s: got["b"].append((k, s)))
    loops = [gevent.spawn(a.run_forever), gevent.spawn(b.run_forever)]
    try:
        gevent.sleep(0.5)
        a.invalidated("standings", "s1")
        a.invalidated("h2h", "m-2")
        deadline = time.monotonic() + 5
        while len(got["b"]) < 2 and time.monotonic() < deadline:
            gevent.sleep(0.05)
        assert got == {"a": [], "b": [("standings", "s1"), ("h2h", "m-2")]}
        assert a.describe()["invalidations_sent"] == 2 and b.describe()["invalidations_received"] == 2
    finally:
        gevent.killall(loops)
        a.stop(1)
        b.stop(1)


def test_a_stopped_change_feed_ends_its_loop_by_itself_and_closes_its_own_connection(db_dsn):
    feed = ChangeFeed(db_dsn, "a", lambda: None)
    loop = gevent.spawn(feed.run_forever)
    try:
        deadline = time.monotonic() + 5
        while feed._conn is None and time.monotonic() < deadline:
            gevent.sleep(0.02)
        conn = feed._conn
        assert conn is not None and not conn.closed
        feed.stop(1)
        loop.join(timeout=2)
        # The loop returned (no TypeError from a select on a connection closed under it).
        assert loop.dead and loop.successful(), loop.exception
        assert conn.closed and feed.describe()["connected"] is False
    finally:
        gevent.killall([loop])


def test_release_does_not_wait_forever_on_a_leadership_check_that_holds_its_lock(db_dsn):
    a = Leadership(db_dsn, "a", check_every_s=0.0, connect_timeout_s=0.2)
    assert a.ensure()
    a._lock.acquire()                 # a check that never ends (a connection that hangs)
    started = time.monotonic()
    a.release()
    assert time.monotonic() - started < 3 and a.leading is False and a._conn is None
    a._lock.release()


# --- two real nodes ---------------------------------------------------------------------------------

def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


def runs(dsn, job):
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        cur.execute("SELECT extract(epoch FROM scheduled_at)::bigint, node, outcome FROM job_runs WHERE job = %s "
                    "ORDER BY scheduled_at", (job,))
        return cur.fetchall()


@pytest.fixture
def simulator():
    sim = subprocess.Popen([sys.executable, "-m", "goald", "simulate", "--port", "0", "--matches", "300", "--rate",
                            "0", "--day-time", "15:30"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = sim.stdout.readline().strip()
    assert url.startswith("http://"), "goald simulate did not start"
    yield url
    sim.terminate()
    sim.wait(15)


def served(url, path):
    with urllib.request.urlopen(f"{url}/sim/state", timeout=10) as r:
        return sum(json.loads(r.read())["served"].get(path, {}).values())


def live_view(port):
    return get(port, "/api/matches/live")["matches"]     # every field of every live match


def test_two_nodes_poll_once_per_occurrence_answer_alike_and_the_survivor_takes_over_a_killed_leader(
        db_dsn, simulator, tmp_path):
    env = {"GOALD_DATABASE_URL": db_dsn, "GOALD_PROVIDER_BASE_URL": simulator, "GOALD_PROVIDER_USER": "demo",
           "GOALD_PROVIDER_SECRET": "demo"}
    nodes = [Goald(tmp_path, f"n{i}", GOALD_NODE_NAME=f"n{i}", **env) for i in (1, 2)]
    try:
        ports = [n.wait_ready() for n in nodes]
        time.sleep(12)
        before = served(simulator, "match/detail_live")
        start = time.time()
        time.sleep(16)
        polls = served(simulator, "match/detail_live") - before
        occurrences = [r for r in runs(db_dsn, "detail_live") if start <= r[0] < start + 16]
        assert 6 <= polls <= 10 and abs(len(occurrences) - polls) <= 1, (polls, occurrences)
        leaders = [n for n in nodes if any(e.get("event") == "cluster.leader_acquired" for e in n.events())]
        assert len(leaders) == 1
        leader_node = next(e["node"] for e in leaders[0].events() if e.get("event") == "cluster.leader_acquired")
        assert {r[1] for r in occurrences} == {leader_node}
        assert [get(p, "/api/health")["cluster"]["leading"] for p in ports] == [n is leaders[0] for n in nodes]
        # Only the leader holds match actors: the other node has no match state of its own to serve
        # or act on, and answers from the database.
        actors = [next(c for c in get(p, "/health/actors")["tree"]["children"] if c["name"] == "matches")
                  ["counts"]["children"] for p in ports]
        assert actors[nodes.index(leaders[0])] > 0 and actors[1 - nodes.index(leaders[0])] == 0, actors
        views = [(live_view(ports[0]), live_view(ports[1])) for _ in range(5) if not time.sleep(1)]
        same = sum(a == b for a, b in views)
        assert same >= 4 and views[-1][0], views[-1]
        # kill -9 of the leader: the other node leads from its next occurrence on
        leader = leaders[0]
        survivor = next(n for n in nodes if n is not leader)
        killed_at = time.time()
        leader.proc.kill()
        leader.proc.wait(10)
        time.sleep(12)
        assert any(e.get("event") == "cluster.leader_acquired" for e in survivor.events())
        after = [r for r in runs(db_dsn, "detail_live") if r[0] >= killed_at - 6 and r[2] == "succeeded"]
        gaps = [b[0] - a[0] for a, b in zip(after, after[1:])]
        assert after and max(gaps) <= 4, (gaps, after)
        assert get(ports[nodes.index(survivor)], "/api/matches/live")["count"] > 0
    finally:
        for n in nodes:
            n.cleanup()


def standings_answer(port, season):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/standings/{season}", timeout=10) as r:
        doc = json.loads(r.read())
        return doc["tables"][0]["rows"][0]["points"], r.headers["X-Cache"]


def test_a_standings_change_made_on_one_node_reaches_the_other_nodes_memory_cache_at_once(db_dsn, simulator,
                                                                                          tmp_path):
    season = "cluster-season"
    with psycopg2.connect(db_dsn) as c, c.cursor() as cur:
        cur.execute("CREATE TABLE test_bump (season_id text)")
        cur.execute("INSERT INTO standings (season_id, source, content_hash) VALUES (%s, 'season', 'x')", (season,))
        cur.execute("INSERT INTO standing_rows (season_id, table_id, team_id, position, points, played, won, drawn, "
                    "lost, goals_for, goals_against, goal_diff, home, away) VALUES (%s, 't1', 'team1', 1, 10, 5, 3, "
                    "1, 1, 7, 3, 4, %s, %s)", (season, SPLIT, SPLIT))
    env = {"GOALD_DATABASE_URL": db_dsn, "GOALD_PROVIDER_BASE_URL": simulator, "GOALD_PROVIDER_USER": "demo",
           "GOALD_PROVIDER_SECRET": "demo", "GOALD_JOBS_MODULES": "jobs_for_tests", "PYTHONPATH": TESTS_DIR,
           "GOALD_JOB_TEST_BUMP_STANDINGS_ENABLED": "true",
           "GOALD_CACHE_STANDINGS_TTL_S": "3600"}       # only an invalidation can drop an entry in this test
    nodes = [Goald(tmp_path, f"c{i}", GOALD_NODE_NAME=f"c{i}", **env) for i in (1, 2)]
    try:
        ports = [n.wait_ready() for n in nodes]
        for p in ports:
            standings_answer(p, season)
            assert standings_answer(p, season) == (10, "HIT")      # cached in each node's memory
        for expected in (11, 12):                     # twice: whichever node runs the job, both see it
            with psycopg2.connect(db_dsn) as c, c.cursor() as cur:
                cur.execute("INSERT INTO test_bump VALUES (%s)", (season,))
            deadline = time.monotonic() + 10
            while [standings_answer(p, season)[0] for p in ports] != [expected] * 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert [standings_answer(p, season) for p in ports] == [(expected, "HIT")] * 2
        # The nodes that did not run a bump learnt of it from the change feed, not from a TTL.
        feeds = [get(p, "/api/health")["cluster"]["feed"] for p in ports]
        assert sum(f["invalidations_sent"] for f in feeds) >= 2 and sum(f["invalidations_received"] for f in feeds) >= 2
        assert all(f["connected"] for f in feeds), feeds
    finally:
        for n in nodes:
            n.cleanup()
