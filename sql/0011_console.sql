-- The operator console (console/admin.py, console/auth.py, goald/operators.py, goald/audit.py):
-- who may log in, their sessions, the key that signs session cookies, and the audit trail.
--
-- operators: one row per console login. `password_hash` is `scrypt$N$r$p$salt$hash` (base64),
-- never the password; `role` admin may change things, readonly may only look.
CREATE TABLE operators (
    name                text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    password_hash       text NOT NULL CHECK (password_hash LIKE 'scrypt$%'),
    role                text NOT NULL CHECK (role IN ('admin', 'readonly')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);

-- operator_sessions: a logged-in browser. The cookie carries the session's id, signed; the row
-- holds its SHA-256 (a leaked table cannot be replayed as cookies), its CSRF token and its end:
-- logging out, a new password or removing the operator ends it on every node at once.
CREATE TABLE operator_sessions (
    id_sha256    text PRIMARY KEY,
    operator     text NOT NULL REFERENCES operators (name) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    remote       text
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator);

-- console_keys: the key that signs session cookies, made by the first node to need it and shared
-- by every node on the database (a cookie from one node's login is good on the others).
CREATE TABLE console_keys (
    id         smallint PRIMARY KEY CHECK (id = 1),
    secret     bytea NOT NULL CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- audit_log: every change made through the console or `goald operator`, and every login and
-- failed login: who, when, on which node, what, old -> new, why. Flag changes keep their own
-- table (flag_audit, sql/0001: `goald jobs` writes it too); audit_trail shows both as one.
CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    node      text NOT NULL,
    action    text NOT NULL,
    target    text,
    old_value text,
    new_value text,
    reason    text,
    remote    text
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE VIEW audit_trail AS
    SELECT 'audit' AS source, id, at, actor, node, action, target, old_value, new_value, reason, remote
    FROM audit_log
    UNION ALL
    SELECT 'flag', id, changed_at, changed_by, node, 'flag', name, old_value::text, new_value::text, reason, NULL
    FROM flag_audit;
