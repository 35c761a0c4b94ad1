"""Prediction results (DOMAIN.md, "Business jobs"): matched pending predictions settled won / lost
from their match's scores once the match reached the state the market needs.

- **Full-time markets** (1X2, double chance, both teams to score, over / under) settle when the
  match has ended (status 8), from the **regular-time** score (`home_regular` / `away_regular`:
  the betting convention for these markets is 90 minutes plus stoppage; extra time and the
  shoot-out do not count, so a 1-1 decided in extra time settles `draw` as won).
- **Half-time markets** (`ht_*`) settle from the half-time score (`home_half_time` /
  `away_half_time`) as soon as half time is over or under way: status 3 (half-time), 4, 5, 6, 7
  (second half, extra time, penalties) or 8. A 0-0 half time is a score: `ht_over_0_5` is LOST,
  never void (the original read the half-time score from the wrong place and voided every
  half-time pick).
- **Void** only when the score truly cannot exist: the match was cancelled (12), or abandoned
  (11, "cut in half") before the market's period was over — half-time markets of a match
  abandoned in the second half (its second half had kicked off) still settle from the half-time
  score. Delayed, interrupted or undecided matches (9, 10, 13) wait.

`settle_batch(conn, now, batch)` is one statement: at most `batch` due predictions are claimed
(FOR UPDATE SKIP LOCKED) and settled; its UPDATE's `WHERE status = 'pending'` makes a settlement
happen once, so a later score correction does not settle again. Runs in the caller's greenlet on
its connection and commits.
"""
from __future__ import annotations

# market -> (period, won when): h / a the period's home / away goals. The CHECK constraint of
# sql/0015 lists the same names (tests/test_business_predictions.py compares them).
MARKETS: dict[str, tuple[str, str]] = {
    "home_win": ("ft", "h > a"), "draw": ("ft", "h = a"), "away_win": ("ft", "h < a"),
    "home_or_draw": ("ft", "h >= a"), "draw_or_away": ("ft", "h <= a"), "home_or_away": ("ft", "h <> a"),
    "btts": ("ft", "h > 0 AND a > 0"), "btts_no": ("ft", "NOT (h > 0 AND a > 0)"),
    "over_0_5": ("ft", "h + a > 0"), "over_1_5": ("ft", "h + a > 1"), "over_2_5": ("ft", "h + a > 2"),
    "over_3_5": ("ft", "h + a > 3"), "over_4_5": ("ft", "h + a > 4"),
    "under_1_5": ("ft", "h + a < 2"), "under_2_5": ("ft", "h + a < 3"), "under_3_5": ("ft", "h + a < 4"),
    "ht_home_win": ("ht", "h > a"), "ht_draw": ("ht", "h = a"), "ht_away_win": ("ht", "h < a"),
    "ht_btts": ("ht", "h > 0 AND a > 0"), "ht_over_0_5": ("ht", "h + a > 0"), "ht_over_1_5": ("ht", "h + a > 1"),
    "ht_over_2_5": ("ht", "h + a > 2"), "ht_under_0_5": ("ht", "h + a < 1"), "ht_under_1_5": ("ht", "h + a < 2"),
}
ENDED, ABANDONED, CANCELLED = 8, 11, 12
HALF_TIME_OVER = (3, 4, 5, 6, 7, 8)         # half time reached: the half-time score is known

_WON = " ".join(f"WHEN '{m}' THEN {cond}" for m, (_, cond) in MARKETS.items())
_HT_MARKETS = ", ".join(f"'{m}'" for m, (period, _) in MARKETS.items() if period == "ht")

_SETTLE = f"""
WITH due AS (
    SELECT p.id, p.market, p.market IN ({_HT_MARKETS}) AS ht, m.status_id,
           m.second_half_kickoff_ts IS NOT NULL AS second_half_started,
           m.home_regular, m.away_regular, m.home_half_time, m.away_half_time
    FROM ai_predictions p JOIN matches m ON m.id = p.match_id
    WHERE p.status = 'pending' AND p.match_id IS NOT NULL
      AND (m.status_id IN ({ENDED}, {ABANDONED}, {CANCELLED})
           OR (p.market IN ({_HT_MARKETS}) AND m.status_id IN ({", ".join(map(str, HALF_TIME_OVER))})))
    ORDER BY p.id
    LIMIT %(batch)s
    FOR UPDATE OF p SKIP LOCKED),
scored AS (
    SELECT id, market, ht,
           CASE WHEN status_id = {CANCELLED} THEN 'void: match cancelled'
                WHEN status_id = {ABANDONED} AND NOT (ht AND second_half_started)
                    THEN 'void: match abandoned before ' || CASE WHEN ht THEN 'half time' ELSE 'full time' END
           END AS void_note,
           CASE WHEN ht THEN home_half_time ELSE home_regular END AS h,
           CASE WHEN ht THEN away_half_time ELSE away_regular END AS a
    FROM due),
judged AS (
    SELECT id,
           CASE WHEN void_note IS NOT NULL THEN 'void'
                WHEN CASE market {_WON} END THEN 'won' ELSE 'lost' END AS outcome,
           coalesce(void_note, CASE WHEN ht THEN 'HT ' ELSE 'FT ' END || h || '-' || a) AS note
    FROM scored),
settled AS (
    UPDATE ai_predictions p SET status = j.outcome, settled_at = to_timestamp(%(now)s), result_note = j.note
    FROM judged j WHERE p.id = j.id AND p.status = 'pending'
    RETURNING p.status)
SELECT count(*) FILTER (WHERE status = 'won'), count(*) FILTER (WHERE status = 'lost'),
       count(*) FILTER (WHERE status = 'void')
FROM settled
"""


def settle_batch(conn, now: float, batch: int) -> dict:
    """Settle one batch; returns {"won", "lost", "void"}. Raises what psycopg2 raises (the run
    fails; nothing is kept)."""
    with conn.cursor() as cur:
        cur.execute(_SETTLE, {"now": now, "batch": batch})
        won, lost, void = cur.fetchone()
    conn.commit()
    return {"won": won, "lost": lost, "void": void}


def market_period(market: str) -> str:
    """'ft' or 'ht' (KeyError for an unknown market)."""
    return MARKETS[market][0]
