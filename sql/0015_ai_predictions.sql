-- AI predictions (goald/business/predictions*.py, actors/jobs/predictions.py, GET /api/predictions).
-- A prediction arrives from the AI with team names, a league name and the minute and score at the
-- time it was made, but no match id: `prediction_matcher` links it to a match (normalised names,
-- a time window around the kick-off it implies) with a confidence, or records why it could not
-- (retried while the match could still appear, then given up: status 'void'). `prediction_results`
-- settles matched pending predictions won / lost from the match's scores (full-time markets from
-- the regular-time score once the match ended, half-time markets from the half-time score once
-- half time is over), void only when the score truly cannot exist (cancelled, abandoned before
-- the period). `WHERE status = 'pending'` in the one UPDATE makes a settlement happen once.
--
-- external_id is the AI's own id: importing the same prediction twice is one row (ON CONFLICT).

-- Team and league names folded for comparison: lower case, accents folded (translate(): the
-- embedded PostgreSQL may lack unaccent), ß/æ/œ spelled out, dots and apostrophes dropped
-- ("C.F." is 'cf'), other punctuation to spaces, common club tokens (fc, cf, sc, afc, ac, as, cd,
-- sv, fk, sk, club, the) and standalone numbers ("1. FC Köln", "Schalke 04") removed, whitespace
-- collapsed. "FC Bayern München" and "Bayern Munchen" are both 'bayern munchen'. A name made only
-- of such tokens keeps them ("AC" stays 'ac'). Accented capitals are folded too, should lower()
-- leave them (a database whose LC_CTYPE is C).
CREATE FUNCTION goald_name_norm(name text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURNS NULL ON NULL INPUT AS $$
    SELECT coalesce(nullif(btrim(regexp_replace(regexp_replace(cleaned,
                   '\m(fc|cf|sc|afc|ac|as|cd|sv|fk|sk|club|the|[0-9]+)\M', ' ', 'g'), '\s+', ' ', 'g')), ''),
                   btrim(regexp_replace(cleaned, '\s+', ' ', 'g')))
    FROM (SELECT regexp_replace(
                     translate(replace(replace(replace(regexp_replace(lower(name), '[.''’]', '', 'g'),
                                                       'ß', 'ss'), 'æ', 'ae'), 'œ', 'oe'),
                               'áàâäãåāăąçćčďđéèêëēėęěğíìîïīįıłľĺñńňóòôöõøōőŕřśšşșťţțúùûüūůűųýÿźżž'
                               'ÁÀÂÄÃÅĀĂĄÇĆČĎĐÉÈÊËĒĖĘĚĞÍÌÎÏĪĮŁĽĹÑŃŇÓÒÔÖÕØŌŐŔŘŚŠŞȘŤŢȚÚÙÛÜŪŮŰŲÝŸŹŻŽ',
                               'aaaaaaaaacccddeeeeeeeegiiiiiiilllnnnoooooooorrsssstttuuuuuuuuyyzzz'
                               'aaaaaaaaacccddeeeeeeeegiiiiiilllnnnoooooooorrsssstttuuuuuuuuyyzzz'),
                     '[^a-z0-9]+', ' ', 'g') AS cleaned) s
$$;

-- How alike two normalised names are: 1 equal, 0.7 when one is a whole-word part of the other
-- ('bayern' in 'bayern munchen'), else 0.
CREATE FUNCTION goald_name_similarity(a text, b text) RETURNS real LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN a IS NULL OR b IS NULL OR a = '' OR b = '' THEN 0::real
                WHEN a = b THEN 1::real
                WHEN position(' ' || a || ' ' IN ' ' || b || ' ') > 0
                  OR position(' ' || b || ' ' IN ' ' || a || ' ') > 0 THEN 0.7::real
                ELSE 0::real END
$$;

CREATE TABLE ai_predictions (
    id                   bigserial PRIMARY KEY,
    external_id          text NOT NULL UNIQUE,
    home_team_name       text NOT NULL,
    away_team_name       text NOT NULL,
    league_name          text NOT NULL DEFAULT '',
    predicted_at         timestamptz NOT NULL,
    minute_at_prediction smallint NOT NULL DEFAULT 0 CHECK (minute_at_prediction BETWEEN 0 AND 130),
    home_score_at        smallint NOT NULL DEFAULT 0 CHECK (home_score_at >= 0),
    away_score_at        smallint NOT NULL DEFAULT 0 CHECK (away_score_at >= 0),
    -- goald/business/predictions_results.py MARKETS is the same list (a test compares them).
    market               text NOT NULL CHECK (market IN (
                             'home_win', 'draw', 'away_win', 'home_or_draw', 'draw_or_away', 'home_or_away',
                             'btts', 'btts_no', 'over_0_5', 'over_1_5', 'over_2_5', 'over_3_5', 'over_4_5',
                             'under_1_5', 'under_2_5', 'under_3_5',
                             'ht_home_win', 'ht_draw', 'ht_away_win', 'ht_btts', 'ht_over_0_5', 'ht_over_1_5',
                             'ht_over_2_5', 'ht_under_0_5', 'ht_under_1_5')),
    confidence           real CHECK (confidence BETWEEN 0 AND 1),      -- the AI's
    -- The matcher's (goald/business/predictions_match.py).
    match_id             text REFERENCES matches (id) ON DELETE SET NULL,
    match_confidence     real CHECK (match_confidence BETWEEN 0 AND 1),
    unmatched_reason     text,
    matched_at           timestamptz,
    match_attempts       integer NOT NULL DEFAULT 0,
    match_tried_at       timestamptz,                 -- the last attempt; retried predictions.match_retry_s after it
    match_final          boolean NOT NULL DEFAULT false,   -- matched, or given up: the matcher is done with it
    -- The results' (goald/business/predictions_results.py).
    status               text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'won', 'lost', 'void')),
    settled_at           timestamptz,
    result_note          text,                        -- 'FT 2-1', 'HT 0-0', 'void: match cancelled', ...
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (match_id IS NULL OR match_confidence IS NOT NULL),
    CHECK ((status = 'pending') = (settled_at IS NULL))
);
-- The matcher's claim: pending, unmatched, not given up, oldest attempt first.
CREATE INDEX ai_predictions_to_match ON ai_predictions (match_tried_at NULLS FIRST, id)
    WHERE status = 'pending' AND match_id IS NULL AND NOT match_final;
-- The results' scan: pending and matched.
CREATE INDEX ai_predictions_to_settle ON ai_predictions (match_id) WHERE status = 'pending' AND match_id IS NOT NULL;
-- GET /api/predictions: newest first (and its date filter), by match (and competition), by status.
CREATE INDEX ai_predictions_feed ON ai_predictions (predicted_at DESC, id DESC);
CREATE INDEX ai_predictions_by_match ON ai_predictions (match_id, predicted_at DESC, id DESC) WHERE match_id IS NOT NULL;
CREATE INDEX ai_predictions_by_status ON ai_predictions (status, predicted_at DESC, id DESC);
