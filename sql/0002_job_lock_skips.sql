-- Lock skips: an instance that finds an occurrence already claimed by another goald instance
-- records it here (the occurrence's one row in job_runs belongs to the instance that ran it).
-- `goald kpi` counts these per job: the seeds' "Lock skips" KPI.
CREATE TABLE job_lock_skips (
    id            bigserial PRIMARY KEY,
    job           text NOT NULL,
    scheduled_at  timestamptz NOT NULL,
    node          text NOT NULL,
    skipped_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_lock_skips_scheduled_at ON job_lock_skips (scheduled_at);
