"""The simulator's HTTP side: a TheSports-compatible API on loopback over a `World`.

`GET /v1/football/<path>?user=&secret=&...` answers like the provider: authentication by query
parameters (a wrong or missing user/secret is HTTP 200 with an `err` text, as the provider does),
`{"code": 429}` once a user exceeds `rate` requests in a second, `{"code": 0, "query"?, "results",
"results_extra"?}` otherwise; unknown paths are HTTP 404 `{"code": 404, "msg": ...}`. Then the
chaos switches (goald/simulator/chaos.py) bend the answer. Bodies are JSON-encoded once per
simulated second and path/parameters and reused until the clock moves on.

Control (no credentials; loopback only by default), JSON in and out:
- `GET /sim/state`: the clock, requests served per path and outcome, the chaos switches;
- `POST /sim/chaos` `{"http_5xx": 1, ...}` sets switches, `{"reset": true}` clears them;
- `POST /sim/clock` `{"advance": seconds}` or `{"set": unix}` moves the clock (never back).

Each request runs in its own gevent.pywsgi greenlet; a bad control body is a 400 with the reason,
and no request can end in a traceback: an unexpected error is logged (`simulator.error`) and
answered with HTTP 500 `{"code": 500, "msg": ...}` (the provider's own 5xx look).
"""
from __future__ import annotations

import email.utils
import json
import random
import socket
import time
import zlib
from collections import Counter, deque
from typing import Callable

import bottle
import gevent
import msgspec

from goald import logs
from goald.simulator import endpoints
from goald.simulator.chaos import Chaos, ChaosError
from goald.wsgi import EventLog, NoDelayWSGIServer

DEFAULT_USER = "demo"
DEFAULT_SECRET = "demo"
DEFAULT_RATE = 200  # requests per user per second before {"code": 429}
# Stand-ins for the provider's texts (its documentation does not quote them).
AUTH_ERR = "Authentication failed: the user or secret is wrong, or this IP is not authorized"
THROTTLE_MSG = "Too Many Requests: request frequency exceeds the limit"
HISTORY_S = 120  # seconds of earlier answers kept for out_of_order
_ENCODER = msgspec.json.Encoder()


class _Answer:
    """One endpoint's answer for one simulated second (and chaos version), encoded at most once."""

    __slots__ = ("second", "version", "payload", "body")

    def __init__(self, second: int, version: int, payload: dict):
        self.second, self.version, self.payload, self.body = second, version, payload, None


class SimulatorServer:
    """A World served over HTTP. `start()` binds (port 0 picks one) and serves in greenlets;
    `stop()` closes the socket and cuts open requests after `timeout_s`."""

    def __init__(self, world, clock, *, host: str = "127.0.0.1", port: int = 0, user: str = DEFAULT_USER,
                 secret: str = DEFAULT_SECRET, rate: int = DEFAULT_RATE, chaos: Chaos | None = None, seed: int = 0,
                 monotonic: Callable[[], float] = time.monotonic):
        self.world, self.clock = world, clock
        self.host, self.port = host, port
        self.user, self.secret, self.rate = user, secret, rate
        self.chaos = chaos or Chaos()
        self.rng = random.Random(seed)
        self.monotonic = monotonic
        self.served: Counter = Counter()
        self.in_flight = self.peak_in_flight = 0
        self.path_in_flight: Counter = Counter()
        self.path_peak: Counter = Counter()  # most requests of one path in flight at once
        self.peers: set[tuple[str, str]] = set()  # (address, port) of the connections seen
        self._window: dict[str, deque] = {}
        self._cache: dict[tuple, _Answer] = {}
        self._history: dict[str, deque] = {}
        self._stuck: dict[str, dict] = {}
        self._stuck_at: dict[str, float] = {}
        self._server: NoDelayWSGIServer | None = None
        self.app = self._make_app()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> "SimulatorServer":
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(1024)
        self._server = NoDelayWSGIServer(sock, self.app, log=None,  # no access lines
                                         error_log=EventLog("ERROR", "simulator.error", "Simulator: "))
        self._server.start()
        self.port = self._server.server_port
        return self

    def stop(self, timeout_s: float = 1.0) -> None:
        if self._server is not None:
            self._server.stop(timeout=timeout_s)
            self._server = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # --- the app ------------------------------------------------------------------------------

    def _make_app(self) -> bottle.Bottle:
        app = bottle.Bottle()
        app.route("/v1/football/<path:path>", "GET", self._provider)
        app.route("/sim/state", "GET", self._state)
        app.route("/sim/chaos", "POST", self._set_chaos)
        app.route("/sim/clock", "POST", self._set_clock)
        app.error(404)(self._not_found)
        app.error(405)(self._not_found)
        return app

    def _json(self, payload, status: int = 200) -> bytes:
        bottle.response.status = status
        bottle.response.content_type = "application/json"
        return _ENCODER.encode(payload)

    def _not_found(self, err) -> bytes:
        return self._json({"code": err.status_code, "msg": f"no such endpoint: {bottle.request.path}"},
                          err.status_code)

    def _provider(self, path: str) -> bytes:
        # The provider's clock is the simulated one (a Date header pywsgi would fill with the real time).
        bottle.response.set_header("Date", email.utils.formatdate(self.clock.now(), usegmt=True))
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self.path_in_flight[path] += 1
        self.path_peak[path] = max(self.path_peak[path], self.path_in_flight[path])
        env = bottle.request.environ
        if len(self.peers) < 10_000:
            self.peers.add((env.get("REMOTE_ADDR", ""), env.get("REMOTE_PORT", "")))
        try:
            return self._answer(path, bottle.request.query)
        except Exception as e:  # a bug here must look like a provider 500, never a traceback
            logs.event("ERROR", "simulator.error", f"Simulator: {path}: {type(e).__name__}: {e}", path=path)
            return self._json({"code": 500, "msg": "internal error"}, 500)
        finally:
            self.in_flight -= 1
            self.path_in_flight[path] -= 1

    def _answer(self, path: str, query) -> bytes:
        handler = endpoints.HANDLERS.get(path)
        if handler is None:
            self.served[(path, "not_found")] += 1
            return self._json({"code": 404, "msg": f"no such endpoint: /v1/football/{path}"}, 404)
        user, secret = query.get("user", ""), query.get("secret", "")
        if user != self.user or secret != self.secret:
            self.served[(path, "auth_err")] += 1
            return self._json({"err": AUTH_ERR})
        if self._over_rate(user):
            self.served[(path, "rate_429")] += 1
            return self._json({"code": 429, "msg": THROTTLE_MSG})
        chaos = self.chaos if self.chaos.applies(path) else Chaos()
        if chaos.latency_ms:
            gevent.sleep(chaos.latency_ms / 1000)
        early = self._early_chaos(path, chaos)
        if early is not None:
            return early
        params = {k: query.get(k) for k in query.keys() if k not in ("user", "secret")}
        try:
            answer = self._payload(path, handler, params, chaos)
        except endpoints.BadParameter as e:
            self.served[(path, "bad_parameter")] += 1
            return self._json({"code": 400, "err": str(e)})
        return self._late_chaos(path, answer, chaos)

    def _early_chaos(self, path: str, chaos: Chaos) -> bytes | None:
        roll = self.rng.random
        if chaos.timeout and roll() < chaos.timeout:
            self.served[(path, "timeout")] += 1
            gevent.sleep(chaos.hang_s)
            return self._json({"code": 0, "results": []})
        if chaos.http_5xx and roll() < chaos.http_5xx:
            self.served[(path, "http_5xx")] += 1
            bottle.response.status = 503
            return b"Service Unavailable"
        if chaos.http_429 and roll() < chaos.http_429:
            self.served[(path, "http_429")] += 1
            bottle.response.set_header("Retry-After", "1")
            return self._json({"code": 429, "msg": THROTTLE_MSG}, 429)
        if chaos.throttle and roll() < chaos.throttle:
            self.served[(path, "throttle")] += 1
            return self._json({"code": 429, "msg": THROTTLE_MSG})
        if chaos.err and roll() < chaos.err:
            self.served[(path, "err")] += 1
            return self._json({"err": "Server busy, please try again later"})
        return None

    def _payload(self, path: str, handler, params: dict, chaos: Chaos) -> "_Answer":
        second = int(self.clock.now())
        key = (path, tuple(sorted(params.items())))
        answer = self._cache.get(key)
        if answer is None or answer.second != second or answer.version != self.chaos.version:
            payload = handler(self.world, params)
            if chaos.stuck_ids or self._stuck:
                payload = self._apply_stuck(path, payload, chaos.stuck_ids)
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = answer = _Answer(second, self.chaos.version, payload)
            history = self._history.setdefault(path, deque(maxlen=HISTORY_S))
            if not history or history[-1].second != second:
                history.append(answer)
        if chaos.out_of_order and self.rng.random() < chaos.out_of_order:
            older = [a for a in self._history.get(path, ()) if a.second < second]
            if older:
                self.served[(path, "out_of_order")] += 1
                answer = self.rng.choice(older)
        return answer

    def _late_chaos(self, path: str, answer: "_Answer", chaos: Chaos) -> bytes:
        payload = answer.payload
        results = payload.get("results")
        changed = False
        if isinstance(results, list):
            if path == "match/detail_live" and (chaos.vanish or chaos.vanish_ids):
                results = [r for r in results if not self._vanished(r.get("id"), chaos)]
            if chaos.duplicate and self.rng.random() < chaos.duplicate:
                self.served[(path, "duplicate")] += 1
                results = [r for r in results for _ in (0, 1)]
            if chaos.wrong_types:
                results = [endpoints.wrong_type(r, self.rng) if self.rng.random() < chaos.wrong_types else r
                           for r in results]
            changed = results is not payload["results"]
        if changed:
            body = self._json({**payload, "results": results})
        else:  # encoded once per second and parameters, however many ask
            if answer.body is None:
                answer.body = _ENCODER.encode(payload)
            body = answer.body
            bottle.response.content_type = "application/json"
        if chaos.malformed and self.rng.random() < chaos.malformed:
            self.served[(path, "malformed")] += 1
            return b'{"code": 0, "results": [{"id": "' + body[40:60].replace(b'"', b"'") + b"<html>"
        if chaos.truncated and self.rng.random() < chaos.truncated:
            self.served[(path, "truncated")] += 1
            return body[: max(1, len(body) // 2)]
        self.served[(path, "ok")] += 1
        return body

    def _vanished(self, match_id, chaos: Chaos) -> bool:
        if match_id in chaos.vanish_ids:
            return True
        key = str(match_id).encode()
        return bool(chaos.vanish) and zlib.crc32(key) % 10_000 < chaos.vanish * 10_000

    def _apply_stuck(self, path: str, payload: dict, stuck_ids: set[str]) -> dict:
        """A stuck match keeps the state it had when it got stuck, in every endpoint: each
        endpoint's answer for it is taken as of that second (the first answer after the switch)."""
        for gone in set(self._stuck_at) - stuck_ids:
            self._stuck.pop(gone, None)
            del self._stuck_at[gone]
        now = self.clock.now()
        for mid in stuck_ids:
            self._stuck_at.setdefault(mid, now)
        results = payload.get("results")
        if not isinstance(results, list):
            return payload
        out = []
        for r in results:
            mid = r.get("id") if isinstance(r, dict) else None
            if mid in stuck_ids:
                frozen = self._stuck.setdefault(mid, {})
                if path not in frozen:
                    frozen[path] = self._as_of(path, mid, r)
                r = frozen[path]
            out.append(r)
        if path == "match/detail_live":  # still "live" after the world has dropped it
            present = {r.get("id") for r in out if isinstance(r, dict)}
            out.extend(f[path] for mid, f in self._stuck.items() if mid not in present and path in f)
        return {**payload, "results": out}

    def _as_of(self, path: str, mid: str, current: dict) -> dict:
        sim = self.world.sim_match(mid) if hasattr(self.world, "sim_match") else None
        at = self._stuck_at.get(mid)
        if sim is None or at is None:
            return current
        if path == "match/detail_live":
            return sim.timeline.live_entry(at) or current
        if path in ("match/recent/list", "match/diary"):
            return sim.match_object(at) or current
        return current

    def _over_rate(self, user: str) -> bool:
        if self.rate <= 0:
            return False
        now = self.monotonic()
        window = self._window.setdefault(user, deque())
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= self.rate:
            return True
        window.append(now)
        return False

    # --- control ------------------------------------------------------------------------------

    def _state(self) -> bytes:
        served: dict[str, dict[str, int]] = {}
        for (path, outcome), n in sorted(self.served.items()):
            served.setdefault(path, {})[outcome] = n
        return self._json({"now": self.clock.now(), "served": served, "chaos": self.chaos.as_dict(),
                           "in_flight": self.in_flight, "peak_in_flight": self.peak_in_flight,
                           "world": self.world.summary() if hasattr(self.world, "summary") else {}})

    def _body(self) -> dict:
        try:
            body = json.loads(bottle.request.body.read() or b"{}")
        except ValueError as e:
            raise ChaosError(f"the body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise ChaosError("the body must be a JSON object")
        return body

    def _set_chaos(self) -> bytes:
        try:
            body = self._body()
            if body.pop("reset", False):
                self.chaos.reset()
            self.chaos.update(body)
        except ChaosError as e:
            return self._json({"ok": False, "error": str(e)}, 400)
        return self._json({"ok": True, "chaos": self.chaos.as_dict()})

    def _set_clock(self) -> bytes:
        try:
            body = self._body()
            if "advance" in body:
                now = self.clock.advance(float(body["advance"]))
            elif "set" in body and hasattr(self.clock, "set"):
                now = self.clock.set(float(body["set"]))
            else:
                raise ChaosError('expected {"advance": seconds} or {"set": unix} (set: manual clock only)')
        except (ChaosError, ValueError, TypeError) as e:
            return self._json({"ok": False, "error": str(e)}, 400)
        return self._json({"ok": True, "now": now})
