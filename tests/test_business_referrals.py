"""Referral tiers and daily reward reminders (goald/business/, actors/jobs/business.py): the rules,
the original's defect cases, two instances at once, and query budgets at two population sizes."""
import time
from datetime import date, datetime, timedelta, timezone

import gevent
import gevent.event
import psycopg2
import pytest

from goald import config
from goald.actors.context import JobContext
from goald.actors.jobs import business
from goald.actors.ledger import Occurrence
from goald.business import daily_rewards, referrals, rewards
from support import sql

TODAY = date(2026, 12, 3)


def users(dsn, n):
    """n users; returns their ids."""
    return [r[0] for r in sql(dsn, "INSERT INTO app_users (name) SELECT 'u' || i FROM generate_series(1, %s) i "
                                   "RETURNING id", (n,))]


def identity(dsn, user, provider, logged_in=True):
    sql(dsn, "INSERT INTO user_identities (user_id, provider, subject, last_login_at) VALUES (%s, %s, %s, %s)",
        (user, provider, f"{provider}-{user}", datetime.now(timezone.utc) if logged_in else None))


def refer(dsn, referrer, referred):
    return sql(dsn, "INSERT INTO referrals (referrer_id, referred_id) VALUES (%s, %s) RETURNING id",
               (referrer, referred))[0][0]


def balances(dsn, user):
    return tuple(sql(dsn, "SELECT credits, xp FROM app_users WHERE id = %s", (user,))[0])


def no_mismatch(dsn):
    with psycopg2.connect(dsn) as c:
        return rewards.balance_mismatches(c) == []


def ctx_for(pool, job, **env):
    return JobContext(occurrence=Occurrence(job, time.time()), pool=pool, config=config.load(None, env, search=False),
                      node="t", cancel=gevent.event.Event())


def test_a_referred_user_with_three_identities_credits_the_referrer_once(pool, db_dsn):
    referrer, referred = users(db_dsn, 2)
    for provider in ("google", "apple", "phone"):
        identity(db_dsn, referred, provider)
    rid = refer(db_dsn, referrer, referred)
    with pool.connection() as conn:
        assert referrals.promote_tier2(conn, 100) == 2
        assert referrals.promote_tier2(conn, 100) == 0               # the next run: nothing more
    assert balances(db_dsn, referrer) == (50, 0) and balances(db_dsn, referred) == (10, 0)
    assert sql(db_dsn, "SELECT tier FROM referrals WHERE id = %s", (rid,)) == [(2,)]
    assert sql(db_dsn, "SELECT user_id, amount, balance_before, balance_after, reason, reference FROM reward_ledger "
                       "ORDER BY user_id") == [(referrer, 50, 0, 50, "referral_tier2_referrer", str(rid)),
                                               (referred, 10, 0, 10, "referral_tier2_referred", str(rid))]
    assert no_mismatch(db_dsn)


def test_a_referred_user_who_never_logged_in_moves_nothing(pool, db_dsn):
    referrer, referred = users(db_dsn, 2)
    identity(db_dsn, referred, "google", logged_in=False)
    refer(db_dsn, referrer, referred)
    with pool.connection() as conn:
        assert referrals.promote_tier2(conn, 100) == 0
    assert balances(db_dsn, referrer) == (0, 0)


def test_tier3_needs_tier2_and_an_active_subscription_and_rewards_once_however_many(pool, db_dsn):
    referrer, referred, other = users(db_dsn, 3)
    identity(db_dsn, referred, "google")
    rid = refer(db_dsn, referrer, referred)
    for plan in ("monthly", "yearly"):
        sql(db_dsn, "INSERT INTO subscriptions (user_id, plan, status) VALUES (%s, %s, 'active')", (referred, plan))
    refer(db_dsn, referrer, other)                                # subscribed but never logged in: stays at 1
    sql(db_dsn, "INSERT INTO subscriptions (user_id, plan, status) VALUES (%s, 'monthly', 'active')", (other,))
    with pool.connection() as conn:
        assert referrals.promote_tier3(conn, 100) == 0            # tier 1 first goes to 2
        assert referrals.promote_tier2(conn, 100) == 2
        assert referrals.promote_tier3(conn, 100) == 2            # 200 credits and 500 XP: two grants
        assert referrals.promote_tier3(conn, 100) == 0
    assert sql(db_dsn, "SELECT id, tier FROM referrals ORDER BY id") == [(rid, 3), (rid + 1, 1)]
    assert balances(db_dsn, referrer) == (250, 500) and no_mismatch(db_dsn)


def test_an_expired_or_cancelled_subscription_does_not_reach_tier3(pool, db_dsn):
    referrer, referred = users(db_dsn, 2)
    identity(db_dsn, referred, "google")
    refer(db_dsn, referrer, referred)
    sql(db_dsn, "INSERT INTO subscriptions (user_id, plan, status, expires_at) VALUES (%s, 'm', 'active', "
                "now() - interval '1 day'), (%s, 'y', 'cancelled', NULL)", (referred, referred))
    with pool.connection() as conn:
        referrals.promote_tier2(conn, 100)
        assert referrals.promote_tier3(conn, 100) == 0


def test_credits_and_the_tier_change_commit_together_or_not_at_all(pool, db_dsn):
    referrer, referred = users(db_dsn, 2)
    identity(db_dsn, referred, "google")
    rid = refer(db_dsn, referrer, referred)
    sql(db_dsn, "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.reason = 'referral_tier2_referred' THEN RAISE EXCEPTION 'ledger refused'; END IF; "
                "RETURN NEW; END $$")
    sql(db_dsn, "CREATE TRIGGER boom BEFORE INSERT ON reward_ledger FOR EACH ROW EXECUTE FUNCTION boom()")
    with pool.connection() as conn, pytest.raises(psycopg2.Error, match="ledger refused"):
        referrals.promote_tier2(conn, 100)
    assert sql(db_dsn, "SELECT tier FROM referrals WHERE id = %s", (rid,)) == [(1,)]   # not moved
    assert balances(db_dsn, referrer) == (0, 0) and sql(db_dsn, "SELECT count(*) FROM reward_ledger") == [(0,)]
    sql(db_dsn, "DROP TRIGGER boom ON reward_ledger")
    with pool.connection() as conn:
        assert referrals.promote_tier2(conn, 100) == 2            # the next run does it, once
    assert balances(db_dsn, referrer) == (50, 0)


def test_several_grants_to_one_user_in_one_run_chain_their_balances(pool, db_dsn):
    referrer, *referred = users(db_dsn, 4)
    sql(db_dsn, "UPDATE app_users SET credits = 7 WHERE id = %s", (referrer,))
    sql(db_dsn, "INSERT INTO reward_ledger (user_id, currency, amount, balance_before, balance_after, reason, "
                "reference) VALUES (%s, 'credits', 7, 0, 7, 'opening', '1')", (referrer,))
    for r in referred:
        identity(db_dsn, r, "google")
        refer(db_dsn, referrer, r)
    with pool.connection() as conn:
        assert referrals.promote_tier2(conn, 100) == 6
    chain = sql(db_dsn, "SELECT balance_before, balance_after FROM reward_ledger WHERE user_id = %s AND reason = "
                        "'referral_tier2_referrer' ORDER BY balance_before", (referrer,))
    assert chain == [(7, 57), (57, 107), (107, 157)] and balances(db_dsn, referrer) == (157, 0)
    assert no_mismatch(db_dsn)


def test_two_instances_promoting_at_once_move_each_referral_once(db_dsn):
    ids = users(db_dsn, 401)
    referrer, referred = ids[0], ids[1:]
    with psycopg2.connect(db_dsn) as c, c.cursor() as cur:
        cur.execute("INSERT INTO user_identities (user_id, provider, subject, last_login_at) "
                    "SELECT u, 'google', 'g' || u, now() FROM unnest(%s::bigint[]) u", (referred,))
        cur.execute("INSERT INTO referrals (referrer_id, referred_id) SELECT %s, u FROM unnest(%s::bigint[]) u",
                    (referrer, referred))
    conns = [psycopg2.connect(db_dsn) for _ in range(2)]
    try:
        def worker(conn):
            made = 0
            while True:
                got = referrals.promote_tier2(conn, 50)
                if not got:
                    return made
                made += got
        made = [g.value for g in gevent.joinall([gevent.spawn(worker, c) for c in conns], raise_error=True)]
    finally:
        for c in conns:
            c.close()
    assert sum(made) == 800 and all(m > 0 for m in made)          # both worked, neither twice
    assert sql(db_dsn, "SELECT count(*), count(DISTINCT (user_id, reason, reference)) FROM reward_ledger") == \
        [(800, 800)]
    assert balances(db_dsn, referrer) == (50 * 400, 0) and no_mismatch(db_dsn)


# --- daily reward reminders ----------------------------------------------------------------------

def claim(dsn, user, days_ago, streak_day):
    sql(dsn, "INSERT INTO daily_reward_claims (user_id, day, streak_day) VALUES (%s, %s, %s)",
        (user, TODAY - timedelta(days=days_ago), streak_day))


def token(dsn, user, active=True):
    sql(dsn, "INSERT INTO push_tokens (user_id, token, active) VALUES (%s, %s, %s)", (user, f"tok-{user}", active))


def test_reminders_name_the_next_reward_by_the_streak_rule_and_skip_who_should_not_get_one(pool, db_dsn):
    yesterday3, yesterday7, lapsed, claimed_today, no_token, too_old = users(db_dsn, 6)
    for u in (yesterday3, yesterday7, lapsed, claimed_today, too_old):
        token(db_dsn, u)
    token(db_dsn, no_token, active=False)
    claim(db_dsn, yesterday3, 2, 2)
    claim(db_dsn, yesterday3, 1, 3)
    claim(db_dsn, yesterday7, 1, 7)
    claim(db_dsn, lapsed, 3, 5)
    claim(db_dsn, claimed_today, 1, 1)
    claim(db_dsn, claimed_today, 0, 2)
    claim(db_dsn, no_token, 1, 1)
    claim(db_dsn, too_old, 8, 4)
    with pool.connection() as conn:
        assert daily_rewards.queue_reminders(conn, TODAY) == {"eligible": 3, "queued": 3}
        assert daily_rewards.queue_reminders(conn, TODAY) == {"eligible": 3, "queued": 0}   # once a day
    got = {r[0]: (r[1]["streak_day"], r[1]["credits"], r[1]["xp"]) for r in
           sql(db_dsn, "SELECT user_id, payload FROM notification_outbox WHERE kind = 'daily_reward_reminder'")}
    assert got == {yesterday3: (4, 25, 25), yesterday7: (1, 10, 10), lapsed: (1, 10, 10)}
    assert daily_rewards.next_streak_day(TODAY - timedelta(days=1), 7, TODAY) == 1
    assert daily_rewards.next_streak_day(TODAY - timedelta(days=1), 6, TODAY) == 7


# --- query budgets --------------------------------------------------------------------------------

def population(dsn, n):
    """n referred users (logged in, subscribed, on a streak with a push token) and their referrers."""
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        cur.execute("INSERT INTO app_users (name) SELECT 'p' || i FROM generate_series(1, %s) i RETURNING id", (2 * n,))
        ids = [r[0] for r in cur.fetchall()]
        referrers, referred = ids[:n], ids[n:]
        cur.execute("INSERT INTO user_identities (user_id, provider, subject, last_login_at) "
                    "SELECT u, p, p || u, now() FROM unnest(%s::bigint[]) u, (VALUES ('google'), ('apple')) v(p)",
                    (referred,))
        cur.execute("INSERT INTO referrals (referrer_id, referred_id) SELECT a, b FROM unnest(%s::bigint[], "
                    "%s::bigint[]) t(a, b)", (referrers, referred))
        cur.execute("INSERT INTO subscriptions (user_id, plan, status) SELECT u, 'm', 'active' "
                    "FROM unnest(%s::bigint[]) u", (referred,))
        cur.execute("INSERT INTO push_tokens (user_id, token) SELECT u, 't' || u FROM unnest(%s::bigint[]) u",
                    (referred,))
        cur.execute("INSERT INTO daily_reward_claims (user_id, day, streak_day) SELECT u, %s, 1 "
                    "FROM unnest(%s::bigint[]) u", (TODAY - timedelta(days=1), referred))


@pytest.mark.parametrize("job, budget", [(business.referral_tier2, 10), (business.referral_tier3, 10),
                                         (business.daily_reward_reminders, 2)])
def test_each_jobs_queries_per_run_are_the_same_for_100_and_5000_users_and_within_budget(pool, db_dsn,
                                                                                         server_dsn, job, budget):
    counts = {}
    for n in (100, 5000):
        sql(db_dsn, "TRUNCATE app_users CASCADE")
        population(db_dsn, n)
        if job is business.referral_tier3:
            with pool.connection() as conn:
                referrals.promote_tier2(conn, 10 * n)
        ctx = ctx_for(pool, job.__name__, GOALD_BUSINESS_BATCH_SIZE=str(10 * n))
        ctx.occurrence = Occurrence(job.__name__, datetime(2026, 12, 3, 9, tzinfo=timezone.utc).timestamp())
        out = job(ctx)
        counts[n] = ctx.queries
        done = out.get("promoted", out.get("queued"))
        assert done == n, out                                      # every one of them, in that one run
    assert 1 <= counts[100] == counts[5000] <= budget, counts
    assert no_mismatch(db_dsn)
