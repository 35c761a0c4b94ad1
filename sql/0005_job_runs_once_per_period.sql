-- Once per period across every instance, whatever offset each used (see 0004). The old
-- UNIQUE (job, scheduled_at) stays: within one job, periods' due seconds never coincide
-- (an offset is always below the period), so it still holds and costs nothing to keep.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS job_runs_once_per_period ON job_runs (job, period_at);
