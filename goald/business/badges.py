"""Badge auto-unlock (DOMAIN.md, "Business jobs"): eligible users without a badge get it, its
credit / XP reward and a push notification, exactly once.

Conditions (`badges.condition_kind` ≥ `badges.threshold`, sql/0014_badges_levels.sql):
- `referrals`: the user's referrals as referrer that reached tier 2 or 3 (the referred user
  logged in; tier 1 referrals do not count);
- `predictions`: the user's rows in `user_predictions` (one per match);
- `login_streak`: the run of consecutive UTC days in `user_login_days` that ends today or
  yesterday (a user who has not opened the app yet today keeps yesterday's streak). Only the last
  max(threshold) + 1 days are read, at most MASK_DAYS (the longest active streak badge bounds the
  scan), folded into one bigint per user (bit k: k days ago) in one aggregate, no sort: the streak
  is the run of one bits from bit 0 (or bit 1). A badge longer than the mask is checked exactly
  (a count of the days in its range, on the primary key) for the few users whose mask is all ones;
- `xp_level`: the user's level (goald/business/levels.py) is at least the threshold;
- `comments`: the user's rows in `match_comments`.
Inactive badges are never granted.

`unlock(conn, today, batch)` is one statement (after one that sets its plan options): it computes every condition set-based (one
aggregate per kind, skipped when no active badge has that kind), keeps the (user, badge) pairs
without a `user_badges` row, claims their users in id order, at most `batch`, FOR UPDATE SKIP
LOCKED (a second instance running at the same time claims other users, never the same), takes at
most `batch` pairs of them, inserts them into `user_badges` ON CONFLICT DO NOTHING and, for the
rows actually inserted only, grants the rewards through goald/business/rewards.py (reason
'badge', reference the badge's code) and queues one push message per unlocked badge for users with
an active push token (`notification_outbox`, dedupe key `badge:<user>:<badge id>`). All of it
commits together or not at all: a run killed half-way leaves nothing, the next run does it all,
once. The primary key of `user_badges`, the ledger's uniqueness rule and the dedupe key make a
second grant impossible whatever the job does. A run racing another instance can claim users
whose pairs the other unlocked after this statement began (its snapshot still shows them due):
ON CONFLICT refuses them, so that run unlocks nothing of them and reports them as backlog; the
next run goes on.

XP a badge grants can raise the user's level and so make an `xp_level` badge eligible: the next
run picks that up (the statement reads the XP as it was when it started); nothing loops.

Functions run in the caller's greenlet on its connection and commit; a database error propagates
(the transaction is rolled back by the pool, nothing of the run stays).
"""
from __future__ import annotations

from datetime import date

from goald.business.levels import level_of_sql, min_xp_sql
from goald.business.rewards import grant_sql

KINDS = ("referrals", "predictions", "login_streak", "xp_level", "comments")
MASK_DAYS = 62          # login days read as one bigint bit mask (bits 0..61: no overflow)


def _has(kind: str) -> str:
    return f"EXISTS (SELECT 1 FROM active WHERE condition_kind = '{kind}')"


def _lowest(kind: str) -> str:
    return f"(SELECT min(threshold) FROM active WHERE condition_kind = '{kind}')"


_UNLOCK = grant_sql(f"""
active AS (
    SELECT id, code, name, description, condition_kind, threshold, reward_credits, reward_xp
    FROM badges WHERE active),
masks AS (     -- bit k set: the user opened the app k days before today (k < MASK_DAYS)
    SELECT d.user_id, bit_or(1::bigint << (%(today)s::date - d.day)) AS m
    FROM user_login_days d
    WHERE d.day <= %(today)s::date AND {_has('login_streak')}
      AND d.day >= %(today)s::date - least((SELECT max(threshold) FROM active WHERE condition_kind = 'login_streak'),
                                           {MASK_DAYS - 1})
    GROUP BY d.user_id),
streaks AS (   -- n: consecutive days ending today (bit 0) or else yesterday (bit 1), exact below MASK_DAYS - 1
    SELECT user_id, %(today)s::date - a AS anchor, bit_count(((m >> a) & ~((m >> a) + 1))::bit(64)) AS n
    FROM (SELECT user_id, m, CASE WHEN m & 1 = 1 THEN 0 ELSE 1 END AS a FROM masks WHERE m & 3 <> 0) x),
counts AS (
    SELECT 'referrals'::text AS kind, r.referrer_id AS user_id, count(*) AS n
    FROM referrals r WHERE r.tier >= 2 AND {_has('referrals')}
    GROUP BY r.referrer_id HAVING count(*) >= {_lowest('referrals')}
    UNION ALL
    SELECT 'predictions', p.user_id, count(*)
    FROM user_predictions p WHERE {_has('predictions')}
    GROUP BY p.user_id HAVING count(*) >= {_lowest('predictions')}
    UNION ALL
    SELECT 'comments', c.user_id, count(*)
    FROM match_comments c WHERE {_has('comments')}
    GROUP BY c.user_id HAVING count(*) >= {_lowest('comments')}
    UNION ALL
    SELECT 'login_streak', s.user_id, s.n FROM streaks s
    UNION ALL
    SELECT 'xp_level', u.id, {level_of_sql('u.xp')}
    FROM app_users u
    WHERE {_has('xp_level')} AND u.xp >= {min_xp_sql(_lowest('xp_level'))}),
eligible AS (
    SELECT c.user_id, b.id AS badge_id
    FROM counts c JOIN active b ON b.condition_kind = c.kind AND c.n >= b.threshold
    WHERE (c.kind <> 'login_streak' OR b.threshold < {MASK_DAYS})
      AND NOT EXISTS (SELECT 1 FROM user_badges ub WHERE ub.user_id = c.user_id AND ub.badge_id = b.id)
    UNION ALL      -- streak badges longer than the mask: counted exactly for users whose mask is all ones
    SELECT s.user_id, b.id
    FROM streaks s JOIN active b ON b.condition_kind = 'login_streak' AND b.threshold >= {MASK_DAYS}
    WHERE s.n >= {MASK_DAYS - 1}
      AND (SELECT count(*) FROM user_login_days d WHERE d.user_id = s.user_id
           AND d.day BETWEEN s.anchor - b.threshold + 1 AND s.anchor) = b.threshold
      AND NOT EXISTS (SELECT 1 FROM user_badges ub WHERE ub.user_id = s.user_id AND ub.badge_id = b.id)),
claimed AS (
    SELECT u.id FROM app_users u WHERE u.id IN (SELECT user_id FROM eligible)
    ORDER BY u.id LIMIT %(batch)s FOR UPDATE SKIP LOCKED),
pending AS (
    SELECT e.user_id, e.badge_id FROM eligible e JOIN claimed c ON c.id = e.user_id
    ORDER BY e.user_id, e.badge_id LIMIT %(batch)s),
unlocked AS (
    INSERT INTO user_badges (user_id, badge_id)
    SELECT user_id, badge_id FROM pending
    ON CONFLICT (user_id, badge_id) DO NOTHING
    RETURNING user_id, badge_id),
queued AS (
    INSERT INTO notification_outbox (channel, kind, user_id, dedupe_key, payload)
    SELECT 'push', 'badge_unlocked', n.user_id, 'badge:' || n.user_id || ':' || b.id,
           jsonb_build_object(
               'title', 'Badge unlocked: ' || b.name,
               'body', b.description || coalesce(': +' || nullif(concat_ws(' and ',
                           CASE WHEN b.reward_credits > 0 THEN b.reward_credits || ' credits' END,
                           CASE WHEN b.reward_xp > 0 THEN b.reward_xp || ' XP' END), ''), ''),
               'badge', b.code, 'credits', b.reward_credits, 'xp', b.reward_xp)
    FROM unlocked n JOIN active b ON b.id = n.badge_id
    WHERE EXISTS (SELECT 1 FROM push_tokens p WHERE p.user_id = n.user_id AND p.active)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1)""", """
SELECT n.user_id, 'credits' AS currency, b.reward_credits AS amount, 'badge' AS reason, b.code AS reference
FROM unlocked n JOIN active b ON b.id = n.badge_id WHERE b.reward_credits > 0
UNION ALL
SELECT n.user_id, 'xp', b.reward_xp, 'badge', b.code
FROM unlocked n JOIN active b ON b.id = n.badge_id WHERE b.reward_xp > 0
""", result="(SELECT count(*) FROM eligible), (SELECT count(*) FROM unlocked), (SELECT count(*) FROM granted), "
            "(SELECT count(*) FROM queued)")


# For this statement only (SET LOCAL: the transaction's end restores them). The planner cannot
# estimate how many (user, badge) pairs meet a condition (aggregates joined to the catalogue), so
# it picks nested loops sized for a thousand where there are a hundred thousand (the anti-join on
# user_badges alone: 0.5 s of 1.5 s at 100,000 users); hash joins are right at every size here.
# JIT compiling the large plan costs more (~140 ms) than it saves.
_PLAN = "SELECT set_config('enable_nestloop', 'off', true), set_config('jit', 'off', true)"


def unlock(conn, today: date, batch: int) -> dict:
    """One run: returns {"unlocked", "granted" (ledger rows), "queued" (push messages), "backlog"
    (eligible pairs this run left for the next ones)}."""
    with conn.cursor() as cur:
        cur.execute(_PLAN)
        cur.execute(_UNLOCK, {"today": today, "batch": batch})
        eligible, unlocked, granted, queued = cur.fetchone()
    conn.commit()
    return {"unlocked": unlocked, "granted": granted, "queued": queued, "backlog": max(eligible - unlocked, 0)}


# --- demo data (goald/business/demo.py) ----------------------------------------------------------



def _h(purpose: str) -> str:
    """A user's deterministic 0..99 for a purpose (SQL; `u` is the user id)."""
    return f"((hashtext('{purpose}' || u) %% 100 + 100) %% 100)"


_DEMO_LOGIN_DAYS = f"""
INSERT INTO user_login_days (user_id, day)
SELECT u, %(today)s::date - (u %% 2)::int - g
FROM unnest(%(ids)s::bigint[]) u
CROSS JOIN LATERAL generate_series(0, {_h('len')} * {_h('len')} / 300) g
WHERE {_h('login')} < 70
ON CONFLICT DO NOTHING
"""
_DEMO_PREDICTIONS = f"""
INSERT INTO user_predictions (user_id, match_id, pick, created_at)
SELECT u, 'demo-match-' || g, (ARRAY['home', 'draw', 'away', 'btts', 'over_2_5'])[1 + (u + g) %% 5],
       now() - make_interval(hours => g::int)
FROM unnest(%(ids)s::bigint[]) u
CROSS JOIN LATERAL generate_series(1, {_h('npred')} * {_h('npred')} / 180) g
WHERE {_h('pred')} < 50
ON CONFLICT DO NOTHING
"""
_DEMO_COMMENTS = f"""
INSERT INTO match_comments (user_id, match_id, body, created_at)
SELECT u, 'demo-match-' || (g %% 40), 'What a game! #' || g, now() - make_interval(hours => g::int)
FROM unnest(%(ids)s::bigint[]) u
CROSS JOIN LATERAL generate_series(1, {_h('ncom')} * {_h('ncom')} / 350) g
WHERE {_h('com')} < 30
"""


def seed_demo(cur, ids: list[int], today: date) -> dict:
    """Demo activity for `ids` (on the caller's cursor, not committed): 70 % of the users opened the
    app on a run of 1-34 days ending today or yesterday, half made 0-54 predictions, 30 % wrote 0-28
    comments; so badge_auto_unlock has work (and more once the referral jobs have moved referrals
    and granted XP). Three statements whatever the number of users."""
    made = {}
    for kind, statement in (("login_days", _DEMO_LOGIN_DAYS), ("user_predictions", _DEMO_PREDICTIONS),
                            ("match_comments", _DEMO_COMMENTS)):
        cur.execute(statement, {"ids": ids, "today": today})
        made[kind] = cur.rowcount
    return made
