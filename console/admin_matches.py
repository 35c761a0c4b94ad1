"""The console's matches pages (routes on console/admin.py's Gate), each with its JSON twin:

- `/admin/matches`: the live matches (and those past their kick-off time, not started) from the
  database, with minute text, score and stale flags; `stale=1` lists only the stale ones, `q`
  searches team and competition names;
- `/admin/matches/<id>`: one match's row (any status), its incidents, and the last notable
  updates its actor applied or rejected on this node (actors/match_actor.py `Recent`; only the
  node that leads the match pipeline holds match actors).

Database reads go through goald/match/read.py. Handlers run in the request's greenlet.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import bottle

from goald.console import envelope
from goald.console.admin import Gate, _http
from goald.console.tables_api import ID_PATTERN
from goald.match import read
from goald.match.state import STATUS_NAMES

LIST_MAX = 2000


def _brief(r: dict) -> dict:
    return {"id": r["id"], "status_id": r["status_id"], "status": STATUS_NAMES.get(r["status_id"], "unknown"),
            "minute_text": r["minute_text"], "home": r["home_name"] or r["home_team_id"],
            "away": r["away_name"] or r["away_team_id"], "score": f"{r['home_display']}-{r['away_display']}",
            "competition": r["competition_name"] or r["competition_id"], "stale_reason": r["stale_reason"],
            "match_time": r["match_time"], "provider_update_time": r["provider_update_time"],
            "updated_at": r["updated_at"].astimezone(timezone.utc).isoformat(timespec="seconds")}


def routes(gate: Gate) -> None:
    def matches_data() -> dict:
        q = bottle.request.query
        stale_only = q.get("stale") in ("1", "true", "yes")
        search = (q.getunicode("q") or "").strip().lower()
        rows = [_brief(r) for r in gate.query(read.live, int(time.time()))]
        stale = sum(1 for r in rows if r["stale_reason"])
        shown = [r for r in rows if (not stale_only or r["stale_reason"])
                 and (not search or any(search in (r[k] or "").lower() for k in ("home", "away", "competition")))]
        shown.sort(key=lambda r: (r["stale_reason"] is None, r["competition"] or "", r["match_time"] or 0))
        return {"count": len(rows), "stale": stale, "shown": len(shown), "matches": shown[:LIST_MAX],
                "filters": {"stale": stale_only, "q": q.getunicode("q") or ""},
                "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    gate.view("/admin/matches", "matches.html", matches_data, active="matches", fragment="_matches.html")

    def match_data(match_id: str) -> dict:
        if not ID_PATTERN.fullmatch(match_id):
            raise _http(envelope.error_reply("bad_request", "a match id is 1-64 characters of A-Z a-z 0-9 . _ -", 400))
        row = gate.query(read.one, match_id)
        if row is None:
            raise _http(envelope.error_reply("not_found", f"no match {match_id}", 404))
        recent = gate.ops.match_recent(match_id)
        return {"match": {**_brief(row), "ended_reason": row["ended_reason"], "period": row["period"],
                          "finished_after": row["finished_after"],
                          "kickoffs": {k: row[k] for k in ("first_half_kickoff_ts", "second_half_kickoff_ts",
                                                            "overtime_kickoff_ts", "overtime_second_kickoff_ts")},
                          "incidents": row["incidents"]},
                "tracked_here": recent is not None,
                "recent": (recent or {}).get("recent", []),
                "unchanged_since_last": (recent or {}).get("unchanged_since_last", 0)}

    gate.view("/admin/matches/<match_id>", "match.html", match_data, active="matches",
              json_path="/admin/matches/<match_id>.json")
