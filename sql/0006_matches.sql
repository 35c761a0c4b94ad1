-- The match database: reference data (competitions, seasons, teams), matches with every field
-- DOMAIN.md names, their stats and incidents. Times of the provider are Unix seconds (UTC) in
-- bigint, as the provider sends them; goald's own bookkeeping is timestamptz.
--
-- No foreign keys from matches to teams or competitions: the provider sends a match before the
-- reference sync has seen its teams (the ingest order is free); stats and incidents belong to
-- their match and go with it.

CREATE TABLE competitions (
    id                  text PRIMARY KEY,
    name                text NOT NULL DEFAULT '',
    short_name          text,
    logo                text,
    country_id          text,
    category_id         text,
    type                smallint,               -- 1 league, 2 cup (provider's)
    provider_updated_at bigint,                 -- the provider's updated_at
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE seasons (
    id                  text PRIMARY KEY,
    competition_id      text NOT NULL,
    year                text NOT NULL DEFAULT '',
    is_current          boolean,
    provider_updated_at bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX seasons_competition ON seasons (competition_id);

CREATE TABLE teams (
    id                  text PRIMARY KEY,
    competition_id      text,
    country_id          text,
    name                text NOT NULL DEFAULT '',
    short_name          text,
    logo                text,
    national            boolean NOT NULL DEFAULT false,
    country_logo        text,
    provider_updated_at bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE matches (
    id                         text PRIMARY KEY,
    season_id                  text,
    competition_id             text,
    home_team_id               text,
    away_team_id               text,
    venue_id                   text,
    referee_id                 text,
    neutral                    boolean NOT NULL DEFAULT false,
    status_id                  smallint NOT NULL DEFAULT 1 CHECK (status_id BETWEEN 0 AND 13),
    match_time                 bigint NOT NULL,            -- scheduled kick-off
    -- Scores (DOMAIN.md's 7-int arrays, split): overtime includes regular time and is 0 until extra
    -- time; the shoot-out is never added to goals; display = overtime when > 0, else regular.
    home_regular               smallint NOT NULL DEFAULT 0 CHECK (home_regular >= 0),
    away_regular               smallint NOT NULL DEFAULT 0 CHECK (away_regular >= 0),
    home_half_time             smallint NOT NULL DEFAULT 0 CHECK (home_half_time >= 0),
    away_half_time             smallint NOT NULL DEFAULT 0 CHECK (away_half_time >= 0),
    home_overtime              smallint NOT NULL DEFAULT 0 CHECK (home_overtime >= 0),
    away_overtime              smallint NOT NULL DEFAULT 0 CHECK (away_overtime >= 0),
    home_penalties             smallint NOT NULL DEFAULT 0 CHECK (home_penalties >= 0),
    away_penalties             smallint NOT NULL DEFAULT 0 CHECK (away_penalties >= 0),
    home_display               smallint GENERATED ALWAYS AS
                                   (CASE WHEN home_overtime > 0 THEN home_overtime ELSE home_regular END) STORED,
    away_display               smallint GENERATED ALWAYS AS
                                   (CASE WHEN away_overtime > 0 THEN away_overtime ELSE away_regular END) STORED,
    home_red_cards             smallint NOT NULL DEFAULT 0 CHECK (home_red_cards >= 0),
    away_red_cards             smallint NOT NULL DEFAULT 0 CHECK (away_red_cards >= 0),
    home_yellow_cards          smallint NOT NULL DEFAULT 0 CHECK (home_yellow_cards >= 0),
    away_yellow_cards          smallint NOT NULL DEFAULT 0 CHECK (away_yellow_cards >= 0),
    home_corners               smallint CHECK (home_corners >= 0),   -- NULL: no data (the provider's -1)
    away_corners               smallint CHECK (away_corners >= 0),
    -- Kick-offs of each period, written once, each on its own transition (goald/match/minute.py).
    -- Extra time has two halves, each with its own kick-off: the second half's minute counts from
    -- its own, never on from the first's across the break.
    first_half_kickoff_ts      bigint,
    second_half_kickoff_ts     bigint,
    overtime_kickoff_ts        bigint,
    overtime_second_kickoff_ts bigint,
    -- The minute engine's columns (and only these are its to write).
    period                     text NOT NULL DEFAULT 'not_started',
    minute                     smallint,
    added_minute               smallint,
    minute_text                text NOT NULL DEFAULT '',
    last_minute_update_ts      bigint,
    announced_added_minute     smallint,            -- the stoppage announced for the current half
    provider_update_time       bigint,              -- the provider's time of the state held: only increases
    last_event_ts              bigint,              -- when goald ingested the last provider event
    stale_reason               text,
    ended_reason               text,
    finished_after             text CHECK (finished_after IN ('regular', 'extra_time', 'penalties')),
    data_completeness          smallint NOT NULL DEFAULT 0,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX matches_live ON matches (status_id) WHERE status_id IN (2, 3, 4, 5, 7);
CREATE INDEX matches_match_time ON matches (match_time);
CREATE INDEX matches_competition_time ON matches (competition_id, match_time);
CREATE INDEX matches_season ON matches (season_id);

CREATE TABLE match_stats (
    match_id text NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    type     smallint NOT NULL,                 -- STATUS_CODE.md, technical statistics
    home     integer NOT NULL,
    away     integer NOT NULL,
    PRIMARY KEY (match_id, type)
);

CREATE TABLE match_incidents (
    match_id        text NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    seq             integer NOT NULL,           -- position in the provider's list
    type            smallint NOT NULL,
    position        smallint,                   -- 0 neutral, 1 home, 2 away
    time            smallint,                   -- match minute (45 for 45+3', with add_time 3)
    second          integer,
    add_time        smallint,
    player_id       text,
    player_name     text,
    assist1_id      text,
    assist1_name    text,
    assist2_id      text,
    assist2_name    text,
    home_score      smallint,
    away_score      smallint,
    in_player_id    text,
    in_player_name  text,
    out_player_id   text,
    out_player_name text,
    var_reason      smallint,
    var_result      smallint,
    reason_type     smallint,
    PRIMARY KEY (match_id, seq)
);

-- The invariants no writer may break, enforced here so that no future writer can:
--   * a kick-off timestamp, once set, is never rewritten (nor cleared);      SQLSTATE GD001
--   * provider_update_time never goes backwards (nor back to NULL);          SQLSTATE GD002
--   * updated_at moves when the match's data change and only then: the minute engine's columns
--     (period, minute, added_minute, minute_text, last_minute_update_ts), the ingestion stamp
--     and the watchdog's stale_reason do not move it, and a write that changes nothing keeps it.
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
    -- (home_display/away_display are left out too: generated columns are NULL in NEW here, and
    -- they follow from the scores compared anyway.)
    IF (to_jsonb(NEW) - ARRAY['period', 'minute', 'added_minute', 'minute_text', 'last_minute_update_ts',
                              'last_event_ts', 'stale_reason', 'updated_at', 'home_display', 'away_display'])
       IS DISTINCT FROM
       (to_jsonb(OLD) - ARRAY['period', 'minute', 'added_minute', 'minute_text', 'last_minute_update_ts',
                              'last_event_ts', 'stale_reason', 'updated_at', 'home_display', 'away_display']) THEN
        NEW.updated_at := now();
    ELSE
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER matches_guard BEFORE UPDATE ON matches FOR EACH ROW EXECUTE FUNCTION goald_matches_guard();
