"""Telegram settlement (DOMAIN.md, "Telegram settlement"; goald/business/telegram_settle.py).

| job | schedule | what |
| --- | --- | --- |
| `telegram_settlement` | every 10 minutes at :40 | picks of finished posts settled once and their replies queued; due replies sent through the Bot API; posts settled when Telegram took the reply |

A run is three statements however many posts (with no bot token configured, one):
1. settle + queue: at most `telegram.batch_size` finished posts' picks settled (once: outcome is
   written only while NULL) and their summary replies queued in notification_outbox, one
   transaction;
2. claim at most `telegram.batch_size` due replies (FOR UPDATE SKIP LOCKED, `telegram.lease_s`: a
   reply left `sending` by a killed run is claimed again after the lease; two instances never
   hold the same one);
3. after the sends (no connection held meanwhile), one statement records them: sent → post
   `settled`; a failed send → tried again next run, `reply_failed` after 5; not tried (breaker
   open, throttled, the run's time nearly up) → waits for the next run, no attempt counted.

Delivery is exactly-once except in one window: a run killed (or the database lost) after a
reply's request went out and before step 3's commit sends that reply again after the lease,
because the Bot API has no idempotency key: at least once there, never lost. Picks are never settled again by a
retry. The body runs in its job actor's run greenlet; an exception fails the run (the ledger
records it) and leaves claimed replies to be claimed again after the lease.
"""
from __future__ import annotations

import time

from goald import logs
from goald.actors.catalog import JobSpec
from goald.actors.schedule import Schedule
from goald.business import telegram, telegram_settle

TIMEOUT_S = 300.0


def telegram_settlement(ctx) -> dict:
    limit = ctx.config["telegram.batch_size"]
    bot = telegram.TelegramBot.from_config(ctx.config)
    with ctx.connection() as conn:
        out = telegram_settle.settle_and_queue(conn, limit)
        if bot is None:
            logs.event_once("WARNING", "telegram.not_configured", "No Telegram bot token configured "
                            "(telegram.bot_token): settled posts' replies wait in notification_outbox "
                            "(channel telegram, status pending)")
            return {**out, "sent": 0}
        batch = telegram_settle.claim_replies(conn, limit, ctx.config["telegram.lease_s"])
    try:
        results = _send(ctx, bot, batch)
    finally:
        bot.close()
    with ctx.connection() as conn:
        rec = telegram_settle.record_replies(conn, results)
    if rec["failed"]:
        logs.event("ERROR", "telegram.reply_failed", f"{rec['failed']} Telegram replies failed "
                   f"{telegram_settle.MAX_ATTEMPTS} times: their posts are reply_failed and are not tried again "
                   f"(telegram_posts.last_error says why)", count=rec["failed"])
    return {**out, **rec}


def _send(ctx, bot: telegram.TelegramBot, batch: list[dict]) -> list[dict]:
    """Each claimed reply through the Bot API, one after the other; one result per reply."""
    worst_s = bot.timeout_s * (bot.retries + 1) + telegram.MAX_WAIT_S * bot.retries + 2
    results = []
    for r in batch:
        base = {"id": r["id"], "attempts": r["attempts"], "message_id": None, "error": None}
        if ctx.cancelled() or (ctx.deadline is not None and time.time() + worst_s > ctx.deadline):
            results.append({**base, "outcome": "release"})      # no time left for a whole send
            continue
        try:
            message_id = bot.reply(r["chat_id"], r["reply_to"], r["text"])
        except (telegram.TelegramUnavailable, telegram.TelegramRejected) as e:
            results.append({**base, "outcome": "failed", "error": str(e)})
        except (telegram.TelegramThrottled, telegram.CircuitOpen) as e:
            results.append({**base, "outcome": "release", "error": str(e)})
        else:
            results.append({**base, "outcome": "sent", "message_id": message_id})
    return results


JOBS = [
    JobSpec("telegram_settlement", telegram_settlement, Schedule(cron="*/10 * * * *", offset_s=40),
            timeout_s=TIMEOUT_S, description="Telegram posts of finished matches: picks settled once, the summary "
                                             "replied to the post through the Bot API (telegram.bot_token)",
            timeout_env="TELEGRAM_SETTLEMENT_TIMEOUT_MS"),
]
