"""Badge auto-unlock (DOMAIN.md, "Business jobs"; the rules in goald/business/badges.py).

| job | schedule | what |
| --- | --- | --- |
| `badge_auto_unlock` | every 5 minutes at :05 | users meeting an active badge's condition (referrals, predictions, login streak, XP level, comments) who lack it get it, its credits / XP and a push message, once |

One statement a run, whatever the number of users: at most `badges.batch_size` (user, badge) pairs
are unlocked, their rewards granted and their messages queued in one transaction (a run killed
half-way leaves nothing; the next run does it). A backlog larger than the batch is taken by the
following runs. Two instances at once claim different users (FOR UPDATE SKIP LOCKED) and the
database refuses a second unlock, grant or message anyway. The body runs in its job actor's run
greenlet; a database error fails the run (recorded in the ledger) and the next run starts over.
"""
from __future__ import annotations

from datetime import datetime, timezone

from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule
from goald.business import badges


def badge_auto_unlock(ctx) -> dict:
    """The streak's "today" is the occurrence's UTC date, so a run late past midnight judges the
    day it was scheduled for."""
    today = datetime.fromtimestamp(ctx.occurrence.scheduled_at, tz=timezone.utc).date()
    with ctx.connection() as conn:
        return badges.unlock(conn, today, ctx.config["badges.batch_size"])


JOBS = [
    JobSpec("badge_auto_unlock", badge_auto_unlock, Schedule(cron="*/5 * * * *", offset_s=5), timeout_s=240,
            description="Users meeting a badge's condition get the badge, its credits / XP and a push message, "
                        "once (badges.batch_size pairs a run)",
            timeout_env="BADGE_AUTO_UNLOCK_TIMEOUT_MS"),
]
