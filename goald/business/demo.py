"""A realistic demo population for the business jobs (`goald seed-demo --users N`), set-based.

For N users (deterministic from `seed`):
- every user has 1-3 login identities (Google, Apple, phone), most have logged in; 60 % have an
  active push token, 15 % are VIP;
- a third of the users were referred by another user: at tier 1 (some never logged in, some
  did: tier 2 is due), and some of the referred hold an active subscription (tier 3 is due);
- 40 % are on a daily-reward streak: claims on consecutive days ending yesterday or earlier,
  streak days wrapping at 7, so today's reminders have work;
- three scheduled notifications: one due now for VIPs, one due now for everyone, one tomorrow;
- Telegram posts with three picks each on the matches present (the latest N / 10, at least 20,
  ended and live ones; none when there are no matches: goald/business/telegram_settle.py).
- AI predictions made from the matches in the database, their names varied (accents, "FC",
  upper case, shortened, unknown teams): goald/business/predictions.py `seed_demo` (no matches:
  none).
- login days (streaks ending today or yesterday), predictions and match comments for the badges
  (goald/business/badges.py, `seed_demo`).

The statements are few and do not depend on N (generate_series); the users are named
`demo-<seed>-<i>`, so seeding twice with the same seed adds nothing twice (it refuses: the demo
users exist already). Runs in the caller's greenlet on its connection and commits.
"""
from __future__ import annotations

import time
from datetime import date, datetime, timezone
from typing import Callable

from goald.business import badges, predictions, telegram_settle

_USERS = """
INSERT INTO app_users (name, is_vip, created_at)
SELECT 'demo-' || %(seed)s || '-' || i, (hashtext(%(seed)s || ':vip:' || i) %% 100 + 100) %% 100 < 15,
       now() - make_interval(days => 1 + (i %% 90)::int)
FROM generate_series(1, %(n)s) i
RETURNING id
"""
_IDENTITIES = """
INSERT INTO user_identities (user_id, provider, subject, last_login_at)
SELECT u.id, p.provider, p.provider || '-' || u.id,
       CASE WHEN (hashtext(p.provider || u.id) %% 100 + 100) %% 100 < 80 THEN now() - make_interval(hours => (u.id %% 72)::int) END
FROM app_users u
CROSS JOIN LATERAL (SELECT provider FROM unnest(ARRAY['google', 'apple', 'phone']) WITH ORDINALITY AS t(provider, k)
                    WHERE k <= 1 + u.id %% 3) p
WHERE u.id = ANY (%(ids)s)
"""
_TOKENS = """
INSERT INTO push_tokens (user_id, token)
SELECT id, 'ExponentPushToken[demo-' || id || ']' FROM app_users
WHERE id = ANY (%(ids)s) AND (hashtext('tok' || id) %% 100 + 100) %% 100 < 60
"""
_REFERRALS = """
INSERT INTO referrals (referrer_id, referred_id)
SELECT r.referrer, r.referred FROM (
    SELECT ids[1 + ((k - 1) * 7) %% (cardinality(ids) / 3 + 1)] AS referrer, ids[k] AS referred
    FROM (SELECT %(ids)s::bigint[] AS ids) a, generate_series(cardinality(%(ids)s::bigint[]) * 2 / 3 + 1,
                                                               cardinality(%(ids)s::bigint[])) k) r
WHERE r.referrer <> r.referred
"""
_SUBSCRIPTIONS = """
INSERT INTO subscriptions (user_id, plan, status, expires_at)
SELECT referred_id, CASE WHEN id %% 2 = 0 THEN 'monthly' ELSE 'yearly' END, 'active', now() + interval '30 days'
FROM referrals WHERE referred_id = ANY (%(ids)s) AND id %% 4 = 0
"""
_CLAIMS = """
INSERT INTO daily_reward_claims (user_id, day, streak_day)
SELECT u.id, %(today)s::date - s.back::int, (s.len + p.gap - s.back) %% 7 + 1
FROM app_users u
CROSS JOIN LATERAL (SELECT 1 + u.id %% 9 AS len, u.id %% 3 AS gap) p
CROSS JOIN LATERAL (SELECT p.len, g AS back FROM generate_series(1 + p.gap, p.len + p.gap) g) s   -- oldest day is day 1
WHERE u.id = ANY (%(ids)s) AND (hashtext('streak' || u.id) %% 100 + 100) %% 100 < 40
ON CONFLICT DO NOTHING
"""
_NOTIFICATIONS = """
INSERT INTO scheduled_notifications (title, body, audience, scheduled_at) VALUES
    ('Derby tonight', 'VIP: your match preview is ready', 'vip', now() - interval '1 minute'),
    ('New season', 'The new season starts this weekend', 'all', now() - interval '30 seconds'),
    ('Tomorrow', 'Daily picks are coming', 'all', now() + interval '1 day')
"""


class DemoError(ValueError):
    """The demo population cannot be made (it exists already for this seed)."""


def seed(conn, users: int, seed_value: int, today: date) -> dict:
    """Make the population; returns what was made, by kind."""
    s = str(seed_value)
    with conn.cursor() as cur:
        # Two seeds at once (two demo nodes on one database) take turns: the second finds the users.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('goald.seed-demo'))")
        cur.execute("SELECT count(*) FROM app_users WHERE name LIKE %s", (f"demo-{s}-%",))
        if cur.fetchone()[0]:
            conn.rollback()
            raise DemoError(f"demo users of seed {s} exist already; use another --seed")
        cur.execute(_USERS, {"seed": s, "n": users})
        ids = [r[0] for r in cur.fetchall()]
        made = {"users": len(ids)}
        for kind, statement in (("identities", _IDENTITIES), ("push_tokens", _TOKENS), ("referrals", _REFERRALS),
                                ("subscriptions", _SUBSCRIPTIONS), ("daily_reward_claims", _CLAIMS)):
            cur.execute(statement, {"ids": ids, "today": today})
            made[kind] = cur.rowcount
        cur.execute(_NOTIFICATIONS)
        made["scheduled_notifications"] = cur.rowcount
        made["telegram_posts"], made["telegram_picks"] = telegram_settle.seed_demo(cur, max(20, users // 10))
        made["predictions"] = predictions.seed_demo(cur, seed_value, today)
        made.update(badges.seed_demo(cur, ids, today))
    conn.commit()
    return made


def populate_when_matches_arrive(pool, users: int, *, poll_s: float = 5.0, give_up_s: float = 600.0,
                                 sleep: Callable[[float], None] = time.sleep) -> dict | None:
    """The demo feed's population (`provider.demo_users`): once the first matches are in the
    database (the demo's posts and predictions are made from them), a database without any app
    user gets `seed(users, seed 1)`; one with users is left alone. Returns what was made, or None
    (users existed, or no match arrived within `give_up_s`). Runs in its own greenlet, spawned by
    the daemon (goald/daemon.py) when the built-in simulator is the feed; a database error is
    retried at the next poll, so a database restart only delays it."""
    deadline = time.monotonic() + give_up_s
    while time.monotonic() < deadline:
        try:
            with pool.connection() as conn:
                with conn.cursor() as cur:
                    cur.execute("SELECT EXISTS (SELECT 1 FROM app_users), EXISTS (SELECT 1 FROM matches)")
                    has_users, has_matches = cur.fetchone()
                conn.rollback()
                if has_users:
                    return None
                if has_matches:
                    return seed(conn, users, 1, datetime.now(timezone.utc).date())
        except DemoError:
            return None                         # another node made it meanwhile
        except Exception:  # noqa: BLE001 - the database away or restarting: try again at the next poll
            pass
        sleep(poll_s)
    return None
