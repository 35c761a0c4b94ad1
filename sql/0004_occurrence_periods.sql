-- An occurrence is its job plus the nominal instant of its period (before the stagger offset),
-- not the second it happened to be due: two instances whose offsets differ (the stagger flag seen
-- at different moments, a SIGHUP on one node, configuration drift) must still run each period
-- once. `scheduled_at` stays the instant the occurrence was due (period_at + offset_s).
ALTER TABLE job_runs ADD COLUMN period_at timestamptz;
ALTER TABLE job_lock_skips ADD COLUMN period_at timestamptz;

-- Connection-held time of a run: flattened [start_us, end_us, start_us, end_us, ...] in epoch
-- microseconds, disjoint and in order, one pair per stretch in which the run held at least one
-- pooled connection. '{}' = the run never touched the database; NULL = not recorded (rows from
-- before this migration). `goald kpi` counts concurrent database jobs from these.
ALTER TABLE job_runs ADD COLUMN db_spans int8[];

-- Rows written before this migration: their period is their due second minus the offset used.
-- The old code could record one period twice (offset 0 and offset N after a stagger flip): only
-- the first row of such a pair gets the period, so the unique index in 0005 can be built; the
-- other keeps period_at NULL and stays as the record of what happened.
UPDATE job_runs r SET period_at = r.scheduled_at - r.offset_s * interval '1 second'
FROM (SELECT DISTINCT ON (job, scheduled_at - offset_s * interval '1 second') id
      FROM job_runs WHERE period_at IS NULL
      ORDER BY job, scheduled_at - offset_s * interval '1 second', id) first_of_period
WHERE r.id = first_of_period.id;

-- The one claim of an occurrence, in one round trip (actors/ledger.py calls it; see there for
-- the outcomes). Serialised per job across every instance by a transaction-scoped advisory lock.
-- Every insert is ON CONFLICT DO NOTHING: a writer that does not take the lock (a `missed` row
-- written after the grace period) can never make a claim fail; the claim then reports the row
-- that is there. Answers (outcome, run_id, holder, existing):
--   running          - this instance runs it; run_id is its row
--   skipped_disabled - the job's flag (or, with no flag row, p_enabled_default) says disabled
--   skipped_overlap  - another run of the job is running with a fresh heartbeat (holder = its node)
--   skipped_lock     - the period already had a row (holder = its node, existing = its outcome);
--                      a job_lock_skips row is written
CREATE OR REPLACE FUNCTION goald_claim_occurrence(
    p_job text, p_period_at timestamptz, p_scheduled_at timestamptz, p_trigger text, p_node text,
    p_offset_s integer, p_staggered boolean, p_flag text, p_enabled_default boolean,
    p_overlap_skip boolean, p_stale_after_s double precision, p_utilization real, p_lock_key bigint)
RETURNS TABLE (outcome text, run_id bigint, holder text, existing text)
LANGUAGE plpgsql AS $$
DECLARE
    v_holder text;
    v_existing text;
    v_enabled boolean;
    v_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock_key);
    SELECT r.node, r.outcome INTO v_holder, v_existing
    FROM job_runs r WHERE r.job = p_job AND r.period_at = p_period_at;
    IF NOT FOUND THEN
        SELECT f.enabled INTO v_enabled FROM flags f WHERE f.name = p_flag;
        IF NOT FOUND THEN
            v_enabled := p_enabled_default;
        END IF;
        IF NOT v_enabled THEN
            INSERT INTO job_runs AS r (job, period_at, scheduled_at, trigger, outcome, node, finished_at,
                                       offset_s, staggered)
            VALUES (p_job, p_period_at, p_scheduled_at, p_trigger, 'skipped_disabled', p_node, now(),
                    p_offset_s, p_staggered)
            ON CONFLICT DO NOTHING RETURNING r.id INTO v_id;
            IF v_id IS NOT NULL THEN
                RETURN QUERY SELECT 'skipped_disabled'::text, v_id, NULL::text, NULL::text;
                RETURN;
            END IF;
        ELSE
            IF p_overlap_skip THEN
                SELECT r.node INTO v_holder FROM job_runs r
                WHERE r.job = p_job AND r.outcome = 'running'
                  AND r.heartbeat_at > now() - make_interval(secs => p_stale_after_s)
                LIMIT 1;
            END IF;
            IF v_holder IS NOT NULL THEN
                INSERT INTO job_runs AS r (job, period_at, scheduled_at, trigger, outcome, node, finished_at,
                                           duration_ms, offset_s, staggered, error, pool_utilization_at_start)
                VALUES (p_job, p_period_at, p_scheduled_at, p_trigger, 'skipped_overlap', p_node, now(), 0,
                        p_offset_s, p_staggered, 'previous run still going on ' || v_holder, p_utilization)
                ON CONFLICT DO NOTHING RETURNING r.id INTO v_id;
                IF v_id IS NOT NULL THEN
                    RETURN QUERY SELECT 'skipped_overlap'::text, v_id, v_holder, NULL::text;
                    RETURN;
                END IF;
            ELSE
                INSERT INTO job_runs AS r (job, period_at, scheduled_at, trigger, outcome, node, heartbeat_at,
                                           offset_s, staggered, pool_utilization_at_start)
                VALUES (p_job, p_period_at, p_scheduled_at, p_trigger, 'running', p_node, now(),
                        p_offset_s, p_staggered, p_utilization)
                ON CONFLICT DO NOTHING RETURNING r.id INTO v_id;
                IF v_id IS NOT NULL THEN
                    RETURN QUERY SELECT 'running'::text, v_id, NULL::text, NULL::text;
                    RETURN;
                END IF;
            END IF;
        END IF;
        -- An insert found a row that a writer without the lock committed meanwhile.
        SELECT r.node, r.outcome INTO v_holder, v_existing
        FROM job_runs r
        WHERE r.job = p_job AND (r.period_at = p_period_at OR r.scheduled_at = p_scheduled_at)
        LIMIT 1;
    END IF;
    INSERT INTO job_lock_skips (job, scheduled_at, period_at, node)
    VALUES (p_job, p_scheduled_at, p_period_at, p_node);
    RETURN QUERY SELECT 'skipped_lock'::text, NULL::bigint, v_holder, v_existing;
END
$$;
