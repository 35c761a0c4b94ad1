"""Telegram settlement (DOMAIN.md, "Telegram settlement"): picks settled once, the summary reply
queued with them, the post settled only when Telegram took the reply.

- `settle_and_queue(conn, limit)`: ONE statement takes at most `limit` open posts whose match has
  ended (status 8) or can never be completed (11 cut in half, 12 cancelled) and whose reply is not
  queued yet (FOR UPDATE SKIP LOCKED: two instances never take the same post), settles each of
  their picks (`outcome` written only WHERE outcome IS NULL: settled once, never again), and
  queues the summary reply in notification_outbox (channel `telegram`, dedupe key
  `telegram_reply:<post>`, ON CONFLICT DO NOTHING), all in one transaction. The post stays `open`.
- `claim_replies(conn, limit, lease_s)`: one statement claims due telegram replies (pending, or
  `sending` with an expired lease: a killed run's reply is claimed again), with
  notifications.OUTBOX_CLAIM_CTES.
- `record_replies(conn, results)`: one statement records each send: `sent` → outbox `sent`, post
  `settled` (settled_at, reply_message_id); `failed` → reply_attempts + 1 and last_error, outbox
  back to `pending` for the next run, or after MAX_ATTEMPTS failed sends post `reply_failed` and
  outbox `failed` (never claimed again); `release` (not tried: breaker open, throttled, out of
  time) → back to `pending`, no attempt counted. A result counts only while its row is still the
  claimer's (`sending` with the attempts number it was claimed with). Picks are not touched.

The rules (a pick is void ONLY when the data truly is missing):
- Full-time markets (btts, over_N_5, home_win / draw / away_win) use regular time: home_regular /
  away_regular (extra time and penalties never count).
- Half-time markets (ht_over_N_5) use home_half_time / away_half_time, which are NOT NULL: a 0-0
  half time is a real score, so HT 0-0 makes ht_over_0_5 LOST, never void.
- Status 8 (ended): every pick is won or lost, never void.
- Status 11 (cut in half) / 12 (cancelled): the match will never be completed. A half-time
  market settles from the half-time score when the first half was completed (the second half
  kicked off: second_half_kickoff_ts is set). Otherwise, and for full-time markets, a pick that
  the goals already scored decided stands (over N.5 with more than N goals, half-time over N.5 with
  more than N goals in the unfinished first half, btts with both teams scoring: won); every other
  pick (1X2, an over not reached) is VOID with its reason (`match cancelled`, `match abandoned
  before half time`, `match abandoned before full time`).
- Any other status (live, half time, interrupted, postponed): nothing is settled yet.

`seed_demo(cur, max_posts)`: demo posts with picks on matches present (ended and live ones).
Functions run in the caller's greenlet on its connection; all but seed_demo commit. An exception
(e.g. the database going away) leaves the transaction rolled back by the caller's pool: nothing
half-done.
"""
from __future__ import annotations

import json

from goald.business.notifications import OUTBOX_CLAIM_CTES

MAX_ATTEMPTS = 5
DEMO_CHANNEL = "@goald_demo"

# market, kind, line, label, order in the summary
_MARKETS = """(VALUES
    ('home_win', '1x2', 0, 'Home win', 1), ('draw', '1x2', 0, 'Draw', 2), ('away_win', '1x2', 0, 'Away win', 3),
    ('btts', 'btts', 0, 'Both teams to score', 4),
    ('over_1_5', 'over', 1, 'Over 1.5 goals', 5), ('over_2_5', 'over', 2, 'Over 2.5 goals', 6),
    ('over_3_5', 'over', 3, 'Over 3.5 goals', 7),
    ('ht_over_0_5', 'ht_over', 0, 'Half-time over 0.5 goals', 8),
    ('ht_over_1_5', 'ht_over', 1, 'Half-time over 1.5 goals', 9)) AS mk(market, kind, line, label, ord)"""

_SETTLE = """
WITH posts AS (
    SELECT t.id, t.channel_id, t.message_id, m.status_id, m.finished_after,
           m.home_regular AS hr, m.away_regular AS ar, m.home_half_time AS hh, m.away_half_time AS ah,
           (m.status_id = 8 OR m.second_half_kickoff_ts IS NOT NULL) AS ht_complete,
           coalesce(nullif(th.name, ''), 'Home') AS home, coalesce(nullif(ta.name, ''), 'Away') AS away
    FROM telegram_posts t JOIN matches m ON m.id = t.match_id
    LEFT JOIN teams th ON th.id = m.home_team_id LEFT JOIN teams ta ON ta.id = m.away_team_id
    WHERE t.status = 'open' AND t.reply_queued_at IS NULL AND m.status_id IN (8, 11, 12)
    ORDER BY t.id LIMIT %(limit)s
    FOR UPDATE OF t SKIP LOCKED),
decided AS (
    SELECT k.id, k.post_id, k.outcome AS before, k.void_reason AS before_reason, mk.label, mk.ord,
           p.status_id, mk.kind,
           CASE mk.kind
               WHEN 'over' THEN CASE WHEN p.hr + p.ar > mk.line THEN 'won' WHEN p.status_id = 8 THEN 'lost' END
               WHEN 'ht_over' THEN CASE WHEN p.ht_complete AND p.hh + p.ah > mk.line THEN 'won'
                                        WHEN p.ht_complete THEN 'lost'
                                        WHEN p.hr + p.ar > mk.line THEN 'won' END   -- the unfinished first half's goals
               WHEN 'btts' THEN CASE WHEN p.hr > 0 AND p.ar > 0 THEN 'won' WHEN p.status_id = 8 THEN 'lost' END
               WHEN '1x2' THEN CASE WHEN p.status_id <> 8 THEN NULL
                                    WHEN (k.market = 'home_win' AND p.hr > p.ar) OR (k.market = 'draw' AND p.hr = p.ar)
                                         OR (k.market = 'away_win' AND p.hr < p.ar) THEN 'won' ELSE 'lost' END
           END AS result
    FROM posts p JOIN telegram_picks k ON k.post_id = p.id
    JOIN """ + _MARKETS + """ ON mk.market = k.market),
graded AS (
    SELECT d.*, coalesce(d.before, d.result, 'void') AS outcome,
           CASE WHEN d.before IS NOT NULL THEN d.before_reason
                WHEN d.result IS NOT NULL THEN NULL
                WHEN d.status_id = 12 THEN 'match cancelled'
                WHEN d.kind = 'ht_over' THEN 'match abandoned before half time'
                ELSE 'match abandoned before full time' END AS reason
    FROM decided d),
settled AS (
    UPDATE telegram_picks k SET outcome = g.outcome, void_reason = g.reason, settled_at = now()
    FROM graded g WHERE k.id = g.id AND k.outcome IS NULL
    RETURNING k.outcome),
marked AS (
    UPDATE telegram_posts t SET reply_queued_at = now() FROM posts p WHERE t.id = p.id RETURNING t.id),
summary AS (
    SELECT p.id, p.channel_id, p.message_id,
           CASE p.status_id WHEN 8 THEN 'Full time' WHEN 11 THEN 'Abandoned' ELSE 'Cancelled' END || ': '
           || p.home || ' ' || p.hr || '-' || p.ar || ' ' || p.away
           || CASE WHEN p.ht_complete THEN ' (HT ' || p.hh || '-' || p.ah || ')' ELSE ' (half time not reached)' END
           || CASE WHEN p.finished_after IN ('extra_time', 'penalties') THEN E'\\nPicks are settled on regular time.'
                   ELSE '' END
           || coalesce(E'\\n' || string_agg(CASE g.outcome WHEN 'won' THEN '✅ ' || g.label
                                                          WHEN 'lost' THEN '❌ ' || g.label
                                                          ELSE '➖ ' || g.label || ': void (' || g.reason || ')' END,
                                          E'\\n' ORDER BY g.ord), '') AS text
    FROM posts p LEFT JOIN graded g ON g.post_id = p.id
    GROUP BY p.id, p.channel_id, p.message_id, p.status_id, p.home, p.away, p.hr, p.ar, p.hh, p.ah,
             p.ht_complete, p.finished_after),
queued AS (
    INSERT INTO notification_outbox (channel, kind, dedupe_key, payload)
    SELECT 'telegram', 'telegram_reply', 'telegram_reply:' || s.id,
           jsonb_build_object('post_id', s.id, 'chat_id', s.channel_id, 'reply_to_message_id', s.message_id,
                              'text', s.text)
    FROM summary s
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id)
SELECT (SELECT count(*) FROM marked), (SELECT count(*) FROM queued),
       (SELECT count(*) FILTER (WHERE outcome = 'won') FROM settled),
       (SELECT count(*) FILTER (WHERE outcome = 'lost') FROM settled),
       (SELECT count(*) FILTER (WHERE outcome = 'void') FROM settled)
"""

_CLAIM = "WITH" + OUTBOX_CLAIM_CTES + """
SELECT c.id, c.attempts, (c.payload ->> 'post_id')::bigint, c.payload ->> 'chat_id',
       (c.payload ->> 'reply_to_message_id')::bigint, c.payload ->> 'text'
FROM claimed c ORDER BY c.id
"""

_RECORD = """
WITH results AS (
    SELECT * FROM jsonb_to_recordset(%(results)s::jsonb)
        AS r(id bigint, attempts integer, outcome text, message_id bigint, error text)),
mine AS (
    SELECT o.id, (o.payload ->> 'post_id')::bigint AS post_id, r.outcome, r.message_id, r.error
    FROM notification_outbox o JOIN results r ON r.id = o.id
    WHERE o.channel = 'telegram' AND o.status = 'sending' AND o.attempts = r.attempts
    FOR UPDATE OF o),
posts AS (
    UPDATE telegram_posts t
    SET status = CASE WHEN m.outcome = 'sent' THEN 'settled'
                      WHEN m.outcome = 'failed' AND t.reply_attempts + 1 >= %(max_attempts)s THEN 'reply_failed'
                      ELSE 'open' END,
        settled_at = CASE WHEN m.outcome = 'sent' THEN now() END,
        reply_message_id = CASE WHEN m.outcome = 'sent' THEN m.message_id END,
        reply_attempts = t.reply_attempts + CASE WHEN m.outcome IN ('sent', 'failed') THEN 1 ELSE 0 END,
        last_error = CASE WHEN m.outcome = 'sent' THEN t.last_error ELSE coalesce(m.error, t.last_error) END
    FROM mine m WHERE t.id = m.post_id AND t.status = 'open'
    RETURNING t.id, t.status),
outbox AS (
    UPDATE notification_outbox o
    SET status = CASE coalesce(p.status, CASE WHEN m.outcome = 'sent' THEN 'settled' ELSE 'reply_failed' END)
                     WHEN 'settled' THEN 'sent' WHEN 'reply_failed' THEN 'failed' ELSE 'pending' END,
        sent_at = CASE WHEN m.outcome = 'sent' THEN now() END,
        error = CASE WHEN m.outcome = 'sent' THEN NULL ELSE m.error END,
        lease_until = NULL
    FROM mine m LEFT JOIN posts p ON p.id = m.post_id
    WHERE o.id = m.id
    RETURNING o.status, m.outcome)
SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE outcome = 'failed' AND status = 'pending'),
       count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE outcome = 'release')
FROM outbox
"""

_SEED_DEMO = """
WITH picked AS (
    SELECT m.id, m.match_time, row_number() OVER (ORDER BY m.match_time DESC, m.id) AS n,
           abs(hashtext(m.id)::bigint) AS h
    FROM matches m
    WHERE m.status_id IN (2, 3, 4, 5, 7, 8, 11, 12)
      AND NOT EXISTS (SELECT 1 FROM telegram_posts t WHERE t.match_id = m.id AND t.channel_id = %(channel)s)
    ORDER BY m.match_time DESC, m.id LIMIT %(max_posts)s),
posts AS (
    INSERT INTO telegram_posts (channel_id, message_id, match_id, text, posted_at)
    SELECT %(channel)s, coalesce((SELECT max(message_id) FROM telegram_posts WHERE channel_id = %(channel)s), 1000)
                        + p.n, p.id, 'Tips for match ' || p.id, to_timestamp(p.match_time) - interval '1 hour'
    FROM picked p
    RETURNING id, match_id),
picks AS (
    INSERT INTO telegram_picks (post_id, market)
    SELECT s.id, (ARRAY['btts', 'over_1_5', 'over_2_5', 'over_3_5', 'ht_over_0_5', 'ht_over_1_5',
                                 'home_win', 'draw', 'away_win'])[1 + (p.h + k * 4) %% 9]
    FROM posts s JOIN picked p ON p.id = s.match_id CROSS JOIN generate_series(0, 2) k
    RETURNING post_id)
SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM picks)
"""


def settle_and_queue(conn, limit: int) -> dict:
    """Settle the picks of up to `limit` finished posts and queue their replies: one statement."""
    with conn.cursor() as cur:
        cur.execute(_SETTLE, {"limit": limit})
        posts, queued, won, lost, void = cur.fetchone()
    conn.commit()
    return {"posts_settled": posts, "replies_queued": queued, "picks_won": won, "picks_lost": lost,
            "picks_void": void}


def claim_replies(conn, limit: int, lease_s: float) -> list[dict]:
    """Telegram replies to send now: [{"id", "attempts", "post_id", "chat_id", "reply_to", "text"}]."""
    with conn.cursor() as cur:
        cur.execute(_CLAIM, {"channel": "telegram", "limit": limit, "lease_s": lease_s})
        rows = [{"id": i, "attempts": a, "post_id": p, "chat_id": c, "reply_to": r, "text": t}
                for i, a, p, c, r, t in cur.fetchall()]
    conn.commit()
    return rows


def record_replies(conn, results: list[dict]) -> dict:
    """`results`: [{"id", "attempts" (as claimed), "outcome": sent | failed | release, "message_id",
    "error"}]. Returns {"sent", "retry", "failed", "released"}: one statement."""
    with conn.cursor() as cur:
        cur.execute(_RECORD, {"results": json.dumps(results), "max_attempts": MAX_ATTEMPTS})
        sent, retry, failed, released = cur.fetchone()
    conn.commit()
    return {"sent": sent, "retry": retry, "failed": failed, "released": released}


def seed_demo(cur, max_posts: int) -> tuple[int, int]:
    """Demo posts in DEMO_CHANNEL, one per match present (the latest `max_posts` ended, abandoned
    or live ones that have no demo post yet), each with three picks: (posts, picks). None
    when there are no matches. Does not commit (the caller's seed does)."""
    cur.execute(_SEED_DEMO, {"channel": DEMO_CHANNEL, "max_posts": max_posts})
    posts, picks = cur.fetchone()
    return posts, picks
