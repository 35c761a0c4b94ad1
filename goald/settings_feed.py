"""The match side's settings: the provider and its demo feed, the match pipeline, standings,
head-to-head and the public API's cache.

One part of the settings table: goald/settings.py puts the parts together, checks them and
documents the table."""
from __future__ import annotations

from goald.setting import Setting

SECTIONS: dict[str, str] = {
    "provider": "The TheSports-compatible data provider; none configured: the built-in simulator (demo feed)",
    "match": "The live match pipeline: match actors, their batched writes, the ingest jobs",
    "standings": "The standings sync (standings_sync): live and season tables",
    "h2h": "The head-to-head sync (h2h_sync) of upcoming matches",
    "cache": "The public read API's cache of response bodies: in this process, or Redis shared by the nodes",
}

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "provider.base_url", str, "",
        "The provider's API root, e.g. https://api.thesports.com (goald adds /v1/football/<path>). "
        "Empty: goald starts its built-in simulator on loopback as a demo feed (`goald simulate` "
        "serves the same on its own).",
    ),
    Setting(
        "provider.user", str, "",
        "The provider account's user name (the `user` query parameter).",
        secret=True,
    ),
    Setting(
        "provider.secret", str, "",
        "The provider account's key (the `secret` query parameter). Under systemd give it as the "
        "credential provider.secret (docs/operations.md, Secrets).",
        secret=True,
    ),
    Setting(
        "provider.connect_timeout_s", float, 5.0,
        "How long opening a connection to the provider may take.",
        minimum=0.1, maximum=60, unit="s",
    ),
    Setting(
        "provider.read_timeout_s", float, 5.0,
        "How long the provider may be silent while answering one request.",
        minimum=0.1, maximum=120, unit="s",
    ),
    Setting(
        "provider.retries", int, 2,
        "Retries of a call after a network error, a timeout or a 5xx (never after a 4xx or an "
        "`err` body), waiting retry_base_s, then twice that, ... with jitter.",
        minimum=0, maximum=10,
    ),
    Setting(
        "provider.retry_base_s", float, 0.5,
        "The wait before the first retry; each further retry waits twice as long (+-20 % jitter).",
        minimum=0.0, maximum=60, unit="s",
    ),
    Setting(
        "provider.breaker_failures", int, 5,
        "Consecutive failed calls of one endpoint group that open its circuit breaker.",
        minimum=1, maximum=1000,
    ),
    Setting(
        "provider.breaker_open_s", float, 120.0,
        "How long an open breaker refuses calls before one trial call (half-open) may go.",
        minimum=1, maximum=3600, unit="s",
    ),
    Setting(
        "provider.throttle_backoff_s", float, 2.0,
        "After a throttle (429), the endpoint group's calls wait this long (doubling while throttles "
        "continue, up to 60 s, or what Retry-After says) before the provider is asked again.",
        minimum=0.1, maximum=600, unit="s",
    ),
    Setting(
        "provider.demo_matches", int, 300,
        "Matches in the built-in simulator's day when no provider is configured.",
        minimum=0, maximum=20000,
    ),
    Setting(
        "provider.demo_users", int, 1000,
        "With the built-in simulator as the feed, a database without app users gets this many demo "
        "users (as `goald seed-demo` makes them) once the first matches are in, so that every business "
        "job has work; 0: none.",
        minimum=0, maximum=1_000_000,
    ),
    Setting(
        "provider.demo_seed", int, 1,
        "Seed of the built-in simulator's day: the same seed gives the same day.",
        minimum=0, maximum=2**31 - 1,
    ),
    Setting(
        "match.max_updates_per_tick", int, 500,
        "Rows in one batched write of the match writer (provider changes, guarded by "
        "provider_update_time); a tick with more changed matches writes them in several statements.",
        minimum=1, maximum=10000, legacy_env=("MAX_UPDATES_PER_TICK",), warn_above=5000,
        warn_reason="statements that large hold row locks longer than a tick",
    ),
    Setting(
        "match.minute_batch_size", int, 500,
        "Rows in one write of the minute engine's columns (minute, minute_text, period).",
        minimum=1, maximum=10000, legacy_env=("MATCH_MINUTE_BATCH_SIZE",),
    ),
    Setting(
        "match.write_interval_s", float, 0.1,
        "How often the match writer writes what the match actors changed (one tick).",
        minimum=0.01, maximum=5, unit="s",
    ),
    Setting(
        "match.retire_after_s", float, 900.0,
        "How long a match actor stays after its match ended, was abandoned or cancelled (late "
        "corrections are still applied), before it retires.",
        minimum=0, maximum=86400, unit="s",
    ),
    Setting(
        "match.enricher_concurrency", int, 4,
        "Provider requests the reference sync (teams, competitions) makes at once.",
        minimum=1, maximum=50, legacy_env=("MATCH_ENRICHER_CONCURRENCY",), warn_above=20,
        warn_reason="the provider throttles bursts; the seeds' runbook says 10 at most",
    ),
    Setting(
        "standings.refresh_s", float, 3600.0,
        "standings_sync fetches a season's table again after this long (and soon after one of its "
        "matches ended); while matches are live, table/live keeps their seasons current.",
        minimum=120, maximum=7 * 86400, unit="s",
    ),
    Setting(
        "standings.batch_size", int, 50,
        "Season tables one run of standings_sync fetches at most; the next run goes on.",
        minimum=1, maximum=1000,
    ),
    Setting(
        "h2h.horizon_s", float, 2 * 86400.0,
        "h2h_sync keeps the head-to-head of matches kicking off within this long.",
        minimum=3600, maximum=30 * 86400, unit="s",
    ),
    Setting(
        "h2h.refresh_s", float, 12 * 3600.0,
        "A match's head-to-head is fetched again after this long.",
        minimum=600, maximum=30 * 86400, unit="s",
    ),
    Setting(
        "h2h.batch_size", int, 200,
        "Matches one run of h2h_sync asks about at most (the provider allows 60 match/analysis "
        "calls a minute); the soonest kick-offs first.",
        minimum=1, maximum=5000,
    ),
    Setting(
        "h2h.calls_per_minute", int, 60,
        "match/analysis calls h2h_sync starts a minute at most, evenly spaced: the provider allows 60, "
        "and a burst of them throttles the whole account, the live feed included. A run asks about no "
        "more matches than fit in 80 % of its timeout at this pace. 0: no pacing.",
        minimum=0, maximum=100_000,
    ),
    Setting(
        "match.recent_max_pages", int, 50,
        "Pages of match/recent/list one run of recent_sync reads at most (1000 matches a page); "
        "the next run goes on from where it stopped.",
        minimum=1, maximum=1000,
    ),
    Setting(
        "match.stale_after_s", float, 120.0,
        "A live match with no provider message for this long is stale: the match watchdog warns, "
        "then reconciles it from the provider, then logs an ERROR, and the API says `stale_reason`.",
        minimum=10, maximum=3600, unit="s",
    ),
    Setting(
        "match.stale_after_half_time_s", float, 900.0,
        "The same at half-time, when a quiet feed is normal.",
        minimum=60, maximum=7200, unit="s",
    ),
    Setting(
        "match.freeze_after_s", float, 1800.0,
        "A match at half-time for longer than this is frozen: an ERROR and a reconcile.",
        minimum=60, maximum=14400, unit="s",
    ),
    Setting(
        "match.watchdog_concurrency", int, 5,
        "Provider requests the match watchdog and the stuck-match check make at once to reconcile matches.",
        minimum=1, maximum=100, legacy_env=("MATCH_WATCHDOG_CONCURRENCY",), warn_above=20,
        warn_reason="the provider throttles bursts; the seeds' runbook settled on 5",
    ),
    Setting(
        "cache.use_redis", bool, False,
        "Keep the read API's cached bodies in Redis (cache.redis_url), shared by every node; false: "
        "in this process's memory. While Redis is unreachable the API answers from the database.",
        legacy_env=("USE_REDIS_CACHE",),
    ),
    Setting(
        "cache.redis_url", str, "redis://127.0.0.1:6379/0",
        "Redis URL (redis://[:password@]host:6379/db, rediss:// for TLS) used when cache.use_redis is "
        "true. goald starts even when Redis is down. Under systemd, do not write a password here: give "
        "the URL as the credential cache.redis_url (docs/operations.md, Secrets).",
        secret=True, legacy_env=("REDIS_URL",),
    ),
    Setting(
        "cache.prefix", str, "goald",
        "First part of every cache key (<prefix>:<kind>:<scope>:<hash>); nodes sharing a Redis and "
        "a database use the same one. No ':' and no spaces.",
    ),
    Setting(
        "cache.standings", bool, True,
        "Cache the standings answers (a season's table).",
        legacy_env=("CACHE_STANDINGS",),
    ),
    Setting(
        "cache.standings_ttl_s", float, 60.0,
        "A cached standings answer is rebuilt after this long at the latest (a sync that writes a "
        "table invalidates it at once).",
        minimum=0.1, maximum=86400, unit="s",
    ),
    Setting(
        "cache.h2h", bool, True,
        "Cache the head-to-head answers.",
        legacy_env=("CACHE_H2H",),
    ),
    Setting(
        "cache.h2h_ttl_s", float, 1800.0,
        "A cached head-to-head answer is rebuilt after this long at the latest.",
        minimum=0.1, maximum=7 * 86400, unit="s",
    ),
    Setting(
        "cache.match_details", bool, True,
        "Share one match's answer (GET /api/matches/<id>) between requests: built once per change "
        "of the match data, in this process. Off: built from the database for every request.",
        legacy_env=("CACHE_MATCH_DETAILS",),
    ),
    Setting(
        "cache.match_details_ttl_s", float, 1.0,
        "A shared match answer is rebuilt after this long at the latest, even without a change this "
        "node heard of (another node's write while the change feed is down). Live data: keep it short.",
        minimum=0.1, maximum=3600, unit="s",
    ),
    Setting(
        "cache.predictions", bool, True,
        "Cache the AI predictions answers (GET /api/predictions, every filter combination).",
    ),
    Setting(
        "cache.predictions_ttl_s", float, 30.0,
        "A cached predictions answer is rebuilt after this long at the latest (the prediction jobs "
        "invalidate every answer when they match or settle one).",
        minimum=0.1, maximum=86400, unit="s",
    ),
    Setting(
        "cache.memory_max_entries", int, 10000,
        "Most bodies the in-process cache keeps (cache.use_redis false); past it, the oldest go first.",
        minimum=1, maximum=10_000_000, unit="entries",
    ),
    Setting(
        "cache.wait_s", float, 5.0,
        "A request waiting for the one build of the same answer gives up after this long (HTTP 503).",
        minimum=0.1, maximum=120, unit="s",
    ),
    Setting(
        "cache.backend_retry_s", float, 5.0,
        "While Redis is unreachable, it is tried again after this long (meanwhile every answer is "
        "built from the database).",
        minimum=0.1, maximum=3600, unit="s",
    ),
)
