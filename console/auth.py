"""The console's authentication: operator sessions in signed cookies, CSRF, login throttling.

- **Session cookie** `goald_session`: the session's random id, signed with itsdangerous
  (HMAC-SHA1 over a timestamped payload; JSON, never pickle) with the key every node shares
  (goald/operators.py `signing_key`). HttpOnly, SameSite=Strict, Path=/admin, Secure with
  `console.secure_cookies` or behind an HTTPS proxy. A forged or expired cookie is rejected
  without a database query; a well-signed one is looked up (`operator_sessions`), so a logout,
  a new password or a removed operator ends it at once, on every node.
- **CSRF**: every state-changing request (POST) must carry the session's token, as the form
  field `csrf_token` or the header `X-CSRF-Token`, compared in constant time; and a request whose
  `Origin` names another host is refused. Both answer 403 before anything changes.
- **Roles**: `readonly` operators may look; a POST of theirs answers 403.
- **Login throttling** (`LoginThrottle`): per client address and per operator name, after
  `console.login_free_failures` failures within 15 minutes each further attempt must wait
  twice as long as the last (1 s, 2 s, ... 15 min); attempts inside the wait answer 429 with
  Retry-After and are not even checked. At most `VERIFY_CONCURRENCY` password checks run at
  once (each is 100 ms of scrypt on the hub's thread pool), so a storm cannot take the CPU from
  the daemon's other work. The throttle is per node (kept in memory).

Everything runs in the request's greenlet.
"""
from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from typing import Callable

import gevent.lock
import itsdangerous

from goald import operators

COOKIE = "goald_session"
COOKIE_PATH = "/admin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "HTTP_X_CSRF_TOKEN"
WINDOW_S = 15 * 60.0
MAX_WAIT_S = 15 * 60.0
VERIFY_CONCURRENCY = 2


@dataclass
class _Failures:
    count: int = 0
    first_at: float = 0.0
    last_at: float = 0.0


@dataclass
class LoginThrottle:
    """Failed logins by key ("addr:<ip>", "name:<operator>"); see the module docstring."""

    free_failures: int = 5
    clock: Callable[[], float] = time.monotonic
    _by_key: dict[str, _Failures] = field(default_factory=dict)
    throttled: int = 0

    def wait_s(self, keys: list[str]) -> float:
        """How long these keys must still wait before an attempt is checked (0: go ahead)."""
        now, wait = self.clock(), 0.0
        for key in keys:
            f = self._by_key.get(key)
            if f is None:
                continue
            if now - f.last_at > WINDOW_S:
                del self._by_key[key]
                continue
            over = f.count - self.free_failures
            if over >= 0:
                wait = max(wait, f.last_at + min(2.0 ** over, MAX_WAIT_S) - now)
        if wait > 0:
            self.throttled += 1
        return max(0.0, wait)

    def failed(self, keys: list[str]) -> None:
        now = self.clock()
        for key in keys:
            f = self._by_key.get(key)
            if f is None or now - f.last_at > WINDOW_S:
                f = self._by_key[key] = _Failures(first_at=now)
            f.count += 1
            f.last_at = now
        if len(self._by_key) > 100_000:       # a storm from many addresses: keep memory bounded
            oldest = sorted(self._by_key.items(), key=lambda kv: kv[1].last_at)[:50_000]
            for key, _ in oldest:
                del self._by_key[key]

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._by_key.pop(key, None)


class Auth:
    def __init__(self, pool, node: str, *, lifetime_s: float, free_failures: int, secure_cookies: bool = False):
        self.pool, self.node = pool, node
        self.lifetime_s = lifetime_s
        self.secure_cookies = secure_cookies
        self.throttle = LoginThrottle(free_failures)
        self._verifying = gevent.lock.BoundedSemaphore(VERIFY_CONCURRENCY)
        self._signer: itsdangerous.URLSafeTimedSerializer | None = None

    def _sign(self) -> itsdangerous.URLSafeTimedSerializer:
        if self._signer is None:
            with self.pool.connection(timeout_s=5.0) as conn:
                key = operators.signing_key(conn)
            self._signer = itsdangerous.URLSafeTimedSerializer(key, salt="goald.console.session")
        return self._signer

    # --- sessions -------------------------------------------------------------------------------

    def current(self, cookie: str | None) -> operators.Session | None:
        """The live session of the request's `goald_session` cookie, or None (no cookie, a bad
        signature, expired or ended)."""
        session_id = self._session_id(cookie)
        if session_id is None:
            return None
        with self.pool.connection(timeout_s=5.0) as conn:
            return operators.session(conn, session_id)

    def _session_id(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            value = self._sign().loads(cookie, max_age=self.lifetime_s)
        except itsdangerous.BadData:
            return None
        return value if isinstance(value, str) else None

    def cookie_header(self, session_id: str, environ: dict) -> tuple[str, str]:
        secure = self.secure_cookies or environ.get("HTTP_X_FORWARDED_PROTO") == "https" \
            or environ.get("wsgi.url_scheme") == "https"
        value = self._sign().dumps(session_id)
        return ("Set-Cookie", f"{COOKIE}={value}; Path={COOKIE_PATH}; Max-Age={int(self.lifetime_s)}; HttpOnly; "
                              f"SameSite=Strict" + ("; Secure" if secure else ""))

    @staticmethod
    def clearing_cookie() -> tuple[str, str]:
        return ("Set-Cookie", f"{COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict")

    # --- logging in and out ---------------------------------------------------------------------

    def login(self, name: str, password: str, remote: str | None) -> tuple[str | None, float, str | None]:
        """(session id, 0, None) when the name and password are right; (None, retry_after_s,
        message) otherwise. Audited either way (goald/audit.py)."""
        from goald import audit

        keys = [f"addr:{remote}", f"name:{name}"]
        wait = self.throttle.wait_s(keys)
        if wait > 0:
            with self.pool.connection(timeout_s=5.0) as conn:
                audit.record(conn, actor=name[:64] or "?", node=self.node, action="login_throttled",
                             reason=f"retry after {wait:.0f}s", remote=remote)
                conn.commit()
            return None, wait, f"too many failed logins: try again in {max(1, round(wait))} s"
        with self.pool.connection(timeout_s=5.0) as conn:
            found = operators.get(conn, name) if operators.NAME_PATTERN.fullmatch(name or "") else None
            conn.rollback()
        with self._verifying:
            ok = operators.verify_off_loop(password, found[1] if found else None)
        with self.pool.connection(timeout_s=5.0) as conn:
            if not ok:
                self.throttle.failed(keys)
                audit.record(conn, actor=name[:64] or "?", node=self.node, action="login_failed",
                             reason="unknown operator" if found is None else "wrong password", remote=remote)
                conn.commit()
                return None, 0.0, "wrong name or password"
            self.throttle.succeeded(keys)
            session_id, _ = operators.start_session(conn, name, self.lifetime_s, remote)
            audit.record(conn, actor=name, node=self.node, action="login", remote=remote)
            conn.commit()
        return session_id, 0.0, None

    def logout(self, cookie: str | None, remote: str | None) -> None:
        from goald import audit

        session_id = self._session_id(cookie)
        if session_id is None:
            return
        with self.pool.connection(timeout_s=5.0) as conn:
            who = operators.end_session(conn, session_id)
            if who is not None:
                audit.record(conn, actor=who, node=self.node, action="logout", remote=remote)
            conn.commit()


def csrf_ok(environ: dict, form_token: str | None, session: operators.Session) -> tuple[bool, str]:
    """Whether a state-changing request may go on: its Origin (when sent) is this host, and it
    carries the session's CSRF token. (ok, why not)."""
    origin = environ.get("HTTP_ORIGIN")
    if origin:
        host = environ.get("HTTP_HOST", "")
        if origin.split("://", 1)[-1].rstrip("/") != host:
            return False, f"the request came from another site ({origin})"
    token = form_token or environ.get(CSRF_HEADER) or ""
    if not hmac.compare_digest(token.encode(), session.csrf_token.encode()):
        return False, "the form's security token is missing or stale: reload the page and try again"
    return True, ""

