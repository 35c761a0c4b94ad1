"""The platform's business jobs (DOMAIN.md, "Business jobs"), set-based and exactly-once in effect.

| job | schedule | what |
| --- | --- | --- |
| `referral_tier2` | every minute at :00 | referrals whose referred user has logged in → tier 2, referrer +50 credits, referred +10 |
| `referral_tier3` | every minute at :15 | referrals whose referred user holds an active subscription → tier 3, referrer +200 credits +500 XP |
| `daily_reward_reminders` | daily at 09:00:27 UTC | reminders for users on a streak who have not claimed today, queued in the outbox |

Each run is one statement (goald/business/): its query count does not grow with the number of
users, and a run killed half-way leaves either all of its changes or none. Two instances, or a
run after a killed one, never grant, move or queue anything twice: the database's uniqueness
rules and row locks decide, not the job. At most `business.batch_size` referrals move per run
(the next run goes on), so a transaction stays bounded. Bodies run in their job actor's run greenlet.
"""
from __future__ import annotations

from datetime import datetime, timezone

from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule
from goald.business import daily_rewards, referrals


def referral_tier2(ctx) -> dict:
    with ctx.connection() as conn:
        granted = referrals.promote_tier2(conn, ctx.config["business.batch_size"])
    return {"granted": granted, "promoted": granted // 2}


def referral_tier3(ctx) -> dict:
    with ctx.connection() as conn:
        granted = referrals.promote_tier3(conn, ctx.config["business.batch_size"])
    return {"granted": granted, "promoted": granted // 2}


def daily_reward_reminders(ctx) -> dict:
    today = datetime.fromtimestamp(ctx.occurrence.scheduled_at, tz=timezone.utc).date()
    with ctx.connection() as conn:
        out = daily_rewards.queue_reminders(conn, today)
    return {"queued": out["queued"], "already_queued": out["eligible"] - out["queued"]}


JOBS = [
    JobSpec("referral_tier2", referral_tier2, Schedule(cron="* * * * *", offset_s=0), timeout_s=50,
            description="Referrals whose referred user logged in: tier 2, referrer +50 credits, referred +10",
            timeout_env="REFERRAL_TIER2_TIMEOUT_MS"),
    JobSpec("referral_tier3", referral_tier3, Schedule(cron="* * * * *", offset_s=15), timeout_s=50,
            description="Referrals whose referred user subscribed: tier 3, referrer +200 credits and +500 XP",
            timeout_env="REFERRAL_TIER3_TIMEOUT_MS"),
    JobSpec("daily_reward_reminders", daily_reward_reminders, Schedule(cron="0 9 * * *", offset_s=27),
            timeout_s=300, description="Push reminders for users on a daily-reward streak who have not claimed "
                                       "today (queued in notification_outbox)",
            timeout_env="DAILY_REWARD_REMINDERS_TIMEOUT_MS"),
]
