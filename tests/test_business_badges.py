"""Badge auto-unlock and XP levels (sql/0014, goald/business/badges.py, levels.py,
actors/jobs/badges.py): each condition at its threshold, exactly once (runs twice, two instances at
once, a run aborted or killed half-way), the batch bound, inactive badges, and the query budget at
two population sizes."""
import time
from datetime import date, datetime, timezone

import gevent
import gevent.event
import psycopg2
import pytest

from goald import config
from goald.actors.context import JobContext
from goald.actors.jobs import badges as badge_jobs
from goald.actors.ledger import Occurrence
from goald.business import badges, levels, rewards
from support import sql

TODAY = date(2026, 12, 3)
KINDS = ("referrals", "predictions", "login_streak", "xp_level", "comments")


def users(dsn, n, token=True):
    """n users, each with an active push token unless `token` is false; returns their ids."""
    ids = [r[0] for r in sql(dsn, "INSERT INTO app_users (name) SELECT 'u' || i FROM generate_series(1, %s) i "
                                  "RETURNING id", (n,))]
    if token:
        sql(dsn, "INSERT INTO push_tokens (user_id, token) SELECT u, 'tok-' || u FROM unnest(%s::bigint[]) u", (ids,))
    return ids


def only_badge(dsn, kind, threshold, credits=10, xp=20, code=None):
    """Deactivate the whole catalogue and add one active badge; returns its id."""
    sql(dsn, "UPDATE badges SET active = false")
    return add_badge(dsn, kind, threshold, credits, xp, code)


def add_badge(dsn, kind, threshold, credits=10, xp=20, code=None, active=True):
    code = code or f"t_{kind}_{threshold}"
    return sql(dsn, "INSERT INTO badges (code, name, description, condition_kind, threshold, reward_credits, "
                    "reward_xp, active) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
               (code, f"Test {kind} {threshold}", f"{kind} at least {threshold}", kind, threshold, credits, xp,
                active))[0][0]


def give_xp(dsn, user, amount):
    """XP through the ledger, so balances stay the ledger's sums."""
    sql(dsn, "INSERT INTO reward_ledger (user_id, currency, amount, balance_before, balance_after, reason, reference) "
             "SELECT id, 'xp', %s, xp, xp + %s, 'opening', 'test' FROM app_users WHERE id = %s", (amount, amount, user))
    sql(dsn, "UPDATE app_users SET xp = xp + %s WHERE id = %s", (amount, user))


def login_days(dsn, user, days_ago):
    sql(dsn, "INSERT INTO user_login_days (user_id, day) SELECT %s, %s::date - g FROM unnest(%s::int[]) g",
        (user, TODAY, list(days_ago)))


def reach(dsn, kind, user, n):
    """Make `user` meet `kind` with the amount n (a level for xp_level, days for login_streak)."""
    if kind == "referrals":
        friends = users(dsn, n + 1, token=False)
        sql(dsn, "INSERT INTO referrals (referrer_id, referred_id, tier) SELECT %s, f, CASE WHEN k <= %s THEN "
                 "2 + k %% 2 ELSE 1 END FROM unnest(%s::bigint[]) WITH ORDINALITY t(f, k)", (user, n, friends))
    elif kind == "predictions":
        sql(dsn, "INSERT INTO user_predictions (user_id, match_id, pick) SELECT %s, 'm' || g, 'home' "
                 "FROM generate_series(1, %s) g", (user, n))
    elif kind == "comments":
        sql(dsn, "INSERT INTO match_comments (user_id, match_id, body) SELECT %s, 'm1', 'c' || g "
                 "FROM generate_series(1, %s) g", (user, n))
    elif kind == "login_streak":
        login_days(dsn, user, [*range(n), n + 1, n + 2])          # n days to today, then a gap
    elif kind == "xp_level":
        give_xp(dsn, user, sql(dsn, "SELECT min_xp FROM xp_levels WHERE level = %s", (n,))[0][0])


def unlock(pool, batch=1000, today=TODAY):
    with pool.connection() as conn:
        return badges.unlock(conn, today, batch)


def held(dsn):
    return set(sql(dsn, "SELECT user_id, badge_id FROM user_badges"))


def no_mismatch(dsn):
    with psycopg2.connect(dsn) as c:
        return rewards.balance_mismatches(c) == []


def ctx_for(pool, **env):
    return JobContext(occurrence=Occurrence("badge_auto_unlock", datetime(2026, 12, 3, 12, 5, 5, tzinfo=timezone.utc)
                                            .timestamp()),
                      pool=pool, config=config.load(None, env, search=False), node="t", cancel=gevent.event.Event())


@pytest.mark.parametrize("kind", KINDS)
def test_each_condition_kind_unlocks_at_its_threshold_and_not_one_below(pool, db_dsn, kind):
    badge = only_badge(db_dsn, kind, 3)
    at, below = users(db_dsn, 2)
    reach(db_dsn, kind, at, 3)
    if kind == "xp_level":
        give_xp(db_dsn, below, 299)                              # level 3 is 300 XP
    else:
        reach(db_dsn, kind, below, 2)
    assert unlock(pool)["unlocked"] == 1
    assert held(db_dsn) == {(at, badge)}
    assert no_mismatch(db_dsn)


def test_a_streak_ends_today_or_yesterday_and_a_gap_breaks_it(pool, db_dsn):
    badge = only_badge(db_dsn, "login_streak", 3)
    to_today, to_yesterday, two_days_ago, gap, future_only = users(db_dsn, 5)
    login_days(db_dsn, to_today, [0, 1, 2])
    login_days(db_dsn, to_yesterday, [1, 2, 3])
    login_days(db_dsn, two_days_ago, [2, 3, 4, 5])             # the streak lapsed
    login_days(db_dsn, gap, [0, 1, 3, 4, 5])                    # two days, a gap, three more
    login_days(db_dsn, future_only, [-1, 0, 1])                 # a day after today does not count
    unlock(pool)
    assert held(db_dsn) == {(to_today, badge), (to_yesterday, badge)}


def test_a_streak_badge_longer_than_the_day_mask_is_counted_exactly(pool, db_dsn):
    long_days = badges.MASK_DAYS + 8
    badge = only_badge(db_dsn, "login_streak", long_days)
    exact, one_short, holed = users(db_dsn, 3)
    login_days(db_dsn, exact, range(1, long_days + 1))          # ending yesterday
    login_days(db_dsn, one_short, range(0, long_days - 1))
    login_days(db_dsn, holed, [d for d in range(0, long_days + 20) if d != long_days - 3])
    unlock(pool)
    assert held(db_dsn) == {(exact, badge)}


def test_referrals_count_tier_2_and_3_only(pool, db_dsn):
    only_badge(db_dsn, "referrals", 2)
    user, = users(db_dsn, 1)
    friends = users(db_dsn, 3, token=False)
    sql(db_dsn, "INSERT INTO referrals (referrer_id, referred_id, tier) VALUES (%s, %s, 1), (%s, %s, 1), "
                "(%s, %s, 3)", (user, friends[0], user, friends[1], user, friends[2]))
    assert unlock(pool)["unlocked"] == 0
    sql(db_dsn, "UPDATE referrals SET tier = 2 WHERE referred_id = %s", (friends[0],))
    assert unlock(pool)["unlocked"] == 1


def test_the_reward_lands_in_the_ledger_and_the_message_names_the_badge_once(pool, db_dsn):
    badge = only_badge(db_dsn, "comments", 1, credits=40, xp=80, code="talker")
    with_token, = users(db_dsn, 1)
    without_token, = users(db_dsn, 1, token=False)
    for u in (with_token, without_token):
        reach(db_dsn, "comments", u, 1)
    assert unlock(pool) == {"unlocked": 2, "granted": 4, "queued": 1, "backlog": 0}
    assert unlock(pool) == {"unlocked": 0, "granted": 0, "queued": 0, "backlog": 0}     # run twice: nothing more
    assert sql(db_dsn, "SELECT user_id, currency, amount, balance_before, balance_after, reference FROM reward_ledger "
                       "WHERE reason = 'badge' ORDER BY user_id, currency") == [
        (with_token, "credits", 40, 0, 40, "talker"), (with_token, "xp", 80, 0, 80, "talker"),
        (without_token, "credits", 40, 0, 40, "talker"), (without_token, "xp", 80, 0, 80, "talker")]
    assert sql(db_dsn, "SELECT credits, xp FROM app_users WHERE id = %s", (with_token,)) == [(40, 80)]
    assert no_mismatch(db_dsn)
    [(user, kind, key, payload)] = sql(db_dsn, "SELECT user_id, kind, dedupe_key, payload FROM notification_outbox")
    assert (user, kind, key) == (with_token, "badge_unlocked", f"badge:{with_token}:{badge}")
    assert payload["title"] == "Badge unlocked: Test comments 1" and payload["badge"] == "talker"
    assert payload["body"] == "comments at least 1: +40 credits and 80 XP"


def test_a_user_who_has_the_badge_already_gets_neither_it_nor_its_reward_again(pool, db_dsn):
    badge = only_badge(db_dsn, "predictions", 1)
    old, new = users(db_dsn, 2)
    for u in (old, new):
        reach(db_dsn, "predictions", u, 5)
    sql(db_dsn, "INSERT INTO user_badges (user_id, badge_id) VALUES (%s, %s)", (old, badge))
    assert unlock(pool)["unlocked"] == 1
    assert unlock(pool)["unlocked"] == 0
    assert held(db_dsn) == {(old, badge), (new, badge)}
    assert sql(db_dsn, "SELECT DISTINCT user_id FROM reward_ledger") == [(new,)]
    assert sql(db_dsn, "SELECT user_id FROM notification_outbox") == [(new,)]


def test_xp_a_badge_grants_unlocks_the_level_badge_on_the_next_run_not_in_a_loop(pool, db_dsn):
    first = only_badge(db_dsn, "comments", 1, credits=0, xp=300)
    level3 = add_badge(db_dsn, "xp_level", 3, credits=5, xp=0)
    user, = users(db_dsn, 1)
    reach(db_dsn, "comments", user, 1)
    assert unlock(pool)["unlocked"] == 1 and held(db_dsn) == {(user, first)}
    with pool.connection() as conn:
        assert levels.progress(conn, user) == {"xp": 300, "level": 3, "next_level": 4, "next_level_xp": 600}
    assert unlock(pool)["unlocked"] == 1 and held(db_dsn) == {(user, first), (user, level3)}
    assert no_mismatch(db_dsn)


def test_inactive_badges_are_never_granted(pool, db_dsn):
    sql(db_dsn, "UPDATE badges SET active = false")
    add_badge(db_dsn, "predictions", 1, active=False)
    user, = users(db_dsn, 1)
    reach(db_dsn, "predictions", user, 3)
    assert unlock(pool)["unlocked"] == 0 and held(db_dsn) == set()


def test_a_run_unlocks_at_most_the_batch_and_the_next_runs_go_on(pool, db_dsn):
    only_badge(db_dsn, "predictions", 1)
    add_badge(db_dsn, "comments", 1)
    ids = users(db_dsn, 13)
    for u in ids:
        reach(db_dsn, "predictions", u, 1)
    for u in ids[:12]:
        reach(db_dsn, "comments", u, 1)                         # 25 eligible pairs
    runs = [unlock(pool, batch=10) for _ in range(4)]
    assert [r["unlocked"] for r in runs] == [10, 10, 5, 0]
    assert [r["backlog"] for r in runs] == [15, 5, 0, 0]
    assert len(held(db_dsn)) == 25 and no_mismatch(db_dsn)


def test_the_seeded_catalogue_covers_every_kind_and_the_levels_rise(db_dsn):
    assert {k for (k,) in sql(db_dsn, "SELECT DISTINCT condition_kind FROM badges WHERE active")} == set(KINDS)
    curve = [x for (x,) in sql(db_dsn, "SELECT min_xp FROM xp_levels ORDER BY level")]
    assert curve[0] == 0 and len(curve) == 30 and all(a < b for a, b in zip(curve, curve[1:]))


def test_two_instances_unlocking_at_once_grant_each_badge_once(db_dsn):
    only_badge(db_dsn, "predictions", 1, code="p1")
    add_badge(db_dsn, "comments", 1, code="c1")
    ids = users(db_dsn, 400)
    with psycopg2.connect(db_dsn) as c, c.cursor() as cur:
        cur.execute("INSERT INTO user_predictions (user_id, match_id, pick) SELECT u, 'm', 'home' "
                    "FROM unnest(%s::bigint[]) u", (ids,))
        cur.execute("INSERT INTO match_comments (user_id, match_id, body) SELECT u, 'm', 'hi' "
                    "FROM unnest(%s::bigint[]) u", (ids,))
    conns = [psycopg2.connect(db_dsn) for _ in range(2)]
    try:
        def worker(conn):
            # A run may find the users it claimed done by the other instance, which committed after
            # this run's statement began (ON CONFLICT refuses them): it unlocks nothing then, and
            # reports a backlog; the next run goes on.
            made = 0
            for _ in range(100):
                out = badges.unlock(conn, TODAY, 40)
                made += out["unlocked"]
                if not out["unlocked"] and not out["backlog"]:
                    return made
            raise AssertionError("the backlog never emptied")
        made = [g.value for g in gevent.joinall([gevent.spawn(worker, c) for c in conns], raise_error=True)]
    finally:
        for c in conns:
            c.close()
    assert sum(made) == 800 and all(m > 0 for m in made), made  # both worked, neither twice
    assert sql(db_dsn, "SELECT count(*), count(DISTINCT (user_id, currency, reference)) FROM reward_ledger") == \
        [(1600, 1600)]
    assert sql(db_dsn, "SELECT count(*), count(DISTINCT dedupe_key) FROM notification_outbox") == [(800, 800)]
    assert no_mismatch(db_dsn)


def test_a_run_that_fails_half_way_leaves_nothing_and_the_next_run_does_it_all_once(pool, db_dsn):
    only_badge(db_dsn, "predictions", 1)
    ids = users(db_dsn, 5)
    for u in ids:
        reach(db_dsn, "predictions", u, 2)
    sql(db_dsn, "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'outbox refused'; END $$")
    sql(db_dsn, "CREATE TRIGGER boom BEFORE INSERT ON notification_outbox FOR EACH ROW EXECUTE FUNCTION boom()")
    with pytest.raises(psycopg2.Error, match="outbox refused"):
        unlock(pool)
    assert held(db_dsn) == set() and sql(db_dsn, "SELECT count(*) FROM reward_ledger") == [(0,)]
    assert sql(db_dsn, "SELECT sum(credits + xp) FROM app_users") == [(0,)]
    sql(db_dsn, "DROP TRIGGER boom ON notification_outbox")
    assert unlock(pool) == {"unlocked": 5, "granted": 10, "queued": 5, "backlog": 0}
    assert unlock(pool)["unlocked"] == 0 and no_mismatch(db_dsn)


def test_a_run_whose_connection_is_killed_mid_statement_leaves_nothing(pool, db_dsn):
    only_badge(db_dsn, "comments", 1)
    ids = users(db_dsn, 5)
    for u in ids:
        reach(db_dsn, "comments", u, 1)
    sql(db_dsn, "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "PERFORM pg_sleep(30); RETURN NEW; END $$")
    sql(db_dsn, "CREATE TRIGGER slow BEFORE INSERT ON notification_outbox FOR EACH ROW EXECUTE FUNCTION slow()")
    conn = psycopg2.connect(db_dsn)
    pid = conn.info.backend_pid
    run = gevent.spawn(badges.unlock, conn, TODAY, 100)
    deadline = time.monotonic() + 10
    while not sql(db_dsn, "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'PgSleep'", (pid,)):
        assert time.monotonic() < deadline, "the run never reached the outbox insert"
        gevent.sleep(0.05)
    assert sql(db_dsn, "SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
    run.join(10)
    assert isinstance(run.exception, psycopg2.Error), run.exception
    conn.close()
    assert held(db_dsn) == set() and sql(db_dsn, "SELECT count(*) FROM reward_ledger") == [(0,)]
    sql(db_dsn, "DROP TRIGGER slow ON notification_outbox")
    assert unlock(pool)["unlocked"] == 5 and unlock(pool)["unlocked"] == 0
    assert sql(db_dsn, "SELECT count(*) FROM reward_ledger") == [(10,)] and no_mismatch(db_dsn)


def population(dsn, n):
    """n users meeting every seeded badge's condition but the 25-referral one (5 referrals each)."""
    with psycopg2.connect(dsn) as c, c.cursor() as cur:
        cur.execute("INSERT INTO app_users (name) SELECT 'p' || i FROM generate_series(1, %s) i RETURNING id", (n,))
        ids = [r[0] for r in cur.fetchall()]
        cur.execute("INSERT INTO push_tokens (user_id, token) SELECT u, 't' || u FROM unnest(%s::bigint[]) u", (ids,))
        cur.execute("INSERT INTO user_predictions (user_id, match_id, pick) SELECT u, 'm' || g, 'home' "
                    "FROM unnest(%s::bigint[]) u, generate_series(1, 50) g", (ids,))
        cur.execute("INSERT INTO match_comments (user_id, match_id, body) SELECT u, 'm', 'c' "
                    "FROM unnest(%s::bigint[]) u, generate_series(1, 25) g", (ids,))
        cur.execute("INSERT INTO user_login_days (user_id, day) SELECT u, %s::date - g "
                    "FROM unnest(%s::bigint[]) u, generate_series(0, 29) g", (TODAY, ids))
        cur.execute("INSERT INTO reward_ledger (user_id, currency, amount, balance_before, balance_after, reason, "
                    "reference) SELECT u, 'xp', 4500, 0, 4500, 'opening', 'test' FROM unnest(%s::bigint[]) u", (ids,))
        cur.execute("UPDATE app_users SET xp = 4500 WHERE id = ANY (%s)", (ids,))
        friends = n * 5
        cur.execute("INSERT INTO app_users (name) SELECT 'f' || i FROM generate_series(1, %s) i RETURNING id",
                    (friends,))
        fids = [r[0] for r in cur.fetchall()]
        cur.execute("INSERT INTO referrals (referrer_id, referred_id, tier) SELECT (%s::bigint[])[1 + (k - 1) / 5], f, 2 "
                    "FROM unnest(%s::bigint[]) WITH ORDINALITY t(f, k)", (ids, fids))
    return ids


def test_the_jobs_queries_per_run_are_the_same_for_100_and_5000_users_and_within_budget(pool, db_dsn):
    counts = {}
    catalogue = sql(db_dsn, "SELECT count(*) FROM badges WHERE active AND code <> 'ambassador'")[0][0]
    for n in (100, 5000):
        sql(db_dsn, "TRUNCATE app_users CASCADE")
        population(db_dsn, n)
        ctx = ctx_for(pool, GOALD_BADGES_BATCH_SIZE=str(catalogue * n))
        out = badge_jobs.badge_auto_unlock(ctx)
        counts[n] = ctx.queries
        assert out["unlocked"] == catalogue * n and out["backlog"] == 0, out     # all of them, in that one run
    assert 1 <= counts[100] == counts[5000] <= 10, counts
    assert no_mismatch(db_dsn)


def test_the_batch_size_answers_to_the_seeds_variable(pool, db_dsn):
    cfg = config.load(None, {"BADGE_AUTO_UNLOCK_BATCH_SIZE": "7"}, search=False)
    assert cfg["badges.batch_size"] == 7
    only_badge(db_dsn, "predictions", 1)
    for u in users(db_dsn, 9):
        reach(db_dsn, "predictions", u, 1)
    assert badge_jobs.badge_auto_unlock(ctx_for(pool, BADGE_AUTO_UNLOCK_BATCH_SIZE="7"))["unlocked"] == 7
