"""The TheSports client: one `requests` session, retries, throttling, breakers, validation.

`ProviderClient.get(path, **params)` is the one way a provider answer reaches goald. In order:
1. the endpoint group's throttle back-off and breaker (goald/provider/breaker.py) may refuse the
   call before any I/O (`ProviderThrottled` reason `backing_off`, `CircuitOpen`);
2. `GET {base}/v1/football/{path}?user=&secret=&...` with (connect, read) timeouts; a network
   error, a timeout or a 5xx is retried `retries` times after `retry_base_s`, 2x that, ... (±20 %
   jitter), each retry logged as `provider.http.retry` (WARNING); when none is left the call fails
   with `ProviderUnavailable`, logged as `provider.http.fail` (ERROR) and counted by the breaker;
3. HTTP 429 or `{"code": 429}`: `ProviderThrottled`, counted as throttling (never a failure): the
   group backs off (`provider.throttle_backoff_s`, doubling while throttles continue, at most
   60 s, or the answer's Retry-After) and `provider.throttled` is logged;
4. an HTTP 4xx, an `{"err": ...}` body (HTTP 200, e.g. wrong user/secret) or a `code` other than
   0: `ProviderRefused`, never retried, logged as `provider.refused` (ERROR);
5. the body is decoded and validated (goald/provider/decode.py): a body unusable as a whole raises
   `PayloadRejected` (a failure for the breaker, not retried); bad items are left out of the
   returned `Decoded` with their reasons, counted and logged as `provider.payload.rejected`.

Log lines of one kind are sampled per endpoint and reason (one a minute, with the number left
out), so a provider that fails every 2 s cannot flood the journal. The credentials never appear
in a log line, an error message or the stats: messages are built from reasons, never from
requests' exception texts (which quote the URL with its query string).

Runs in the calling greenlet (an ingest job's body); calls overlap freely. Nothing but a
`ProviderError` subclass leaves `get`.
"""
from __future__ import annotations

import email.utils
import random
import re
import time
from typing import Callable

import gevent
import requests

from goald import __version__, logs
from goald.provider import decode
from goald.provider.breaker import Breaker
from goald.provider.errors import (CircuitOpen, Decoded, PayloadRejected, ProviderError, ProviderRefused,
                                   ProviderThrottled, ProviderUnavailable)
from goald.provider.stats import EndpointStats
from goald.provider.validation import ItemMemo

# Endpoint path → breaker group: a failing live feed does not shut the schedule's calls out.
ENDPOINT_GROUPS: dict[str, str] = {
    "match/detail_live": "live",
    "data/update": "live",
    "match/diary": "schedule",
    "match/recent/list": "schedule",
    "match/analysis": "stats",
    "season/recent/table/detail": "stats",
    "table/live": "stats",
    "match/team_stats/list": "stats",
    "match/half/team_stats/detail": "stats",
    "competition/additional/list": "reference",
    "team/additional/list": "reference",
}
THROTTLE_BACKOFF_MAX_S = 60.0
JITTER = 0.2
LOG_SAMPLE_S = 60.0
CLOCK_SKEW_WARN_S = 30.0   # the provider's Date header this far from our clock: a warning (sampled)
_CREDENTIALS = re.compile(r"\b(user|secret)=[^&\s'\"]*", re.IGNORECASE)


class _Throttle:
    """The back-off of one endpoint group after a throttle."""

    def __init__(self, base_s: float):
        self.base_s, self.until, self.streak = base_s, 0.0, 0

    def hit(self, now: float, retry_after_s: float | None) -> float:
        self.streak += 1
        wait = retry_after_s if retry_after_s else min(THROTTLE_BACKOFF_MAX_S, self.base_s * 2 ** (self.streak - 1))
        self.until = now + wait
        return wait

    def clear(self) -> None:
        self.streak = 0


class ProviderClient:
    def __init__(self, base_url: str, user: str = "", secret: str = "", *, connect_timeout_s: float = 5.0,
                 read_timeout_s: float = 5.0, retries: int = 2, retry_base_s: float = 0.5,
                 breaker_failures: int = 5, breaker_open_s: float = 120.0, throttle_backoff_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = gevent.sleep, rng: random.Random | None = None,
                 pool_size: int = 32):
        self.base_url = base_url.rstrip("/")
        self._auth = {"user": user, "secret": secret}
        self.timeouts = (connect_timeout_s, read_timeout_s)
        self.retries, self.retry_base_s = retries, retry_base_s
        self.clock, self.wall, self.sleep = clock, wall, sleep
        self.rng = rng or random.Random()
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = f"goald/{__version__}"
        groups = sorted(set(ENDPOINT_GROUPS.values()))
        self.breakers = {g: Breaker(g, breaker_failures, breaker_open_s, clock) for g in groups}
        self.throttles = {g: _Throttle(throttle_backoff_s) for g in groups}
        self.stats = {p: EndpointStats(g) for p, g in ENDPOINT_GROUPS.items()}
        self._sampler = logs.Sampler(clock, LOG_SAMPLE_S)
        self.clock_skew_s: float | None = None   # the provider's clock minus ours, at the last answer
        # Decoded items of the polled endpoints' previous answers (an entry is right whichever
        # answer it came from: two calls racing only cost a decode).
        self._memos = {path: ItemMemo() for path in decode.MEMOIZED}

    @classmethod
    def from_config(cls, cfg, base_url: str | None = None, user: str | None = None, secret: str | None = None,
                    **kwargs) -> "ProviderClient":
        return cls(base_url or cfg["provider.base_url"], cfg["provider.user"] if user is None else user,
                   cfg["provider.secret"] if secret is None else secret,
                   connect_timeout_s=cfg["provider.connect_timeout_s"], read_timeout_s=cfg["provider.read_timeout_s"],
                   retries=cfg["provider.retries"], retry_base_s=cfg["provider.retry_base_s"],
                   breaker_failures=cfg["provider.breaker_failures"], breaker_open_s=cfg["provider.breaker_open_s"],
                   throttle_backoff_s=cfg["provider.throttle_backoff_s"], **kwargs)

    def close(self) -> None:
        self.session.close()

    # --- the endpoints goald uses -------------------------------------------------------------

    def detail_live(self) -> Decoded:
        return self.get("match/detail_live")

    def data_update(self) -> Decoded:
        return self.get("data/update")

    def diary(self, date: str | None = None, tsp: int | None = None) -> Decoded:
        return self.get("match/diary", **({"date": date} if date else {"tsp": tsp}))

    def recent_list(self, since: int, page: int = 1) -> Decoded:
        return self.get("match/recent/list", time=since, page=page)

    def match(self, match_id: str) -> Decoded:
        """One match object, by the recent list's uuid query (a reconcile): no item when the
        provider has none."""
        return self.get("match/recent/list", uuid=match_id)

    def team_stats(self) -> Decoded:
        """The team statistics of the matches whose statistics changed in the last 120 s."""
        return self.get("match/team_stats/list")

    def half_team_stats(self, match_id: str) -> Decoded:
        """One match's statistics per half (full time, first and second half, extra time)."""
        return self.get("match/half/team_stats/detail", uuid=match_id)

    def analysis(self, match_id: str) -> Decoded:
        return self.get("match/analysis", uuid=match_id)

    def season_table(self, season_id: str) -> Decoded:
        return self.get("season/recent/table/detail", uuid=season_id)

    def table_live(self) -> Decoded:
        return self.get("table/live")

    def competitions(self, **params) -> Decoded:
        return self.get("competition/additional/list", **params)

    def teams(self, **params) -> Decoded:
        return self.get("team/additional/list", **params)

    # --- one call -----------------------------------------------------------------------------

    def get(self, path: str, **params) -> Decoded:
        if path not in ENDPOINT_GROUPS:
            raise ProviderRefused(path, "unknown_endpoint", f"goald has no decoder for {path}")
        group, stats = ENDPOINT_GROUPS[path], self.stats[path]
        stats.calls += 1
        throttle = self.throttles[group]
        left = throttle.until - self.clock()
        if left > 0:
            stats.backed_off += 1
            raise ProviderThrottled(path, "backing_off", f"the {group} calls back off for {left:.1f}s after a "
                                    f"throttle", retry_after_s=left)
        breaker = self.breakers[group]
        try:
            trial = breaker.admit(path)
        except CircuitOpen:
            stats.circuit_refused += 1
            raise
        try:
            decoded = self._call(path, params, stats)
        except ProviderThrottled:
            breaker.release(trial)
            raise
        except (ProviderUnavailable, PayloadRejected) as e:
            stats.last_error = str(e)
            if isinstance(e, PayloadRejected):
                stats.body_rejected += 1
            breaker.failure(trial, e.reason)
            raise
        except ProviderRefused as e:
            stats.last_error = str(e)
            breaker.success(trial)  # it answered, coherently: the provider is up
            raise
        except BaseException:
            stats.aborted += 1
            breaker.release(trial)  # killed (a job timeout) or a bug: counts neither way
            raise
        breaker.success(trial)
        throttle.clear()
        stats.ok += 1
        return decoded

    def _call(self, path: str, params: dict, stats: EndpointStats) -> Decoded:
        url = f"{self.base_url}/v1/football/{path}"
        query = {**self._auth, **params}
        attempt = 0
        while True:
            attempt += 1
            stats.attempts += 1
            started = self.clock()
            try:
                resp = self.session.get(url, params=query, timeout=self.timeouts)
                body = resp.content
            except requests.exceptions.Timeout as e:
                problem = ("timeout", f"no answer within {self._timeout_text(e)}")
            except requests.exceptions.ConnectionError as e:
                problem = ("connect", f"cannot connect to {self.base_url}: {_scrub(_root_cause(e))}")
            except requests.exceptions.RequestException as e:
                problem = ("network", f"{type(e).__name__}: {_scrub(_root_cause(e))}")
            else:
                stats.latency(self.clock() - started)
                if resp.status_code >= 500:
                    problem = ("http_5xx", f"HTTP {resp.status_code}")
                else:
                    return self._answer(path, resp, body, stats)
            if attempt > self.retries:
                tries = f"{attempt} attempts" if attempt > 1 else "1 attempt, no retries configured"
                stats.failures[problem[0]] += 1
                self._sampler.log("ERROR", "provider.http.fail", (path, problem[0]),
                                  f"Provider call failed: {path}: {problem[1]} (after {tries})",
                                  endpoint=path, reason=problem[0], attempts=attempt)
                raise ProviderUnavailable(path, problem[0], f"{problem[1]} (after {tries})")
            wait = self.retry_base_s * 2 ** (attempt - 1) * (1 + self.rng.uniform(-JITTER, JITTER))
            stats.retries += 1
            self._sampler.log("WARNING", "provider.http.retry", (path, problem[0]),
                              f"Provider call retried: {path}: {problem[1]}; retry {attempt} of {self.retries} "
                              f"in {wait * 1000:.0f}ms", endpoint=path, reason=problem[0], attempt=attempt,
                              wait_ms=round(wait * 1000))
            self.sleep(wait)

    def _answer(self, path: str, resp: requests.Response, body: bytes, stats: EndpointStats) -> Decoded:
        if resp.status_code == 429:
            self._throttled(path, stats, _retry_after(resp), "HTTP 429")
        if resp.status_code >= 400:
            self._refused(path, stats, f"http_{resp.status_code // 100}xx", f"HTTP {resp.status_code}")
        try:
            env = decode.envelope(path, body)
            if env.err:
                self._refused(path, stats, "err", f"the provider says: {_scrub(env.err)}")
            if env.code == 429:
                self._throttled(path, stats, _retry_after(resp), "code 429 in the body")
            if env.code not in (0, None):
                self._refused(path, stats, f"code_{env.code}", f"code {env.code}: {_scrub(env.msg or '')}")
            # The relative-time checks (a kick-off "within 24 h of now") use the provider's clock, so that
            # a provider whose clock disagrees with ours is reported as such, not as bad items.
            server_time = self._clock_check(path, resp)
            memo = self._memos.get(path)
            if memo is None:
                decoded = decode.DECODERS[path](env, server_time)  # the envelope is decoded once
            else:
                decoded = decode.DECODERS[path](env, server_time, memo)
                stats.items_reused += memo.reused
        except PayloadRejected as e:
            stats.rejections[e.reason] += 1
            self._sampler.log("ERROR", "provider.payload.rejected", (path, e.reason),
                              f"Provider answer rejected: {path}: {e.reason}: {e.detail}", endpoint=path,
                              reason=e.reason, item=None)
            raise
        decoded.server_time = server_time
        stats.items += len(decoded.items)
        for r in decoded.rejections:
            stats.rejections[r.reason] += 1
            self._sampler.log("WARNING", "provider.payload.rejected", (path, r.reason),
                              f"Provider item rejected: {path}: {r.item}: {r.reason}: {r.detail}", endpoint=path,
                              reason=r.reason, item=r.item)
        return decoded

    def _clock_check(self, path: str, resp: requests.Response) -> int:
        wall = self.wall()
        server = _server_time(resp, wall)
        skew = server - wall
        self.clock_skew_s = skew
        if abs(skew) > CLOCK_SKEW_WARN_S:
            self._sampler.log("WARNING", "provider.clock_skew", ("skew",),
                              f"The provider's clock is {skew:+.0f}s from this host's (HTTP Date of {path}); "
                              f"minutes and staleness are computed on this host's clock: check NTP on both",
                              endpoint=path, skew_s=round(skew))
        return server

    def _throttled(self, path: str, stats: EndpointStats, retry_after: float | None, what: str):
        group = ENDPOINT_GROUPS[path]
        wait = self.throttles[group].hit(self.clock(), retry_after)
        stats.throttled += 1
        self._sampler.log("WARNING", "provider.throttled", (group,),
                          f"Provider throttled {path} ({what}): the {group} calls back off for {wait:g}s",
                          endpoint=path, group=group, backoff_s=wait)
        raise ProviderThrottled(path, "throttled", what, retry_after_s=wait)

    def _refused(self, path: str, stats: EndpointStats, reason: str, detail: str):
        stats.refusals[reason] += 1
        self._sampler.log("ERROR", "provider.refused", (path, reason), f"Provider refused {path}: {detail}",
                          endpoint=path, reason=reason)
        raise ProviderRefused(path, reason, detail)

    def _timeout_text(self, e: Exception) -> str:
        connect, read = self.timeouts
        if isinstance(e, requests.exceptions.ConnectTimeout):
            return f"{connect:g}s (connect)"
        return f"{read:g}s (read)"

    # --- introspection ------------------------------------------------------------------------

    def describe(self) -> dict:
        """What `/health/provider` shows: where, the breakers, the back-offs and every endpoint."""
        now = self.clock()
        return {
            "base_url": self.base_url,
            "clock_skew_s": None if self.clock_skew_s is None else round(self.clock_skew_s),
            "groups": {g: {**b.describe(), "throttle_backoff_s": round(max(0.0, self.throttles[g].until - now), 1)}
                       for g, b in self.breakers.items()},
            "endpoints": {p: s.as_dict() for p, s in self.stats.items()},
        }


def _server_time(resp: requests.Response, wall: float) -> int:
    """The provider's clock from its Date header; `wall` when there is none or it is unreadable."""
    try:
        return int(email.utils.parsedate_to_datetime(resp.headers["Date"]).timestamp())
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        return int(wall)


def _retry_after(resp: requests.Response) -> float | None:
    try:
        value = float(resp.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return value if 0 < value <= 3600 else None


def _root_cause(e: BaseException) -> str:
    """The innermost reason of a requests error, e.g. 'Connection refused', never the URL."""
    while e.__context__ is not None and e.__context__ is not e:
        e = e.__context__
    text = getattr(e, "strerror", None) or (e.args[0] if e.args and isinstance(e.args[0], str) else type(e).__name__)
    return str(text)


def _scrub(text: str) -> str:
    return _CREDENTIALS.sub(lambda m: m.group(1) + "=***", text)


__all__ = ["ProviderClient", "ProviderError", "ENDPOINT_GROUPS"]
