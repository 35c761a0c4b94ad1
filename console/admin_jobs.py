"""The console's jobs page, its actions and the stagger timeline (routes on console/admin.py's Gate).

- `/admin/jobs` (+ `.json`): the catalog as the runtime sees it (goald/console_ops.py), each job
  with its last run and its median / p95 durations from the ledger (goald/runs.py); `q` searches
  names and descriptions. Its table is the page's live part (`?fragment=1`).
- Actions (POST, admin role, CSRF): `/admin/jobs/<name>/enable|disable`,
  `/admin/jobs/<name>/stagger/on|off`, `/admin/stagger/on|off` (flags, audited by
  goald/flags.py), `/admin/jobs/<name>/run` (run now, audited here). A form post is answered
  with a redirect to the jobs page and a message; `Accept: application/json` gets the envelope.
- `/admin/timeline` (+ `.json`): the 60 seconds of a minute, each enabled job's start second and
  typical duration, collisions marked, beside the ledger's starts and pool utilization per second
  over the last hour (an SVG drawn by the template).

Handlers run in the request's greenlet.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import bottle

from goald import audit, flags as flagnames, runs
from goald.console import envelope
from goald.console.admin import Gate, RunNowRefused, _http

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
TIMELINE_WINDOW = timedelta(hours=1)


def routes(gate: Gate) -> None:
    app, ops = gate.app, gate.ops

    def jobs_data() -> dict:
        query = bottle.request.query.getunicode("q") or ""
        flags = gate.query(flagnames.read)            # the table now, not the clock's last poll
        rows = ops.jobs(time.time(), flags)
        stats = gate.query(runs.summaries, [r["name"] for r in rows])
        q = query.strip().lower()
        jobs = [{**r, **stats.get(r["name"], {})} for r in rows
                if not q or q in r["name"].lower() or q in (r["description"] or "").lower()]
        code = bottle.request.query.get("msg")
        message = (MESSAGES[code].format(job=bottle.request.query.getunicode("job") or "")
                   if code in MESSAGES else None)
        return {"stagger_enabled": ops.stagger_enabled(flags), "query": query, "count": len(jobs), "total": len(rows),
                "jobs": jobs, "message": message,
                "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    gate.view("/admin/jobs", "jobs.html", jobs_data, active="jobs", fragment="_jobs_table.html")

    def known_job(name: str) -> dict:
        for r in ops.jobs(time.time()):
            if r["name"] == name:
                return r
        raise _http(envelope.error_reply("not_found", f"no job named {name}", 404))

    def done(code: str, job: str = "", **extra):
        if gate.wants_json():
            return envelope.ok({"result": code, "job": job or None, **extra})
        return bottle.redirect("/admin/jobs?" + urlencode({"msg": code, "job": job}), 303)

    def set_flag(s, name: str, value: bool, default: bool) -> bool:
        reason = (bottle.request.forms.getunicode("reason") or "").strip()[:500] or None
        with gate.pool.connection(timeout_s=5.0) as conn:
            change = flagnames.set_flag(conn, name, value, by=s.operator.name, node=gate.node, reason=reason,
                                        default=default)
        return change.changed

    @app.post("/admin/jobs/<name>/<verb:re:enable|disable>")
    @gate.action
    def job_enable(s, name, verb):
        job = known_job(name)
        changed = set_flag(s, flagnames.job_enabled(name), verb == "enable", job["enabled_default"])
        return done(("enabled" if verb == "enable" else "disabled") if changed else "unchanged", name)

    @app.post("/admin/jobs/<name>/stagger/<state:re:on|off>")
    @gate.action
    def job_stagger(s, name, state):
        known_job(name)
        changed = set_flag(s, flagnames.job_stagger(name), state == "on", True)
        return done(f"job_stagger_{state}" if changed else "unchanged", name)

    @app.post("/admin/stagger/<state:re:on|off>")
    @gate.action
    def stagger(s, state):
        changed = set_flag(s, flagnames.STAGGER, state == "on", ops.stagger_default())
        return done(f"stagger_{state}" if changed else "unchanged", "stagger")

    @app.post("/admin/jobs/<name>/run")
    @gate.action
    def job_run(s, name):
        known_job(name)
        try:
            result = ops.run_now(name)
        except RunNowRefused as e:
            return envelope.error("refused", str(e), 409)
        period = datetime.fromtimestamp(result["period_at"], tz=timezone.utc)
        with gate.pool.connection(timeout_s=5.0) as conn:
            row = runs.manual_row(conn, name, period)
            audit.record(conn, actor=s.operator.name, node=gate.node, action="run_now", target=name,
                         new=(row or {}).get("outcome") or result["state"], reason=result["reason"],
                         remote=gate.remote())
            conn.commit()
        code = {"claimed": "run_claimed", "pending": "run_pending"}.get(result["state"], "run_failed")
        return done(code, name, run=row, state=result["state"], reason=result["reason"])

    # --- the stagger timeline ------------------------------------------------------------------

    def timeline_data() -> dict:
        now = time.time()
        flags = gate.query(flagnames.read)
        plan = ops.timeline(now, flags)
        stats = gate.query(runs.summaries, [j["name"] for j in plan["jobs"]])
        since = datetime.now(timezone.utc) - TIMELINE_WINDOW
        per_second = gate.query(runs.starts_by_second, since)
        colliding = {c["second_of_minute"] for c in plan["collisions"]}
        jobs = []
        for j in plan["jobs"]:
            st = stats.get(j["name"], {})
            typical_ms = st.get("p50_duration_ms")
            jobs.append({**j, "p50_duration_ms": typical_ms, "p95_duration_ms": st.get("p95_duration_ms"),
                         "collides": any(sec in colliding for sec in j["seconds"]) and not j["poller"]})
        return {"stagger_enabled": ops.stagger_enabled(flags), "jobs": jobs, "collisions": plan["collisions"],
                "per_second": per_second, "window_s": int(TIMELINE_WINDOW.total_seconds()),
                "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    gate.view("/admin/timeline", "timeline.html", timeline_data, active="timeline", fragment="_timeline.html")
