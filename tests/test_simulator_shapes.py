"""The simulator's HTTP answers have the provider's documented shapes, field by field, types
included: every endpoint goald uses, asked over real HTTP on loopback with realistic parameters,
checked against tests/documented_shapes.py (a transcription of the provider's public docs,
independent of goald's decoders and of the simulator's own code). A check over an empty answer
proves nothing, so every answer checked here is also asserted non-empty (except the answers that
must be empty: a page past the end).

Two simulated days of the same world (seed 5, 300 matches): `feed`, its clock at 19:00 and never
moved, and `day_sweep`, a second server whose clock walks the whole day in 120 s steps (the
width of data/update's window, so every change of the day is seen once).
"""
import re
import time

import pytest
import requests

import documented_shapes as shapes
from goald.simulator.clock import ManualClock
from goald.simulator.server import SimulatorServer
from goald.simulator.world import World

DAY = 1_780_000_000 - 1_780_000_000 % 86400  # a UTC midnight (2026-05-28)
EVENING = DAY + 19 * 3600
AUTH = {"user": "demo", "secret": "demo"}
SWEEP_STEP_S = 120  # data/update's window
INSTANTS = ("00:00", "02:00", "06:00", "12:00", "19:00", "23:30")  # multiples of SWEEP_STEP_S

# Fields the simulator sends that the docs do not document, each with its reason, as the
# normalised path of the field ("match/diary $.results[*].foo"). None is needed today: keep it that
# way unless the simulator has a good reason.
ALLOWED_EXTRAS: dict[str, str] = {}


def at(text: str) -> int:
    hours, minutes = text.split(":")
    return DAY + int(hours) * 3600 + int(minutes) * 60


class Feed:
    """A simulator on loopback and the answers it gave, keyed by path, parameters and instant."""

    def __init__(self, clock: ManualClock, server: SimulatorServer):
        self.clock, self.server = clock, server
        self.session = requests.Session()
        self._answers: dict[tuple, dict] = {}

    def get(self, path: str, **params) -> dict:
        key = (path, tuple(sorted(params.items())), self.clock.now())
        if key not in self._answers:
            r = self.session.get(f"{self.server.url}/v1/football/{path}", params={**AUTH, **params}, timeout=10)
            assert r.status_code == 200, f"{path} {params}: HTTP {r.status_code}: {r.text[:200]}"
            assert r.headers["Content-Type"].startswith("application/json"), r.headers["Content-Type"]
            self._answers[key] = r.json()
        return self._answers[key]

    def close(self) -> None:
        self.session.close()
        self.server.stop()


def start(now: int) -> Feed:
    clock = ManualClock(now)
    return Feed(clock, SimulatorServer(World(seed=5, matches=300, clock=clock), clock, rate=0).start())


@pytest.fixture(scope="module")
def feed():
    """The day at 19:00 (busy: some 70 matches in detail_live); the tests never move its clock."""
    f = start(EVENING)
    yield f
    f.close()


@pytest.fixture(scope="module")
def day_sweep():
    """The whole day from 00:00 in 120 s steps: every data/update answer, and detail_live and
    table/live at INSTANTS. {"data/update": [(t, body)], "match/detail_live": {instant: body},
    "table/live": {instant: body}}."""
    f = start(DAY)
    wanted = {at(i): i for i in INSTANTS}
    out: dict = {"data/update": [], "match/detail_live": {}, "table/live": {}}
    try:
        while f.clock.now() < DAY + 86400:
            t = int(f.clock.now())
            out["data/update"].append((t, f.get("data/update")))
            if t in wanted:
                for path in ("match/detail_live", "table/live"):
                    out[path][wanted[t]] = f.get(path)
            f.clock.advance(SWEEP_STEP_S)
    finally:
        f.close()
    assert set(out["match/detail_live"]) == set(INSTANTS)
    return out


def normalised(problem: str) -> str:
    return re.sub(r"\[\d+\]", "[*]", problem.split(":", 1)[0])


def shape_problems(path: str, body: dict) -> list[str]:
    """check()'s problems with the answer, less the extras allowed above."""
    found = shapes.check(body, shapes.ENDPOINTS[path], f"{path} $")
    return [p for p in found if not ("undocumented field" in p and normalised(p) in ALLOWED_EXTRAS)]


def assert_documented(path: str, body: dict, allow=lambda problem: False) -> None:
    problems = [p for p in shape_problems(path, body) if not allow(p)]
    assert not problems, f"{len(problems)} differences from the documented shape:\n" + "\n".join(problems[:40])


def assert_non_empty(path: str, body: dict) -> None:
    assert body.get("results"), f"{path}: empty results, the shape check would prove nothing: {str(body)[:200]}"


def date_text(t: int) -> str:
    return time.strftime("%Y%m%d", time.gmtime(t))


def diary(feed: Feed) -> dict:
    return feed.get("match/diary", date=date_text(DAY))


def analysis_ids(feed: Feed) -> list[str]:
    """Matches of today's diary: the first of each status, and a few more spread over the day."""
    matches = diary(feed)["results"]
    by_status: dict[int, str] = {}
    for m in matches:
        by_status.setdefault(m["status_id"], m["id"])
    spread = [m["id"] for m in matches[:: max(1, len(matches) // 10)]]
    return list(dict.fromkeys([*by_status.values(), *spread]))


def season_ids(feed: Feed) -> list[str]:
    """Every season of today's diary, and every competition's current season."""
    ids = [m["season_id"] for m in diary(feed)["results"]]
    ids += [c["cur_season_id"] for c in feed.get("competition/additional/list", page=1)["results"]]
    return list(dict.fromkeys(ids))


def reference_since(feed: Feed, path: str) -> int:
    """A realistic incremental `time`: the newest updated_at the full (page) load saw."""
    return max(item["updated_at"] for item in feed.get(path, page=1)["results"])


# --- match/detail_live --------------------------------------------------------------------------------

def test_every_detail_live_item_has_the_documented_fields_and_types(feed):
    body = feed.get("match/detail_live")
    assert_non_empty("match/detail_live", body)
    assert_documented("match/detail_live", body)


def test_every_detail_live_score_is_the_positional_array_of_its_own_match(feed):
    results = feed.get("match/detail_live")["results"]
    assert results
    wrong = [(item["id"], item["score"][:2]) for item in results if item["score"][0] != item["id"]]
    assert not wrong, f"score[0] is not the item's match id: {wrong[:5]}"


@pytest.mark.parametrize("instant", INSTANTS)
def test_detail_live_keeps_the_documented_shape_at_every_hour_of_the_simulated_day(day_sweep, instant):
    body = day_sweep["match/detail_live"][instant]
    assert_non_empty("match/detail_live", body)
    assert_documented("match/detail_live", body)


# --- match/diary --------------------------------------------------------------------------------------

@pytest.mark.parametrize("day", [DAY, DAY - 86400], ids=["today", "yesterday"])
def test_every_diary_match_by_date_has_the_documented_fields_and_types(feed, day):
    # DOMAIN.md: the diary is asked by date=YYYYMMDD (the docs document only tsp).
    body = feed.get("match/diary", date=date_text(day))
    assert_non_empty("match/diary", body)
    assert_documented("match/diary", body)
    assert body["query"]["type"] == "diary"


@pytest.mark.parametrize("tsp", [DAY, EVENING], ids=["midnight", "now"])
def test_every_diary_match_by_tsp_has_the_documented_fields_and_types(feed, tsp):
    body = feed.get("match/diary", tsp=tsp)
    assert_non_empty("match/diary", body)
    assert_documented("match/diary", body)
    assert all(section for section in body["results_extra"].values()), \
        f"an empty results_extra section: { {k: len(v) for k, v in body['results_extra'].items()} }"


# --- match/recent/list --------------------------------------------------------------------------------

def test_every_recent_list_match_changed_since_a_time_has_the_documented_fields_and_types(feed):
    since = EVENING - 3600
    body = feed.get("match/recent/list", time=since)
    assert_non_empty("match/recent/list", body)
    assert_documented("match/recent/list", body)
    assert (body["query"]["type"], body["query"]["time"]) == ("time", since)


def test_every_recent_list_match_by_page_has_the_documented_fields_and_types(feed):
    body = feed.get("match/recent/list", page=1)
    assert_non_empty("match/recent/list", body)
    assert_documented("match/recent/list", body)
    assert (body["query"]["type"], body["query"]["page"]) == ("page", 1)


def test_a_recent_list_page_past_the_end_is_empty_with_the_documented_envelope(feed):
    assert len(feed.get("match/recent/list", page=1)["results"]) < 1000  # so page 2 is past the end
    body = feed.get("match/recent/list", page=2)
    assert body["results"] == []
    assert body["query"] == {**body["query"], "total": 0, "type": "page", "page": 2}
    assert_documented("match/recent/list", body)


def test_a_recent_list_time_query_with_nothing_newer_is_empty_with_the_documented_envelope(feed):
    body = feed.get("match/recent/list", time=EVENING + 1)
    assert body["results"] == []
    assert body["query"]["total"] == 0
    # Allowed: min_time/max_time are "the smallest/largest updated_at in the data"; with no data
    # there is none, and the docs do not say what comes then. Omitting them is the honest answer.
    assert_documented("match/recent/list", body,
                      allow=lambda p: re.search(r"\$\.query\.(min|max)_time: missing", p) is not None)


# --- data/update --------------------------------------------------------------------------------------

def test_every_data_update_item_has_the_documented_fields_and_types(feed):
    body = feed.get("data/update")
    assert_non_empty("data/update", body)
    assert_documented("data/update", body)


def test_every_data_update_answer_of_the_whole_day_has_the_documented_fields_and_types(day_sweep):
    answers = day_sweep["data/update"]
    problems = [p for t, body in answers for p in shape_problems("data/update", body)]
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])
    seen = {type_id for _, body in answers for type_id, items in body["results"].items() if items}
    # line-ups (match_id items), brackets and standings (season_id items) were all checked
    assert {"1", "2", "3"} <= seen, f"the day's data/update only had types {sorted(seen)}"
    assert sum(1 for _, body in answers if body["results"]) > len(answers) // 3


@pytest.mark.parametrize("instant", INSTANTS)
def test_data_update_keeps_the_documented_shape_at_every_hour_of_the_simulated_day(day_sweep, instant):
    # The first non-empty answer at or after the instant (within 30 minutes): the 120 s window is
    # often empty at a given second at night.
    start = at(instant)
    found = [(t, body) for t, body in day_sweep["data/update"] if start <= t < start + 1800 and body["results"]]
    assert found, f"data/update empty from {instant} for 30 minutes"
    t, body = found[0]
    assert_documented("data/update", body)


# --- match/analysis, season/recent/table/detail, table/live -------------------------------------------

def test_every_analysis_has_the_documented_rows_for_matches_of_every_status(feed):
    ids = analysis_ids(feed)
    assert len(ids) >= 8
    rows = 0
    for match_id in ids:
        body = feed.get("match/analysis", uuid=match_id)
        assert body["results"], f"no analysis for {match_id}"
        assert_documented("match/analysis", body)
        r = body["results"]
        rows += sum(len(r["history"][k]) for k in ("vs", "home", "away")) + sum(len(v) for v in r["future"].values())
        assert r["info"][0] == match_id
    assert rows, "no history/future rows at all: their positional check never ran"
    assert any(feed.get("match/analysis", uuid=i)["results"]["history"]["vs"] for i in ids), "no head-to-head rows"


def test_every_season_table_has_the_documented_fields_and_types(feed):
    ids = season_ids(feed)
    assert len(ids) > 10
    for season_id in ids:
        body = feed.get("season/recent/table/detail", uuid=season_id)
        assert body["results"] and body["results"]["tables"], f"no table for season {season_id}"
        assert all(table["rows"] for table in body["results"]["tables"]), f"a table without rows: {season_id}"
        assert_documented("season/recent/table/detail", body)


def test_every_table_live_item_has_the_documented_fields_and_types(feed):
    body = feed.get("table/live")
    assert_non_empty("table/live", body)
    assert_documented("table/live", body)


@pytest.mark.parametrize("instant", INSTANTS)
def test_table_live_keeps_the_documented_shape_through_the_simulated_day(day_sweep, instant):
    body = day_sweep["table/live"][instant]
    assert_documented("table/live", body)


# --- competition/additional/list and team/additional/list ---------------------------------------------

REFERENCE_LISTS = ("competition/additional/list", "team/additional/list")


@pytest.mark.parametrize("path", REFERENCE_LISTS)
def test_every_reference_list_item_by_page_has_the_documented_fields_and_types(feed, path):
    body = feed.get(path, page=1)
    assert_non_empty(path, body)
    assert_documented(path, body)
    assert (body["query"]["type"], body["query"]["page"]) == ("page", 1)


@pytest.mark.parametrize("path", REFERENCE_LISTS)
def test_every_reference_list_item_changed_since_a_time_has_the_documented_fields_and_types(feed, path):
    since = reference_since(feed, path)
    body = feed.get(path, time=since)
    assert_non_empty(path, body)
    assert_documented(path, body)
    assert (body["query"]["type"], body["query"]["time"]) == ("time", since)


@pytest.mark.parametrize("path", REFERENCE_LISTS)
def test_a_reference_list_page_past_the_end_is_empty_with_the_documented_envelope(feed, path):
    assert len(feed.get(path, page=1)["results"]) < 1000  # so page 2 is past the end
    body = feed.get(path, page=2)
    assert body["results"] == []
    assert body["query"] == {**body["query"], "total": 0, "type": "page", "page": 2}
    assert_documented(path, body)


# --- every endpoint, together -------------------------------------------------------------------------

def chosen_answer(feed: Feed, path: str) -> dict:
    """The answer of `path` for the parameters the tests above use (ids from earlier answers)."""
    params = {
        "match/diary": {"date": date_text(DAY)},
        "match/recent/list": {"time": EVENING - 3600},
        "match/analysis": {"uuid": analysis_ids(feed)[0]},
        "season/recent/table/detail": {"uuid": season_ids(feed)[0]},
        "match/half/team_stats/detail": {"uuid": next(m["id"] for m in diary(feed)["results"] if m["status_id"] == 8)},
        "competition/additional/list": {"page": 1},
        "team/additional/list": {"page": 1},
    }.get(path, {})
    return feed.get(path, **params)


@pytest.mark.parametrize("path", sorted(shapes.ENDPOINTS))
def test_each_endpoint_answers_something_for_the_chosen_parameters(feed, path):
    body = chosen_answer(feed, path)
    assert body.get("code") == 0, str(body)[:200]
    assert_non_empty(path, body)


@pytest.mark.parametrize("path, params", [
    ("match/diary", {"date": date_text(DAY)}),
    ("match/recent/list", {"time": EVENING - 3600}),
    ("match/recent/list", {"page": 1}),
    ("match/recent/list", {"page": 2}),
    ("competition/additional/list", {"page": 1}),
    ("team/additional/list", {"page": 1}),
    ("team/additional/list", {"page": 2}),
], ids=lambda v: v if isinstance(v, str) else "&".join(f"{k}={x}" for k, x in v.items()))
def test_query_total_is_the_number_of_results_on_the_page(feed, path, params):
    # DOMAIN.md: query.total is the page's count, not the collection's.
    body = feed.get(path, **params)
    assert body["query"]["total"] == len(body["results"])


# --- errors -------------------------------------------------------------------------------------------

def test_an_unknown_endpoint_is_the_documented_404_with_code_and_msg(feed):
    r = requests.get(f"{feed.server.url}/v1/football/match/no_such_thing", params=AUTH, timeout=10)
    assert r.status_code == 404
    assert shapes.check(r.json(), shapes.NOT_FOUND, "404 $") == []


def test_a_wrong_secret_is_http_200_with_an_err_text(feed):
    # DOMAIN.md: errors come back as HTTP 200 with {"err": "..."}.
    r = requests.get(f"{feed.server.url}/v1/football/match/detail_live",
                     params={"user": "demo", "secret": "wrong"}, timeout=10)
    assert r.status_code == 200
    assert shapes.check(r.json(), shapes.AUTH_ERROR, "auth $") == []


# --- the checker itself -------------------------------------------------------------------------------

def test_the_checker_reports_wrong_types_missing_and_undocumented_fields_and_short_arrays(feed):
    """A deliberately wrong item of each kind: check() must name the field and the difference."""
    live = feed.get("match/detail_live")
    match = diary(feed)["results"][0]
    item = live["results"][0]
    broken_live = {**item, "score": [item["score"][0], str(item["score"][1]), *item["score"][2:]]}
    broken_match = {**match, "home_scores": match["home_scores"][:6], "neutral": True, "extra_field": 1}
    del broken_match["updated_at"]
    cases = [
        ("match/detail_live", {**live, "results": [broken_live]},
         "match/detail_live $.results[0].score[1]: expected int, got str"),
        ("match/diary", {**diary(feed), "results": [broken_match]},
         "match/diary $.results[0].home_scores: expected list of 7 int, got list of 6"),
        ("match/diary", {**diary(feed), "results": [broken_match]},
         "match/diary $.results[0].neutral: expected int, got bool"),
        ("match/diary", {**diary(feed), "results": [broken_match]},
         "match/diary $.results[0].updated_at: missing"),
        ("match/diary", {**diary(feed), "results": [broken_match]},
         "match/diary $.results[0].extra_field: undocumented field"),
        ("data/update", {"code": 0, "results": {"1": [{"season_id": "x", "update_time": 1}]}},
         "data/update $.results['1'][0].match_id: missing"),
        ("match/recent/list", {"code": 0, "query": {"total": 0, "type": "time"}, "results": []},
         "match/recent/list $.query.time: missing"),
        ("match/analysis", {"code": 0, "results": {**feed.get("match/analysis", uuid=match["id"])["results"],
                                                   "info": ["too", "short"]}},
         "match/analysis $.results.info: expected a positional array of 10"),
    ]
    for path, body, expected in cases:
        problems = shape_problems(path, body)
        assert any(p.startswith(expected) for p in problems), f"{expected!r} not in {problems}"
    assert shape_problems("match/detail_live", live) == []


def test_team_statistics_and_half_statistics_have_the_documented_fields_and_types(feed):
    for path in ("match/team_stats/list", "match/half/team_stats/detail"):
        body = chosen_answer(feed, path)
        assert_non_empty(path, body)
        assert_documented(path, body)
    halves = chosen_answer(feed, "match/half/team_stats/detail")["results"]
    assert set(halves) == {"p1", "p2", "ft"}                      # an ended match, no extra time
    assert all(halves["ft"][k][i] == halves["p1"][k][i] + halves["p2"][k][i]
               for k in halves["ft"] if k != "25" for i in (0, 1))  # the halves add up (possession aside)
