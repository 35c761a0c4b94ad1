"""The public read API's cache (core: imports neither actors nor the console).

keys.py names entries, backends.py stores them (memory or Redis), cache.py is the Cache the
endpoints call: single flight per key, errors never kept, a Redis outage answered from the
database, invalidation with a hook for the other nodes. Importing it connects nothing.
"""
from goald.cache.backends import MemoryBackend, RedisBackend
from goald.cache.cache import (KINDS, Cache, CacheBuildAborted, Cached, CacheWaitTimeout, KindPolicy,
                               from_config)
from goald.cache.keys import cache_key

__all__ = ["KINDS", "Cache", "CacheBuildAborted", "CacheWaitTimeout", "Cached", "KindPolicy", "MemoryBackend",
           "RedisBackend", "cache_key", "from_config"]
