"""goald's Prometheus metrics: what `GET /metrics` answers (docs/observability.md, "Metrics").

Two kinds, both exported through prometheus_client (the exposition format is the library's,
never hand-written):

- **Updated as things happen**: job runs by outcome, their durations and start lateness, actor
  restarts, HTTP request durations, collector errors. Module-level objects in `REGISTRY`, goald's
  own `CollectorRegistry` (never prometheus_client's global default one, which any library in
  the process may fill), with the process, platform and gc collectors (cheap: /proc and
  `gc.get_stats()` at scrape time). They are process-wide because what they count is: the job
  actors, supervisors and console of this process increment them directly.
- **Collected at scrape time** from objects that already keep their own numbers (the pool, the
  provider client, the cache, the match pipeline) or from one cheap query (stale live matches):
  custom collectors (`collect()` yielding metric families) over plain callables, so this module
  imports no actor and no console code. An `Exposition` is what one `/metrics` serves: its
  collectors first, then `REGISTRY`. Each app (the daemon's, a test's) has its own, so two apps
  in one process never export the same family twice. A collector that raises is skipped for that
  scrape (its families are missing, the others are served), counted in
  `goald_metrics_collect_errors_total{collector}` and logged as `metrics.collect_failed`
  (sampled: one line a minute per collector).

Labels are bounded: job, supervisor, child, endpoint, group, kind and collector names come from
goald's code and catalog; a dynamic supervisor's children (one per match) are counted as
`child="*"`; HTTP requests are labelled by route template (`other` for an unknown path) and a
known method (`other` otherwise). `_created` series are disabled (in the classic text format
they would double every counter and histogram as a gauge of its own).
"""
from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any, Callable, Iterable, Mapping

import prometheus_client
from prometheus_client import (CollectorRegistry, Counter, Gauge, GCCollector, Histogram, PlatformCollector,
                               ProcessCollector)
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric,
                                   SummaryMetricFamily)
from prometheus_client.utils import floatToGoString

from goald import __version__, logs
from goald.match import store

# The classic text format (0.0.4), which every Prometheus understands. prometheus_client 0.22+
# calls version 1.0.0 "latest"; with goald's names (all legacy-valid) the body is the same.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

prometheus_client.disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# Jobs: a 2-s poller takes ~10 ms, a sync of the reference data minutes (timeouts up to 10 min).
JOB_DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# Starts: ~0.1 ms late normally (actors/job_actor.py's fine wait); a loaded hub shows as ms to s.
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

BUILD_INFO = Gauge("goald_build_info", "Always 1; the goald version as a label", ["version"], registry=REGISTRY)
BUILD_INFO.labels(__version__).set(1)
JOB_RUNS = Counter("goald_job_runs_total", "Job occurrences by ledger outcome, recorded by this node",
                   ["job", "outcome"], registry=REGISTRY)
JOB_DURATION = Histogram("goald_job_run_duration_seconds", "Duration of job runs that started (any outcome)",
                         ["job"], buckets=JOB_DURATION_BUCKETS, registry=REGISTRY)
JOB_LATENESS = Histogram("goald_job_start_lateness_seconds", "How late a run's body started after its scheduled time",
                         ["job"], buckets=LATENESS_BUCKETS, registry=REGISTRY)
ACTOR_RESTARTS = Counter("goald_actor_restarts_total", "Restarts of supervised actors (child=\"*\": a dynamic "
                         "supervisor's children)", ["supervisor", "child"], registry=REGISTRY)
COLLECT_ERRORS = Counter("goald_metrics_collect_errors_total", "Scrape-time collectors that raised (their families "
                         "were left out of that scrape)", ["collector"], registry=REGISTRY)

DYNAMIC_CHILD = "*"


# --- updated as things happen ---------------------------------------------------------------------

def job_outcome(job: str, outcome: str, started: float | None = None, finished: float | None = None) -> None:
    """A job occurrence's outcome (and, when its body ran, its duration)."""
    JOB_RUNS.labels(job, outcome).inc()
    if started is not None and finished is not None:
        JOB_DURATION.labels(job).observe(max(0.0, finished - started))


def job_missed(job: str, count: int) -> None:
    JOB_RUNS.labels(job, "missed").inc(count)


def job_started(job: str, lateness_s: float) -> None:
    JOB_LATENESS.labels(job).observe(max(0.0, lateness_s))


def actor_restarted(supervisor: str, child: str) -> None:
    ACTOR_RESTARTS.labels(supervisor, child).inc()


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_ROUTE = "other"


class RequestTimer:
    """`goald_http_request_duration_seconds`: `observe(route, method, status, seconds)` for each
    answered request, collected as a histogram at scrape time.

    Not a prometheus_client Histogram: each of its observations takes two locks, which under gevent
    are gevent locks: 2 µs, as much as all the rest of a direct route's answer (measured: 4.2 µs a
    GET of /api/matches/live with a cached Histogram child, 1.8 µs with this). goald answers
    requests in greenlets of one OS thread and `observe` never yields, so a plain list of bucket
    counts per (route, method, status), found with one dict lookup, needs no lock (0.3 µs); it is
    exported as prometheus_client's HistogramMetricFamily. `route` is a route template (bounded by the app's routes) or `other`; a method outside
    HTTP_METHODS is counted as `other`, so no client can add series."""

    name = "goald_http_request_duration_seconds"
    documentation = "HTTP requests answered by the console, by route template, method and status"

    def __init__(self, buckets: tuple[float, ...] = HTTP_BUCKETS):
        self.bounds = tuple(buckets)
        self._le = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        self._series: dict[tuple[str, str, int], list] = {}   # key -> [count per bucket..., +Inf, sum]

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        counts = self._series.get((route, method, status))
        if counts is None:
            counts = self._new(route, method, status)
        counts[bisect_left(self.bounds, seconds)] += 1
        counts[-1] += seconds

    def _new(self, route: str, method: str, status: int) -> list:
        key = (route, method if method in HTTP_METHODS else "other", status)
        counts = self._series.get(key)
        if counts is None:
            counts = self._series[key] = [0] * (len(self.bounds) + 1) + [0.0]
        return counts

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["route", "method", "status"])
        for (route, method, status), counts in sorted(self._series.items()):
            cumulative, buckets = 0, []
            for le, n in zip(self._le, counts):
                cumulative += n
                buckets.append((le, cumulative))
            family.add_metric([route, method, str(status)], buckets, counts[-1])
        yield family


REQUESTS = RequestTimer()
REGISTRY.register(REQUESTS)


# --- collected at scrape time ---------------------------------------------------------------------

class PoolCollector:
    """The pool's own numbers (goald/db/pool.py `Pool.stats()`)."""

    name = "pool"

    def __init__(self, source: Callable[[], Any]):
        self.source = source

    def collect(self) -> Iterable[Metric]:
        s = self.source()
        conns = GaugeMetricFamily("goald_pool_connections", "Pool connections in use (active), idle, and "
                                  "greenlets waiting for one (waiting)", labels=["state"])
        for state in ("active", "idle", "waiting"):
            conns.add_metric([state], getattr(s, state))
        yield conns
        yield GaugeMetricFamily("goald_pool_max_connections", "The pool's maximum (database.pool_max)", value=s.max)
        yield GaugeMetricFamily("goald_pool_utilization_ratio", "Connections in use / the maximum (0..1)",
                                value=s.active / s.max if s.max else 0.0)
        yield CounterMetricFamily("goald_pool_checkouts_total", "Connections handed out", value=s.checkouts)
        yield CounterMetricFamily("goald_pool_wait_timeouts_total", "Checkouts that gave up waiting for a connection "
                                  "(database.pool_timeout_s)", value=s.timeouts)
        yield CounterMetricFamily("goald_pool_connections_opened_total", "Database connections opened",
                                  value=s.opened)
        yield CounterMetricFamily("goald_pool_connections_discarded_total", "Connections closed instead of reused "
                                  "(broken, or interrupted mid-query)", value=s.discarded)
        yield CounterMetricFamily("goald_db_queries_total", "Statements executed through the pool", value=s.queries)


# A provider call ends in exactly one of these (goald/provider/client.py `get`); the values are
# the EndpointStats fields (or sums of its by-reason counters) that count them.
PROVIDER_RESULTS = ("ok", "failed", "refused", "rejected", "throttled", "backed_off", "circuit_open", "aborted")
BREAKER_STATES = ("closed", "open", "half-open")


class ProviderCollector:
    """The provider client's counters and breakers (`ProviderClient.describe()`)."""

    name = "provider"

    def __init__(self, source: Callable[[], dict]):
        self.source = source

    def collect(self) -> Iterable[Metric]:
        d = self.source()
        calls = CounterMetricFamily("goald_provider_calls_total", "Provider calls by how they ended",
                                    labels=["endpoint", "result"])
        retries = CounterMetricFamily("goald_provider_retries_total", "Attempts repeated after a network error, "
                                      "a timeout or a 5xx", labels=["endpoint"])
        throttles = CounterMetricFamily("goald_provider_throttles_total", "Throttle answers (HTTP 429, code 429)",
                                        labels=["endpoint"])
        rejections = CounterMetricFamily("goald_provider_rejections_total", "Bodies and items rejected by "
                                         "validation, by reason token", labels=["endpoint", "reason"])
        latency = SummaryMetricFamily("goald_provider_request_duration_seconds", "HTTP requests to the provider "
                                      "that got an answer (attempts, retries included)", labels=["endpoint"])
        for endpoint, s in sorted(d["endpoints"].items()):
            ended = {"ok": s["ok"], "failed": sum(s["failures"].values()), "refused": sum(s["refusals"].values()),
                     "rejected": s.get("body_rejected", 0), "throttled": s["throttled"],
                     "backed_off": s["backed_off"], "circuit_open": s["circuit_refused"],
                     "aborted": s.get("aborted", 0)}
            for result in PROVIDER_RESULTS:
                calls.add_metric([endpoint, result], ended[result])
            retries.add_metric([endpoint], s["retries"])
            throttles.add_metric([endpoint], s["throttled"])
            for reason, n in sorted(s["rejections"].items()):
                rejections.add_metric([endpoint, reason], n)
            if "latency_sum_s" in s:
                latency.add_metric([endpoint], s["latency_ms"]["count"], s["latency_sum_s"])
        breaker = GaugeMetricFamily("goald_provider_breaker_state", "1 for the breaker's current state "
                                    "(closed, open, half-open), 0 for the others", labels=["group", "state"])
        for group, g in sorted(d["groups"].items()):
            for state in BREAKER_STATES:
                breaker.add_metric([group, state], 1.0 if g["state"] == state else 0.0)
        yield from (calls, retries, throttles, rejections, latency, breaker)


CACHE_COUNTERS = {
    "hits": "Answers served from the cache",
    "misses": "Answers built (from the database) and stored",
    "singleflight_saved": "Requests that waited for another request's build of the same key instead of building",
    "bypassed": "Requests of a disabled kind (built, never stored)",
    "build_errors": "Builds that raised (never stored)",
    "stores": "Entries written to the backend",
    "invalidations": "Invalidations (one key or a whole scope)",
    "degraded": "Answers built from the database because the backend failed",
}


class CacheCollector:
    """The read API's cache (goald/cache/cache.py `Cache.describe()`)."""

    name = "cache"

    def __init__(self, source: Callable[[], dict]):
        self.source = source

    def collect(self) -> Iterable[Metric]:
        d = self.source()
        yield GaugeMetricFamily("goald_cache_backend_up", "1 while the cache backend answers, 0 during an outage",
                                value=1.0 if d["backend_up"] else 0.0)
        yield CounterMetricFamily("goald_cache_backend_errors_total", "Backend reads, writes or invalidations "
                                  "that failed", value=d["backend_errors"])
        for key, help_text in CACHE_COUNTERS.items():
            family = CounterMetricFamily(f"goald_cache_{key}_total", help_text, labels=["kind"])
            for kind, counts in sorted(d["kinds"].items()):
                if key in counts:
                    family.add_metric([kind], counts[key])
            yield family


# MatchPipeline.counts (actors/matches.py) keys → `result` label values.
MATCH_UPDATE_RESULTS = {"applied": "applied", "unchanged": "unchanged", "older": "rejected_older",
                        "rejected_by_database": "rejected_by_database"}


class MatchesCollector:
    """The match pipeline's counters (`MatchPipeline.describe()`: tracked, pending_writes, counts)."""

    name = "matches"

    def __init__(self, source: Callable[[], dict]):
        self.source = source

    def collect(self) -> Iterable[Metric]:
        d = self.source()
        counts = d["counts"]
        updates = CounterMetricFamily("goald_match_updates_total", "Provider updates of matches: applied, "
                                      "unchanged, rejected as older than the state held or stored, or rejected "
                                      "by the database's guard (it held newer state)", labels=["result"])
        for key, result in MATCH_UPDATE_RESULTS.items():
            updates.add_metric([result], counts.get(key, 0))
        yield updates
        yield GaugeMetricFamily("goald_matches_tracked", "Matches with a match actor on this node", value=d["tracked"])
        yield GaugeMetricFamily("goald_match_pending_writes", "Matches whose changes wait for the batched writer",
                                value=d["pending_writes"])


STALE_LEVELS = (1, 2, 3, 4)   # sql/0008_match_safety.sql: 1 warned, 2 reconciled, 3 error, 4 frozen


class StaleMatchesCollector:
    """Live matches by stale level, from `counts()` ({level: n}, e.g. `stale_counts_from(pool)`)."""

    name = "stale_matches"

    def __init__(self, source: Callable[[], Mapping[int, int]]):
        self.source = source

    def collect(self) -> Iterable[Metric]:
        counts = self.source()
        family = GaugeMetricFamily("goald_matches_stale", "Live matches flagged stale, by the watchdog's level "
                                   "(1 warned, 2 reconciled, 3 error, 4 frozen at half-time)", labels=["level"])
        for level in STALE_LEVELS:
            family.add_metric([str(level)], counts.get(level, 0))
        yield family


STALE_QUERY_CHECKOUT_S = 1.0
STALE_QUERY_TIMEOUT_MS = 500


def stale_counts_from(pool) -> Callable[[], dict[int, int]]:
    """`{level: live matches}` from one query at scrape time (the partial index on live matches);
    a busy pool or a slow database raises within about a second, which skips only this family."""
    def counts() -> dict[int, int]:
        with pool.observer_connection(timeout_s=STALE_QUERY_CHECKOUT_S) as conn:
            with conn.cursor() as cur:
                cur.execute(f"SET LOCAL statement_timeout = {STALE_QUERY_TIMEOUT_MS}")
            return store.stale_counts(conn)
    return counts


_FAILURES = logs.Sampler(time.monotonic, 60.0)


class Exposition:
    """What one `/metrics` serves: scrape-time collectors over the given callables (each optional),
    then `REGISTRY`. `render()` is the body (CONTENT_TYPE)."""

    def __init__(self, *, pool_stats: Callable[[], Any] | None = None,
                 provider_describe: Callable[[], dict] | None = None,
                 cache_describe: Callable[[], dict] | None = None,
                 matches_describe: Callable[[], dict] | None = None,
                 stale_counts: Callable[[], Mapping[int, int]] | None = None):
        self.collectors: list[Any] = []
        self.registry = CollectorRegistry()
        self.registry.register(self)
        for make, source in ((PoolCollector, pool_stats), (ProviderCollector, provider_describe),
                             (CacheCollector, cache_describe), (MatchesCollector, matches_describe),
                             (StaleMatchesCollector, stale_counts)):
            if source is not None:
                self.add(make(source))

    def add(self, collector: Any) -> None:
        """A collector (`name`, `collect()`); its error counter starts at 0."""
        if any(c.name == collector.name for c in self.collectors):
            raise ValueError(f"a {collector.name} collector is already registered")
        self.collectors.append(collector)
        COLLECT_ERRORS.labels(collector.name)

    def collect(self) -> Iterable[Metric]:
        for collector in self.collectors:
            try:
                families = list(collector.collect())
            except Exception as e:
                COLLECT_ERRORS.labels(collector.name).inc()
                _FAILURES.log("WARNING", "metrics.collect_failed", (collector.name,),
                              f"Metrics: the {collector.name} collector failed ({type(e).__name__}: "
                              f"{str(e).strip()[:200]}); its metrics are missing from this scrape",
                              collector=collector.name, error_type=type(e).__name__)
                continue
            yield from families
        yield from REGISTRY.collect()

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)
