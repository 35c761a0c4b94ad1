-- The platform's users and their rewards (goald/business/, actors/jobs/business.py): the first
-- tables of the business jobs. Every credit and XP grant is a row of reward_ledger, unique per
-- (user, currency, reason, reference): the database, not a job's good behaviour, makes a grant
-- happen once. app_users holds the balances; each equals the sum of its ledger rows.
CREATE TABLE app_users (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    credits    bigint NOT NULL DEFAULT 0 CHECK (credits >= 0),
    xp         bigint NOT NULL DEFAULT 0 CHECK (xp >= 0),
    is_vip     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Login identities: several per user (Google, Apple, phone, ...). A referral counts a user once,
-- however many identities they have (the original credited once per identity).
CREATE TABLE user_identities (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES app_users (id) ON DELETE CASCADE,
    provider      text NOT NULL,
    subject       text NOT NULL,
    last_login_at timestamptz,
    UNIQUE (provider, subject)
);
CREATE INDEX user_identities_user ON user_identities (user_id);

CREATE TABLE push_tokens (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES app_users (id) ON DELETE CASCADE,
    token      text NOT NULL UNIQUE,
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_tokens_user ON push_tokens (user_id) WHERE active;

CREATE TABLE subscriptions (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES app_users (id) ON DELETE CASCADE,
    plan       text NOT NULL,
    status     text NOT NULL CHECK (status IN ('active', 'cancelled', 'expired')),
    started_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz
);
CREATE INDEX subscriptions_user_active ON subscriptions (user_id) WHERE status = 'active';

-- A referral moves 1 → 2 (the referred user logged in) → 3 (they hold an active subscription);
-- each move and its rewards commit in one statement (goald/business/referrals.py).
CREATE TABLE referrals (
    id          bigserial PRIMARY KEY,
    referrer_id bigint NOT NULL REFERENCES app_users (id) ON DELETE CASCADE,
    referred_id bigint NOT NULL UNIQUE REFERENCES app_users (id) ON DELETE CASCADE,
    tier        smallint NOT NULL DEFAULT 1 CHECK (tier BETWEEN 1 AND 3),
    created_at  timestamptz NOT NULL DEFAULT now(),
    tier2_at    timestamptz,
    tier3_at    timestamptz,
    CHECK (referrer_id <> referred_id)
);
CREATE INDEX referrals_open ON referrals (tier, id) WHERE tier < 3;
CREATE INDEX referrals_referrer ON referrals (referrer_id);

CREATE TABLE reward_ledger (
    id             bigserial PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES app_users (id) ON DELETE CASCADE,
    currency       text NOT NULL CHECK (currency IN ('credits', 'xp')),
    amount         bigint NOT NULL,
    balance_before bigint NOT NULL,
    balance_after  bigint NOT NULL CHECK (balance_after = balance_before + amount),
    reason         text NOT NULL,
    reference      text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reward_ledger_once UNIQUE (user_id, currency, reason, reference)
);

-- Daily reward claims: one per user and UTC day; streak_day 1..7 (day 7 wraps to 1).
CREATE TABLE daily_reward_claims (
    user_id    bigint NOT NULL REFERENCES app_users (id) ON DELETE CASCADE,
    day        date NOT NULL,
    streak_day smallint NOT NULL CHECK (streak_day BETWEEN 1 AND 7),
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, day)
);
CREATE INDEX daily_reward_claims_day ON daily_reward_claims (day);

-- Scheduled notifications: an operator's message to an audience at a time. The job claims due
-- rows (FOR UPDATE SKIP LOCKED, with a lease: one left `sending` by a dead run is claimed again),
-- expands the audience into the outbox, and finishes the row with its counts once every message
-- of it was sent or failed.
CREATE TABLE scheduled_notifications (
    id           bigserial PRIMARY KEY,
    title        text NOT NULL,
    body         text NOT NULL,
    audience     text NOT NULL CHECK (audience IN ('all', 'vip', 'free', 'segment')),
    segment      bigint[],                          -- the users, when audience = 'segment'
    scheduled_at timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    claimed_by   text,
    lease_until  timestamptz,
    recipients   integer,
    successes    integer,
    failures     integer,
    error        text,
    sent_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (audience <> 'segment' OR segment IS NOT NULL)
);
CREATE INDEX scheduled_notifications_due ON scheduled_notifications (scheduled_at) WHERE status IN ('pending', 'sending');

-- The outbox: every message goald means to send (push, Telegram), unique per dedupe_key, so a
-- job that runs twice, or on two nodes, queues a message once. A sender claims rows (FOR UPDATE
-- SKIP LOCKED, `lease_until`); a row left `sending` by a dead sender is claimed again after it.
CREATE TABLE notification_outbox (
    id          bigserial PRIMARY KEY,
    channel     text NOT NULL CHECK (channel IN ('push', 'telegram')),
    kind        text NOT NULL,
    user_id     bigint REFERENCES app_users (id) ON DELETE CASCADE,
    scheduled_id bigint REFERENCES scheduled_notifications (id) ON DELETE CASCADE,
    dedupe_key  text NOT NULL UNIQUE,
    payload     jsonb NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    claimed_at  timestamptz,
    lease_until timestamptz,
    sent_at     timestamptz,
    error       text
);
CREATE INDEX notification_outbox_due ON notification_outbox (id) WHERE status IN ('pending', 'sending');
CREATE INDEX notification_outbox_scheduled ON notification_outbox (scheduled_id) WHERE scheduled_id IS NOT NULL;
