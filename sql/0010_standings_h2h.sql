-- Standings and head-to-head (actors/jobs/tables.py, goald/match/tables_store.py): what the
-- public API's standings and h2h endpoints serve, synced from the provider.
--
-- standings: one row per season (its promotion zones and where the table came from), and
-- standing_rows: one line per team and table (a league has one table, a group stage one per
-- group). A season's lines are replaced together, in one transaction, and only when their content
-- changed (`content_hash`) and the provider's time for them is not older than the stored one
-- (`provider_updated_at`): a season table fetched before a live table must not undo it.
CREATE TABLE standings (
    season_id           text PRIMARY KEY,
    competition_id      text,
    source              text NOT NULL CHECK (source IN ('season', 'live')),
    promotions          jsonb NOT NULL DEFAULT '[]'::jsonb,
    provider_updated_at bigint NOT NULL DEFAULT 0,
    content_hash        text NOT NULL,
    fetched_at          timestamptz NOT NULL DEFAULT now(),
    changed_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX standings_competition ON standings (competition_id);

CREATE TABLE standing_rows (
    season_id     text NOT NULL REFERENCES standings (season_id) ON DELETE CASCADE,
    table_id      text NOT NULL,
    stage_id      text NOT NULL DEFAULT '',
    group_num     smallint NOT NULL DEFAULT 0,     -- 0 not a group; 1 = A, 2 = B, ...
    conference    text NOT NULL DEFAULT '',
    team_id       text NOT NULL,
    position      integer NOT NULL CHECK (position >= 0),
    points        integer NOT NULL,
    played        integer NOT NULL CHECK (played >= 0),
    won           integer NOT NULL CHECK (won >= 0),
    drawn         integer NOT NULL CHECK (drawn >= 0),
    lost          integer NOT NULL CHECK (lost >= 0),
    goals_for     integer NOT NULL CHECK (goals_for >= 0),
    goals_against integer NOT NULL CHECK (goals_against >= 0),
    goal_diff     integer NOT NULL,
    deduct_points integer NOT NULL DEFAULT 0,
    promotion_id  text NOT NULL DEFAULT '',
    note          text NOT NULL DEFAULT '',
    home          jsonb NOT NULL,                  -- the same counts for home matches only
    away          jsonb NOT NULL,                  -- ... and away matches
    PRIMARY KEY (season_id, table_id, team_id)
);

-- Head-to-head and recent form per match (match/analysis), kept as the decoded rows: previous
-- meetings (vs), each team's recent results and next matches, and the goal distribution.
-- Replaced whole when its content changed.
CREATE TABLE match_h2h (
    match_id          text PRIMARY KEY REFERENCES matches (id) ON DELETE CASCADE,
    vs                jsonb NOT NULL DEFAULT '[]'::jsonb,
    home_recent       jsonb NOT NULL DEFAULT '[]'::jsonb,
    away_recent       jsonb NOT NULL DEFAULT '[]'::jsonb,
    home_next         jsonb NOT NULL DEFAULT '[]'::jsonb,
    away_next         jsonb NOT NULL DEFAULT '[]'::jsonb,
    goal_distribution jsonb NOT NULL DEFAULT '{}'::jsonb,
    content_hash      text NOT NULL,
    fetched_at        timestamptz NOT NULL DEFAULT now(),
    changed_at        timestamptz NOT NULL DEFAULT now()
);
