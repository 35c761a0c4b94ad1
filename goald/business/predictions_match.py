"""The prediction matcher (DOMAIN.md, "Business jobs"): AI predictions carry team names, a league
name and the minute and score at prediction time, but no match id; this links each to its match.

`match_batch(conn, now, ...)` is one statement. It claims at most `batch` predictions that are
pending, unmatched, not given up and not tried within `retry_s` (FOR UPDATE SKIP LOCKED: another
instance running at once claims others, never the same; the UPDATE's `match_id IS NULL` and the
row lock make a prediction matched once), and for each:

1. **Kick-off it implies**: predicted_at − minute_at_prediction minutes (− 15 more past minute 45,
   the half-time break). Candidates are the matches whose `match_time` lies within `window_s` of
   it (a delayed kick-off or a late prediction still fits; the index on match_time serves it).
   Names are compared through their words: two alike names share every word of the shorter one,
   so each name's rarest word (among the window's teams) is its key and predictions and teams
   are joined on keys (hash joins), never each against every team of the window: the cost
   follows the batch, not batch × matches.
2. **Names**: both teams' names, normalised by the SQL function `goald_name_norm` (sql/0015:
   lower case, accents folded, fc/cf/sc/afc/club/the/... and numbers dropped), must be alike:
   equal (1) or one a whole-word part of the other (0.7), against the team's name or short name.
   A candidate where either team is unlike is no candidate.
3. **Confidence** 0..1: 0.5 × the two name scores' mean + 0.2 × the league's likeness
   (same scale, against the competition's name or short name) + 0.2 × closeness in time
   (1 at the implied kick-off, 0 at the window's edge) + 0.1 when the score at prediction time
   does not exceed the match's current (or final) score: a tie-breaker.
4. **Decision**: the best candidate, when its confidence is at least `min_confidence` and no other
   is within AMBIGUITY_MARGIN of it. Otherwise `unmatched_reason` says why: 'no candidate within
   window', 'ambiguous: N candidates' (N within the margin), 'low confidence: 0.42'.

An unmatched prediction is tried again after `retry_s` while its match could still appear (the
provider's schedule arrives late), until `predicted_at + give_up_after_s`; the attempt after that
is final: `match_final`, status 'void', result_note 'unmatched: <reason>'. Matched predictions
are final at once. Runs in the caller's greenlet on its connection and commits.
"""
from __future__ import annotations

AMBIGUITY_MARGIN = 0.05       # candidates this close to the best one make the choice ambiguous
HALF_TIME_BREAK_S = 900

_MATCH = """
WITH claimed AS (
    SELECT p.id, p.predicted_at, p.home_score_at, p.away_score_at,
           extract(epoch FROM p.predicted_at)::bigint - p.minute_at_prediction * 60
             - CASE WHEN p.minute_at_prediction > 45 THEN %(break_s)s ELSE 0 END AS kickoff,
           goald_name_norm(p.home_team_name) AS home_norm, goald_name_norm(p.away_team_name) AS away_norm,
           goald_name_norm(p.league_name) AS league_norm
    FROM ai_predictions p
    WHERE p.status = 'pending' AND p.match_id IS NULL AND NOT p.match_final
      AND (p.match_tried_at IS NULL OR p.match_tried_at <= to_timestamp(%(now)s) - make_interval(secs => %(retry_s)s))
    ORDER BY p.match_tried_at NULLS FIRST, p.id
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED),
span AS (
    SELECT min(kickoff) - %(window_s)s AS lo, max(kickoff) + %(window_s)s AS hi FROM claimed),
near AS MATERIALIZED (
    SELECT m.id, m.match_time, m.home_team_id, m.away_team_id, m.competition_id, m.home_display, m.away_display
    FROM matches m, span WHERE m.match_time BETWEEN span.lo AND span.hi),
team_names AS MATERIALIZED (
    SELECT DISTINCT t.id, x.n FROM teams t
    CROSS JOIN LATERAL (VALUES (goald_name_norm(t.name)), (goald_name_norm(t.short_name))) AS x(n)
    WHERE t.id IN (SELECT home_team_id FROM near UNION SELECT away_team_id FROM near) AND x.n <> ''),
team_tokens AS MATERIALIZED (
    SELECT id, n, tok FROM team_names, unnest(string_to_array(n, ' ')) AS tok),
sides AS MATERIALIZED (
    SELECT id AS pid, 'h' AS side, home_norm AS n, kickoff, home_score_at, away_score_at, league_norm
    FROM claimed WHERE home_norm <> ''
    UNION ALL
    SELECT id, 'a', away_norm, kickoff, home_score_at, away_score_at, league_norm FROM claimed WHERE away_norm <> ''),
side_tokens AS MATERIALIZED (
    SELECT s.*, tok FROM sides s, unnest(string_to_array(s.n, ' ')) AS tok),
-- Alike names share the shorter one's every word, so its rarest word (among the window's teams):
-- join on that (hash joins on words, not every prediction against every team of the window;
-- "athletic" or "united" would pair thousands).
word_counts AS MATERIALIZED (
    SELECT tok, count(*) AS teams FROM team_tokens GROUP BY tok),
team_keys AS (
    SELECT DISTINCT ON (t.id, t.n) t.id, t.n, t.tok FROM team_tokens t JOIN word_counts w ON w.tok = t.tok
    ORDER BY t.id, t.n, w.teams, length(t.tok) DESC, t.tok),
side_keys AS (
    SELECT DISTINCT ON (s.pid, s.side) s.* FROM side_tokens s LEFT JOIN word_counts w ON w.tok = s.tok
    ORDER BY s.pid, s.side, coalesce(w.teams, 0), length(s.tok) DESC, s.tok),
alike_sides AS MATERIALIZED (
    SELECT pid, side, team_id, kickoff, home_score_at, away_score_at, league_norm, max(sim) AS s FROM (
        SELECT k.pid, k.side, t.id AS team_id, k.kickoff, k.home_score_at, k.away_score_at, k.league_norm,
               goald_name_similarity(k.n, t.n) AS sim
        FROM side_keys k JOIN team_tokens t ON t.tok = k.tok
        UNION ALL
        SELECT s.pid, s.side, k.id, s.kickoff, s.home_score_at, s.away_score_at, s.league_norm,
               goald_name_similarity(s.n, k.n)
        FROM team_keys k JOIN side_tokens s ON s.tok = k.tok) x
    WHERE sim > 0 GROUP BY pid, side, team_id, kickoff, home_score_at, away_score_at, league_norm),
-- A candidate is a match of the window whose home team is alike the home side and whose away
-- team is alike the away side: the two halves are grouped, not joined.
hits AS (
    SELECT x.pid, x.side, x.s, x.kickoff, x.home_score_at, x.away_score_at, x.league_norm, m.id AS mid,
           m.match_time, m.competition_id, m.home_display, m.away_display
    FROM alike_sides x JOIN near m ON m.home_team_id = x.team_id
    WHERE x.side = 'h' AND m.match_time BETWEEN x.kickoff - %(window_s)s AND x.kickoff + %(window_s)s
    UNION ALL
    SELECT x.pid, x.side, x.s, x.kickoff, x.home_score_at, x.away_score_at, x.league_norm, m.id,
           m.match_time, m.competition_id, m.home_display, m.away_display
    FROM alike_sides x JOIN near m ON m.away_team_id = x.team_id
    WHERE x.side = 'a' AND m.match_time BETWEEN x.kickoff - %(window_s)s AND x.kickoff + %(window_s)s),
candidates AS (
    SELECT pid, mid, kickoff, home_score_at, away_score_at, league_norm, match_time, competition_id,
           home_display, away_display,
           max(s) FILTER (WHERE side = 'h') AS home_s, max(s) FILTER (WHERE side = 'a') AS away_s
    FROM hits
    GROUP BY pid, mid, kickoff, home_score_at, away_score_at, league_norm, match_time, competition_id,
             home_display, away_display
    HAVING count(DISTINCT side) = 2),
league_names AS MATERIALIZED (
    SELECT c.id, goald_name_norm(c.name) AS n, goald_name_norm(c.short_name) AS s FROM competitions c
    WHERE c.id IN (SELECT competition_id FROM near)),
scored AS (
    SELECT k.pid, k.mid,
           (0.5 * (k.home_s + k.away_s) / 2
            + 0.2 * coalesce(greatest(goald_name_similarity(k.league_norm, l.n),
                                      goald_name_similarity(k.league_norm, l.s)), 0)
            + 0.2 * greatest(0, 1 - abs(k.match_time - k.kickoff)::float8 / greatest(%(window_s)s, 1))
            + CASE WHEN k.home_score_at <= k.home_display AND k.away_score_at <= k.away_display THEN 0.1 ELSE 0 END
           )::numeric(6, 4) AS conf
    FROM candidates k LEFT JOIN league_names l ON l.id = k.competition_id),
ranked AS (
    SELECT pid, mid, conf, row_number() OVER w AS rank, max(conf) OVER (PARTITION BY pid) AS best FROM scored
    WINDOW w AS (PARTITION BY pid ORDER BY conf DESC, mid)),
-- Every claimed prediction, with or without candidates: an aggregate, not an outer join.
decided AS (
    SELECT pid, min(mid) FILTER (WHERE rank = 1) AS mid, max(conf) AS conf,
           count(mid) FILTER (WHERE conf >= best - %(margin)s) AS close
    FROM (SELECT pid, mid, conf, best, rank FROM ranked
          UNION ALL SELECT id, NULL, NULL, NULL, NULL FROM claimed) x
    GROUP BY pid),
verdict AS (
    SELECT d.pid AS id, c.predicted_at,
           CASE WHEN d.close = 1 AND d.conf >= %(min_confidence)s THEN d.mid END AS mid, d.conf,
           CASE WHEN d.close = 0 THEN 'no candidate within window'
                WHEN d.close > 1 THEN 'ambiguous: ' || d.close || ' candidates'
                WHEN d.conf < %(min_confidence)s THEN 'low confidence: ' || round(d.conf, 2) END AS reason
    FROM decided d JOIN claimed c ON c.id = d.pid),
done AS (
    UPDATE ai_predictions p
    SET match_id = v.mid,
        match_confidence = CASE WHEN v.mid IS NOT NULL THEN v.conf END,
        matched_at = CASE WHEN v.mid IS NOT NULL THEN to_timestamp(%(now)s) END,
        unmatched_reason = v.reason,
        match_attempts = p.match_attempts + 1,
        match_tried_at = to_timestamp(%(now)s),
        match_final = v.mid IS NOT NULL OR v.predicted_at + make_interval(secs => %(give_up_s)s) <= to_timestamp(%(now)s),
        status = CASE WHEN v.mid IS NULL AND v.predicted_at + make_interval(secs => %(give_up_s)s)
                                           <= to_timestamp(%(now)s) THEN 'void' ELSE p.status END,
        settled_at = CASE WHEN v.mid IS NULL AND v.predicted_at + make_interval(secs => %(give_up_s)s)
                                               <= to_timestamp(%(now)s) THEN to_timestamp(%(now)s) END,
        result_note = CASE WHEN v.mid IS NULL AND v.predicted_at + make_interval(secs => %(give_up_s)s)
                                                <= to_timestamp(%(now)s) THEN 'unmatched: ' || v.reason END
    FROM verdict v
    WHERE p.id = v.id AND p.match_id IS NULL AND p.status = 'pending'
    RETURNING p.match_id, p.unmatched_reason, p.status)
SELECT count(*),
       count(*) FILTER (WHERE match_id IS NOT NULL),
       count(*) FILTER (WHERE unmatched_reason LIKE 'ambiguous%%'),
       count(*) FILTER (WHERE unmatched_reason = 'no candidate within window'),
       count(*) FILTER (WHERE unmatched_reason LIKE 'low confidence%%'),
       count(*) FILTER (WHERE status = 'void')
FROM done
"""


def match_batch(conn, now: float, *, batch: int, window_s: int, retry_s: float, give_up_after_s: float,
                min_confidence: float) -> dict:
    """Match one batch; returns the counts {"tried", "matched", "ambiguous", "no_candidate",
    "low_confidence", "given_up"}. Raises what psycopg2 raises (the run fails; nothing is kept)."""
    with conn.cursor() as cur:
        cur.execute(_MATCH, {"now": now, "batch": batch, "window_s": int(window_s), "retry_s": retry_s,
                             "give_up_s": give_up_after_s, "min_confidence": min_confidence,
                             "margin": AMBIGUITY_MARGIN, "break_s": HALF_TIME_BREAK_S})
        row = cur.fetchone()
    conn.commit()
    return dict(zip(("tried", "matched", "ambiguous", "no_candidate", "low_confidence", "given_up"), row))
