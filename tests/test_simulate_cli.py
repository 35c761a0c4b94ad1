"""`goald simulate` as users run it: a real process on loopback, a scenario played `--at` a point
of its clock and stepped through its expected statuses with the control endpoint, chaos from the
command line, one-line errors for bad arguments, and a clean stop on SIGTERM. Also the server's
control endpoint and its answers to bad requests, in-process."""
import json
import signal
import socket
import subprocess
import sys

import pytest
import requests
from support import goald_env

from goald.simulator import scenario as scenario_mod
from goald.simulator.clock import ManualClock
from goald.simulator.server import SimulatorServer
from goald.simulator.world import World

AUTH = {"user": "demo", "secret": "demo"}


def simulate(*args):
    return subprocess.Popen([sys.executable, "-m", "goald", "simulate", "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=goald_env(GOALD_LOG_FORMAT="json"))


@pytest.fixture
def running():
    procs = []

    def start(*args):
        p = simulate(*args)
        procs.append(p)
        url = p.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), p.stderr.read() if p.poll() is not None else url
        return p, url

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def live(url):
    body = requests.get(f"{url}/v1/football/match/detail_live", params=AUTH, timeout=10).json()
    assert body["code"] == 0, body
    return {item["id"]: item for item in body["results"]}


def test_a_scenario_played_at_44_30_shows_each_expected_status_at_its_second(running):
    name = "first_half_stoppage_14"
    proc, url = running("--matches", "0", "--scenario", name, "--at", "44:30")
    [placed] = requests.get(f"{url}/sim/state", timeout=5).json()["world"]["scenarios"]
    [match_id] = placed["match_ids"]
    now = requests.get(f"{url}/sim/state", timeout=5).json()["now"]
    assert 44 * 60 + 30 <= now - placed["start"] < 44 * 60 + 40  # the kick-off was placed 44:30 ago
    item = live(url)[match_id]
    assert item["score"][1] == 2 and item["score"][4] == placed["start"]  # first half, its kick-off
    [spec] = scenario_mod.load(next(p for p in scenario_mod.list_shipped() if p.stem == name)).matches
    checked = 0
    for expect in spec.expect:
        if expect.status_id is None or expect.at < 44 * 60 + 40:
            continue
        now = requests.get(f"{url}/sim/state", timeout=5).json()["now"]
        step = placed["start"] + expect.at + 0.5 - now
        if step < 0:
            continue
        r = requests.post(f"{url}/sim/clock", json={"advance": step}, timeout=5).json()
        assert r["ok"], r
        got = live(url).get(match_id)
        status = got["score"][1] if got else None
        assert status == expect.status_id, (expect, got and got["score"])
        checked += 1
    assert checked >= 3
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert "simulator.stopped" in proc.stderr.read()


def test_chaos_from_the_command_line_applies_from_the_first_request(running):
    _, url = running("--matches", "0", "--chaos", "http_5xx=1")
    assert requests.get(f"{url}/v1/football/match/detail_live", params=AUTH, timeout=5).status_code == 503
    state = requests.post(f"{url}/sim/chaos", json={"reset": True}, timeout=5).json()
    assert state["ok"] and state["chaos"]["http_5xx"] == 0
    assert requests.get(f"{url}/v1/football/match/detail_live", params=AUTH, timeout=5).json()["code"] == 0


@pytest.mark.parametrize("args, words", [
    (["--scenario", "no_such_scenario"], ["no_such_scenario", "first_half_stoppage_14"]),
    (["--at", "4x:30"], ["4x:30"]),
    (["--chaos", "http_5xx=lots"], ["http_5xx", "lots"]),
    (["--chaos", "earthquake=1"], ["earthquake", "known"]),
    (["--matches", "-1"], ["--matches"]),
    (["--day-time", "25:00"], ["--day-time", "HH:MM"]),
])
def test_a_bad_argument_is_one_line_naming_it_and_exit_2(args, words):
    p = simulate(*args)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("goald simulate: "), err
    assert all(w in lines[0] for w in words), lines[0]
    assert out == ""


def test_a_busy_port_is_one_line_and_exit_5():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = subprocess.Popen([sys.executable, "-m", "goald", "simulate", "--matches", "0", "--port", str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=goald_env())
        _, err = p.communicate(timeout=60)
    assert p.returncode == 5 and f"127.0.0.1:{port}" in err and "--port" in err and "Traceback" not in err, err


# --- the control endpoint and bad requests, in-process --------------------------------------------

@pytest.fixture(scope="module")
def sim():
    clock = ManualClock(1_780_000_000)
    server = SimulatorServer(World(seed=2, matches=0, clock=clock), clock, rate=0).start()
    yield server
    server.stop(timeout_s=0.1)


@pytest.mark.parametrize("body, words", [
    (b"{not json", ["not JSON"]),
    (b"[1, 2]", ["JSON object"]),
    (json.dumps({"http_5xx": 2}).encode(), ["http_5xx", "probability"]),
    (json.dumps({"http_5xx": 1, "bogus": 1}).encode(), ["bogus"]),
])
def test_a_bad_chaos_request_is_a_400_with_the_reason_and_changes_no_switch(sim, body, words):
    before = sim.chaos.as_dict()
    r = requests.post(f"{sim.url}/sim/chaos", data=body, timeout=5)
    assert r.status_code == 400 and r.json()["ok"] is False
    assert all(w in r.json()["error"] for w in words), r.json()
    assert sim.chaos.as_dict() == before


def test_the_clock_moves_forward_on_request_and_never_back(sim):
    before = sim.clock.now()
    r = requests.post(f"{sim.url}/sim/clock", json={"advance": 90}, timeout=5).json()
    assert r == {"ok": True, "now": before + 90}
    r = requests.post(f"{sim.url}/sim/clock", json={"advance": -5}, timeout=5)
    assert r.status_code == 400 and "forward" in r.json()["error"]
    r = requests.post(f"{sim.url}/sim/clock", json={"set": before}, timeout=5)
    assert r.status_code == 400 and sim.clock.now() == before + 90


def test_an_unknown_provider_path_is_a_404_in_the_providers_shape(sim):
    r = requests.get(f"{sim.url}/v1/football/match/nothing", params=AUTH, timeout=5)
    assert r.status_code == 404 and r.json()["code"] == 404 and "match/nothing" in r.json()["msg"]


def test_a_bad_query_parameter_is_refused_in_the_body_like_the_provider(sim):
    r = requests.get(f"{sim.url}/v1/football/match/recent/list", params={**AUTH, "page": "two"}, timeout=5)
    assert r.status_code == 200 and r.json()["code"] == 400 and "page" in r.json()["err"]


def test_a_failure_inside_the_simulator_is_a_500_in_the_providers_shape_never_a_traceback(sim, monkeypatch):
    def broken():
        raise RuntimeError("the world fell over")
    monkeypatch.setattr(sim.world, "detail_live", broken)
    sim._cache.clear()
    r = requests.get(f"{sim.url}/v1/football/match/detail_live", params=AUTH, timeout=5)
    assert r.status_code == 500 and r.json() == {"code": 500, "msg": "internal error"}
    assert "Traceback" not in r.text
