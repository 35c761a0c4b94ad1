"""Referral tiers (DOMAIN.md, "Business jobs"), each move with its rewards in one statement.

- **Tier 2**: the referred user has logged in at least once (any of their identities) → the
  referral moves 1 → 2, the referrer gets 50 credits and the referred user 10.
- **Tier 3**: the referred user holds an active subscription (any of them) → 2 → 3, the
  referrer gets 200 credits and 500 XP.

One statement per run: it picks at most `batch` due referrals (FOR UPDATE SKIP LOCKED: another
instance running the same job takes others, never the same), moves them, and grants their rewards
through goald/business/rewards.py; the move and the grants commit together or not at all. A user
with three identities or two subscriptions is one EXISTS, so one reward; the ledger's uniqueness
rule (reason, reference = the referral id) would refuse a second anyway. The move looks the due
referrals up by primary key (`id = ANY (ARRAY(...))`), not by a join: with statistics from before
any referral moved (right after a bulk import), the planner chose a nested loop of every tier-2
referral times every due one, past the statement timeout at 100,000 users. Functions run in the
caller's greenlet on its connection and commit.
"""
from __future__ import annotations

from goald.business.rewards import grant_sql

TIER2_REFERRER_CREDITS, TIER2_REFERRED_CREDITS = 50, 10
TIER3_REFERRER_CREDITS, TIER3_REFERRER_XP = 200, 500

_TIER2 = grant_sql("""
due AS (
    SELECT r.id FROM referrals r
    WHERE r.tier = 1 AND EXISTS (SELECT 1 FROM user_identities i
                                 WHERE i.user_id = r.referred_id AND i.last_login_at IS NOT NULL)
    ORDER BY r.id LIMIT %(batch)s FOR UPDATE SKIP LOCKED),
moved AS (
    UPDATE referrals r SET tier = 2, tier2_at = now() WHERE r.id = ANY (ARRAY(SELECT id FROM due)) AND r.tier = 1
    RETURNING r.id, r.referrer_id, r.referred_id)""", f"""
SELECT referrer_id AS user_id, 'credits' AS currency, {TIER2_REFERRER_CREDITS}::bigint AS amount,
       'referral_tier2_referrer' AS reason, id::text AS reference FROM moved
UNION ALL
SELECT referred_id, 'credits', {TIER2_REFERRED_CREDITS}::bigint, 'referral_tier2_referred', id::text FROM moved
""")

_TIER3 = grant_sql("""
due AS (
    SELECT r.id FROM referrals r
    WHERE r.tier = 2 AND EXISTS (SELECT 1 FROM subscriptions s
                                 WHERE s.user_id = r.referred_id AND s.status = 'active'
                                   AND (s.expires_at IS NULL OR s.expires_at > now()))
    ORDER BY r.id LIMIT %(batch)s FOR UPDATE SKIP LOCKED),
moved AS (
    UPDATE referrals r SET tier = 3, tier3_at = now() WHERE r.id = ANY (ARRAY(SELECT id FROM due)) AND r.tier = 2
    RETURNING r.id, r.referrer_id)""", f"""
SELECT referrer_id AS user_id, 'credits' AS currency, {TIER3_REFERRER_CREDITS}::bigint AS amount,
       'referral_tier3_referrer' AS reason, id::text AS reference FROM moved
UNION ALL
SELECT referrer_id, 'xp', {TIER3_REFERRER_XP}::bigint, 'referral_tier3_referrer', id::text FROM moved
""")


def promote_tier2(conn, batch: int) -> int:
    """Move due referrals to tier 2 with their rewards; returns the grants made (two per referral)."""
    return _run(conn, _TIER2, batch)


def promote_tier3(conn, batch: int) -> int:
    """Move due referrals to tier 3 with their rewards; returns the grants made (two per referral)."""
    return _run(conn, _TIER3, batch)


def _run(conn, statement: str, batch: int) -> int:
    with conn.cursor() as cur:
        cur.execute(statement, {"batch": batch})
        granted = cur.fetchone()[0]
    conn.commit()
    return granted
