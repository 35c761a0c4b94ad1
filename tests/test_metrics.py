"""GET /metrics (goald/metrics.py): the exposition parses and passes promtool, every metric of
docs/observability.md is exported and nothing else, HTTP requests are counted by route template
with bounded labels, job runs, restarts and provider calls show up, and a failing source leaves
the rest of the scrape intact."""
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import gevent
import pykka
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from runtime_support import job, running_tree, runs
from support import wait_for

from goald import metrics
from goald.actors.base import Start, SupervisedActor
from goald.actors.matches import MatchPipeline
from goald.actors.supervisor import ChildSpec, Intensity, Supervisor
from goald.cache.backends import MemoryBackend
from goald.cache.cache import Cache, KindPolicy
from goald.console.app import AppContext, make_app
from goald.console.server import HttpServer
from goald.db.pool import Pool
from goald.match.changes import Changes
from goald.provider.client import ProviderClient
from goald.provider.errors import PayloadRejected, ProviderUnavailable
from goald.simulator.clock import ManualClock
from goald.simulator.server import SimulatorServer
from goald.simulator.world import World

REPO = Path(__file__).resolve().parent.parent
DAY = 1_780_000_000 - 1_780_000_000 % 86400
NOON = DAY + 12 * 3600


# --- helpers ------------------------------------------------------------------------------------

def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(text, name):
    """{frozenset(labels.items()): value} of one sample name (`goald_job_runs_total`, `..._count`)."""
    out = {}
    for f in text_string_to_metric_families(text):
        for s in f.samples:
            if s.name == name:
                out[frozenset(s.labels.items())] = s.value
    return out


def value(text, name, **labels):
    return samples(text, name).get(frozenset(labels.items()), 0.0)


def exported_name(family):
    # the parser gives a counter's family name without `_total`; the table lists the sample name
    return family.name + "_total" if family.type == "counter" else family.name


@pytest.fixture
def serve():
    servers = []

    def start(ctx):
        app = make_app(ctx)
        server = HttpServer(app, "127.0.0.1", 0)
        server.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}", app

    yield start
    for s in servers:
        s.stop()


def scrape(base):
    r = requests.get(base + "/metrics", timeout=5)
    assert r.status_code == 200, r.text[:300]
    return r.text


@pytest.fixture
def full(pool, serve):
    """An app with every source: a real pool, provider client, cache, match pipeline, stale query."""
    provider = ProviderClient("http://127.0.0.1:9", retries=0, connect_timeout_s=0.5)
    cache = Cache(MemoryBackend(), prefix="m", kinds={"standings": KindPolicy(True, 60.0),
                                                      "h2h": KindPolicy(True, 60.0)})
    pipeline = MatchPipeline(pool, lambda: {})
    exposition = metrics.Exposition(pool_stats=pool.stats, provider_describe=provider.describe,
                                    cache_describe=cache.describe, matches_describe=pipeline.describe,
                                    stale_counts=metrics.stale_counts_from(pool))
    base, app = serve(AppContext(pool=pool, node="test-node", database="test db", embedded=False,
                                 provider=provider.describe, changes=Changes(), cache=cache, metrics=exposition))
    yield base
    provider.close()


def documented_metrics():
    """{name: (type, labels)} of docs/observability.md's metrics table."""
    doc = (REPO / "docs" / "observability.md").read_text()
    section = doc.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(goald_[a-z_]+)` \| (\w+) \| ([^|]*) \|", section, re.M)
    assert len(rows) > 20, "the metrics table parser found too little: its pattern is out of date"
    return {name: (kind, set(re.findall(r"`([a-z_]+)`", labels))) for name, kind, labels in rows}


# --- the exposition -------------------------------------------------------------------------------

def test_the_exposition_of_an_app_with_every_source_parses_and_promtool_finds_no_problem(full, pool, db_dsn):
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO matches (id, match_time, status_id, stale_level, stale_reason, stale_since) VALUES "
                    "('s1', 1, 2, 1, 'quiet', 1), ('s2', 1, 4, 1, 'quiet', 1), ('s3', 1, 3, 4, 'frozen', 1), "
                    "('old', 1, 8, 0, NULL, NULL)")
        conn.commit()
    text = scrape(full)
    found = families(text)
    assert {n for n in found if n.startswith("goald_")} >= {"goald_pool_connections", "goald_provider_calls",
                                                           "goald_cache_hits", "goald_match_updates",
                                                           "goald_matches_stale"}
    assert value(text, "goald_pool_max_connections") == pool.maxconn
    assert value(text, "goald_provider_breaker_state", group="live", state="closed") == 1
    assert value(text, "goald_provider_breaker_state", group="live", state="open") == 0
    assert value(text, "goald_cache_backend_up") == 1
    assert {dict(k)["level"]: v for k, v in samples(text, "goald_matches_stale").items()} == \
        {"1": 2, "2": 0, "3": 0, "4": 1}
    assert value(text, "goald_metrics_collect_errors_total", collector="stale_matches") == 0
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed: the parser check above passed (.ci/run installs the prometheus package)")
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    problems = [line for line in (out.stdout + out.stderr).splitlines() if "goald_" in line]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


def test_every_metric_in_the_docs_table_is_exported_with_its_type_and_labels_and_nothing_else(full):
    documented = documented_metrics()
    scrape(full)                                   # the second scrape holds the first one's request
    text = scrape(full)
    exported = {exported_name(f): f for f in text_string_to_metric_families(text) if f.name.startswith("goald_")}
    assert sorted(set(documented) - set(exported)) == [], "documented but not exported"
    assert sorted(set(exported) - set(documented)) == [], "exported but not in docs/observability.md"
    for name, family in exported.items():
        kind, labels = documented[name]
        assert family.type == kind, name
        seen = {k for s in family.samples for k in s.labels} - {"le", "quantile"}
        if family.samples:
            assert seen == labels, name


def test_metrics_answers_the_prometheus_text_content_type_and_head_works(full):
    r = requests.get(full + "/metrics", timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE goald_pool_connections gauge" in r.text
    h = requests.head(full + "/metrics", timeout=5)
    assert h.status_code == 200 and h.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert h.content == b""



def test_a_running_goald_exports_every_source_and_counts_its_poller_runs(db_dsn, processes):
    g = processes(GOALD_DATABASE_URL=db_dsn, GOALD_PROVIDER_DEMO_MATCHES="20")
    g.wait_ready()

    def polled():
        text = requests.get(g.url("/metrics"), timeout=5).text
        return text if value(text, "goald_job_runs_total", job="detail_live", outcome="succeeded") >= 1 else None

    wait_for(polled, timeout_s=30, what="a detail_live run in /metrics")
    text = polled()
    found = {exported_name(f) for f in text_string_to_metric_families(text)}
    assert {"goald_pool_connections", "goald_provider_calls_total", "goald_cache_backend_up",
            "goald_match_updates_total", "goald_matches_stale", "goald_job_start_lateness_seconds"} <= found
    assert value(text, "goald_provider_calls_total", endpoint="match/detail_live", result="ok") >= 1
    assert value(text, "goald_job_run_duration_seconds_count", job="detail_live") >= 1
    assert all(v == 0 for v in samples(text, "goald_metrics_collect_errors_total").values())

# --- HTTP requests --------------------------------------------------------------------------------

def test_a_request_counts_under_its_route_template_and_status_and_random_paths_only_under_other(full):
    def count(text, route, method, status):
        return value(text, "goald_http_request_duration_seconds_count", route=route, method=method, status=status)

    scrape(full)
    before = scrape(full)
    assert requests.get(full + "/health/pool", timeout=5).status_code == 200        # Bottle
    assert requests.get(full + "/api/matches/live", timeout=5).status_code == 200   # a direct route
    assert requests.get(full + "/api/matches/nope0", timeout=5).status_code == 404  # a direct route's template
    assert requests.head(full + "/api/matches/live", timeout=5).status_code == 200  # its HEAD, through Bottle
    after = scrape(full)
    assert count(after, "/health/pool", "GET", "200") == count(before, "/health/pool", "GET", "200") + 1
    assert count(after, "/api/matches/live", "GET", "200") == count(before, "/api/matches/live", "GET", "200") + 1
    assert count(after, "/api/matches/<segment>", "GET", "404") == \
        count(before, "/api/matches/<segment>", "GET", "404") + 1
    assert count(after, "/api/matches/live", "HEAD", "200") == count(before, "/api/matches/live", "HEAD", "200") + 1

    series = set(samples(after, "goald_http_request_duration_seconds_count"))
    for _ in range(50):
        path = "/" + "/".join(uuid.uuid4().hex[:n] for n in (3, 8, 5))
        assert requests.get(full + path, timeout=5).status_code == 404
    requests.request("BREW", full + "/" + uuid.uuid4().hex, timeout=5)
    last = scrape(full)
    new = {tuple(sorted(dict(k).items())) for k in set(samples(last, "goald_http_request_duration_seconds_count"))
           - series}
    assert new <= {(("method", "GET"), ("route", "other"), ("status", "404")),
                   (("method", "other"), ("route", "other"), ("status", "404")),
                   (("method", "other"), ("route", "other"), ("status", "405"))}, new
    assert count(last, "other", "GET", "404") >= count(after, "other", "GET", "404") + 50


# --- job runs and restarts ------------------------------------------------------------------------

def slow_ok(ctx):
    gevent.sleep(0.03)
    with ctx.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")


def test_a_job_run_counts_as_succeeded_with_its_duration_and_start_lateness(db_dsn):
    name = "metrics_probe"
    exposition = metrics.Exposition()
    before = exposition.render().decode()
    with running_tree(db_dsn, [job(name, slow_ok)]):
        wait_for(lambda: any(r["outcome"] == "succeeded" for r in runs(db_dsn, name)), what="a succeeded run")
    text = exposition.render().decode()
    succeeded = sum(1 for r in runs(db_dsn, name) if r["outcome"] == "succeeded")
    started = sum(1 for r in runs(db_dsn, name) if r["started_at"] is not None)
    assert succeeded >= 1
    assert value(text, "goald_job_runs_total", job=name, outcome="succeeded") - \
        value(before, "goald_job_runs_total", job=name, outcome="succeeded") == succeeded
    duration = value(text, "goald_job_run_duration_seconds_count", job=name) - \
        value(before, "goald_job_run_duration_seconds_count", job=name)
    assert duration == started
    assert value(text, "goald_job_run_duration_seconds_bucket", job=name, le="0.025") == \
        value(before, "goald_job_run_duration_seconds_bucket", job=name, le="0.025")   # each took 30 ms or more
    assert value(text, "goald_job_run_duration_seconds_sum", job=name) - \
        value(before, "goald_job_run_duration_seconds_sum", job=name) >= 0.03 * started
    assert value(text, "goald_job_start_lateness_seconds_count", job=name) - \
        value(before, "goald_job_start_lateness_seconds_count", job=name) == started


class Fragile(SupervisedActor):
    def handle(self, message):
        if message == "crash":
            raise RuntimeError("told to crash")
        return message


def test_a_crashed_child_restarted_by_its_supervisor_counts_one_restart():
    exposition = metrics.Exposition()
    sup_name = f"metrics_sup_{uuid.uuid4().hex[:6]}"
    before = exposition.render().decode()
    root = Supervisor.start(name=sup_name, children=[ChildSpec("fragile", lambda parent, n: Fragile.start(
        name=n, parent=parent))], intensity=Intensity(max_restarts=5, max_seconds=10, backoff_base_s=0.01,
                                                      backoff_max_s=0.05, start_timeout_s=5))
    try:
        root.ask(Start(), timeout=5)
        first = root.proxy().child_ref("fragile").get(timeout=2)
        first.tell("crash")
        wait_for(lambda: (ref := root.proxy().child_ref("fragile").get(timeout=2)) is not None and ref is not first
                 and ref.is_alive(), what="the restart")
    finally:
        root.stop(block=True, timeout=5)
        pykka.ActorRegistry.stop_all()
    text = exposition.render().decode()
    assert value(text, "goald_actor_restarts_total", supervisor=sup_name, child="fragile") - \
        value(before, "goald_actor_restarts_total", supervisor=sup_name, child="fragile") == 1


# --- the provider ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sim():
    clock = ManualClock(NOON)
    server = SimulatorServer(World(seed=7, matches=50, clock=clock), clock, user="goald", secret="s", rate=0,
                             seed=7).start()
    yield server
    server.stop(timeout_s=0.1)


def test_provider_calls_retries_and_a_rejection_by_reason_show_in_the_metrics(sim):
    client = ProviderClient(sim.url, "goald", "s", retries=1, retry_base_s=0.01, sleep=lambda s: None,
                            wall=sim.clock.now)
    exposition = metrics.Exposition(provider_describe=client.describe)
    try:
        client.detail_live()
        sim.chaos.update({"malformed": 1})
        with pytest.raises(PayloadRejected):
            client.detail_live()
        sim.chaos.reset()
        sim.chaos.update({"http_5xx": 1})
        with pytest.raises(ProviderUnavailable):
            client.detail_live()
    finally:
        sim.chaos.reset()
        client.close()
    text = exposition.render().decode()
    ep = "match/detail_live"
    assert value(text, "goald_provider_calls_total", endpoint=ep, result="ok") == 1
    assert value(text, "goald_provider_calls_total", endpoint=ep, result="rejected") == 1
    assert value(text, "goald_provider_calls_total", endpoint=ep, result="failed") == 1
    assert value(text, "goald_provider_retries_total", endpoint=ep) == 1
    assert value(text, "goald_provider_rejections_total", endpoint=ep, reason="malformed_json") == 1
    assert value(text, "goald_provider_request_duration_seconds_count", endpoint=ep) == 4   # 1 + 1 + 2 attempts
    assert sum(v for k, v in samples(text, "goald_provider_calls_total").items()
               if dict(k)["endpoint"] == ep) == client.describe()["endpoints"][ep]["calls"]


# --- a failing source -----------------------------------------------------------------------------

def broken_provider():
    raise RuntimeError("the provider client is gone")


@pytest.mark.parametrize("source", ["provider", "stale_matches"])
def test_a_source_that_fails_leaves_the_other_metrics_and_counts_the_error(pool, serve, source):
    dead = Pool("postgresql://nobody@127.0.0.1:1/none", maxconn=1, connect_timeout_s=0.5, timeout_s=0.5)
    exposition = metrics.Exposition(
        pool_stats=pool.stats, provider_describe=broken_provider if source == "provider" else None,
        stale_counts=metrics.stale_counts_from(dead) if source == "stale_matches" else None)
    base, _ = serve(AppContext(pool=pool, node="test-node", database="test db", embedded=False,
                               metrics=exposition))
    first = scrape(base)
    started = time.monotonic()
    second = scrape(base)
    assert time.monotonic() - started < 3
    found = families(second)
    assert "goald_pool_connections" in found and "goald_job_runs" in found
    missing = "goald_provider_calls" if source == "provider" else "goald_matches_stale"
    assert missing not in found
    assert value(second, "goald_metrics_collect_errors_total", collector=source) == \
        value(first, "goald_metrics_collect_errors_total", collector=source) + 1
    dead.close()


def test_request_durations_land_in_their_cumulative_buckets_and_unknown_methods_share_one_series():
    timer = metrics.RequestTimer(buckets=(0.001, 0.01, 0.1))
    for seconds in (0.0005, 0.001, 0.003, 0.05, 7.0):
        timer.observe("/r", "GET", 200, seconds)
    for method in ("BREW", "PROPFIND", "get"):
        timer.observe("/r", method, 405, 0.002)
    family, = timer.collect()
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    get = (("method", "GET"), ("route", "/r"), ("status", "200"))
    assert [got[("goald_http_request_duration_seconds_bucket", tuple(sorted(get + (("le", le),))))]
            for le in ("0.001", "0.01", "0.1", "+Inf")] == [2, 3, 4, 5]   # le is inclusive
    assert got[("goald_http_request_duration_seconds_count", get)] == 5
    assert got[("goald_http_request_duration_seconds_sum", get)] == pytest.approx(7.0545)
    methods = {dict(labels)["method"] for name, labels in got if name.endswith("_count")
                and dict(labels)["status"] == "405"}
    assert methods == {"other"} and len(timer._series) == 2
