"""Console operators: their password hashes, sessions and the cookie-signing key (sql/0011).

- **Passwords** are hashed with scrypt (hashlib, OpenSSL's; `scrypt$N$r$p$salt$hash`, base64),
  N = 2^15, r = 8, p = 1: about 100 ms and 32 MB per hash, so a stolen table costs a guesser that
  much per guess. The parameters travel with each hash: raising them later keeps old hashes valid.
  Hashing releases the GIL; callers in a gevent process run it on the hub's thread pool
  (`hash_password_off_loop`, `verify_off_loop`) so a login never stalls the other greenlets.
- **Roles**: `admin` may change things, `readonly` may only look (console/auth.py enforces it).
- **Sessions**: a random id (the cookie carries it, signed by console/auth.py); the table keeps
  only its SHA-256, with the session's CSRF token and expiry. Ending a session, changing an
  operator's password or removing the operator ends sessions on every node at once.
- **Bootstrap**: `ensure_operator` makes `admin` with a random password when there is no operator
  at all (the first `goald run`), under a lock, so two nodes starting together make one.

Functions run in the caller's greenlet on the connection they are given, and commit what they
change (with its audit row, goald/audit.py) unless they say otherwise. A bad name or password
raises `OperatorError` with a message for the operator; database errors propagate.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from goald import audit

NAME_PATTERN = re.compile(r"[A-Za-z0-9._@-]{1,64}")
ROLES = ("admin", "readonly")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024            # scrypt hashes anything; a megabyte "password" is a DoS, not a password
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1
SCRYPT_MAXMEM = 128 * 1024 * 1024
BOOTSTRAP_NAME = "admin"
_BOOTSTRAP_LOCK = "hashtext('goald.operators.bootstrap')"


class OperatorError(ValueError):
    """A name, role or password that cannot be used; the message says why."""


@dataclass(frozen=True)
class Operator:
    name: str
    role: str
    created_at: datetime
    password_changed_at: datetime

    @property
    def can_change(self) -> bool:
        return self.role == "admin"


# --- passwords ---------------------------------------------------------------------------------------

def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def hash_password(password: str) -> str:
    check_password(password)
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=SCRYPT_MAXMEM, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (constant-time comparison); False for a hash
    that is not goald's scrypt format or a password over the length limit."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or len(password) > MAX_PASSWORD_CHARS:
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=SCRYPT_MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


# A hash to verify against when the operator does not exist: the answer then takes as long as a
# real one, so timing does not tell which names exist.
_UNKNOWN_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(b'0' * 16)}${_b64(b'0' * 32)}"


def _off_loop(fn, *args):
    import gevent

    return gevent.get_hub().threadpool.apply(fn, args)


def hash_password_off_loop(password: str) -> str:
    return _off_loop(hash_password, password)


def verify_off_loop(password: str, stored: str | None) -> bool:
    return _off_loop(verify, password, stored if stored is not None else _UNKNOWN_HASH) and stored is not None


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise OperatorError(f"an operator name is 1-64 characters of A-Z a-z 0-9 . _ @ - (got {name!r})")


def check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise OperatorError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise OperatorError(f"a password has at most {MAX_PASSWORD_CHARS} characters")


def new_password() -> str:
    return secrets.token_urlsafe(18)          # 24 characters, 144 bits


# --- operators ---------------------------------------------------------------------------------------

_COLUMNS = "name, role, created_at, password_changed_at"


def get(conn, name: str) -> tuple[Operator, str] | None:
    """(the operator, their password hash), or None."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS}, password_hash FROM operators WHERE name = %s", (name,))
        row = cur.fetchone()
    return (Operator(*row[:4]), row[4]) if row else None


def list_all(conn) -> list[Operator]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM operators ORDER BY name")
        return [Operator(*r) for r in cur.fetchall()]


def add(conn, name: str, password_hash: str, role: str, *, by: str, node: str, remote: str | None = None) -> None:
    check_name(name)
    if role not in ROLES:
        raise OperatorError(f"role {role!r} is not one of {', '.join(ROLES)}")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO operators (name, password_hash, role) VALUES (%s, %s, %s) "
                    "ON CONFLICT (name) DO NOTHING", (name, password_hash, role))
        if cur.rowcount == 0:
            conn.rollback()
            raise OperatorError(f"operator {name} exists already (`goald operator passwd {name}` changes "
                                f"the password)")
    audit.record(conn, actor=by, node=node, action="operator_add", target=name, new=role, remote=remote)
    conn.commit()


def set_password(conn, name: str, password_hash: str, *, by: str, node: str, remote: str | None = None) -> int:
    """A new password; every session of the operator ends. Returns the sessions ended."""
    with conn.cursor() as cur:
        cur.execute("UPDATE operators SET password_hash = %s, password_changed_at = now() WHERE name = %s",
                    (password_hash, name))
        if cur.rowcount == 0:
            conn.rollback()
            raise OperatorError(f"no operator {name} (`goald operator list` lists them)")
        cur.execute("UPDATE operator_sessions SET ended_at = now() WHERE operator = %s AND ended_at IS NULL",
                    (name,))
        ended = cur.rowcount
    audit.record(conn, actor=by, node=node, action="operator_passwd", target=name, remote=remote)
    conn.commit()
    return ended


def remove(conn, name: str, *, by: str, node: str, remote: str | None = None) -> None:
    """Remove an operator (their sessions go with them). The last admin cannot be removed: the
    console would have nobody left who may change anything."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT pg_advisory_xact_lock({_BOOTSTRAP_LOCK})")
        cur.execute("SELECT role FROM operators WHERE name = %s", (name,))
        row = cur.fetchone()
        if row is None:
            conn.rollback()
            raise OperatorError(f"no operator {name} (`goald operator list` lists them)")
        cur.execute("SELECT count(*) FROM operators WHERE role = 'admin' AND name <> %s", (name,))
        if row[0] == "admin" and cur.fetchone()[0] == 0:
            conn.rollback()
            raise OperatorError(f"{name} is the last admin: add another admin first")
        cur.execute("DELETE FROM operators WHERE name = %s", (name,))
    audit.record(conn, actor=by, node=node, action="operator_remove", target=name, old=row[0], remote=remote)
    conn.commit()


def ensure_operator(conn, *, node: str) -> str | None:
    """With no operator at all: make `admin` with a random password and return the password (the
    caller shows it once; only its hash is stored). Otherwise None. Two nodes starting together
    make one: the check and the insert hold one lock."""
    with conn.cursor() as cur:
        cur.execute("SELECT EXISTS (SELECT 1 FROM operators)")
        if cur.fetchone()[0]:
            conn.rollback()
            return None
    password = new_password()
    hashed = hash_password(password)            # outside the lock: 100 ms
    with conn.cursor() as cur:
        cur.execute(f"SELECT pg_advisory_xact_lock({_BOOTSTRAP_LOCK})")
        cur.execute("INSERT INTO operators (name, password_hash, role) SELECT %s, %s, 'admin' "
                    "WHERE NOT EXISTS (SELECT 1 FROM operators)", (BOOTSTRAP_NAME, hashed))
        made = cur.rowcount == 1
    if not made:
        conn.rollback()
        return None
    audit.record(conn, actor="goald (first start)", node=node, action="operator_add", target=BOOTSTRAP_NAME,
                 new="admin", reason="no operator existed")
    conn.commit()
    return password


# --- sessions ----------------------------------------------------------------------------------------

def _sha(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    operator: Operator
    csrf_token: str
    expires_at: datetime


def start_session(conn, name: str, lifetime_s: float, remote: str | None) -> tuple[str, str]:
    """A new session for `name`: (its id, for the cookie; its CSRF token). Does not commit (the
    login's audit row goes in the same transaction)."""
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO operator_sessions (id_sha256, operator, csrf_token, expires_at, remote) "
                    "VALUES (%s, %s, %s, now() + make_interval(secs => %s), %s)",
                    (_sha(session_id), name, csrf, lifetime_s, remote))
        cur.execute("DELETE FROM operator_sessions WHERE expires_at < now() - interval '1 day' "
                    "OR ended_at < now() - interval '1 day'")     # the table stays small
    return session_id, csrf


def session(conn, session_id: str) -> Session | None:
    """The live session with that id (not ended, not expired), or None. One statement."""
    with conn.cursor() as cur:
        cur.execute("UPDATE operator_sessions s SET last_seen_at = now() FROM operators o "
                    "WHERE s.id_sha256 = %s AND s.ended_at IS NULL AND s.expires_at > now() "
                    "AND o.name = s.operator "
                    "RETURNING o.name, o.role, o.created_at, o.password_changed_at, s.csrf_token, s.expires_at",
                    (_sha(session_id),))
        row = cur.fetchone()
    conn.commit()
    return Session(Operator(*row[:4]), row[4], row[5]) if row else None


def end_session(conn, session_id: str) -> str | None:
    """End a session; returns its operator (None: it had ended already). Does not commit."""
    with conn.cursor() as cur:
        cur.execute("UPDATE operator_sessions SET ended_at = now() WHERE id_sha256 = %s AND ended_at IS NULL "
                    "RETURNING operator", (_sha(session_id),))
        row = cur.fetchone()
    return row[0] if row else None


def signing_key(conn) -> bytes:
    """The cookie-signing key every node shares; the first node to ask makes it."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO console_keys (id, secret) VALUES (1, %s) ON CONFLICT (id) DO NOTHING",
                    (secrets.token_bytes(32),))
        cur.execute("SELECT secret FROM console_keys WHERE id = 1")
        key = bytes(cur.fetchone()[0])
    conn.commit()
    return key
