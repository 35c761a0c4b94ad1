"""The peer of bench/api_latency.py: goald's public read endpoints as a Python team would otherwise
write them, FastAPI on uvicorn (one process, like goald), a psycopg2 connection pool, the same
queries (goald.match.read, goald.match.tables_store) and the same answer shapes, every request
answered from the database (no cache), gzip by FastAPI's middleware.
Run by the bench: `python bench/_fastapi_api.py DSN PORT`.
"""
import sys
import time
from datetime import datetime, timezone

import msgspec
import psycopg2.pool
import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.middleware.gzip import GZipMiddleware

from goald.console.matches_api import Incident, MatchDetail, Stat, TeamStats, match_out
from goald.console.tables_api import h2h_out, standings_out
from goald.match import read, tables_store

dsn, port = sys.argv[1], int(sys.argv[2])
pool = psycopg2.pool.ThreadedConnectionPool(1, 40, dsn)   # anyio runs sync endpoints on 40 threads
app = FastAPI()
app.add_middleware(GZipMiddleware, minimum_size=1000)


def query(fn, *args):
    conn = pool.getconn()
    try:
        return fn(conn, *args)
    finally:
        conn.rollback()
        pool.putconn(conn)


def plain(struct) -> dict:
    return msgspec.to_builtins(struct)


@app.get("/api/matches/live")
def live():
    rows = query(read.live, int(time.time()))
    return {"ok": True, "count": len(rows), "matches": [plain(match_out(r)) for r in rows]}


@app.get("/api/matches/diary")
def diary(date: str):
    start = int(datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp())

    def rows(conn):
        return read.by_ids(conn, [mid for mid, _ in read.diary_keys(conn, start)])
    got = query(rows)
    return {"ok": True, "count": len(got), "matches": [plain(match_out(r)) for r in got], "date": date}


@app.get("/api/matches/{match_id}")
def one(match_id: str):
    r = query(read.one, match_id)
    if r is None:
        raise HTTPException(404)
    detail = match_out(r, MatchDetail, incidents=[Incident(**i) for i in r["incidents"]],
                       stats=[Stat(**s) for s in r["stats"]], team_stats=[TeamStats(**t) for t in r["team_stats"]],
                       half_stats={h: [Stat(**s) for s in rows] for h, rows in r["half_stats"].items()},
                       data_completeness=r["data_completeness"])
    return {"ok": True, "match": plain(detail)}


@app.get("/api/matches/{match_id}/h2h")
def h2h(match_id: str):
    r = query(tables_store.h2h, match_id)
    if r is None:
        raise HTTPException(404)
    return plain(h2h_out(r))


@app.get("/api/standings/{season_id}")
def standings(season_id: str):
    r = query(tables_store.standings, season_id)
    if r is None:
        raise HTTPException(404)
    return plain(standings_out(r))


@app.get("/api/standings/competition/{competition_id}")
def competition(competition_id: str):
    r = query(tables_store.competition_standings, competition_id)
    if r is None:
        raise HTTPException(404)
    return plain(standings_out(r))


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
