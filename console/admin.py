"""The operator console under /admin/: the gate (login, sessions, the three kinds of route), the
audit trail; the other pages are console/admin_jobs.py (jobs, actions, timeline) and
console/admin_runtime.py (runs, pool, actors, provider, configuration).

Every page has a JSON twin of the same data (`/admin/jobs` and `/admin/jobs.json`). All of it
needs an operator session (console/auth.py): a page asked for without one redirects to
/admin/login, a JSON twin answers 401 in the envelope, an action (a POST) redirects or answers
401 and changes nothing. Actions also need the `admin` role (403 otherwise) and the session's
CSRF token (403 otherwise). Every change goes to the audit trail (goald/audit.py; flag changes
through goald/flags.py's own).

Pages are Jinja2 templates (console/templates/, one Environment with autoescape on: a job
description or an audit reason holding markup renders as text). A page's live part (the jobs
table) is a fragment the page's script (console/static/refresh.js) fetches again every few
seconds (`?fragment=1`), so values change without reloading the page. Nothing comes from a CDN.

The console sees the daemon only through `ops` (goald/console_ops.py DaemonOps: the catalog as
the runtime sees it, run now) and the database. Handlers run in the request's greenlet; an
exception is the app's logged 500 (console/app.py `_guard`).
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import bottle
import jinja2

from goald import audit
from goald.console import envelope
from goald.console.auth import COOKIE, CSRF_FIELD, Auth, csrf_ok
from goald.db.pool import DatabaseUnavailable, PoolTimeout

HERE = Path(__file__).parent
REFRESH_S = 3
AUDIT_PAGE = 100


class RunNowRefused(Exception):
    """`ops.run_now` cannot ask for a run here; the message says why (answered 409)."""


def environment() -> jinja2.Environment:
    # Undefined renders empty: a field a describe() does not have (yet) shows as a blank, not a 500.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    return env


class Gate:
    """The console's pages and actions behind the login: rendering, the three kinds of route
    (page, JSON twin, action) and the answers of an action. Page modules (console/admin_jobs.py,
    admin_runtime.py) register their routes through it."""

    def __init__(self, app: bottle.Bottle, *, pool, node: str, auth: Auth, ops: Any, actors=None, provider=None):
        self.app, self.pool, self.node, self.auth, self.ops = app, pool, node, auth, ops
        self.actors, self.provider = actors, provider
        self.templates = environment()

    def render(self, name: str, session, **values) -> str:
        bottle.response.set_header("Content-Type", "text/html; charset=utf-8")
        bottle.response.set_header("Cache-Control", "no-store")
        bottle.response.set_header("X-Frame-Options", "DENY")
        bottle.response.set_header("Content-Security-Policy",
                                   "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                   "frame-ancestors 'none'; form-action 'self'")
        return self.templates.get_template(name).render(
            operator=session.operator if session else None, csrf=session.csrf_token if session else "",
            csrf_field=CSRF_FIELD, node=self.node, refresh_s=REFRESH_S, **values)

    @staticmethod
    def remote() -> str | None:
        return bottle.request.environ.get("REMOTE_ADDR")

    def session_or_none(self):
        try:
            return self.auth.current(bottle.request.get_cookie(COOKIE))
        except (PoolTimeout, DatabaseUnavailable):
            raise _http(envelope.error_reply("database_unavailable", "the database is not answering; the console "
                                             "needs it", 503))

    def page(self, fn):
        """A page: no session → redirect to the login page (back here afterwards)."""
        def wrapper(*a, **kw):
            s = self.session_or_none()
            if s is None:
                target = bottle.request.fullpath + ("?" + bottle.request.query_string
                                                    if bottle.request.query_string else "")
                return bottle.redirect("/admin/login?" + urlencode({"next": target}), 303)
            return fn(s, *a, **kw)
        return wrapper

    def twin(self, fn):
        """A JSON twin: no session → 401 in the envelope."""
        def wrapper(*a, **kw):
            s = self.session_or_none()
            if s is None:
                return envelope.error("unauthorized", "log in at /admin/login first", 401)
            return fn(s, *a, **kw)
        return wrapper

    def action(self, fn):
        """A POST that changes something: a session (else login / 401), the admin role (403) and
        the CSRF token (403), checked before anything changes."""
        def wrapper(*a, **kw):
            s = self.session_or_none()
            if s is None:
                if self.wants_json():
                    return envelope.error("unauthorized", "log in at /admin/login first", 401)
                return bottle.redirect("/admin/login", 303)
            if not s.operator.can_change:
                return envelope.error("forbidden", f"{s.operator.name} is a read-only operator: they may look "
                                      f"but not change", 403)
            ok, why = csrf_ok(bottle.request.environ, bottle.request.forms.get(CSRF_FIELD), s)
            if not ok:
                return envelope.error("csrf", why, 403)
            return fn(s, *a, **kw)
        return wrapper

    @staticmethod
    def wants_json() -> bool:
        return "application/json" in (bottle.request.get_header("Accept") or "")

    def view(self, path: str, template: str, data, *, active: str, json_path: str | None = None,
             fragment: str | None = None) -> None:
        """A page at `path` and its JSON twin at `json_path` (`path` + ".json"), both from
        `data(**route_args)`; with `fragment`, `?fragment=1` renders only that template (the
        page's live part, console/static/refresh.js)."""
        def html(s, **kw):
            name = fragment if fragment and bottle.request.query.get("fragment") else template
            return self.render(name, s, active=active, **data(**kw))

        def twin(s, **kw):
            return envelope.ok(data(**kw))
        # The twin first: Bottle tries dynamic routes in order, and `/x/<id>` would take `/x/7.json`.
        self.app.get(json_path or path + ".json", callback=self.twin(twin))
        self.app.get(path, callback=self.page(html))

    def query(self, fn, *args, **kwargs):
        """`fn(conn, ...)` on a pooled connection, read-only (rolled back after)."""
        with self.pool.connection(timeout_s=5.0) as conn:
            try:
                return fn(conn, *args, **kwargs)
            finally:
                conn.rollback()


def install(app: bottle.Bottle, *, pool, node: str, auth: Auth, ops: Any, actors=None, provider=None) -> Gate:
    gate = Gate(app, pool=pool, node=node, auth=auth, ops=ops, actors=actors, provider=provider)

    # --- login and logout -----------------------------------------------------------------------

    @app.get("/admin/login")
    def login_form():
        return gate.render("login.html", None, next=_safe_next(bottle.request.query.get("next")), error=None)

    @app.post("/admin/login")
    def login():
        name = (bottle.request.forms.getunicode("name") or "").strip()
        password = bottle.request.forms.getunicode("password") or ""
        target = _safe_next(bottle.request.forms.getunicode("next"))
        session_id, retry_after, error = auth.login(name, password, gate.remote())
        if session_id is None:
            bottle.response.status = 429 if retry_after else 401
            if retry_after:
                bottle.response.set_header("Retry-After", str(max(1, round(retry_after))))
            return gate.render("login.html", None, next=target, error=error)
        k, v = auth.cookie_header(session_id, bottle.request.environ)
        raise bottle.HTTPResponse(status=303, headers={"Location": target, k: v})

    @app.post("/admin/logout")
    def logout():
        s = gate.session_or_none()
        if s is not None:
            ok, why = csrf_ok(bottle.request.environ, bottle.request.forms.get(CSRF_FIELD), s)
            if not ok:
                return envelope.error("csrf", why, 403)
            auth.logout(bottle.request.get_cookie(COOKIE), gate.remote())
        k, v = auth.clearing_cookie()
        raise bottle.HTTPResponse(status=303, headers={"Location": "/admin/login", k: v})

    @app.get("/admin")
    @app.get("/admin/")
    def admin_root():
        return bottle.redirect("/admin/jobs", 303)

    @app.get("/admin/static/<name:re:[a-z0-9_.-]+>")
    def static(name):
        return bottle.static_file(name, root=str(HERE / "static"), headers={"Cache-Control": "max-age=3600"})

    # --- audit ----------------------------------------------------------------------------------

    def audit_data() -> dict:
        q = bottle.request.query
        entries = gate.query(audit.read, limit=AUDIT_PAGE, before=_parse_time(q.get("before")),
                             actor=q.getunicode("actor") or None, action=q.get("action") or None)
        rows = [e.as_dict() for e in entries]
        return {"entries": rows, "older": rows[-1]["at"] if len(rows) == AUDIT_PAGE else None,
                "actions": list(audit.ACTIONS),
                "filters": {"actor": q.getunicode("actor") or "", "action": q.get("action") or ""}}

    gate.view("/admin/audit", "audit.html", audit_data, active="audit")

    from goald.console import admin_jobs, admin_matches, admin_runtime

    admin_jobs.routes(gate)
    admin_runtime.routes(gate)
    admin_matches.routes(gate)
    return gate


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of the console, never another site (//evil, http:)."""
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return "/admin/jobs"


def _parse_time(value: str | None, name: str = "before") -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise _http(envelope.error_reply("bad_request", f"{name}={value!r} is not an ISO time "
                                         f"(2026-12-03T14:00:00+00:00)", 400))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _http(reply: envelope.Reply) -> bottle.HTTPResponse:
    """An envelope answer to raise from anywhere in a handler."""
    return bottle.HTTPResponse(body=reply.body, status=reply.status, headers=dict(reply.headers))
