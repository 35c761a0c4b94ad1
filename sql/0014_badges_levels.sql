-- XP levels and badges (goald/business/levels.py, goald/business/badges.py, actors/jobs/badges.py).
-- A badge carries an unlock condition (one kind, one threshold); badge_auto_unlock finds the users
-- who meet it and do not hold the badge, and in one statement gives them the badge, its reward
-- (through reward_ledger, reason 'badge', reference the badge's code) and a push notification.
-- user_badges' primary key, not the job's good behaviour, makes a badge happen once per user; the
-- ledger's uniqueness rule makes its reward happen once; the outbox's dedupe key its message.

-- The level of a user is the highest level whose min_xp is at most app_users.xp (level 1 from 0 XP).
-- The curve: min_xp = 50 * (level - 1) * level, so level 2 at 100 XP, 5 at 1,000, 10 at 4,500,
-- 20 at 19,000, 30 at 43,500.
CREATE TABLE xp_levels (
    level  integer PRIMARY KEY CHECK (level >= 1),
    min_xp bigint NOT NULL UNIQUE CHECK (min_xp >= 0)
);
INSERT INTO xp_levels (level, min_xp) SELECT l, 50 * (l - 1) * l FROM generate_series(1, 30) l;

-- The badge catalogue. condition_kind / threshold:
--   referrals     the user referred at least `threshold` users who reached tier 2 (logged in) or 3
--   predictions   the user made at least `threshold` picks (user_predictions)
--   login_streak  the user opened the app on `threshold` consecutive UTC days ending today or yesterday
--   xp_level      the user's level (xp_levels) is at least `threshold`
--   comments      the user wrote at least `threshold` match comments
-- An inactive badge is never granted (those already granted stay).
CREATE TABLE badges (
    id             serial PRIMARY KEY,
    code           text NOT NULL UNIQUE,
    name           text NOT NULL,
    description    text NOT NULL,
    condition_kind text NOT NULL CHECK (condition_kind IN ('referrals', 'predictions', 'login_streak', 'xp_level', 'comments')),
    threshold      integer NOT NULL CHECK (threshold >= 1),
    reward_credits bigint NOT NULL DEFAULT 0 CHECK (reward_credits >= 0),
    reward_xp      bigint NOT NULL DEFAULT 0 CHECK (reward_xp >= 0),
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX badges_active ON badges (condition_kind, threshold) WHERE active;

INSERT INTO badges (code, name, description, condition_kind, threshold, reward_credits, reward_xp) VALUES
    ('first_referral',   'First Referral',   'A friend you invited logged in',               'referrals',     1,  20,   50),
    ('recruiter',        'Recruiter',        'Five friends you invited logged in',           'referrals',     5, 100,  200),
    ('ambassador',       'Ambassador',       'Twenty-five friends you invited logged in',    'referrals',    25, 500, 1000),
    ('first_prediction', 'First Prediction', 'You made your first prediction',               'predictions',   1,   5,   10),
    ('pundit',           'Pundit',           'You made 50 predictions',                      'predictions',  50,  50,  100),
    ('streak_3',         'Regular',          'You opened the app three days in a row',       'login_streak',  3,  10,   20),
    ('streak_7',         'Week Streak',      'You opened the app seven days in a row',       'login_streak',  7,  30,   50),
    ('streak_30',        'Month Streak',     'You opened the app thirty days in a row',      'login_streak', 30, 200,  300),
    ('level_5',          'Level 5',          'You reached level 5',                          'xp_level',      5,  50,    0),
    ('level_10',         'Level 10',         'You reached level 10',                         'xp_level',     10, 150,    0),
    ('first_comment',    'First Comment',    'You wrote your first match comment',           'comments',      1,   5,   10),
    ('commentator',      'Commentator',      'You wrote 25 match comments',                  'comments',     25,  40,   80);

-- One row per user and badge, ever: the primary key is what makes an unlock happen once.
CREATE TABLE user_badges (
    user_id     bigint NOT NULL REFERENCES app_users (id) ON DELETE CASCADE,
    badge_id    integer NOT NULL REFERENCES badges (id) ON DELETE CASCADE,
    unlocked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, badge_id)
);
CREATE INDEX user_badges_badge ON user_badges (badge_id);

-- An app user's own pick on a match (not the AI predictions): one per user and match, changing it
-- updates the row. match_id is the provider's match id, not a foreign key (a pick may arrive
-- before the match row does).
CREATE TABLE user_predictions (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES app_users (id) ON DELETE CASCADE,
    match_id   text NOT NULL,
    pick       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, match_id)
);

CREATE TABLE match_comments (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES app_users (id) ON DELETE CASCADE,
    match_id   text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX match_comments_user ON match_comments (user_id);

-- One row per UTC day the user opened the app. The streak is read from the last days only
-- (as many as the longest active streak badge asks for): the (day, user_id) index serves that.
CREATE TABLE user_login_days (
    user_id bigint NOT NULL REFERENCES app_users (id) ON DELETE CASCADE,
    day     date NOT NULL,
    PRIMARY KEY (user_id, day)
);
CREATE INDEX user_login_days_day ON user_login_days (day, user_id);
