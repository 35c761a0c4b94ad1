-- Match safety (goald/match/safety.py, the match_watchdog and stuck_matches jobs): what the
-- watchdog's ladder needs across runs and nodes, and what lets goald end a stuck match without
-- ever outranking the provider.
--
-- provider_status_id: the status the provider last reported. It equals status_id except after goald
--   ended a stuck match itself (status_id 8, ended_reason set): a later provider update is compared
--   with what the provider said, so it applies when it says something new (NULL on rows written
--   before this file: read as status_id).
-- status_changed_ts: when goald ingested the last status change (freeze detection: half-time for
--   over 30 minutes; the deadlines of the stuck-match rule).
-- stale_level: the watchdog's ladder. 0 fresh; 1 stale, warned; 2 reconciled, still stale; 3 still
--   stale after the reconcile, logged as an ERROR; 4 frozen at half-time (ERROR and reconcile).
--   1-3 are cleared by the match writer as soon as a provider message for the match is ingested;
--   4 by the watchdog when the match leaves half-time.
-- stale_since: when the current stale (or frozen) episode was detected.
ALTER TABLE matches ADD COLUMN provider_status_id smallint CHECK (provider_status_id BETWEEN 0 AND 13);
ALTER TABLE matches ADD COLUMN status_changed_ts bigint;
ALTER TABLE matches ADD COLUMN stale_level smallint NOT NULL DEFAULT 0 CHECK (stale_level BETWEEN 0 AND 4);
ALTER TABLE matches ADD COLUMN stale_since bigint;

-- The same guard as sql/0006, with the watchdog's two new columns among those that do not move
-- updated_at (they say how fresh the data are, not what they are).
CREATE OR REPLACE FUNCTION goald_matches_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    col text;
    old_ts bigint;
    new_ts bigint;
BEGIN
    FOREACH col IN ARRAY ARRAY['first_half_kickoff_ts', 'second_half_kickoff_ts', 'overtime_kickoff_ts',
                               'overtime_second_kickoff_ts'] LOOP
        old_ts := (to_jsonb(OLD) ->> col)::bigint;
        new_ts := (to_jsonb(NEW) ->> col)::bigint;
        IF old_ts IS NOT NULL AND new_ts IS DISTINCT FROM old_ts THEN
            RAISE EXCEPTION 'match %: % is written once (%), refusing %', OLD.id, col, old_ts,
                coalesce(new_ts::text, 'NULL') USING ERRCODE = 'GD001';
        END IF;
    END LOOP;
    IF OLD.provider_update_time IS NOT NULL
       AND (NEW.provider_update_time IS NULL OR NEW.provider_update_time < OLD.provider_update_time) THEN
        RAISE EXCEPTION 'match %: provider_update_time % is older than the stored %', OLD.id,
            coalesce(NEW.provider_update_time::text, 'NULL'), OLD.provider_update_time USING ERRCODE = 'GD002';
    END IF;
    IF (to_jsonb(NEW) - ARRAY['period', 'minute', 'added_minute', 'minute_text', 'last_minute_update_ts',
                              'last_event_ts', 'stale_reason', 'stale_level', 'stale_since', 'updated_at',
                              'home_display', 'away_display'])
       IS DISTINCT FROM
       (to_jsonb(OLD) - ARRAY['period', 'minute', 'added_minute', 'minute_text', 'last_minute_update_ts',
                              'last_event_ts', 'stale_reason', 'stale_level', 'stale_since', 'updated_at',
                              'home_display', 'away_display']) THEN
        NEW.updated_at := now();
    ELSE
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
END;
$$;
