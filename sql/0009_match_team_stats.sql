-- Team statistics (actors/jobs/stats.py): the live stats sync's per-team statistics of a match
-- (match/team_stats/list), and the completeness validator's statistics per half
-- (match/half/team_stats/detail) with its bookkeeping.
--
-- match_team_stats.stats holds only values the provider sent (name -> count, the names of
-- goald/provider/payloads_stats.py TEAM_STAT_FIELDS): an update is merged into it (jsonb ||), so a
-- statistic the provider leaves out later keeps its known value, never becomes NULL.
CREATE TABLE match_team_stats (
    match_id   text NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    team_id    text NOT NULL,
    stats      jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (match_id, team_id)
);

-- Per half (p1, p2, extra time's o1 and o2, and ft for the whole match): statistic id
-- (STATUS_CODE.md "Half-time Statistics") -> home, away. matches.data_completeness says which are
-- there: 1 first half, 2 second half, 4 full time (7: complete).
CREATE TABLE match_half_stats (
    match_id text NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    half     text NOT NULL CHECK (half IN ('p1', 'p2', 'o1', 'o2', 'ft')),
    type     smallint NOT NULL,
    home     integer NOT NULL CHECK (home >= 0),
    away     integer NOT NULL CHECK (away >= 0),
    PRIMARY KEY (match_id, half, type)
);

-- When the completeness validator last asked the provider about a match, and how often it has:
-- a match the provider has no half statistics for is asked again later, a bounded number of times.
CREATE TABLE match_stats_checks (
    match_id   text PRIMARY KEY REFERENCES matches (id) ON DELETE CASCADE,
    checked_at bigint NOT NULL,
    attempts   integer NOT NULL DEFAULT 1
);
