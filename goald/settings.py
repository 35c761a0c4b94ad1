"""The one table of goald's settings.

Every setting is declared here once: its dotted name (`section.key` in goald.toml), type, default,
bounds, the environment variables that override it, help text and whether it is a secret (a
secret is masked, redacted from logs and also read from the systemd credential of its name, see
goald/credentials.py). This table drives parsing and validation (goald/config.py), `goald config`,
the sample goald.toml (`goald config --sample`) and docs/configuration.md (`goald config
--markdown`); a test fails when the committed goald.toml or doc disagree with it.

Environment naming scheme: every setting answers to `GOALD_<SECTION>_<KEY>` (upper case, dots to
underscores). Where the original system (the seeds) had a variable for the same thing, that name
works too (`DATABASE_URL`, `DB_MAX_CONNECTIONS`, ...) and is listed in `legacy_env`. When both are
set, the `GOALD_*` name wins. Job-specific variables of the seeds (`JOB_STAGGER_<JOB>`,
`MATCH_MINUTE_TIMEOUT_MS`, ...) arrive with the jobs that own them and follow the same scheme.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One configurable value. `type` is one of bool, int, float, str; `choices` limits a str."""

    name: str
    type: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    secret: bool = False
    legacy_env: tuple[str, ...] = ()
    # Legal but unusual: a value above warn_above starts with a warning that gives warn_reason.
    warn_above: float | None = None
    warn_reason: str = ""
    unit: str = ""

    @property
    def section(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def key(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def env(self) -> str:
        return "GOALD_" + self.name.replace(".", "_").upper()

    @property
    def env_names(self) -> tuple[str, ...]:
        """Variables that set this value, strongest first."""
        return (self.env, *self.legacy_env)

    def bounds_text(self) -> str:
        if self.choices:
            return " | ".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{_num(self.minimum)}..{_num(self.maximum)}"
        if self.minimum is not None:
            return f">= {_num(self.minimum)}"
        if self.maximum is not None:
            return f"<= {_num(self.maximum)}"
        return ""


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


SECTIONS: dict[str, str] = {
    "node": "Identity of this goald instance",
    "database": "PostgreSQL: a server of yours (url) or the embedded one (data_dir)",
    "log": "Logging to standard error (journald under systemd)",
    "business": "The platform's business jobs: referrals, rewards, reminders",
    "push": "Push notifications: the gateway, the outbox sender, scheduled notifications",
    "telegram": "Telegram settlement: the Bot API that replies to channel posts with their settled picks",
    "predictions": "AI predictions: the matcher (prediction_matcher) and their results (prediction_results)",
    "badges": "Badge auto-unlock (badge_auto_unlock): badges for referrals, predictions, streaks, levels, comments",
    "console": "HTTP listener for the console, health endpoints and the public API",
    "pool_monitor": "Sampling of the connection pool into pool_samples",
    "jobs": "Periodic jobs: the clock, stagger, the run ledger and shutdown",
    "supervisor": "Restart policy of the actor tree (Erlang/OTP style)",
    "provider": "The TheSports-compatible data provider; none configured: the built-in simulator (demo feed)",
    "match": "The live match pipeline: match actors, their batched writes, the ingest jobs",
    "standings": "The standings sync (standings_sync): live and season tables",
    "h2h": "The head-to-head sync (h2h_sync) of upcoming matches",
    "cache": "The public read API's cache of response bodies: in this process, or Redis shared by the nodes",
}

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "node.name", str, "",
        "Name of this instance in logs, pool samples and the run ledger; empty means the host name.",
    ),
    Setting(
        "database.url", str, "",
        "PostgreSQL DSN (postgresql://user:password@host:5432/db). Empty: start the embedded "
        "PostgreSQL in database.data_dir and stop it when goald stops. Under systemd, do not write a "
        "password here: give the DSN as the credential database.url (docs/operations.md, Secrets).",
        secret=True, legacy_env=("DATABASE_URL",),
    ),
    Setting(
        "database.data_dir", str, "",
        "Directory for goald's own state, including the embedded PostgreSQL cluster (<data_dir>/pg). "
        "Empty: $STATE_DIRECTORY (systemd), else /var/lib/goald when goald runs as root, else "
        "$XDG_DATA_HOME/goald, else ~/.local/share/goald. As root, database.embedded_user must be able "
        "to traverse every parent of it.",
    ),
    Setting(
        "database.embedded_user", str, "",
        "When goald runs as root: the existing unprivileged user that runs the embedded PostgreSQL "
        "(initdb, pg_ctl, postgres), which then requires a password kept in <data_dir>/pg-password. "
        "Empty: nobody. goald never creates users. Ignored, with a warning, when goald is not root.",
    ),
    Setting(
        "database.pool_max", int, 20,
        "Most connections the pool opens; a greenlet that finds them all busy waits. Check the "
        "server first with `goald check-db-capacity` before raising it.",
        minimum=1, maximum=500, warn_above=80, unit="connections",
        warn_reason="the seeds cap the pool at min(max_connections - 23, 80); run `goald check-db-capacity`",
        legacy_env=("DB_MAX_CONNECTIONS",),
    ),
    Setting(
        "database.pool_min", int, 1,
        "Connections opened at start and kept open while idle.",
        minimum=0, maximum=500, unit="connections",
    ),
    Setting(
        "database.pool_timeout_s", float, 10.0,
        "How long a greenlet waits for a free connection before it fails with a clear error.",
        minimum=0.1, maximum=600, unit="s",
    ),
    Setting(
        "database.connect_timeout_s", float, 5.0,
        "How long opening one connection may take.",
        minimum=0.5, maximum=120, unit="s",
    ),
    Setting(
        "database.statement_timeout_ms", int, 30000,
        "Server-side limit on any one statement issued through the pool; 0 disables it.",
        minimum=0, maximum=3_600_000, unit="ms", warn_above=600_000,
        warn_reason="statements running for over 10 minutes hold pool connections that long",
    ),
    Setting(
        "database.migrate_on_start", bool, True,
        "Apply pending migrations (sql/) when `goald run` starts.",
    ),
    Setting(
        "log.level", str, "INFO",
        "Lowest level written.",
        choices=("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"),
    ),
    Setting(
        "log.format", str, "auto",
        "auto: readable lines on a terminal, JSON lines otherwise; json or text force one.",
        choices=("auto", "json", "text"),
    ),
    Setting(
        "log.journald_prefix", bool, False,
        "Prefix each line with its syslog priority (<3> error ... <7> debug) so journald keeps levels.",
    ),
    Setting(
        "business.batch_size", int, 5000,
        "Referrals one run of referral_tier2 / referral_tier3 moves at most (with their rewards, in one "
        "transaction); the next run goes on.",
        minimum=1, maximum=1_000_000,
    ),
    Setting(
        "push.gateway_url", str, "",
        "The push gateway (an Expo / FCM-style JSON endpoint: a list of messages in, one ticket per "
        "message out). Empty: push messages wait in notification_outbox (logged once).",
        secret=True,
    ),
    Setting(
        "push.access_token", str, "",
        "Bearer token for the push gateway, if it wants one.",
        secret=True,
    ),
    Setting(
        "push.timeout_s", float, 10.0,
        "Timeout of one request to the push gateway.",
        minimum=0.5, maximum=120, unit="s",
    ),
    Setting(
        "push.batch_size", int, 500,
        "Push messages one run of push_sender claims at most (sent 100 to a request).",
        minimum=1, maximum=100_000,
    ),
    Setting(
        "push.notifications_per_run", int, 10,
        "Due scheduled notifications one run of scheduled_notifications claims at most.",
        minimum=1, maximum=1000,
    ),
    Setting(
        "push.lease_s", float, 120.0,
        "A claimed notification or message not finished within this long (its run was killed) is "
        "claimed again by the next run.",
        minimum=10, maximum=3600, unit="s",
    ),
    Setting(
        "telegram.bot_token", str, "",
        "The Telegram bot's token (from @BotFather); the bot must be able to post in the channels. "
        "Empty: settled posts' replies wait in notification_outbox (channel telegram; logged once).",
        secret=True, legacy_env=("TELEGRAM_BOT_TOKEN",),
    ),
    Setting(
        "telegram.api_url", str, "https://api.telegram.org",
        "The Bot API's base URL (a local Bot API server, or a test double); requests go to "
        "<api_url>/bot<token>/sendMessage.",
    ),
    Setting(
        "telegram.timeout_s", float, 10.0,
        "Timeout of one sendMessage request.",
        minimum=0.5, maximum=60, unit="s",
    ),
    Setting(
        "telegram.retries", int, 2,
        "Quick retries within one send after a transport error, a timeout, a 5xx or a 429 with a short "
        "retry_after (0.5 s, 1 s, ...); after them the send is a failed attempt, tried again next run.",
        minimum=0, maximum=5,
    ),
    Setting(
        "telegram.batch_size", int, 100,
        "Posts one run of telegram_settlement settles at most, and replies it sends at most.",
        minimum=1, maximum=10_000,
    ),
    Setting(
        "telegram.lease_s", float, 900.0,
        "A reply claimed by a run that did not finish within this long (it was killed) is claimed again "
        "by a later run; keep it above the job's timeout, or a slow run's reply may be sent twice.",
        minimum=60, maximum=86400, unit="s",
    ),
    Setting(
        "predictions.batch_size", int, 5000,
        "Predictions one run of prediction_matcher / prediction_results claims at most (in one "
        "statement and transaction); the next run goes on.",
        minimum=1, maximum=1_000_000,
    ),
    Setting(
        "predictions.match_window_s", int, 7200,
        "A match is a candidate for a prediction when its scheduled kick-off lies within this long of "
        "the kick-off the prediction implies (predicted_at minus the minute at prediction, minus the "
        "half-time break past minute 45): room for delays and late predictions.",
        minimum=60, maximum=86400, unit="s",
    ),
    Setting(
        "predictions.match_retry_s", float, 900.0,
        "An unmatched prediction is tried again after this long (its match may arrive later).",
        minimum=10, maximum=86400, unit="s",
    ),
    Setting(
        "predictions.give_up_after_s", float, 86400.0,
        "A prediction still unmatched this long after it was made is given up: status void, "
        "result_note 'unmatched: <reason>'.",
        minimum=60, maximum=30 * 86400, unit="s",
    ),
    Setting(
        "predictions.min_confidence", float, 0.5,
        "The least confidence (0..1: names, league, time, score) with which a prediction is matched; "
        "a best candidate below it is left unmatched ('low confidence').",
        minimum=0, maximum=1,
    ),
    Setting(
        "badges.batch_size", int, 5000,
        "(user, badge) pairs one run of badge_auto_unlock unlocks at most, with their rewards and push "
        "messages, in one transaction; a larger backlog is taken by the next runs (every 5 minutes).",
        minimum=1, maximum=1_000_000, unit="pairs", legacy_env=("BADGE_AUTO_UNLOCK_BATCH_SIZE",),
    ),
    Setting(
        "console.host", str, "127.0.0.1",
        "Address the HTTP listener binds to.",
    ),
    Setting(
        "console.port", int, 8080,
        "Port the HTTP listener binds to; 0 picks a free port (logged at start).",
        minimum=0, maximum=65535,
    ),
    Setting(
        "console.cors_origins", str, "",
        "Origins whose browser pages may read the public API (/api/...), comma-separated "
        "(https://app.example.com,https://admin.example.com), or * for any; empty: no CORS headers "
        "(browsers then keep other origins out).",
    ),
    Setting(
        "console.session_lifetime_s", float, 43200.0,
        "An operator's console login lasts this long (then they log in again); logging out, a new "
        "password or removing the operator ends it sooner, on every node.",
        minimum=300, maximum=30 * 86400, unit="s",
    ),
    Setting(
        "console.login_free_failures", int, 5,
        "Failed console logins allowed per client address and per operator name within 15 minutes; "
        "each one after that must wait twice as long as the last (1 s, 2 s, 4 s ... up to 15 minutes).",
        minimum=1, maximum=1000,
    ),
    Setting(
        "console.secure_cookies", bool, False,
        "Mark the console's session cookie Secure (sent over HTTPS only). Turn it on when the console "
        "is reached through an HTTPS proxy; a request that arrives with X-Forwarded-Proto: https gets "
        "it regardless.",
    ),
    Setting(
        "pool_monitor.interval_s", float, 10.0,
        "Seconds between two samples of the pool (pool_samples row + PoolMonitor log line).",
        minimum=0.5, maximum=3600, unit="s",
    ),
    Setting(
        "pool_monitor.retention_days", float, 7.0,
        "Pool samples older than this are deleted.",
        minimum=0.01, maximum=3650, unit="days",
    ),
    Setting(
        "jobs.stagger_enabled", bool, True,
        "Start each job at its catalog second offset (:15, :30, ...) instead of all at :00. The "
        "`stagger.enabled` flag (`goald jobs stagger on|off`) overrides this once set.",
        legacy_env=("JOB_STAGGER_ENABLED",),
    ),
    Setting(
        "jobs.collisions", str, "warn",
        "Two enabled jobs starting in the same second: warn at start, or refuse to start.",
        choices=("warn", "refuse"),
    ),
    Setting(
        "jobs.grace_s", float, 5.0,
        "A tick this late or less still runs at once; later it is recorded as missed. Only the "
        "latest due occurrence of a job ever runs after a pause (no catch-up burst).",
        minimum=0.1, maximum=3600, unit="s",
    ),
    Setting(
        "jobs.shutdown_timeout_s", float, 30.0,
        "On SIGTERM, how long running jobs may take to finish before they are cancelled and "
        "recorded as interrupted. A second SIGTERM cancels them at once. goald's whole stop takes "
        "this plus 19 s (actors, embedded PostgreSQL).",
        minimum=0, maximum=3600, unit="s", warn_above=41,
        warn_reason="goald's stop would then take longer than the unit's TimeoutStopSec=60s and systemd "
                    "would kill it mid-drain; raise TimeoutStopSec in a drop-in too (`systemctl edit goald`)",
    ),
    Setting(
        "jobs.heartbeat_s", float, 5.0,
        "How often a running job's ledger row is touched. A row silent for 3 heartbeats belongs to "
        "a dead instance and is marked interrupted.",
        minimum=0.5, maximum=300, unit="s",
    ),
    Setting(
        "jobs.ledger_retention_days", float, 30.0,
        "Run ledger rows (job_runs, job_lock_skips) older than this are deleted by the ledger_prune job.",
        minimum=0.01, maximum=3650, unit="days",
    ),
    Setting(
        "jobs.missed_lookback_s", int, 3600,
        "At start, occurrences missed while goald was down are recorded as missed, this far back.",
        minimum=0, maximum=7 * 86400, unit="s",
    ),
    Setting(
        "jobs.flag_poll_s", float, 2.0,
        "How often the clock re-reads the flags table: a `goald jobs enable|disable` takes effect "
        "within this time.",
        minimum=0.2, maximum=300, unit="s",
    ),
    Setting(
        "jobs.modules", str, "",
        "Extra Python modules (comma-separated) whose JOBS lists are added to the catalog.",
    ),
    Setting(
        "supervisor.max_restarts", int, 5,
        "A supervisor whose children restart more than this often within supervisor.max_seconds "
        "gives up and escalates; at the root, goald exits with code 6 (systemd restarts it).",
        minimum=0, maximum=1000,
    ),
    Setting(
        "supervisor.max_seconds", float, 60.0,
        "The window of supervisor.max_restarts.",
        minimum=1, maximum=86400, unit="s",
    ),
    Setting(
        "supervisor.backoff_base_s", float, 0.5,
        "First restart delay; doubles with each crash in a row (with jitter), up to backoff_max_s.",
        minimum=0.01, maximum=600, unit="s",
    ),
    Setting(
        "supervisor.backoff_max_s", float, 30.0,
        "Longest restart delay.",
        minimum=0.01, maximum=3600, unit="s",
    ),
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
        "and a burst of them throttles the whole account, the live feed included. 0: no pacing.",
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

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
BY_ENV: dict[str, Setting] = {env: s for s in SETTINGS for env in s.env_names}


@dataclass
class SettingsTableError(Exception):
    problems: list[str] = field(default_factory=list)


def _check_table() -> None:
    """Fail at import when the table itself is inconsistent (a developer error, caught by any test)."""
    problems = []
    for s in SETTINGS:
        if s.section not in SECTIONS:
            problems.append(f"{s.name}: section {s.section!r} missing from SECTIONS")
        if not isinstance(s.default, s.type) or (s.type is int and isinstance(s.default, bool)):
            problems.append(f"{s.name}: default {s.default!r} is not {s.type.__name__}")
        if s.choices and s.default not in s.choices:
            problems.append(f"{s.name}: default {s.default!r} not in choices")
        if s.secret and s.type is not str:  # masking, redaction and credential files hold text
            problems.append(f"{s.name}: a secret must be a str setting")
    if len(BY_ENV) != sum(len(s.env_names) for s in SETTINGS):
        problems.append("two settings share an environment variable")
    if problems:
        raise SettingsTableError(problems)


_check_table()
