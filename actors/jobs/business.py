"""The platform's business jobs (DOMAIN.md, "Business jobs"), set-based and exactly-once in effect.

| job | schedule | what |
| --- | --- | --- |
| `referral_tier2` | every minute at :00 | referrals whose referred user has logged in → tier 2, referrer +50 credits, referred +10 |
| `referral_tier3` | every minute at :15 | referrals whose referred user holds an active subscription → tier 3, referrer +200 credits +500 XP |
| `daily_reward_reminders` | daily at 09:00:27 UTC | reminders for users on a streak who have not claimed today, queued in the outbox |
| `scheduled_notifications` | every minute at :30 | due notifications claimed (a lease: a killed run's are resumed) and their audience queued in the outbox |
| `push_sender` | every 20 s at :09 | pending push messages sent through the push gateway, per-token results recorded, notifications finished |

Each run is one statement (goald/business/): its query count does not grow with the number of
users, and a run killed half-way leaves either all of its changes or none. Two instances, or a
run after a killed one, never grant, move or queue anything twice: the database's uniqueness
rules and row locks decide, not the job. At most `business.batch_size` referrals move per run
(the next run goes on), so a transaction stays bounded. Bodies run in their job actor's run greenlet.
"""
from __future__ import annotations

from datetime import datetime, timezone

from goald import logs
from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule
from goald.business import daily_rewards, notifications, push, referrals

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


def scheduled_notifications(ctx) -> dict:
    with ctx.connection() as conn:
        return notifications.expand_due(conn, ctx.node, ctx.config["push.notifications_per_run"],
                                        ctx.config["push.lease_s"])


def push_sender(ctx) -> dict:
    """Send one batch of pending push messages. Three statements a run (claim, record, finish)
    however many messages; gateway calls of at most push.MAX_BATCH messages."""
    gateway = push.PushGateway.from_config(ctx.config)
    if gateway is None:
        logs.event_once("WARNING", "push.not_configured", "No push gateway configured (push.gateway_url): push "
                        "messages wait in notification_outbox, status pending")
        return {"sent": 0}
    try:
        with ctx.connection() as conn:
            batch = notifications.claim_push(conn, ctx.config["push.batch_size"], ctx.config["push.lease_s"])
        results, unregistered = _send(gateway, batch)
        with ctx.connection() as conn:
            out = notifications.finish_push(conn, results, unregistered)
    finally:
        gateway.close()
    return {"sent": sum(r["outcome"] == "sent" for r in results),
            "failed": sum(r["outcome"] == "failed" for r in results),
            "retry": sum(r["outcome"] == "retry" for r in results),
            "tokens_deactivated": out["tokens_deactivated"], "notifications_finished": out["notifications_finished"]}


def _send(gateway: push.PushGateway, batch: list[dict]) -> tuple[list[dict], list[str]]:
    """Each claimed message to each of its tokens; a message is sent when one of its tokens took it."""
    outcome: dict[int, dict] = {}
    messages = []                       # (message id, token, gateway message)
    for m in batch:
        if not m["tokens"]:
            outcome[m["id"]] = {"id": m["id"], "outcome": "failed", "error": "no active push token"}
        for t in m["tokens"]:
            messages.append((m["id"], t, {"to": t, "title": m["payload"].get("title"),
                                          "body": m["payload"].get("body"), "data": m["payload"],
                                          push.IDEMPOTENCY_FIELD: f"{m['dedupe_key']}:{t}"}))
    ok: set[int] = set()
    errors: dict[int, str] = {}
    retry: dict[int, str] = {}
    unregistered: list[str] = []
    for i in range(0, len(messages), push.MAX_BATCH):
        chunk = messages[i:i + push.MAX_BATCH]
        try:
            tickets = gateway.send([m for _, _, m in chunk])
        except (push.PushUnavailable, push.PushRejected) as e:
            for mid, _, _ in chunk:
                retry.setdefault(mid, f"push gateway: {e}")
            continue
        for (mid, token, _), ticket in zip(chunk, tickets):
            if isinstance(ticket, dict) and ticket.get("status") == "ok":
                ok.add(mid)
                continue
            detail = (ticket.get("details") or {}).get("error") if isinstance(ticket, dict) else None
            if detail == push.UNREGISTERED:
                unregistered.append(token)
            errors.setdefault(mid, str((ticket or {}).get("message") or detail or "error"))
    for m in batch:
        mid = m["id"]
        if mid in outcome:
            continue
        if mid in ok:
            outcome[mid] = {"id": mid, "outcome": "sent", "error": None}
        elif mid in retry:
            outcome[mid] = {"id": mid, "outcome": "retry", "error": retry[mid]}
        else:
            outcome[mid] = {"id": mid, "outcome": "failed", "error": errors.get(mid, "no token took it")}
    return list(outcome.values()), unregistered


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
    JobSpec("scheduled_notifications", scheduled_notifications, Schedule(cron="* * * * *", offset_s=30),
            timeout_s=50, description="Due scheduled notifications: claimed, their audience queued in "
                                      "notification_outbox", timeout_env="SCHEDULED_NOTIFICATIONS_TIMEOUT_MS"),
    JobSpec("push_sender", push_sender, Schedule(every_s=20, offset_s=9), timeout_s=18,
            description="Pending push messages sent through the push gateway (push.gateway_url)",
            log_runs="DEBUG"),
]
