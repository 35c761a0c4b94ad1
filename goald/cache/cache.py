"""The read API's cache: one flight per key, errors never kept, Redis outages survived.

`Cache.get_or_build(kind, scope, params, build)` answers a body for the key of (kind, scope,
params) (goald/cache/keys.py). **Single flight**: the first caller of a key runs the whole flight
(backend get, then on a miss `build()` and backend set); every concurrent caller of that key
waits for the flight (at most `wait_s`, then `CacheWaitTimeout`: answer 503) and gets the same
body, or the same exception. `from_cache` says whether this call caused no build: True for a
backend hit and for every waiter, False for the caller that built. A disabled kind builds on
every call and stores nothing. Each call of an enabled kind counts as exactly one of `hits`,
`misses`, `singleflight_saved` or `degraded`; a disabled one as `bypassed`.

**Errors are never cached**: an exception from `build()` reaches its caller and the waiters,
nothing is stored, and the next call builds again. A waiter whose flight was interrupted by a
BaseException (its greenlet killed, its own gevent.Timeout) gets `CacheBuildAborted` instead of
that foreign exception.

**Outage**: any exception from the backend (never from `build()`) marks it down, with one
`cache.backend_down` line per outage. While down, calls build from the database (still one
flight per key: the database is protected), answer `from_cache` False and count `degraded`; the
backend is left alone for `retry_s`, then one call probes it (first replaying the invalidations
it missed, then its get): still failing, it stays down silently; answering, `cache.backend_back`
is logged and caching resumes. A failing set after a successful build still returns the body.

**Invalidation**: `invalidate(kind, scope)` deletes every param variant of (kind, scope) through
the backend's index `<prefix>:<kind>:<scope>`; `invalidate_kind(kind)` every scope of a kind
(Redis: a SCAN, see goald/cache/backends.py). A flight already running for that scope is
detached: its callers still get the body they waited for, but it is not stored, and a caller
arriving afterwards starts a new flight. While the backend is down, invalidations are
remembered (at most MAX_MISSED distinct scopes, then whole kinds) and replayed before the
backend is used again; an invalidation lost anyway (goald stopped meanwhile, or another node's
body stored between our read of an index and its deletion) is bounded by the entry's TTL, after
which it expires by itself. After a local invalidation with `publish=True`, every listener is
called with (kind, scope), scope "*" for a whole kind: the daemon wires one that tells the other
nodes, which call `invalidate(..., publish=False)`. A listener's exception is logged
(`cache.listener_failed`, sampled) and never breaks the invalidation.

Everything runs in the calling greenlet: a request's for `get_or_build`, a job's or the change
feed's for `invalidate`. The state is plain dicts touched between yields only (one OS thread).
`ready()` pings the backend without changing its up/down state: the request path alone decides
that (a load balancer's polls neither log outages nor end them).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

import gevent.event

from goald import logs
from goald.cache.backends import MemoryBackend, RedisBackend
from goald.cache.keys import EMPTY_SCOPE, cache_key, check_part, index_name

KINDS = ("standings", "h2h", "match_details", "predictions")   # the kinds from_config reads from the settings
MAX_MISSED = 10_000     # scopes whose invalidation, missed during an outage, is replayed one by one
LISTENER_LOG_EVERY_S = 60.0
_KIND_COUNTERS = ("hits", "misses", "singleflight_saved", "bypassed", "build_errors", "stores",
                  "invalidations", "degraded")


class Backend(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl_s: float, index: str) -> None: ...
    def delete_index(self, index: str) -> int: ...
    def delete_indexes_under(self, family: str) -> int: ...
    def ping(self) -> None: ...
    def describe(self) -> dict: ...


@dataclass(frozen=True)
class KindPolicy:
    enabled: bool
    ttl_s: float


@dataclass(frozen=True)
class Cached:
    body: bytes
    from_cache: bool    # True: this call caused no build (a backend hit, or it waited for another's)
    key: str


class CacheWaitTimeout(Exception):
    """A caller waited `wait_s` for another caller's build of the same key (answer 503)."""

    def __init__(self, key: str, wait_s: float):
        self.key, self.wait_s = key, wait_s
        super().__init__(f"gave up after {wait_s:g}s waiting for the build of cache key {key} "
                         f"(another request is building it)")


class CacheBuildAborted(Exception):
    """The flight a caller waited for was interrupted (its greenlet killed or timed out) before its build finished."""

    def __init__(self, key: str, cause: BaseException):
        self.key = key
        super().__init__(f"the build of cache key {key} was interrupted ({type(cause).__name__}); try again")


class _Flight:
    __slots__ = ("kind", "scope", "result", "stale")

    def __init__(self, kind: str, scope: str):
        self.kind, self.scope = kind, scope
        self.result = gevent.event.AsyncResult()
        self.stale = False      # invalidated while running: its body is answered, never stored


class Cache:
    def __init__(self, backend: Backend, *, prefix: str = "goald", kinds: Mapping[str, KindPolicy],
                 wait_s: float = 5.0, retry_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        check_part("prefix", prefix)
        for kind, policy in kinds.items():
            check_part("kind", kind)
            if not policy.ttl_s > 0:
                raise ValueError(f"cache kind {kind}: ttl_s must be above 0, not {policy.ttl_s}")
        self.backend, self.prefix, self.kinds = backend, prefix, dict(kinds)
        self.wait_s, self.retry_s, self.clock = wait_s, retry_s, clock
        described = backend.describe()
        self.backend_type: str = described.get("type", type(backend).__name__)
        self.backend_label: str = described.get("url") or self.backend_type   # never a password
        self.listeners: list[Callable[[str, str], None]] = []
        self.backend_errors = 0
        self.outages = 0
        self._counts = {kind: dict.fromkeys(_KIND_COUNTERS, 0) for kind in self.kinds}
        self._flights: dict[str, _Flight] = {}
        self._down_at: float | None = None      # last failure (or probe) while down; None: up
        self._down_since: float | None = None
        self._missed: dict[tuple[str, str | None], None] = {}   # (kind, scope or None: all), in order
        self._listener_log = logs.Sampler(clock, LISTENER_LOG_EVERY_S)

    @property
    def backend_up(self) -> bool:
        return self._down_at is None

    # --- reading --------------------------------------------------------------------------------

    def get_or_build(self, kind: str, scope: str, params: Mapping[str, Any],
                     build: Callable[[], bytes]) -> Cached:
        policy = self._policy(kind)
        key = cache_key(self.prefix, kind, scope, params)
        counts = self._counts[kind]
        if not policy.enabled:
            counts["bypassed"] += 1
            return Cached(self._build(build, key, counts), False, key)
        flight = self._flights.get(key)
        if flight is not None:
            counts["singleflight_saved"] += 1
            flight.result.wait(self.wait_s)
            if not flight.result.ready():
                raise CacheWaitTimeout(key, self.wait_s)
            return Cached(flight.result.get(), True, key)
        flight = self._flights[key] = _Flight(kind, scope or EMPTY_SCOPE)
        try:
            cached = self._fly(flight, key, policy, build, counts)
        except BaseException as e:
            flight.result.set_exception(e if isinstance(e, Exception) else CacheBuildAborted(key, e))
            raise
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.result.set(cached.body)
        return cached

    def _fly(self, flight: _Flight, key: str, policy: KindPolicy, build: Callable[[], bytes],
             counts: dict) -> Cached:
        if self._backend_ready():
            ok, body = self._call(self.backend.get, key)
            if ok and body is not None:
                counts["hits"] += 1
                return Cached(body, True, key)
            counts["misses" if ok else "degraded"] += 1
        else:
            counts["degraded"] += 1
        body = self._build(build, key, counts)
        if not flight.stale and self._backend_ready():
            ok, _ = self._call(self.backend.set, key, body, policy.ttl_s,
                               index_name(self.prefix, flight.kind, flight.scope))
            if ok:
                counts["stores"] += 1
        return Cached(body, False, key)

    @staticmethod
    def _build(build: Callable[[], bytes], key: str, counts: dict) -> bytes:
        try:
            body = build()
            if not isinstance(body, bytes):
                raise TypeError(f"the build of cache key {key} returned {type(body).__name__}, not bytes")
            return body
        except Exception:
            counts["build_errors"] += 1
            raise

    # --- invalidation ---------------------------------------------------------------------------

    def invalidate(self, kind: str, scope: str, publish: bool = True) -> int:
        """Delete every param variant of (kind, scope); returns how many entries the backend deleted."""
        self._policy(kind)
        scope = scope or EMPTY_SCOPE
        index_name(self.prefix, kind, scope)     # checks the scope
        self._detach(lambda f: f.kind == kind and f.scope == scope)
        self._counts[kind]["invalidations"] += 1
        deleted = self._delete(kind, scope)
        if publish:
            self._publish(kind, scope)
        return deleted

    def invalidate_kind(self, kind: str, publish: bool = True) -> int:
        """Delete every entry of `kind`, all scopes; returns how many entries the backend deleted."""
        self._policy(kind)
        self._detach(lambda f: f.kind == kind)
        self._counts[kind]["invalidations"] += 1
        deleted = self._delete(kind, None)
        if publish:
            self._publish(kind, "*")
        return deleted

    def _detach(self, matches: Callable[[_Flight], bool]) -> None:
        for key, flight in list(self._flights.items()):
            if matches(flight):
                flight.stale = True
                del self._flights[key]

    def _delete(self, kind: str, scope: str | None) -> int:
        if self._backend_ready():
            ok, deleted = self._call(*self._deletion(kind, scope))
            if ok:
                return deleted
        self._remember(kind, scope)
        return 0

    def _deletion(self, kind: str, scope: str | None) -> tuple:
        if scope is None:
            return self.backend.delete_indexes_under, f"{self.prefix}:{kind}"
        return self.backend.delete_index, index_name(self.prefix, kind, scope)

    def _remember(self, kind: str, scope: str | None) -> None:
        """Keep a missed invalidation for the backend's return; past MAX_MISSED scopes, whole kinds."""
        if (kind, None) in self._missed:
            return
        self._missed[(kind, scope)] = None
        if scope is None:
            for k in [k for k in self._missed if k[0] == kind and k[1] is not None]:
                del self._missed[k]
        elif len(self._missed) > MAX_MISSED:
            self._missed = {(k, None): None for k, _ in self._missed}

    def _publish(self, kind: str, scope: str) -> None:
        for listener in list(self.listeners):
            try:
                listener(kind, scope)
            except Exception as e:
                self._listener_log.log(
                    "WARNING", "cache.listener_failed", (type(e).__name__,),
                    f"A cache invalidation listener failed for {kind}/{scope} ({type(e).__name__}: {e}); "
                    f"this node's invalidation is done, other nodes' entries expire after their TTL",
                    kind=kind, scope=scope, error_type=type(e).__name__)

    # --- the backend's health -------------------------------------------------------------------

    def _backend_ready(self) -> bool:
        """Whether this call may use the backend: it is up, or down for retry_s already (this
        call then probes it, after replaying the invalidations missed meanwhile)."""
        if self._down_at is None:
            return True
        now = self.clock()
        if now - self._down_at < self.retry_s:
            return False
        self._down_at = now     # one probe per retry_s, however many calls arrive
        while self._missed:     # still down meanwhile: nobody reads an entry these would delete
            kind, scope = next(iter(self._missed))
            op, arg = self._deletion(kind, scope)
            try:
                op(arg)
            except Exception as e:
                self._failed(e)
                return False
            self._missed.pop((kind, scope), None)
        return True     # the caller's next operation is the probe that marks the backend up

    def _call(self, op: Callable, *args) -> tuple[bool, Any]:
        """(True, op's answer), or (False, None) with the backend marked down."""
        probing = self._down_at is not None
        try:
            value = op(*args)
        except Exception as e:
            self._failed(e)
            return False, None
        if probing and self._down_at is not None:
            self._back()
        return True, value

    def _failed(self, e: Exception) -> None:
        self.backend_errors += 1
        first = self._down_at is None
        self._down_at = self.clock()
        if first:
            self._down_since = self._down_at
            self.outages += 1
            logs.event("WARNING", "cache.backend_down",
                       f"Cache backend {self.backend_label} unreachable ({type(e).__name__}); answering "
                       f"from the database until it is back (tried again every {self.retry_s:g}s)",
                       backend=self.backend_label, error_type=type(e).__name__, error=str(e)[:300])

    def _back(self) -> None:
        down_s = self.clock() - self._down_since
        self._down_at = self._down_since = None
        logs.event("INFO", "cache.backend_back",
                   f"Cache backend {self.backend_label} answers again after {down_s:.1f}s; caching resumed",
                   backend=self.backend_label, down_s=round(down_s, 3))

    def ready(self) -> tuple[bool, str]:
        """(True, "memory"), (True, "redis ok") or (False, "redis unreachable: <ErrorType>"): for
        /api/ready. A ping neither marks the backend down nor up (see the module docstring)."""
        try:
            self.backend.ping()
        except Exception as e:
            return False, f"{self.backend_type} unreachable: {type(e).__name__}"
        return True, "memory" if self.backend_type == "memory" else f"{self.backend_type} ok"

    def describe(self) -> dict:
        """Counters and state as a JSON-able dict (health endpoints, metrics)."""
        return {
            "backend": self.backend_label,
            "backend_up": self.backend_up,
            "backend_errors": self.backend_errors,
            "outages": self.outages,
            "invalidations_pending": len(self._missed),
            "flights": len(self._flights),
            "store": self.backend.describe(),
            "kinds": {kind: {"enabled": p.enabled, "ttl_s": p.ttl_s, **self._counts[kind]}
                      for kind, p in self.kinds.items()},
        }

    def _policy(self, kind: str) -> KindPolicy:
        try:
            return self.kinds[kind]
        except KeyError:
            raise ValueError(f"unknown cache kind {kind!r} (known: {', '.join(self.kinds) or 'none'})") from None


def from_config(cfg) -> Cache:
    """The Cache the settings describe (`cache.*`): Redis when cache.use_redis, else memory.
    Connects nothing: the first use finds out whether Redis answers."""
    if cfg["cache.use_redis"]:
        backend: Backend = RedisBackend(cfg["cache.redis_url"])
    else:
        backend = MemoryBackend(cfg["cache.memory_max_entries"])
    kinds = {kind: KindPolicy(cfg[f"cache.{kind}"], cfg[f"cache.{kind}_ttl_s"]) for kind in KINDS}
    return Cache(backend, prefix=cfg["cache.prefix"], kinds=kinds, wait_s=cfg["cache.wait_s"],
                 retry_s=cfg["cache.backend_retry_s"])
