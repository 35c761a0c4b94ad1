"""The peer of bench/live_endpoint.py: `GET /api/matches/live` as a Python team would otherwise
write it, FastAPI on uvicorn (one process, like goald), a psycopg2 connection pool, the same query
(goald.match.read.live) and the same fields per match, every request answered from the database,
gzip by FastAPI's middleware. Run by the bench: `python bench/_fastapi_live.py DSN PORT`.
"""
import sys
import time
from datetime import timezone

import psycopg2.pool
import uvicorn
from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware

from goald.match import read
from goald.match.state import STATUS_NAMES, short_status

dsn, port = sys.argv[1], int(sys.argv[2])
pool = psycopg2.pool.ThreadedConnectionPool(1, 40, dsn)   # anyio runs sync endpoints on 40 threads
app = FastAPI()
app.add_middleware(GZipMiddleware, minimum_size=1000)


def side(r, s):
    return {"display": r[f"{s}_display"], "regular": r[f"{s}_regular"], "half_time": r[f"{s}_half_time"],
            "overtime": r[f"{s}_overtime"], "penalties": r[f"{s}_penalties"], "red_cards": r[f"{s}_red_cards"],
            "yellow_cards": r[f"{s}_yellow_cards"], "corners": r[f"{s}_corners"]}


def match(r):
    return {
        "id": r["id"], "competition": {"id": r["competition_id"], "name": r["competition_name"],
                                       "logo": r["competition_logo"]},
        "season_id": r["season_id"], "home_team": {"id": r["home_team_id"], "name": r["home_name"], "logo": r["home_logo"]},
        "away_team": {"id": r["away_team_id"], "name": r["away_name"], "logo": r["away_logo"]},
        "match_time": r["match_time"], "status_id": r["status_id"], "status": STATUS_NAMES.get(r["status_id"], "unknown"),
        "short_status": short_status(r["period"], r["finished_after"]), "period": r["period"], "minute": r["minute"],
        "added_minute": r["added_minute"], "announced_added_minute": r["announced_added_minute"],
        "minute_text": r["minute_text"], "home": side(r, "home"), "away": side(r, "away"),
        "kickoffs": {"first_half": r["first_half_kickoff_ts"], "second_half": r["second_half_kickoff_ts"],
                     "extra_time": r["overtime_kickoff_ts"], "extra_time_second_half": r["overtime_second_kickoff_ts"]},
        "finished_after": r["finished_after"], "ended_reason": r["ended_reason"], "stale_reason": r["stale_reason"],
        "provider_update_time": r["provider_update_time"],
        "updated_at": r["updated_at"].astimezone(timezone.utc).isoformat(timespec="milliseconds"),
    }


@app.get("/api/matches/live")
def live():
    conn = pool.getconn()
    try:
        rows = read.live(conn, int(time.time()))
        conn.rollback()
    finally:
        pool.putconn(conn)
    return {"ok": True, "count": len(rows), "matches": [match(r) for r in rows]}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
