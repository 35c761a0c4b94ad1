-- The console's run history filtered by job (goald/runs.py `history`: WHERE job = ... ORDER BY id
-- DESC, paged by id): without this index a job that runs once a day was found by scanning the
-- whole ledger backwards (bench/console.py: ~120 ms on a million rows; a few ms with it).
CREATE INDEX CONCURRENTLY IF NOT EXISTS job_runs_job_id ON job_runs (job, id);
