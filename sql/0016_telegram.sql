-- Telegram settlement (goald/business/telegram_settle.py, actors/jobs/telegram.py): posts
-- published to a channel carry picks on one match. When the match has ended (or can never be
-- completed), the picks are settled once (outcome set only while it is NULL) and, in the same
-- transaction, the summary reply is queued in notification_outbox (channel 'telegram', dedupe
-- key `telegram_reply:<post>`). The post stays `open` until Telegram took the reply: then it is
-- `settled`; each failed send counts in reply_attempts, and after 5 the post is `reply_failed`
-- (visible, never retried). A retry sends the queued reply again; it never settles a pick again.
CREATE TABLE telegram_posts (
    id               bigserial PRIMARY KEY,
    channel_id       text NOT NULL,                 -- the chat the post was published to (@name or -100...)
    message_id       bigint NOT NULL,               -- the channel post the summary replies to
    match_id         text NOT NULL REFERENCES matches (id),   -- no cascade: a match with posts is kept
    text             text NOT NULL DEFAULT '',
    posted_at        timestamptz NOT NULL DEFAULT now(),
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'settled', 'reply_failed')),
    reply_queued_at  timestamptz,                   -- picks settled and the reply queued (one statement)
    settled_at       timestamptz,                   -- Telegram took the reply
    reply_message_id bigint,                        -- the reply's message id, as Telegram answered it
    reply_attempts   integer NOT NULL DEFAULT 0,    -- sends tried (failed ones, and the one that went)
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, message_id),
    CHECK ((status = 'settled') = (settled_at IS NOT NULL)),
    CHECK (status = 'open' OR reply_queued_at IS NOT NULL)
);
-- The settlement's scan: open posts whose picks are not settled yet, by match.
CREATE INDEX telegram_posts_unsettled ON telegram_posts (match_id) WHERE status = 'open' AND reply_queued_at IS NULL;

-- One pick of a post: a market on the post's match. outcome is NULL until settled, then set once
-- (the settlement writes it only WHERE outcome IS NULL); void only when the data truly is missing
-- (void_reason says why).
CREATE TABLE telegram_picks (
    id          bigserial PRIMARY KEY,
    post_id     bigint NOT NULL REFERENCES telegram_posts (id) ON DELETE CASCADE,
    market      text NOT NULL CHECK (market IN ('btts', 'over_1_5', 'over_2_5', 'over_3_5', 'ht_over_0_5',
                                                'ht_over_1_5', 'home_win', 'draw', 'away_win')),
    outcome     text CHECK (outcome IN ('won', 'lost', 'void')),
    void_reason text,
    settled_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (post_id, market),
    CHECK ((outcome IS NULL) = (settled_at IS NULL)),
    CHECK ((outcome = 'void') = (void_reason IS NOT NULL))
);
