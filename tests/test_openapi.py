"""`/api/openapi.json` (console/openapi.py): the document and the app's routes list the same
endpoints, every JSON answer is in the one envelope, and schemathesis, run against the document
of a real `goald run` with data, finds no 5xx and no answer that violates the document."""
import os
import sys
import subprocess
from datetime import datetime, timezone

import msgspec
import pytest

from goald.actors.jobs import ingest, predictions as prediction_jobs, tables as jobs
from goald.business import predictions
from goald.cache.backends import MemoryBackend
from goald.cache.cache import Cache, KindPolicy
from goald.console import openapi
from goald.simulator.clock import ManualClock
from goald.simulator.world import World
from match_support import harness, sql

DAY = 1_780_000_000 - 1_780_000_000 % 86400
NOT_ENVELOPED = {"/api/openapi.json", "/metrics"}     # standard formats of their own (OpenAPI, Prometheus text)


@pytest.fixture
def served(db_dsn):
    """The whole read API in-process, with a day of matches, standings, head-to-head and AI predictions."""
    world = World(seed=5, matches=120, clock=ManualClock(DAY + 18 * 3600 + 7))
    with harness(db_dsn, world) as h:
        h.dsn = db_dsn
        h.use_cache(Cache(MemoryBackend(), prefix="t", kinds={"standings": KindPolicy(True, 60.0),
                                                             "h2h": KindPolicy(True, 60.0),
                                                             "predictions": KindPolicy(True, 60.0)}))
        h.run_job(ingest.daily_diary)
        h.step()
        h.run_job(jobs.standings_sync)
        h.run_job(jobs.h2h_sync)
        with h.pool.connection() as conn, conn.cursor() as cur:     # AI predictions of these matches, some matched
            assert predictions.seed_demo(cur, 1, datetime.fromtimestamp(DAY, timezone.utc).date()) > 0
            conn.commit()
        h.run_job(prediction_jobs.prediction_matcher)
        yield h


def test_the_document_and_the_apps_routes_list_the_same_endpoints(served):
    status, doc = served.get_json("/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    routed = {openapi.template_of(r.rule) for r in served.app.routes if r.method == "GET"}
    documented = {openapi.template_of(p) for p in doc["paths"]}
    assert routed == documented
    assert {openapi.template_of(e.path) for e in openapi.ENDPOINTS} >= routed   # nothing routed goes undocumented


def fill(e, values):
    path = e.path
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path + ("?date=2026-05-28" if any(p.name == "date" for p in e.params) else "")


def known_ids(h):
    sid, cid = sql(h.dsn, "SELECT season_id, competition_id FROM standings ORDER BY season_id LIMIT 1")[0]
    mid = sql(h.dsn, "SELECT match_id FROM match_h2h ORDER BY 1 LIMIT 1")[0][0]
    return {"id": mid, "season_id": sid, "competition_id": cid}


def test_every_json_answer_of_every_route_is_in_the_envelope_good_bad_or_unknown(served):
    h = served
    known = known_ids(h)
    checked = 0
    for e in openapi.ENDPOINTS:
        if e.path in NOT_ENVELOPED:
            continue
        variants = [known] + ([{k: "nope0" for k in known}, {k: "a:b" for k in known}] if "{" in e.path else [])
        for values in variants:
            path = fill(e, values)
            status, headers, body = h.get(path)
            doc = msgspec.json.decode(body)
            assert isinstance(doc.get("ok"), bool), (path, body[:200])
            assert doc["ok"] == (status < 400), (path, status)
            if not doc["ok"]:
                assert set(doc["error"]) >= {"code", "message"}, path
            checked += 1
    assert checked >= 20


def test_each_answer_validates_against_its_documented_schema(served):
    """msgspec decodes each 200 answer into the Struct the document was generated from: a field
    missing, renamed or of another type fails here."""
    h = served
    known = known_ids(h)
    for e in openapi.ENDPOINTS:
        if not isinstance(e.response, type):
            continue
        path = fill(e, known)
        status, _, body = h.get(path)
        assert status == 200, (path, body[:300])
        msgspec.json.decode(body, type=e.response)


def st_command():
    return [os.path.join(os.path.dirname(sys.executable), "st")]


def test_schemathesis_finds_no_5xx_and_no_answer_violating_the_document_of_a_running_goald(served, processes,
                                                                                            tmp_path):
    h = served
    g = processes(GOALD_DATABASE_URL=h.dsn, GOALD_PROVIDER_DEMO_MATCHES="60")
    g.wait_ready()
    sid, cid = sql(h.dsn, "SELECT season_id, competition_id FROM standings ORDER BY season_id LIMIT 1")[0]
    mid = sql(h.dsn, "SELECT match_id FROM match_h2h ORDER BY 1 LIMIT 1")[0][0]
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'''
[[operations]]
include-path = "/api/standings/{{season_id}}"
parameters = {{ season_id = "{sid}" }}

[[operations]]
include-path = "/api/standings/competition/{{competition_id}}"
parameters = {{ competition_id = "{cid}" }}

[[operations]]
include-path-regex = "^/api/matches/\\\\{{id\\\\}}"
parameters = {{ id = "{mid}" }}
''')
    out = subprocess.run(st_command() + ["--config-file", str(config), "run", g.url("/api/openapi.json"),
                                         "--checks", "all", "--max-examples", "25", "--seed", "20261203",
                                         "--no-color"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = out.stdout + out.stderr
    print(report)                         # shown with -s or -rP: the run's summary for a closing note
    assert out.returncode == 0, report
    assert "No issues found" in report and "Tested: 1" in report, report


def test_every_read_endpoint_stays_within_five_queries_uncached_and_issues_none_cached(served):
    """The seeds' lesson as a budget (query counts are deterministic, unlike timings)."""
    h = served
    known = known_ids(h)
    budgets = {}
    for e in openapi.ENDPOINTS:
        if e.tag != "read":
            continue
        path = fill(e, known)
        before = h.pool.stats().queries
        assert h.get(path)[0] == 200, path
        uncached = h.pool.stats().queries - before
        before = h.pool.stats().queries
        assert h.get(path)[0] == 200, path
        budgets[e.path] = (uncached, h.pool.stats().queries - before)
    assert len(budgets) == 7
    assert all(1 <= uncached <= 5 and cached == 0 for uncached, cached in budgets.values()), str(budgets)
