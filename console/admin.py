"""The operator console under /admin/: login, the jobs page and its actions, the audit trail.

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

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import bottle
import jinja2

from goald import audit, flags as flagnames, runs
from goald.console import envelope
from goald.console.auth import COOKIE, CSRF_FIELD, Auth, csrf_ok
from goald.db.pool import DatabaseUnavailable, PoolTimeout

HERE = Path(__file__).parent
REFRESH_S = 3
AUDIT_PAGE = 100
MESSAGES = {           # what an action's redirect may say (a code, never text from the URL)
    "enabled": "{job} enabled: its next occurrences run.",
    "disabled": "{job} disabled: its next occurrences are recorded skipped_disabled.",
    "unchanged": "{job} was already like that: nothing changed.",
    "stagger_on": "Stagger on: jobs start at their catalog offsets.",
    "stagger_off": "Stagger off: every job starts at :00.",
    "job_stagger_on": "{job} starts at its catalog offset again.",
    "job_stagger_off": "{job} starts at :00.",
    "run_claimed": "{job}: run now recorded as a manual run (see its last outcome).",
    "run_pending": "{job}: run now asked; its claim had not answered yet.",
    "run_failed": "{job}: run now could not be claimed.",
}


class RunNowRefused(Exception):
    """`ops.run_now` cannot ask for a run here; the message says why (answered 409)."""


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson_attr"] = lambda v: json.dumps(v)
    return env


def install(app: bottle.Bottle, *, pool, node: str, auth: Auth, ops: Any) -> None:
    templates = environment()

    def render(name: str, session, **values) -> str:
        bottle.response.set_header("Content-Type", "text/html; charset=utf-8")
        bottle.response.set_header("Cache-Control", "no-store")
        bottle.response.set_header("X-Frame-Options", "DENY")
        bottle.response.set_header("Content-Security-Policy",
                                   "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                   "frame-ancestors 'none'; form-action 'self'")
        return templates.get_template(name).render(operator=session.operator if session else None,
                                                   csrf=session.csrf_token if session else "",
                                                   csrf_field=CSRF_FIELD, node=node, refresh_s=REFRESH_S, **values)

    def remote() -> str | None:
        return bottle.request.environ.get("REMOTE_ADDR")

    def session_or_none():
        try:
            return auth.current(bottle.request.get_cookie(COOKIE))
        except (PoolTimeout, DatabaseUnavailable):
            raise _http(envelope.error_reply("database_unavailable", "the database is not "
                                                                "answering; the console needs it", 503))

    def page(fn):
        """A page: no session → redirect to the login page (back here afterwards)."""
        def wrapper(*a, **kw):
            s = session_or_none()
            if s is None:
                target = bottle.request.fullpath + ("?" + bottle.request.query_string
                                                    if bottle.request.query_string else "")
                return bottle.redirect("/admin/login?" + urlencode({"next": target}), 303)
            return fn(s, *a, **kw)
        return wrapper

    def twin(fn):
        """A JSON twin: no session → 401 in the envelope."""
        def wrapper(*a, **kw):
            s = session_or_none()
            if s is None:
                return envelope.error("unauthorized", "log in at /admin/login first", 401)
            return fn(s, *a, **kw)
        return wrapper

    def action(fn):
        """A POST that changes something: a session (else login / 401), the admin role (403) and
        the CSRF token (403), checked before anything changes."""
        def wrapper(*a, **kw):
            wants_json = "application/json" in (bottle.request.get_header("Accept") or "")
            s = session_or_none()
            if s is None:
                if wants_json:
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

    # --- login and logout -----------------------------------------------------------------------

    @app.get("/admin/login")
    def login_form():
        return render("login.html", None, next=_safe_next(bottle.request.query.get("next")), error=None)

    @app.post("/admin/login")
    def login():
        name = (bottle.request.forms.getunicode("name") or "").strip()
        password = bottle.request.forms.getunicode("password") or ""
        target = _safe_next(bottle.request.forms.getunicode("next"))
        session_id, retry_after, error = auth.login(name, password, remote())
        if session_id is None:
            bottle.response.status = 429 if retry_after else 401
            if retry_after:
                bottle.response.set_header("Retry-After", str(max(1, round(retry_after))))
            return render("login.html", None, next=target, error=error)
        k, v = auth.cookie_header(session_id, bottle.request.environ)
        raise bottle.HTTPResponse(status=303, headers={"Location": target, k: v})

    @app.post("/admin/logout")
    def logout():
        s = session_or_none()
        if s is not None:
            ok, why = csrf_ok(bottle.request.environ, bottle.request.forms.get(CSRF_FIELD), s)
            if not ok:
                return envelope.error("csrf", why, 403)
            auth.logout(bottle.request.get_cookie(COOKIE), remote())
        k, v = auth.clearing_cookie()
        raise bottle.HTTPResponse(status=303, headers={"Location": "/admin/login", k: v})

    @app.get("/admin")
    @app.get("/admin/")
    def admin_root():
        return bottle.redirect("/admin/jobs", 303)

    @app.get("/admin/static/<name:re:[a-z0-9_.-]+>")
    def static(name):
        return bottle.static_file(name, root=str(HERE / "static"), headers={"Cache-Control": "max-age=3600"})

    # --- jobs -----------------------------------------------------------------------------------

    def jobs_data(query: str) -> dict:
        rows = ops.jobs(time.time())
        with pool.connection(timeout_s=5.0) as conn:
            stats = runs.summaries(conn, [r["name"] for r in rows])
            conn.rollback()
        q = query.strip().lower()
        jobs = [{**r, **stats.get(r["name"], {})} for r in rows
                if not q or q in r["name"].lower() or q in (r["description"] or "").lower()]
        return {"stagger_enabled": ops.stagger_enabled(), "query": query, "count": len(jobs),
                "total": len(rows), "jobs": jobs,
                "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    @app.get("/admin/jobs")
    @page
    def jobs_page(s):
        data = jobs_data(bottle.request.query.getunicode("q") or "")
        template = "_jobs_table.html" if bottle.request.query.get("fragment") else "jobs.html"
        code = bottle.request.query.get("msg")
        message = MESSAGES[code].format(job=bottle.request.query.getunicode("job") or "") if code in MESSAGES else None
        return render(template, s, message=message, **data)

    @app.get("/admin/jobs.json")
    @twin
    def jobs_json(s):
        return envelope.ok(jobs_data(bottle.request.query.getunicode("q") or ""))

    def known_job(name: str) -> dict:
        for r in ops.jobs(time.time()):
            if r["name"] == name:
                return r
        raise _http(envelope.error_reply("not_found", f"no job named {name}", 404))

    def done(code: str, job: str = "", **extra):
        if "application/json" in (bottle.request.get_header("Accept") or ""):
            return envelope.ok({"result": code, "job": job or None, **extra})
        return bottle.redirect("/admin/jobs?" + urlencode({"msg": code, "job": job}), 303)

    def set_flag(s, name: str, value: bool, default: bool) -> bool:
        reason = (bottle.request.forms.getunicode("reason") or "").strip()[:500] or None
        with pool.connection(timeout_s=5.0) as conn:
            change = flagnames.set_flag(conn, name, value, by=s.operator.name, node=node, reason=reason,
                                        default=default)
        return change.changed

    @app.post("/admin/jobs/<name>/<verb:re:enable|disable>")
    @action
    def job_enable(s, name, verb):
        job = known_job(name)
        changed = set_flag(s, flagnames.job_enabled(name), verb == "enable", job["enabled_default"])
        return done(("enabled" if verb == "enable" else "disabled") if changed else "unchanged", name)

    @app.post("/admin/jobs/<name>/stagger/<state:re:on|off>")
    @action
    def job_stagger(s, name, state):
        known_job(name)
        changed = set_flag(s, flagnames.job_stagger(name), state == "on", True)
        return done(f"job_stagger_{state}" if changed else "unchanged", name)

    @app.post("/admin/stagger/<state:re:on|off>")
    @action
    def stagger(s, state):
        changed = set_flag(s, flagnames.STAGGER, state == "on", ops.stagger_default())
        return done(f"stagger_{state}" if changed else "unchanged", "stagger")

    @app.post("/admin/jobs/<name>/run")
    @action
    def job_run(s, name):
        known_job(name)
        try:
            result = ops.run_now(name)
        except RunNowRefused as e:
            return envelope.error("refused", str(e), 409)
        period = datetime.fromtimestamp(result["period_at"], tz=timezone.utc)
        with pool.connection(timeout_s=5.0) as conn:
            row = runs.manual_row(conn, name, period)
            audit.record(conn, actor=s.operator.name, node=node, action="run_now", target=name,
                         new=(row or {}).get("outcome") or result["state"],
                         reason=result["reason"], remote=remote())
            conn.commit()
        code = {"claimed": "run_claimed", "pending": "run_pending"}.get(result["state"], "run_failed")
        return done(code, name, run=row, state=result["state"], reason=result["reason"])

    # --- audit ----------------------------------------------------------------------------------

    def audit_data() -> dict:
        q = bottle.request.query
        before = _parse_time(q.get("before"))
        with pool.connection(timeout_s=5.0) as conn:
            entries = audit.read(conn, limit=AUDIT_PAGE, before=before, actor=q.getunicode("actor") or None,
                                 action=q.get("action") or None)
            conn.rollback()
        rows = [e.as_dict() for e in entries]
        older = rows[-1]["at"] if len(rows) == AUDIT_PAGE else None
        return {"entries": rows, "older": older, "actions": list(audit.ACTIONS),
                "filters": {"actor": q.getunicode("actor") or "", "action": q.get("action") or ""}}

    @app.get("/admin/audit")
    @page
    def audit_page(s):
        return render("audit.html", s, quote=quote, **audit_data())

    @app.get("/admin/audit.json")
    @twin
    def audit_json(s):
        return envelope.ok(audit_data())


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of the console, never another site (//evil, http:)."""
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return "/admin/jobs"


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise _http(envelope.error_reply("bad_request", f"before={value!r} is not an ISO time "
                                                            f"(2026-12-03T14:00:00+00:00)", 400))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _http(reply: envelope.Reply) -> bottle.HTTPResponse:
    """An envelope answer to raise from anywhere in a handler."""
    return bottle.HTTPResponse(body=reply.body, status=reply.status, headers=dict(reply.headers))
