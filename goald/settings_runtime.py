"""goald's own settings: identity, database, logging, console, pool monitor, jobs and
supervisor.

One part of the settings table: goald/settings.py puts the parts together, checks them and
documents the table."""
from __future__ import annotations

from goald.setting import Setting

SECTIONS: dict[str, str] = {
    "node": "Identity of this goald instance",
    "database": "PostgreSQL: a server of yours (url) or the embedded one (data_dir)",
    "log": "Logging to standard error (journald under systemd)",
    "console": "HTTP listener for the console, health endpoints and the public API",
    "pool_monitor": "Sampling of the connection pool into pool_samples",
    "jobs": "Periodic jobs: the clock, stagger, the run ledger and shutdown",
    "supervisor": "Restart policy of the actor tree (Erlang/OTP style)",
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
)
