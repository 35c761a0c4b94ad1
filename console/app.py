"""The Bottle application: routes, the JSON envelope on every answer, and error handling.

Handlers run in the greenlet gevent.pywsgi gives each request. A handler's exception never
reaches the client as a traceback: the `_guard` plugin logs it (event `http.unhandled`) and
answers 500 in the envelope; unknown paths and methods get 404/405 in the envelope too.

The hottest reads (the match endpoints, whose bodies are shared: console/matches_api.py) also
have a direct route: `ConsoleApp` answers a GET of a path registered with `direct` without Bottle's per-request objects, plugins and header machinery (a third of the CPU of a
request that only hands out prepared bytes), with the same guard. The same handlers stay
routed in Bottle, which serves their HEAD and their 405s.

Every request is timed in `ConsoleApp.__call__` (goald/metrics.py `goald_http_request_duration_seconds`)
by route template (the direct route's, or the rule Bottle matched; `other` when none did), method
and status, from the call until the body is returned (not its sending). `GET /metrics` answers
the Prometheus text format, outside the envelope, like /health without authentication.
"""
from __future__ import annotations

import json
import time
from time import perf_counter as _clock
from dataclasses import dataclass, field
from typing import Any, Callable

import bottle

from goald.console import envelope, shapes
from goald.console.cors import Cors
from goald.console.envelope import Reply
from goald import __version__, logs, metrics
from goald.db.pool import DatabaseUnavailable, Pool, PoolTimeout
from goald.match.changes import Changes


@dataclass
class AppContext:
    """What the HTTP side may read of the daemon."""

    pool: Pool
    node: str
    database: str  # human description (masked DSN or embedded data dir)
    embedded: bool
    started: float = field(default_factory=time.monotonic)
    # The live actor tree (the root supervisor's describe()); None outside `goald run`.
    actors: Callable[[], dict] | None = None
    # The provider client's counters, breakers and back-offs (ProviderClient.describe); None outside `goald run`.
    provider: Callable[[], dict] | None = None
    # The match data's version (goald/match/changes.py): with it the match endpoints are routed.
    changes: Changes | None = None
    # Whether this node leads the match pipeline (goald/db/cluster.py Leadership.describe).
    cluster: Callable[[], dict] | None = None
    # The public API's cache (goald/cache/): with it the standings, h2h and predictions endpoints are routed.
    cache: Any = None
    # Browser origins allowed to read /api/... (console.cors_origins, parsed): none, no CORS headers.
    cors_origins: tuple[str, ...] = ()
    # What GET /metrics serves (goald/metrics.py Exposition; the daemon's has every source). None:
    # one over what this context has (pool, provider, cache).
    metrics: Any = None
    # The operator console (/admin/...): console/auth.py Auth and what it may ask of the daemon
    # (goald/console_ops.py DaemonOps). Without both, /admin is not routed.
    auth: Any = None
    ops: Any = None


class ConsoleApp(bottle.Bottle):
    """The Bottle app, plus direct routes: a GET of a path registered with `direct` (or of one
    segment under a prefix registered with `direct_under`) is answered by its handler's Reply
    from the WSGI environ, as it is. Each is routed in Bottle too, for HEAD and 405."""

    def __init__(self, cors: "Cors | None" = None) -> None:
        super().__init__(catchall=True)
        self._exact: dict[str, Callable[[dict], Reply]] = {}
        self._under: list[tuple[str, str, str, Callable[[dict, str], Reply]]] = []
        self.cors = cors      # console/cors.py, when console.cors_origins names origins (set once: Bottle
        #                       refuses to rebind an attribute)
        self.requests = metrics.REQUESTS

    def direct(self, path: str, handler: Callable[[dict], Reply]) -> None:
        self._exact[path] = handler
        self.get(path, callback=lambda: handler(bottle.request.environ).to_bottle())

    def direct_under(self, prefix: str, handler: Callable[[dict, str], Reply], suffix: str = "") -> None:
        """`handler(environ, segment)` answers GET `prefix` + one non-empty path segment + `suffix`
        (`/api/matches/` + id + `/h2h`)."""
        rule = prefix + "<segment>" + suffix     # also the route label of its requests' metrics
        self._under.append((prefix, suffix, rule, handler))
        self.get(rule, callback=lambda segment: handler(bottle.request.environ, segment).to_bottle())

    def _resolve(self, path: str) -> tuple[str, Callable, str | None] | None:
        """(route template, handler, segment: None for an exact path) of a direct route, or None."""
        handler = self._exact.get(path)
        if handler is not None:
            return path, handler, None
        for prefix, suffix, rule, under in self._under:
            if not (path.startswith(prefix) and path.endswith(suffix)):
                continue
            segment = path[len(prefix):len(path) - len(suffix)]
            if segment and "/" not in segment:
                return rule, under, segment
        return None

    def __call__(self, environ, start_response):
        started = _clock()
        if self.cors is not None and "HTTP_ORIGIN" in environ:
            return self._observed(environ, start_response, started, self._cors_serve)
        if environ.get("REQUEST_METHOD") == "GET":
            path = environ.get("PATH_INFO") or "/"
            found = self._resolve(path)
            if found is not None:   # the fast path: no wrapper, the route and status are known here
                reply = self._direct_reply(found, environ, path)
                body = self._send(reply, start_response)
                self.requests.observe(found[0], "GET", reply.status, _clock() - started)
                return body
        return self._observed(environ, start_response, started, self.wsgi)

    def _cors_serve(self, environ, start_response):
        return self.cors(environ, start_response, self._serve)

    def _serve(self, environ, start_response):
        """A request behind CORS (timed by `_observed`): a direct route or Bottle."""
        if environ.get("REQUEST_METHOD") == "GET":
            path = environ.get("PATH_INFO") or "/"
            found = self._resolve(path)
            if found is not None:
                environ["goald.route"] = found[0]
                return self._send(self._direct_reply(found, environ, path), start_response)
        return self.wsgi(environ, start_response)

    @staticmethod
    def _direct_reply(found, environ, path) -> Reply:
        _, handler, segment = found
        try:
            return handler(environ) if segment is None else handler(environ, segment)
        except Exception as e:
            return unhandled("GET", path, e)

    @staticmethod
    def _send(reply: Reply, start_response) -> list[bytes]:
        headers = reply.headers
        if reply.status not in (204, 304):
            headers = headers + [("Content-Length", str(len(reply.body)))]
        start_response(reply.status_line, headers)
        return [reply.body]

    def _observed(self, environ, start_response, started, app):
        """`app(environ, start_response)`, timed: the status from its start_response, the route from
        the direct route taken or the rule Bottle matched (`other` when none: a 404, a 405, a preflight)."""
        statuses: list[str] = []

        def seen(status, headers, exc_info=None):
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            return app(environ, seen)
        finally:
            route = environ.get("goald.route")
            if route is None:
                matched = environ.get("bottle.route")
                route = matched.rule if matched is not None else metrics.OTHER_ROUTE
            status = int(statuses[-1][:3]) if statuses and statuses[-1][:3].isdigit() else 500
            self.requests.observe(route, environ.get("REQUEST_METHOD") or "GET", status, _clock() - started)


def make_app(ctx: AppContext) -> ConsoleApp:
    app = ConsoleApp(Cors(ctx.cors_origins) if ctx.cors_origins else None)
    app.config["json.enable"] = False  # every answer goes through the envelope instead
    app.install(_guard)
    app.default_error_handler = _error_page

    @app.get("/api/health")
    def health():
        started = time.monotonic()
        try:
            with ctx.pool.connection(timeout_s=2.0) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
        except (PoolTimeout, DatabaseUnavailable) as e:
            return envelope.error("database_unavailable", str(e), 503)
        return envelope.typed(shapes.HealthOut(
            ok=True, status="up", version=__version__, node=ctx.node,
            uptime_s=round(time.monotonic() - ctx.started, 1),
            database=shapes.DatabaseHealth(ok=True, embedded=ctx.embedded,
                                           latency_ms=round((time.monotonic() - started) * 1000, 1)),
            cluster=ctx.cluster() if ctx.cluster is not None else None))

    @app.get("/api/ready")
    def ready():
        # Not ready: the node cannot answer with current data (database, provider). A cache outage
        # only degrades it: the read endpoints answer from the database meanwhile, and every node
        # shares the same cache, so taking them out of a load balancer would turn it into an outage.
        checks = _readiness(ctx)
        failing = [f"{name}: {c['detail']}" for name, c in checks.items() if not c["ok"] and name != "cache"]
        if failing:
            return envelope.error("not_ready", "not ready: " + "; ".join(failing), 503, checks=checks)
        return envelope.typed(shapes.ReadyOut(ok=True, ready=True, degraded=not all(c["ok"] for c in checks.values()),
                                              checks={n: shapes.Check(**c) for n, c in checks.items()}))

    @app.get("/health/pool")
    def health_pool():
        return envelope.ok(ctx.pool.stats().as_dict())

    @app.get("/health/actors")
    def health_actors():
        if ctx.actors is None:
            return envelope.error("unavailable", "no actor tree in this process", 503)
        try:
            tree = ctx.actors()
        except Exception as e:  # the root is stopping or not answering
            return envelope.error("unavailable", f"the actor tree is not answering: {e}", 503)
        return envelope.ok({"tree": tree, "healthy": _tree_healthy(tree)})

    @app.get("/health/cache")
    def health_cache():
        if ctx.cache is None:
            return envelope.error("unavailable", "no cache in this process", 503)
        return envelope.ok(ctx.cache.describe())

    @app.get("/health/provider")
    def health_provider():
        if ctx.provider is None:
            return envelope.error("unavailable", "no provider client in this process", 503)
        return envelope.ok(ctx.provider())

    exposition = ctx.metrics if ctx.metrics is not None else metrics.Exposition(
        pool_stats=ctx.pool.stats, provider_describe=ctx.provider,
        cache_describe=ctx.cache.describe if ctx.cache is not None else None)

    @app.get("/metrics")
    def metrics_text():
        # The Prometheus text format, not the envelope (docs/observability.md, "Metrics").
        bottle.response.set_header("Content-Type", metrics.CONTENT_TYPE)
        bottle.response.set_header("Cache-Control", "no-cache")
        return exposition.render()

    built: list[bytes] = []

    @app.get("/api/openapi.json")
    def openapi_json():
        # Built at the first request, from the routes the app has (a test app without a cache
        # has no standings): the document lists what this process serves.
        if not built:
            from goald.console import openapi

            routed = {openapi.template_of(r.rule) for r in app.routes if r.method == "GET"}
            paths = {e.path for e in openapi.ENDPOINTS if openapi.template_of(e.path) in routed}
            built.append(json.dumps(openapi.document(paths)).encode())
        bottle.response.set_header("Content-Type", "application/json")
        bottle.response.set_header("Cache-Control", "no-cache")
        return built[0]

    if ctx.changes is not None:
        from goald.console import matches_api

        details = ctx.cache.kinds.get("match_details") if ctx.cache is not None else None
        app.config["goald.match_bodies"] = matches_api.install(
            app, ctx.pool, ctx.changes, share_details=details.enabled if details else True,
            details_max_age_s=details.ttl_s if details else 1.0)
    if ctx.cache is not None:
        from goald.console import tables_api

        app.config["goald.table_answers"] = tables_api.install(app, ctx.pool, ctx.cache)
        from goald.console import predictions_api

        app.config["goald.prediction_answers"] = predictions_api.install(app, ctx.pool, ctx.cache)
    if ctx.auth is not None and ctx.ops is not None:
        from goald.console import admin

        app.config["goald.admin"] = admin.install(app, pool=ctx.pool, node=ctx.node, auth=ctx.auth, ops=ctx.ops,
                                                  actors=ctx.actors, provider=ctx.provider)
    return app


READY_GROUPS = ("live", "schedule")   # provider breaker groups without which the data go stale


def _readiness(ctx: AppContext) -> dict[str, dict]:
    """`/api/ready`'s checks (the request's greenlet): the database answers, the provider's live
    and schedule breakers are not open, the cache backend answers (when there is a cache)."""
    checks: dict[str, dict] = {}
    started = time.monotonic()
    try:
        with ctx.pool.connection(timeout_s=2.0) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = {"ok": True, "detail": f"answered in {(time.monotonic() - started) * 1000:.1f} ms"}
    except (PoolTimeout, DatabaseUnavailable) as e:
        checks["database"] = {"ok": False, "detail": str(e)}
    if ctx.provider is not None:
        groups = ctx.provider().get("groups", {})
        opened = [g for g in READY_GROUPS if groups.get(g, {}).get("state") == "open"]
        checks["provider"] = {"ok": not opened, "detail": f"breaker open: {', '.join(opened)}" if opened
                              else "breakers closed or half-open"}
    if ctx.cache is not None:
        ok, detail = ctx.cache.ready()
        checks["cache"] = {"ok": ok, "detail": detail}
    return checks


def _tree_healthy(node: dict) -> bool:
    if node.get("state") not in ("running", None):
        return False
    return all(_tree_healthy(c) for c in node.get("children") or [])


def _guard(callback):
    """Bottle plugin: any exception from a handler becomes a logged 500 in the envelope."""

    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except bottle.HTTPResponse:
            raise
        except Exception as e:
            return unhandled(bottle.request.method, bottle.request.path, e).to_bottle()

    return wrapper


def unhandled(method: str, path: str, e: Exception) -> Reply:
    """A handler's exception: logged with the request line, answered as a 500 without details."""
    logs.event("ERROR", "http.unhandled", f"Unhandled error in {method} {path}: {type(e).__name__}: {e}",
               method=method, path=path)
    return envelope.error_reply("internal", "internal error; the server log has the details", 500)


def _error_page(err: bottle.HTTPError) -> str:
    code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(err.status_code, "error")
    message = {404: f"no such endpoint: {bottle.request.path}",
               405: f"{bottle.request.method} is not allowed on {bottle.request.path}"}.get(
        err.status_code, str(err.body or err.status_line))
    body = envelope.error(code, message, err.status_code)
    if err.status_code == 405 and err.headers.get("Allow"):
        bottle.response.set_header("Allow", err.headers["Allow"])
    return body
