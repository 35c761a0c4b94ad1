"""`goald seed-demo` (goald/business/demo.py): a population that gives every business job work."""
import time

import gevent.event

from goald import config
from goald.actors.context import JobContext
from goald.actors.jobs import badges, business
from goald.actors.ledger import Occurrence
from goald.business import rewards
from support import goald, sql



def seed(db_dsn, *args):
    return goald(["seed-demo", *args], timeout=120, GOALD_DATABASE_URL=db_dsn, GOALD_LOG_LEVEL="WARNING")


def test_the_demo_population_gives_every_business_job_work_and_a_second_seed_of_it_is_refused(db_dsn, pool):
    r = seed(db_dsn, "--users", "300")
    assert r.returncode == 0 and r.stdout.startswith("made 300 users,"), r.stderr
    cfg = config.load(None, {}, search=False)
    did = {}
    for job in (badges.badge_auto_unlock, business.referral_tier2, business.referral_tier3,
                business.daily_reward_reminders, business.scheduled_notifications):
        ctx = JobContext(occurrence=Occurrence(job.__name__, time.time()), pool=pool, config=cfg, node="t",
                         cancel=gevent.event.Event())
        did[job.__name__] = job(ctx)
    assert did["referral_tier2"]["promoted"] > 0 and did["referral_tier3"]["promoted"] > 0, did
    assert did["daily_reward_reminders"]["queued"] > 0 and did["scheduled_notifications"]["claimed"] == 2, did
    unlocked = {k for (k,) in sql(db_dsn, "SELECT DISTINCT b.condition_kind FROM user_badges u JOIN badges b "
                                          "ON b.id = u.badge_id")}
    assert did["badge_auto_unlock"]["unlocked"] > 0 and unlocked == {"predictions", "login_streak", "comments"}, did
    after = badges.badge_auto_unlock(JobContext(occurrence=Occurrence("badge_auto_unlock", time.time()), pool=pool,
                                                config=cfg, node="t", cancel=gevent.event.Event()))
    assert after["unlocked"] > 0, after                        # the referrals moved since: referral badges now
    with pool.connection() as conn:
        assert rewards.balance_mismatches(conn) == []
    again = seed(db_dsn, "--users", "10")
    assert again.returncode == 2 and "exist already" in again.stderr
    assert seed(db_dsn, "--users", "10", "--seed", "2").returncode == 0
    assert seed(db_dsn, "--users", "0").returncode == 2


def test_the_demo_feeds_population_waits_for_matches_and_never_seeds_a_database_with_users(db_dsn, pool):
    from goald.business import demo

    slept = []
    assert demo.populate_when_matches_arrive(pool, 50, poll_s=0.01, give_up_s=0.2,
                                             sleep=lambda s: (slept.append(s), time.sleep(s))) is None
    assert slept and sql(db_dsn, "SELECT count(*) FROM app_users") == [(0,)]        # no match yet: waited, made none
    sql(db_dsn, "INSERT INTO matches (id, match_time, status_id) VALUES ('m1', 1700000000, 8)")
    made = demo.populate_when_matches_arrive(pool, 50, poll_s=0.01, give_up_s=5)
    assert made["users"] == 50 and sql(db_dsn, "SELECT count(*) FROM app_users") == [(50,)]
    assert demo.populate_when_matches_arrive(pool, 50, poll_s=0.01, give_up_s=5) is None     # users exist: left alone
    assert sql(db_dsn, "SELECT count(*) FROM app_users") == [(50,)]
