"""What bench/business_kill.py does to the business tables besides running goald: new work while
goald runs (`Traffic`), whether the work is done (`pending`), and what must hold afterwards
(`verify`): each balance equals the sum of its ledger, and no grant, reminder, notification or
reply is duplicated or lost.

Every check is a query that lists offenders; `verify` answers (figures, problems), problems being
readable lines (empty: all good).
"""
import random
import threading
import time
from datetime import datetime, timezone

import psycopg2

from goald.business import badges, predictions, rewards, telegram_settle


class Traffic(threading.Thread):
    """What the app does while the bench runs, every `every_s`: a few new users referred and logged
    in (tier 2 due), a few tier-2 referred users subscribe (tier 3 due), and now and then a
    notification for the VIPs or for a segment falls due, the channel publishes posts with picks on
    ten more of the matches goald has ingested, users open the app, predict and comment (badges
    fall due), and the AI sends a batch of predictions for the matches present."""

    def __init__(self, dsn: str, seed: int, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.dsn, self.rng, self.every_s = dsn, random.Random(seed), every_s
        self.stop_event = threading.Event()
        self.rounds = 0
        self.error: str | None = None       # what stopped it early (the bench then fails)

    def run(self) -> None:
        conn = psycopg2.connect(self.dsn)
        try:
            while not self.stop_event.wait(self.every_s):
                with conn, conn.cursor() as cur:
                    self.step(cur)
                self.rounds += 1
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
        finally:
            conn.close()

    def step(self, cur) -> None:
        r = self.rounds
        cur.execute("""
            WITH new AS (
                INSERT INTO app_users (name, is_vip) SELECT 'traffic-' || %(r)s || '-' || i, i %% 5 = 0
                FROM generate_series(1, 4) i RETURNING id),
            ids AS (INSERT INTO user_identities (user_id, provider, subject, last_login_at)
                    SELECT id, 'google', 'traffic-' || id, now() FROM new RETURNING user_id),
            tok AS (INSERT INTO push_tokens (user_id, token) SELECT id, 'ExponentPushToken[t-' || id || ']' FROM new
                    RETURNING user_id)
            INSERT INTO referrals (referrer_id, referred_id)
            SELECT (SELECT id FROM app_users ORDER BY id
                    OFFSET %(k)s %% (SELECT count(*) FROM app_users WHERE name NOT LIKE 'traffic-%%') LIMIT 1), id
            FROM new""",
                    {"r": r, "k": self.rng.randrange(0, 500)})
        cur.execute("""
            INSERT INTO subscriptions (user_id, plan, status, expires_at)
            SELECT referred_id, 'monthly', 'active', now() + interval '30 days' FROM referrals
            WHERE tier = 2 AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = referred_id)
            ORDER BY id LIMIT 3""")
        cur.execute("""
            WITH u AS (SELECT id FROM app_users ORDER BY random() LIMIT 30)
            INSERT INTO user_login_days (user_id, day) SELECT id, (now() AT TIME ZONE 'UTC')::date FROM u
            ON CONFLICT DO NOTHING""")
        cur.execute("""
            INSERT INTO match_comments (user_id, match_id, body)
            SELECT u.id, m.id, 'What a game' FROM (SELECT id FROM app_users ORDER BY random() LIMIT 10) u
            CROSS JOIN LATERAL (SELECT id FROM matches ORDER BY random() LIMIT 1) m""")
        if r % 3 == 0:
            telegram_settle.seed_demo(cur, 10)
        if r % 10 == 0:
            predictions.seed_demo(cur, 1000 + r, datetime.now(timezone.utc).date())
        if r % 6 == 0:
            if self.rng.random() < 0.5:
                cur.execute("INSERT INTO scheduled_notifications (title, body, audience, scheduled_at) "
                            "VALUES ('VIP tip', 'round ' || %s, 'vip', now())", (r,))
            else:
                cur.execute("INSERT INTO scheduled_notifications (title, body, audience, segment, scheduled_at) "
                            "SELECT 'Segment', 'round ' || %s, 'segment', array_agg(id), now() FROM "
                            "(SELECT id FROM app_users ORDER BY random() LIMIT 40) s", (r,))


PENDING = {
    "referrals due for tier 2": """
        SELECT count(*) FROM referrals r WHERE r.tier = 1 AND EXISTS (
            SELECT 1 FROM user_identities i WHERE i.user_id = r.referred_id AND i.last_login_at IS NOT NULL)""",
    "referrals due for tier 3": """
        SELECT count(*) FROM referrals r WHERE r.tier = 2 AND EXISTS (
            SELECT 1 FROM subscriptions s WHERE s.user_id = r.referred_id AND s.status = 'active'
            AND (s.expires_at IS NULL OR s.expires_at > now()))""",
    "scheduled notifications not finished": """
        SELECT count(*) FROM scheduled_notifications WHERE scheduled_at <= now() AND status IN ('pending', 'sending')""",
    "push messages not sent": """
        SELECT count(*) FROM notification_outbox WHERE channel = 'push' AND status IN ('pending', 'sending')""",
    "predictions of ended matches not settled": """
        SELECT count(*) FROM ai_predictions p JOIN matches m ON m.id = p.match_id
        WHERE p.status = 'pending' AND m.status_id IN (8, 11, 12)""",
    "telegram posts of finished matches not settled": """
        SELECT count(*) FROM telegram_posts p JOIN matches m ON m.id = p.match_id
        WHERE p.status = 'open' AND m.status_id IN (8, 11, 12)""",
}


def pending(dsn: str) -> dict:
    """Work still to do, by kind (all zero: the jobs have caught up)."""
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        out = {}
        for what, q in PENDING.items():
            cur.execute(q)
            out[what] = cur.fetchone()[0]
    return out


# Each: (what would be wrong, a query listing the offenders).
OFFENDERS = [
    ("a referral at tier >= 2 without exactly its two tier-2 grants", """
        SELECT r.id, count(l.id) FROM referrals r
        LEFT JOIN reward_ledger l ON l.reference = r.id::text
             AND l.reason IN ('referral_tier2_referrer', 'referral_tier2_referred')
        WHERE r.tier >= 2 GROUP BY r.id HAVING count(l.id) <> 2"""),
    ("a tier-2 grant for a referral still at tier 1", """
        SELECT l.id FROM reward_ledger l JOIN referrals r ON r.id::text = l.reference
        WHERE l.reason LIKE 'referral_tier2_%%' AND r.tier < 2"""),
    ("a referral at tier 3 without exactly its two tier-3 grants (credits, XP)", """
        SELECT r.id, count(l.id) FROM referrals r
        LEFT JOIN reward_ledger l ON l.reference = r.id::text AND l.reason = 'referral_tier3_referrer'
        WHERE r.tier = 3 GROUP BY r.id HAVING count(l.id) <> 2"""),
    ("a tier-3 grant for a referral below tier 3", """
        SELECT l.id FROM reward_ledger l JOIN referrals r ON r.id::text = l.reference
        WHERE l.reason = 'referral_tier3_referrer' AND r.tier < 3"""),
    ("a ledger row whose balance_before is not the previous row's balance_after", """
        SELECT id FROM (SELECT id, balance_before,
                               lag(balance_after) OVER (PARTITION BY user_id, currency ORDER BY id) AS prev
                        FROM reward_ledger) t
        WHERE balance_before <> coalesce(prev, 0)"""),
    ("a user on a streak with a token and no reminder today (lost)", """
        SELECT l.user_id FROM (
            SELECT DISTINCT ON (user_id) user_id, day FROM daily_reward_claims
            WHERE day >= %(today)s::date - 7 AND day < %(today)s::date ORDER BY user_id, day DESC) l
        WHERE NOT EXISTS (SELECT 1 FROM daily_reward_claims t WHERE t.user_id = l.user_id AND t.day = %(today)s::date)
          AND EXISTS (SELECT 1 FROM push_tokens p WHERE p.user_id = l.user_id AND p.active)
          AND NOT EXISTS (SELECT 1 FROM notification_outbox o
                          WHERE o.dedupe_key = 'daily_reward_reminder:' || l.user_id || ':' || %(today)s::date)"""),
    ("more than one reminder for a user today", """
        SELECT user_id FROM notification_outbox WHERE kind = 'daily_reward_reminder'
        GROUP BY user_id, payload->>'streak_day', created_at::date HAVING count(*) > 1"""),
    ("a finished notification whose counts disagree with its messages", """
        SELECT n.id FROM scheduled_notifications n
        WHERE n.status = 'sent' AND (n.recipients <> (SELECT count(*) FROM notification_outbox o WHERE o.scheduled_id = n.id)
                                     OR n.successes + n.failures <> n.recipients)"""),
    ("a finished notification missing a recipient who had a token when it was expanded (lost)", """
        SELECT n.id, u.id FROM scheduled_notifications n
        CROSS JOIN LATERAL (SELECT coalesce(min(o.created_at), n.sent_at) AS expanded
                            FROM notification_outbox o WHERE o.scheduled_id = n.id) e
        JOIN app_users u
          ON (n.audience = 'all' OR (n.audience = 'vip' AND u.is_vip) OR (n.audience = 'free' AND NOT u.is_vip)
              OR (n.audience = 'segment' AND u.id = ANY (n.segment)))
        WHERE n.status = 'sent'
          AND EXISTS (SELECT 1 FROM push_tokens p WHERE p.user_id = u.id AND p.active
                      AND p.created_at < e.expanded - interval '1 second')
          AND NOT EXISTS (SELECT 1 FROM notification_outbox o WHERE o.scheduled_id = n.id AND o.user_id = u.id)"""),
    ("a push message failed", """
        SELECT id, error FROM notification_outbox WHERE channel = 'push' AND status = 'failed'"""),
    ("a badge without exactly its rewards in the ledger", """
        SELECT ub.user_id, b.code FROM user_badges ub JOIN badges b ON b.id = ub.badge_id
        WHERE (SELECT count(*) FROM reward_ledger l WHERE l.user_id = ub.user_id AND l.reason = 'badge'
               AND l.reference = b.code)
              <> (b.reward_credits > 0)::int + (b.reward_xp > 0)::int"""),
    ("a badge reward without the badge", """
        SELECT l.id FROM reward_ledger l WHERE l.reason = 'badge' AND NOT EXISTS (
            SELECT 1 FROM user_badges ub JOIN badges b ON b.id = ub.badge_id
            WHERE ub.user_id = l.user_id AND b.code = l.reference)"""),
    ("a badge message without the badge", """
        SELECT o.id FROM notification_outbox o WHERE o.kind = 'badge_unlocked' AND NOT EXISTS (
            SELECT 1 FROM user_badges ub WHERE o.dedupe_key = 'badge:' || ub.user_id || ':' || ub.badge_id)"""),
    ("a badge unlocked for a user with a token and no message (lost)", """
        SELECT ub.user_id, ub.badge_id FROM user_badges ub
        WHERE EXISTS (SELECT 1 FROM push_tokens p WHERE p.user_id = ub.user_id AND p.active
                      AND p.created_at < ub.unlocked_at - interval '1 second')
          AND NOT EXISTS (SELECT 1 FROM notification_outbox o
                          WHERE o.dedupe_key = 'badge:' || ub.user_id || ':' || ub.badge_id)"""),
    ("a prediction settled from a match not yet at the state its market needs", """
        SELECT p.id, p.market, m.status_id FROM ai_predictions p JOIN matches m ON m.id = p.match_id
        WHERE p.status IN ('won', 'lost') AND m.status_id NOT IN (3, 4, 5, 6, 7, 8, 11, 12)"""),
    ("a Telegram reply failed", """
        SELECT id, last_error FROM telegram_posts WHERE status = 'reply_failed'"""),
    ("a queued post with a pick left unsettled", """
        SELECT p.id, k.market FROM telegram_posts p JOIN telegram_picks k ON k.post_id = p.id
        WHERE p.reply_queued_at IS NOT NULL AND k.outcome IS NULL"""),
    ("a post with more than one reply in the outbox", """
        SELECT payload->>'post_id' FROM notification_outbox WHERE channel = 'telegram'
        GROUP BY 1 HAVING count(*) > 1"""),
]


def verify(dsn: str, gateway, telegram=None) -> tuple[dict, list[str]]:
    """After the nodes stopped: (figures, problems)."""
    problems: list[str] = []
    today = datetime.now(timezone.utc).date()
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        for kind, n in pending(dsn).items():
            if n:
                problems.append(f"{n} {kind} after the drain (stuck or lost)")
        for user, currency, balance, total in rewards.balance_mismatches(c):
            problems.append(f"user {user}: {currency} balance {balance} but its ledger sums to {total}")
        for what, q in OFFENDERS:
            cur.execute(q, {"today": today})
            rows = cur.fetchall()
            if rows:
                problems.append(f"{len(rows)} x {what}: {rows[:5]}")
        cur.execute("SELECT o.dedupe_key || ':' || p.token FROM notification_outbox o "
                    "JOIN push_tokens p ON p.user_id = o.user_id AND p.active "
                    "WHERE o.channel = 'push' AND o.status = 'sent'")
        sent = {r[0] for r in cur.fetchall()}
        cur.execute("SELECT count(*), count(*) FILTER (WHERE m.status_id IN (8, 11, 12)) FROM telegram_posts p "
                    "JOIN matches m ON m.id = p.match_id")
        posts, posts_finished = cur.fetchone()
        cur.execute("SELECT channel_id, message_id FROM telegram_posts WHERE status = 'settled'")
        settled_posts = {(c_, m) for c_, m in cur.fetchall()}
        cur.execute("SELECT count(*) FROM user_badges")
        badges_unlocked = cur.fetchone()[0]
        cur.execute("SELECT count(*) FILTER (WHERE match_id IS NOT NULL), count(*) FILTER (WHERE status <> 'pending') "
                    "FROM ai_predictions")
        predictions_matched, predictions_settled = cur.fetchone()
        cur.execute("SELECT count(*) FROM reward_ledger")
        grants = cur.fetchone()[0]
        cur.execute("SELECT tier, count(*) FROM referrals GROUP BY tier ORDER BY tier")
        tiers = dict(cur.fetchall())
        cur.execute("SELECT count(*) FROM scheduled_notifications WHERE status = 'sent'")
        notified = cur.fetchone()[0]
    with psycopg2.connect(dsn) as c:
        left = badges.unlock(c, today, 1_000_000)        # nothing may be left due after the drain
    if left["unlocked"]:
        problems.append(f"{left['unlocked']} badges were due and not unlocked after the drain")
    delivered = set(gateway.delivered)
    lost = sent - delivered
    if lost:
        problems.append(f"{len(lost)} push messages recorded sent that the gateway never got: {sorted(lost)[:5]}")
    twice = [k for k, n in gateway.delivered.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} push messages delivered twice: {twice[:5]}")
    if telegram is not None:
        replies: dict = {}
        for doc in telegram.replies:
            key = (str(doc.get("chat_id")), (doc.get("reply_parameters") or {}).get("message_id"))
            replies[key] = replies.get(key, 0) + 1
        lost_replies = settled_posts - set(replies)
        if lost_replies:
            problems.append(f"{len(lost_replies)} posts settled without a reply reaching Telegram: {sorted(lost_replies)[:5]}")
        unrecorded = set(replies) - settled_posts
        if unrecorded:
            problems.append(f"{len(unrecorded)} posts Telegram has a reply for but not settled: {sorted(unrecorded)[:5]}")
        twice = sum(1 for n in replies.values() if n > 1)
    figures = {"telegram_posts": posts, "telegram_posts_of_finished_matches": posts_finished,
               "telegram_posts_settled": len(settled_posts),
               "telegram_replies_sent_again_after_a_kill_in_flight": twice if telegram is not None else None,
               "badges": badges_unlocked, "predictions_matched": predictions_matched,
               "predictions_settled": predictions_settled, "grants": grants, "referrals_by_tier": tiers, "notifications_sent": notified,
               "push_sent": len(sent), "push_delivered": len(delivered),
               "push_resent_and_absorbed_by_key": gateway.repeats}
    return figures, problems


def runs(dsn: str) -> dict:
    """The bench jobs' runs by job (without the node suffix) and outcome."""
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        cur.execute("SELECT regexp_replace(job, '^fast_(.*)_[ab]$', '\\1'), outcome, count(*) FROM job_runs "
                    "WHERE job LIKE 'fast_%%' GROUP BY 1, 2 ORDER BY 1, 2")
        out: dict = {}
        for job, outcome, n in cur.fetchall():
            out.setdefault(job, {})[outcome] = n
    return out


def wait_drained(dsn: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        left = pending(dsn)
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        time.sleep(1)
