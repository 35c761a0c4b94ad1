"""Where cached bodies live: this process's memory, or Redis shared by the nodes.

Both backends have the same small interface, used by goald/cache/cache.py only:
`get(key) -> bytes | None`, `set(key, value, ttl_s, index)`, `delete_index(index) -> int` (every
key stored with that index), `delete_indexes_under(family) -> int` (every index named
`<family>:<anything>`, for `Cache.invalidate_kind`), `ping()` and `describe()`.

The code runs in the calling greenlet (a request's, or a job's for an invalidation).
`MemoryBackend` never yields and cannot fail. `RedisBackend` talks to Redis through redis-py,
whose pure-Python sockets gevent makes cooperative; it never retries and never catches: a Redis
error (`redis.exceptions.RedisError`, `OSError`) propagates to the Cache, which decides what an
outage means. Constructing it connects nothing, so goald starts while Redis is down.
"""
from __future__ import annotations

import re
import time
from collections import OrderedDict
from typing import Callable

from goald import redact

HEALTH_CHECK_INTERVAL_S = 30    # a connection idle this long is PINGed before its next command
SCAN_COUNT = 1000
INDEX_TTL_MEMORY = 10_000       # indexes whose longest TTL a RedisBackend remembers (then it starts over)


class MemoryBackend:
    """A bounded dict of key → (expires_at, body): expired entries are misses and are dropped;
    past `max_entries` the oldest stored go first (a body stored again counts as new)."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.max_entries, self.clock = max_entries, clock
        self._entries: OrderedDict[str, tuple[float, bytes, str]] = OrderedDict()
        self._indexes: dict[str, set[str]] = {}
        self.evicted = 0

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            self._drop(key)
            return None
        return entry[1]

    def set(self, key: str, value: bytes, ttl_s: float, index: str) -> None:
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self.clock() + ttl_s, value, index)
        self._indexes.setdefault(index, set()).add(key)
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))
            self.evicted += 1

    def delete_index(self, index: str) -> int:
        keys = self._indexes.pop(index, set())
        for key in keys:
            self._entries.pop(key, None)
        return len(keys)

    def delete_indexes_under(self, family: str) -> int:
        head = family + ":"
        return sum(self.delete_index(index) for index in [i for i in self._indexes if i.startswith(head)])

    def ping(self) -> None:
        return None

    def describe(self) -> dict:
        return {"type": "memory", "entries": len(self._entries), "max_entries": self.max_entries,
                "indexes": len(self._indexes), "evicted": self.evicted}

    def _drop(self, key: str) -> None:
        _, _, index = self._entries.pop(key)
        keys = self._indexes.get(index)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._indexes[index]


class RedisBackend:
    """Bodies as Redis strings with a TTL (`SET key body PX ttl`); each index is a Redis set of
    its keys, `<index>:__idx`, that expires no earlier than the longest TTL this backend stored
    under it. Deleting an index reads its members, then deletes them and the set in one
    MULTI/EXEC; a body stored between the two outlives its index until its own TTL."""

    def __init__(self, url: str, socket_timeout_s: float = 0.5, connect_timeout_s: float = 0.5):
        self.url = url
        self.masked_url = redact.mask_dsn(url)
        # No retries inside redis-py: an outage must show at once; the Cache decides when to try again.
        # Imported here: a goald on the memory cache (the default) never loads redis-py.
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.client = redis.Redis.from_url(url, socket_timeout=socket_timeout_s,
                                           socket_connect_timeout=connect_timeout_s,
                                           health_check_interval=HEALTH_CHECK_INTERVAL_S,
                                           retry=Retry(NoBackoff(), 0))
        self._index_ttl_ms: dict[str, int] = {}

    @staticmethod
    def index_key(index: str) -> str:
        return index + ":__idx"

    def get(self, key: str) -> bytes | None:
        return self.client.get(key)

    def set(self, key: str, value: bytes, ttl_s: float, index: str) -> None:
        ttl_ms = max(1, int(ttl_s * 1000))
        if len(self._index_ttl_ms) >= INDEX_TTL_MEMORY:
            self._index_ttl_ms.clear()
        index_ttl_ms = self._index_ttl_ms[index] = max(ttl_ms, self._index_ttl_ms.get(index, 0))
        idx = self.index_key(index)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(key, value, px=ttl_ms)
        pipe.sadd(idx, key)
        pipe.pexpire(idx, index_ttl_ms)
        pipe.execute()

    def delete_index(self, index: str) -> int:
        idx = self.index_key(index)
        keys = list(self.client.smembers(idx))
        pipe = self.client.pipeline(transaction=True)
        if keys:
            pipe.delete(*keys)
        pipe.delete(idx)
        results = pipe.execute()
        self._index_ttl_ms.pop(index, None)
        return int(results[0]) if keys else 0

    def delete_indexes_under(self, family: str) -> int:
        """SCAN for `<family>:*:__idx` (a walk of the whole keyspace, in steps of SCAN_COUNT:
        for the rare invalidation of a whole kind), then `delete_index` each one found."""
        pattern = _glob_escape(family) + ":*" + _glob_escape(":__idx")
        indexes = {k.decode()[:-len(":__idx")] for k in self.client.scan_iter(match=pattern, count=SCAN_COUNT)}
        return sum(self.delete_index(index) for index in indexes)

    def ping(self) -> None:
        self.client.ping()

    def describe(self) -> dict:
        return {"type": "redis", "url": self.masked_url}


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
