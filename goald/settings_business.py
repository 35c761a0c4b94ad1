"""The business jobs' settings: referrals and rewards, push, Telegram, AI predictions, badges.

One part of the settings table: goald/settings.py puts the parts together, checks them and
documents the table."""
from __future__ import annotations

from goald.setting import Setting

SECTIONS: dict[str, str] = {
    "business": "The platform's business jobs: referrals, rewards, reminders",
    "push": "Push notifications: the gateway, the outbox sender, scheduled notifications",
    "telegram": "Telegram settlement: the Bot API that replies to channel posts with their settled picks",
    "predictions": "AI predictions: the matcher (prediction_matcher) and their results (prediction_results)",
    "badges": "Badge auto-unlock (badge_auto_unlock): badges for referrals, predictions, streaks, levels, comments",
}

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "business.batch_size", int, 5000,
        "Referrals one run of referral_tier2 / referral_tier3 moves at most (with their rewards, in one "
        "transaction); the next run goes on.",
        minimum=1, maximum=1_000_000,
    ),
    Setting(
        "push.gateway_url", str, "",
        "The push gateway (an Expo / FCM-style JSON endpoint: a list of messages in, one ticket per "
        "message out). Empty: push messages wait in notification_outbox (logged once).",
        secret=True,
    ),
    Setting(
        "push.access_token", str, "",
        "Bearer token for the push gateway, if it wants one.",
        secret=True,
    ),
    Setting(
        "push.timeout_s", float, 10.0,
        "Timeout of one request to the push gateway.",
        minimum=0.5, maximum=120, unit="s",
    ),
    Setting(
        "push.batch_size", int, 500,
        "Push messages one run of push_sender claims at most (sent 100 to a request).",
        minimum=1, maximum=100_000,
    ),
    Setting(
        "push.notifications_per_run", int, 10,
        "Due scheduled notifications one run of scheduled_notifications claims at most.",
        minimum=1, maximum=1000,
    ),
    Setting(
        "push.lease_s", float, 120.0,
        "A claimed notification or message not finished within this long (its run was killed) is "
        "claimed again by the next run.",
        minimum=10, maximum=3600, unit="s",
    ),
    Setting(
        "telegram.bot_token", str, "",
        "The Telegram bot's token (from @BotFather); the bot must be able to post in the channels. "
        "Empty: settled posts' replies wait in notification_outbox (channel telegram; logged once).",
        secret=True, legacy_env=("TELEGRAM_BOT_TOKEN",),
    ),
    Setting(
        "telegram.api_url", str, "https://api.telegram.org",
        "The Bot API's base URL (a local Bot API server, or a test double); requests go to "
        "<api_url>/bot<token>/sendMessage.",
    ),
    Setting(
        "telegram.timeout_s", float, 10.0,
        "Timeout of one sendMessage request.",
        minimum=0.5, maximum=60, unit="s",
    ),
    Setting(
        "telegram.retries", int, 2,
        "Quick retries within one send after a transport error, a timeout, a 5xx or a 429 with a short "
        "retry_after (0.5 s, 1 s, ...); after them the send is a failed attempt, tried again next run.",
        minimum=0, maximum=5,
    ),
    Setting(
        "telegram.batch_size", int, 100,
        "Posts one run of telegram_settlement settles at most, and replies it sends at most.",
        minimum=1, maximum=10_000,
    ),
    Setting(
        "telegram.lease_s", float, 900.0,
        "A reply claimed by a run that did not finish within this long (it was killed) is claimed again "
        "by a later run; keep it above the job's timeout, or a slow run's reply may be sent twice.",
        minimum=60, maximum=86400, unit="s",
    ),
    Setting(
        "predictions.batch_size", int, 5000,
        "Predictions one run of prediction_matcher / prediction_results claims at most (in one "
        "statement and transaction); the next run goes on.",
        minimum=1, maximum=1_000_000,
    ),
    Setting(
        "predictions.match_window_s", int, 7200,
        "A match is a candidate for a prediction when its scheduled kick-off lies within this long of "
        "the kick-off the prediction implies (predicted_at minus the minute at prediction, minus the "
        "half-time break past minute 45): room for delays and late predictions.",
        minimum=60, maximum=86400, unit="s",
    ),
    Setting(
        "predictions.match_retry_s", float, 900.0,
        "An unmatched prediction is tried again after this long (its match may arrive later).",
        minimum=10, maximum=86400, unit="s",
    ),
    Setting(
        "predictions.give_up_after_s", float, 86400.0,
        "A prediction still unmatched this long after it was made is given up: status void, "
        "result_note 'unmatched: <reason>'.",
        minimum=60, maximum=30 * 86400, unit="s",
    ),
    Setting(
        "predictions.min_confidence", float, 0.5,
        "The least confidence (0..1: names, league, time, score) with which a prediction is matched; "
        "a best candidate below it is left unmatched ('low confidence').",
        minimum=0, maximum=1,
    ),
    Setting(
        "badges.batch_size", int, 5000,
        "(user, badge) pairs one run of badge_auto_unlock unlocks at most, with their rewards and push "
        "messages, in one transaction; a larger backlog is taken by the next runs (every 5 minutes).",
        minimum=1, maximum=1_000_000, unit="pairs", legacy_env=("BADGE_AUTO_UNLOCK_BATCH_SIZE",),
    ),
)
