"""Daily rewards (DOMAIN.md, "Business jobs"): the 7-day streak and its reminders.

Rewards by streak day (credits, XP): d1 10/10, d2 15/15, d3 20/20, d4 25/25, d5 30/30, d6 40/40,
d7 100/50. The next day is the last claimed day + 1 when the last claim was yesterday (7 wraps to
1), else day 1.

`queue_reminders(conn, today)`: users with an active push token who have not claimed today and
who claimed within the last 7 days get a reminder naming their next reward, queued in
`notification_outbox` under the dedupe key `daily_reward_reminder:<user>:<day>`: one statement
for any number of users (the seeds' 10,001 queries became 2), and a second run the same day, on
any node, queues nothing more. Runs in the caller's greenlet on its connection and commits.
"""
from __future__ import annotations

from datetime import date

REWARDS = {1: (10, 10), 2: (15, 15), 3: (20, 20), 4: (25, 25), 5: (30, 30), 6: (40, 40), 7: (100, 50)}
_REWARD_ROWS = ", ".join(f"({d}, {c}, {x})" for d, (c, x) in REWARDS.items())


def next_streak_day(last_day: date | None, last_streak_day: int | None, today: date) -> int:
    """The rule in Python, for the tests and the API: what today's claim would be."""
    if last_day is not None and (today - last_day).days == 1 and last_streak_day is not None:
        return last_streak_day % 7 + 1
    return 1


_QUEUE = f"""
WITH last AS (
    SELECT DISTINCT ON (c.user_id) c.user_id, c.day, c.streak_day
    FROM daily_reward_claims c
    WHERE c.day >= %(today)s::date - 7 AND c.day < %(today)s::date
    ORDER BY c.user_id, c.day DESC),
eligible AS (
    SELECT l.user_id,
           CASE WHEN l.day = %(today)s::date - 1 THEN mod(l.streak_day, 7) + 1 ELSE 1 END AS next_day
    FROM last l
    WHERE NOT EXISTS (SELECT 1 FROM daily_reward_claims t WHERE t.user_id = l.user_id AND t.day = %(today)s::date)
      AND EXISTS (SELECT 1 FROM push_tokens p WHERE p.user_id = l.user_id AND p.active)),
queued AS (
    INSERT INTO notification_outbox (channel, kind, user_id, dedupe_key, payload)
    SELECT 'push', 'daily_reward_reminder', e.user_id,
           'daily_reward_reminder:' || e.user_id || ':' || %(today)s::date,
           jsonb_build_object('title', 'Your daily reward is waiting',
                              'body', 'Day ' || e.next_day || ': ' || r.credits || ' credits and ' || r.xp || ' XP',
                              'streak_day', e.next_day, 'credits', r.credits, 'xp', r.xp)
    FROM eligible e JOIN (VALUES {_REWARD_ROWS}) AS r(day, credits, xp) ON r.day = e.next_day
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1)
SELECT (SELECT count(*) FROM eligible), (SELECT count(*) FROM queued)
"""


def queue_reminders(conn, today: date) -> dict:
    """Queue today's reminders; returns {"eligible", "queued"} (queued < eligible: already queued)."""
    with conn.cursor() as cur:
        cur.execute(_QUEUE, {"today": today})
        eligible, queued = cur.fetchone()
    conn.commit()
    return {"eligible": eligible, "queued": queued}
