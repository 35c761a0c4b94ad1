-- goald's own tables: pool samples, the run ledger, job flags and their audit trail.
-- Match and business tables arrive with their own migrations.

-- PoolMonitor samples the pool every pool_monitor.interval_s (default 10 s).
CREATE TABLE pool_samples (
    id           bigserial PRIMARY KEY,
    sampled_at   timestamptz NOT NULL DEFAULT now(),
    node         text NOT NULL,
    active       integer NOT NULL,
    idle         integer NOT NULL,
    waiting      integer NOT NULL,
    total        integer NOT NULL,
    max          integer NOT NULL,
    utilization  real NOT NULL          -- percent: active / max * 100
);
CREATE INDEX pool_samples_sampled_at ON pool_samples (sampled_at);

-- The run ledger: exactly one row per job occurrence, whatever happens to it.
-- A row is inserted when an instance claims the occurrence (outcome 'running', heartbeat_at set)
-- and finished in place; UNIQUE (job, scheduled_at) makes "once per occurrence across all
-- instances" a database fact. Manual runs use their request time as scheduled_at.
CREATE TABLE job_runs (
    id                 bigserial PRIMARY KEY,
    job                text NOT NULL,
    scheduled_at       timestamptz NOT NULL,
    trigger            text NOT NULL DEFAULT 'schedule'
                       CHECK (trigger IN ('schedule', 'manual')),
    outcome            text NOT NULL
                       CHECK (outcome IN ('running', 'succeeded', 'failed', 'timed_out',
                                          'skipped_overlap', 'skipped_lock', 'skipped_disabled',
                                          'missed', 'interrupted')),
    node               text NOT NULL,
    started_at         timestamptz,
    finished_at        timestamptz,
    heartbeat_at       timestamptz,
    duration_ms        integer,
    offset_s           integer NOT NULL DEFAULT 0,
    staggered          boolean NOT NULL DEFAULT false,
    error              text,
    rows_affected      bigint,
    queries_issued     integer,
    pool_utilization_at_start real,
    CONSTRAINT job_runs_once_per_occurrence UNIQUE (job, scheduled_at)
);
CREATE INDEX job_runs_started_at ON job_runs (started_at);
CREATE INDEX job_runs_scheduled_at ON job_runs (scheduled_at);
-- Orphan rescue scans only the runs still marked running.
CREATE INDEX job_runs_running ON job_runs (heartbeat_at) WHERE outcome = 'running';

-- Runtime flags: 'stagger.enabled', 'job.<name>.enabled', 'job.<name>.stagger'.
-- Read at start, changed at runtime (CLI, console), every change audited below.
CREATE TABLE flags (
    name        text PRIMARY KEY,
    enabled     boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL
);

CREATE TABLE flag_audit (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    old_value   boolean,                 -- NULL: the flag had no row (its default applied)
    new_value   boolean NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    changed_by  text NOT NULL,
    node        text NOT NULL,
    reason      text
);
CREATE INDEX flag_audit_name_changed_at ON flag_audit (name, changed_at);
