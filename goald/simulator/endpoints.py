"""The provider's endpoints over a World: query parameters in, the documented envelope out.

`HANDLERS[path](world, params)` returns `{"code": 0, ["query": ...,] "results": ..., ["results_extra":
...]}` as a plain dict; the server encodes it and applies the chaos switches. A parameter that does
not parse raises `BadParameter` (the server answers it like the provider refuses a bad query).
`wrong_type(item, rng)` is the `wrong_types` chaos switch's mutation. Runs in the server's request
greenlets; no I/O.
"""
from __future__ import annotations

import calendar
import random
import time
from typing import Callable

RECENT_PAGE_SIZE = 1000


class BadParameter(ValueError):
    pass


def _int(params: dict, name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadParameter(f"parameter {name} must be an integer, got {raw!r}") from None


def _date_tsp(text: str) -> int:
    try:
        return calendar.timegm(time.strptime(text, "%Y%m%d"))
    except ValueError:
        raise BadParameter(f"parameter date must be YYYYMMDD, got {text!r}") from None


def detail_live(world, params: dict) -> dict:
    return {"code": 0, "results": world.detail_live()}


def data_update(world, params: dict) -> dict:
    return {"code": 0, "results": world.data_update()}


def diary(world, params: dict) -> dict:
    if params.get("date"):
        tsp = _date_tsp(params["date"])
    else:
        tsp = _int(params, "tsp")
        if tsp is None:
            now = int(world.clock.now())
            tsp = now - now % 86400
    results, extra = world.diary(tsp)
    return {"code": 0, "query": {"total": len(results), "type": "diary"}, "results": results,
            "results_extra": extra}


def recent_list(world, params: dict) -> dict:
    if params.get("uuid"):
        results = world.recent_list(uuid=params["uuid"])
        return {"code": 0, "query": {"total": len(results), "type": "uuid", "uuid": params["uuid"]},
                "results": results}
    since = _int(params, "time", 0)
    page = _int(params, "page", 1)
    if page < 1:
        raise BadParameter(f"parameter page must be 1 or more, got {page}")
    results = world.recent_list(since, page)
    query: dict = {"total": len(results), "type": "time" if params.get("time") else "page"}
    if params.get("time"):
        query["time"] = since
        if results:
            query["min_time"] = min(r["updated_at"] for r in results)
            query["max_time"] = max(r["updated_at"] for r in results)
    else:
        query["page"] = page
    return {"code": 0, "query": query, "results": results}


def _by_uuid(method: str) -> Callable[[object, dict], dict]:
    def handler(world, params: dict) -> dict:
        uuid = params.get("uuid") or ""
        if not uuid:
            raise BadParameter("parameter uuid is required")
        results = getattr(world, method)(uuid)
        return {"code": 0, "results": results if results is not None else {}}
    return handler


def team_stats(world, params: dict) -> dict:
    return {"code": 0, "results": world.team_stats()}


def table_live(world, params: dict) -> dict:
    return {"code": 0, "results": world.table_live()}


def _paged(method: str) -> Callable[[object, dict], dict]:
    def handler(world, params: dict) -> dict:
        page, since = _int(params, "page", 1), _int(params, "time")
        results = getattr(world, method)(page=page, since=since)
        query = {"total": len(results), "type": "time" if since is not None else "page"}
        query.update({"time": since} if since is not None else {"page": page})
        if since is not None and results:
            query["min_time"] = min(r["updated_at"] for r in results)
            query["max_time"] = max(r["updated_at"] for r in results)
        return {"code": 0, "query": query, "results": results}
    return handler


HANDLERS: dict[str, Callable[[object, dict], dict]] = {
    "match/detail_live": detail_live,
    "data/update": data_update,
    "match/diary": diary,
    "match/recent/list": recent_list,
    "match/analysis": _by_uuid("analysis"),
    "season/recent/table/detail": _by_uuid("season_table"),
    "table/live": table_live,
    "match/team_stats/list": team_stats,
    "match/half/team_stats/detail": _by_uuid("half_team_stats"),
    "competition/additional/list": _paged("competitions"),
    "team/additional/list": _paged("teams"),
}


def wrong_type(item, rng: random.Random):
    """The same item with one documented field's value of the wrong JSON type."""
    if not isinstance(item, dict):
        return item
    out = dict(item)
    if isinstance(out.get("score"), list) and len(out["score"]) > 1:
        score = list(out["score"])
        score[1] = str(score[1])  # status_id as a string
        out["score"] = score
        return out
    for key in ("status_id", "match_time", "updated_at", "update_time"):
        if key in out:
            out[key] = str(out[key])
            return out
    for key, value in out.items():
        if isinstance(value, int) and not isinstance(value, bool):
            out[key] = str(value)
            return out
    return out
