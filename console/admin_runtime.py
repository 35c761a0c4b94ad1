"""The console's runtime pages (routes on console/admin.py's Gate), each with its JSON twin:

- `/admin/runs`: the run ledger, newest first, filtered by job, outcome, node and time
  (`since`, `until`: ISO times), paged (`before`: the last id of the previous page);
  `/admin/runs/<id>`: one run (error, rows, queries, pool at start, offset);
- `/admin/pool`: the pool now (active / idle / waiting / total / utilization) and a chart of
  this node's pool samples over the last `hours` (default 6);
- `/admin/actors`: the supervision tree with states, restart counts and last failures;
- `/admin/provider`: the provider client's breakers, calls, retries, throttles and rejections;
- `/admin/config`: the effective settings with their sources, secrets masked.

Bad filter values answer 400 in the envelope. Handlers run in the request's greenlet.
"""
from __future__ import annotations

from datetime import datetime, timezone

import bottle

from goald import pool_monitor, runs
from goald.console import envelope
from goald.console.admin import Gate, _http, _parse_time

RUNS_PAGE = 50
POOL_HOURS = (1, 6, 24, 72)


def routes(gate: Gate) -> None:
    def bad(message: str):
        raise _http(envelope.error_reply("bad_request", message, 400))

    def runs_data() -> dict:
        q = bottle.request.query
        outcome = q.get("outcome") or None
        if outcome is not None and outcome not in runs.OUTCOMES:
            bad(f"outcome={outcome!r} is not one of {', '.join(runs.OUTCOMES)}")
        before = q.get("before") or None
        if before is not None and not before.isdigit():
            bad(f"before={before!r} is not a run id")
        filters = {"job": q.getunicode("job") or None, "outcome": outcome, "node": q.getunicode("node") or None,
                   "since": _parse_time(q.get("since"), "since"), "until": _parse_time(q.get("until"), "until")}
        rows = gate.query(runs.history, **filters, before_id=int(before) if before else None, limit=RUNS_PAGE)
        shown = {k: (v.isoformat() if isinstance(v, datetime) else (v or "")) for k, v in filters.items()}
        return {"runs": rows, "filters": shown, "outcomes": list(runs.OUTCOMES), "jobs": gate.ops.job_names(),
                "older": rows[-1]["id"] if len(rows) == RUNS_PAGE else None}

    gate.view("/admin/runs", "runs.html", runs_data, active="runs")

    def run_data(run_id: int) -> dict:
        row = gate.query(runs.run, run_id)
        if row is None:
            raise _http(envelope.error_reply("not_found", f"no run {run_id}", 404))
        return {"run": row}

    gate.view("/admin/runs/<run_id:int>", "run.html", run_data, active="runs",
              json_path="/admin/runs/<run_id:int>.json")

    def pool_data() -> dict:
        hours = bottle.request.query.get("hours") or "6"
        try:
            h = float(hours)
        except ValueError:
            h = -1
        if not 0 < h <= 24 * 31:
            bad(f"hours={hours!r} is not a number of hours between 0 and 744")
        samples = gate.query(pool_monitor.history, gate.node, h)
        return {"now": gate.pool.stats().as_dict(), "hours": h, "choices": POOL_HOURS, "samples": samples,
                "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    gate.view("/admin/pool", "pool.html", pool_data, active="pool", fragment="_pool.html")

    def actors_data() -> dict:
        if gate.actors is None:
            raise _http(envelope.error_reply("unavailable", "no actor tree in this process", 503))
        try:
            tree = gate.actors()
        except Exception as e:            # the root is stopping or not answering
            raise _http(envelope.error_reply("unavailable", f"the actor tree is not answering: {e}", 503))
        return {"tree": tree, "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    gate.view("/admin/actors", "actors.html", actors_data, active="actors", fragment="_actors.html")

    def provider_data() -> dict:
        if gate.provider is None:
            raise _http(envelope.error_reply("unavailable", "no provider client in this process", 503))
        return {"provider": gate.provider(), "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    gate.view("/admin/provider", "provider.html", provider_data, active="provider", fragment="_provider.html")

    def config_data() -> dict:
        return gate.ops.config()

    gate.view("/admin/config", "config.html", config_data, active="config")
