"""Typed, validated decoding of the provider's answers: one public function per endpoint.

Owns the step between the HTTP client's bytes and goald's typed data. `envelope(endpoint, body)`
reads only the outer object (`code`, `err`, `msg`; `query`, `results`, `results_extra` kept as
`msgspec.Raw`) so the client can look at `code`/`err` first; each endpoint decoder then takes the
body (or that `Envelope`, so nothing is parsed twice) and `now` (Unix seconds, passed in: no
decoder reads the clock) and returns a `Decoded`: the items that passed validation, a
`Rejection` per bad item (the rest of the page survives), and the page's extras. `DECODERS` maps
each endpoint path to its decoder.

Errors: a body that is not JSON (`malformed_json`), whose envelope is not a success envelope of
the right shape (`envelope_invalid`) or whose results container has the wrong shape
(`results_invalid`) raises `PayloadRejected`. Nothing else leaves a decoder, for any input.
Item reasons: `validation.REJECTION_REASONS`.

Runs in whatever greenlet calls it (the client, in an ingest job's greenlet): pure CPU, never
blocks, no I/O. Speed: the fast path of a page is one msgspec call (see validation.py).
"""
from __future__ import annotations

from typing import Callable, Union

import msgspec

from goald.provider import payloads as p
from goald.provider import payloads_reference as ref
from goald.provider import payloads_stats as st
from goald.provider.errors import Decoded, PayloadRejected, Rejection
from goald.provider.validation import (
    DECODE_FAILURES,
    ItemMemo,
    PAYLOAD_REASONS,
    REJECTION_REASONS,
    ItemKind,
    decode_list,
    decode_one,
    payload_rejected,
    raw_sections,
)

__all__ = ["DECODERS", "PAYLOAD_REASONS", "REJECTION_REASONS", "Body", "envelope", "detail_live", "diary",
           "recent_list", "data_update", "analysis", "season_table", "table_live", "competitions", "teams",
           "team_stats", "half_team_stats"]

Body = Union[bytes, bytearray, memoryview, str, p.Envelope]
"""What a decoder takes: the raw body, or the `Envelope` the client already read from it."""

KICKOFF_MAX_AGE_S = 86_400  # a current half cannot have kicked off more than a day ago
KICKOFF_MAX_AHEAD_S = 3_600  # ... nor more than an hour from now (clock skew allowance)
MATCH_TIME_MAX_DISTANCE_S = 400 * 86_400  # diary/recent list cover +-30 days; 400 is absurd

_ENVELOPE = msgspec.json.Decoder(p.Envelope)
_QUERY = msgspec.json.Decoder(p.ListQuery | None)

LIVE = ItemKind(p.LiveMatch, status={"$.score[1]"}, scores={"$.score", "$.score[2]", "$.score[3]"})
MATCH = ItemKind(p.Match, status={"$.status_id"}, scores={"$.home_scores", "$.away_scores"})
CHANGE = ItemKind(p.DataChange, labels=("match_id", "season_id", "team_id"))
ANALYSIS_ROW = ItemKind(ref.AnalysisRow, status={"$[2]"}, scores={"$[5]", "$[6]"}, label_index=0)
PROMOTION = ItemKind(ref.Promotion)
TABLE = ItemKind(ref.StandingTable)
LIVE_TABLE = ItemKind(ref.LiveSeasonTable, labels=("season_id",))
COMPETITION = ItemKind(ref.Competition)
TEAM = ItemKind(ref.Team)
DIARY_EXTRA_SECTIONS = {
    "competition": ItemKind(p.CompetitionRef), "team": ItemKind(p.TeamRef), "season": ItemKind(p.SeasonRef),
    "stage": ItemKind(p.StageRef), "referee": ItemKind(p.RefereeRef), "venue": ItemKind(p.VenueRef),
}

_DIARY_EXTRA = msgspec.json.Decoder(p.DiaryExtra | None)
_CHANGES = msgspec.json.Decoder(dict[p.NonNegative, list[p.DataChange]])
_ANALYSIS = msgspec.json.Decoder(ref.MatchAnalysis)
_ANALYSIS_INFO = msgspec.json.Decoder(ref.AnalysisRow | None)
_GOAL_DISTRIBUTION = msgspec.json.Decoder(ref.GoalDistribution | None)
_SEASON_STANDINGS = msgspec.json.Decoder(ref.SeasonStandings)
TEAM_STATS = ItemKind(st.MatchTeamStats)
_HALF_STATS = msgspec.json.Decoder(st.HalfTeamStats)
_HALF = msgspec.json.Decoder(dict[p.NonNegative, st.HalfPair])


# --- envelope -----------------------------------------------------------------------------------


def envelope(endpoint: str, body: bytes | bytearray | memoryview | str) -> p.Envelope:
    """The outer object of an answer, results undecoded. It must be a JSON object with an
    integer `code` or a string `err` (msg a string); else `PayloadRejected`."""
    try:
        env = _ENVELOPE.decode(body)
    except msgspec.ValidationError as exc:
        raise payload_rejected(endpoint, "envelope_invalid", exc, "$") from None
    except DECODE_FAILURES as exc:
        raise payload_rejected(endpoint, "malformed_json", exc, "$") from None
    if env.code is None and env.err is None:
        raise PayloadRejected(endpoint, "envelope_invalid", "neither `code` nor `err` - at `$`")
    return env


def _success(endpoint: str, body: Body) -> p.Envelope:
    env = body if isinstance(body, p.Envelope) else envelope(endpoint, body)
    if not env.ok:
        raise PayloadRejected(endpoint, "envelope_invalid",
                              f"not a success answer (code {env.code!r}, err {(env.err or '')[:200]!r}); "
                              "the client turns those into ProviderRefused/ProviderThrottled first")
    if not env.results:
        raise PayloadRejected(endpoint, "results_invalid", "no `results` - at `$`")
    return env


def _query(endpoint: str, env: p.Envelope) -> p.ListQuery | None:
    if not env.query:
        return None
    try:
        return _QUERY.decode(env.query)
    except DECODE_FAILURES as exc:
        raise payload_rejected(endpoint, "envelope_invalid", exc, "$.query") from None


# --- checks that need `now` ---------------------------------------------------------------------


def _live_check(now: float) -> Callable[[p.LiveMatch], tuple[str, str, str] | None]:
    earliest, latest = now - KICKOFF_MAX_AGE_S, now + KICKOFF_MAX_AHEAD_S

    def check(match: p.LiveMatch) -> tuple[str, str, str] | None:
        score = match.score
        if score.match_id != match.id:
            return "id_mismatch", f"score[0] is {score.match_id[:64]!r}, the item is {match.id[:64]!r}", ".score[0]"
        kickoff = score.kickoff_ts
        if kickoff and not earliest <= kickoff <= latest:
            return ("kickoff_out_of_range", f"kickoff_ts {kickoff} is {(kickoff - now) / 3600:+.1f} h from now "
                    f"(allowed: -{KICKOFF_MAX_AGE_S // 3600} h .. +{KICKOFF_MAX_AHEAD_S // 3600} h)", ".score[4]")
        return None

    return check


def _match_check(now: float) -> Callable[[p.Match], tuple[str, str, str] | None]:
    earliest, latest = now - MATCH_TIME_MAX_DISTANCE_S, now + MATCH_TIME_MAX_DISTANCE_S

    def check(match: p.Match) -> tuple[str, str, str] | None:
        if not earliest <= match.match_time <= latest:
            days = (match.match_time - now) / 86_400
            return ("match_time_out_of_range", f"match_time {match.match_time} is {days:+.0f} days from now "
                    f"(allowed: +-{MATCH_TIME_MAX_DISTANCE_S // 86_400})", ".match_time")
        return None

    return check


# --- endpoints ----------------------------------------------------------------------------------


def detail_live(body: Body, now: float, memo: ItemMemo | None = None) -> Decoded[p.LiveMatch]:
    """`match/detail_live`: every match active in the last 120 minutes. With `memo` (the
    poller's), items unchanged since the previous answer are reused, not decoded again."""
    endpoint = "match/detail_live"
    env = _success(endpoint, body)
    items, rejections = decode_list(endpoint, env.results, LIVE, check=_live_check(now), memo=memo)
    return Decoded(items, rejections)


def diary(body: Body, now: float) -> Decoded[p.Match]:
    """`match/diary`: the day's matches; `extra` is the `DiaryExtra` (competitions, teams, ...)."""
    endpoint = "match/diary"
    env = _success(endpoint, body)
    items, rejections = decode_list(endpoint, env.results, MATCH, check=_match_check(now))
    extra, extra_rejections = _diary_extra(endpoint, env.results_extra)
    return Decoded(items, rejections + extra_rejections, extra)


def _diary_extra(endpoint: str, raw: msgspec.Raw) -> tuple[p.DiaryExtra, list[Rejection]]:
    if not raw:
        return p.DiaryExtra(), []
    try:
        return _DIARY_EXTRA.decode(raw) or p.DiaryExtra(), []
    except DECODE_FAILURES:
        pass
    rejections: list[Rejection] = []
    sections = _tolerant_sections(endpoint, raw, "$.results_extra", "results_extra", rejections)
    decoded: dict[str, tuple] = {}
    for name, section_kind in DIARY_EXTRA_SECTIONS.items():
        if name in sections:
            decoded[name], rejected = _tolerant_list(endpoint, sections[name], section_kind,
                                                     f"$.results_extra.{name}", f"{name}:")
            rejections += rejected
    return p.DiaryExtra(**decoded), rejections


def recent_list(body: Body, now: float) -> Decoded[p.Match]:
    """`match/recent/list`: matches changed since `time` (or a page of all); `extra` is the
    `ListQuery` (None when absent). Page until a page with no results."""
    endpoint = "match/recent/list"
    env = _success(endpoint, body)
    query = _query(endpoint, env)
    items, rejections = decode_list(endpoint, env.results, MATCH, check=_match_check(now))
    return Decoded(items, rejections, query)


def data_update(body: Body, now: float) -> Decoded[p.DataChange]:
    """`data/update`: what changed in the last 120 s, flattened; each item's `type_id` is the key
    of its group. Rejected items are labelled `<type id>:<id or #index>`."""
    endpoint = "data/update"
    env = _success(endpoint, body)
    try:
        groups = _CHANGES.decode(env.results)
    except DECODE_FAILURES:
        return _data_update_one_by_one(endpoint, env.results)
    return Decoded([msgspec.structs.replace(item, type_id=type_id)
                    for type_id, changes in groups.items() for item in changes])


def _data_update_one_by_one(endpoint: str, raw: msgspec.Raw) -> Decoded[p.DataChange]:
    items: list[p.DataChange] = []
    rejections: list[Rejection] = []
    for key, group in raw_sections(endpoint, raw, "$.results").items():
        if not (key.isascii() and key.isdigit()):
            rejections.append(Rejection(endpoint, f"{key[:32]}:*", "invalid_key",
                                        f"type id {key[:32]!r} is not a non-negative integer - at `$.results`"))
            continue
        changes, rejected = _tolerant_list(endpoint, group, CHANGE, f"$.results.{key}", f"{key}:")
        items += [msgspec.structs.replace(item, type_id=int(key)) for item in changes]
        rejections += rejected
    return Decoded(items, rejections)


def analysis(body: Body, now: float) -> Decoded[ref.MatchAnalysis]:
    """`match/analysis?uuid=<match>`: one `MatchAnalysis` (history, future, goal distribution).
    A bad row is left out of its list (item `history.vs:<match id or #index>`); a bad `info` or
    `goal_distribution` becomes its default."""
    endpoint = "match/analysis"
    env = _success(endpoint, body)
    try:
        return Decoded([_ANALYSIS.decode(env.results)])
    except DECODE_FAILURES:
        pass
    sections = raw_sections(endpoint, env.results, "$.results")
    rejections: list[Rejection] = []
    info = None
    if "info" in sections:
        info, rejected = decode_one(endpoint, sections["info"], _ANALYSIS_INFO, item="info", base="$.results.info",
                                    item_kind=ANALYSIS_ROW)
        rejections += [rejected] if rejected else []
    lists: dict[str, dict[str, tuple]] = {}
    for part, sides in (("history", ("vs", "home", "away")), ("future", ("home", "away"))):
        lists[part] = {}
        members = _tolerant_sections(endpoint, sections.get(part), f"$.results.{part}", part, rejections)
        for side in sides:
            if side in members:
                lists[part][side], rejected = _tolerant_list(endpoint, members[side], ANALYSIS_ROW,
                                                             f"$.results.{part}.{side}", f"{part}.{side}:")
                rejections += rejected
    goals = None
    if "goal_distribution" in sections:
        goals, rejected = decode_one(endpoint, sections["goal_distribution"], _GOAL_DISTRIBUTION,
                                     item="goal_distribution", base="$.results.goal_distribution")
        rejections += [rejected] if rejected else []
    result = ref.MatchAnalysis(info=info, history=ref.AnalysisHistory(**lists["history"]),
                               future=ref.AnalysisFuture(**lists["future"]),
                               goal_distribution=goals or ref.GoalDistribution())
    return Decoded([result], rejections)


def season_table(body: Body, now: float) -> Decoded[ref.StandingTable]:
    """`season/recent/table/detail?uuid=<season>`: the season's tables; `extra` is the tuple of
    `Promotion` zones. A table with a bad row is rejected whole (a table missing a team lies)."""
    endpoint = "season/recent/table/detail"
    env = _success(endpoint, body)
    try:
        standings = _SEASON_STANDINGS.decode(env.results)
        return Decoded(list(standings.tables), [], standings.promotions)
    except DECODE_FAILURES:
        pass
    sections = raw_sections(endpoint, env.results, "$.results")
    rejections: list[Rejection] = []
    promotions: tuple = ()
    if "promotions" in sections:
        promotions, rejections = _tolerant_list(endpoint, sections["promotions"], PROMOTION,
                                                "$.results.promotions", "promotion:")
    tables: list[ref.StandingTable] = []
    if "tables" in sections:
        tables, rejected = decode_list(endpoint, sections["tables"], TABLE, base="$.results.tables")
        rejections += rejected
    return Decoded(tables, rejections, promotions)


def table_live(body: Body, now: float) -> Decoded[ref.LiveSeasonTable]:
    """`table/live`: the seasons whose standings changed in the last 10 minutes."""
    endpoint = "table/live"
    env = _success(endpoint, body)
    items, rejections = decode_list(endpoint, env.results, LIVE_TABLE)
    return Decoded(items, rejections)


def team_stats(body: Body, now: float) -> Decoded[st.MatchTeamStats]:
    """`match/team_stats/list`: the matches whose team statistics changed in the last 120 s."""
    endpoint = "match/team_stats/list"
    env = _success(endpoint, body)
    items, rejections = decode_list(endpoint, env.results, TEAM_STATS)
    return Decoded(items, rejections)


def half_team_stats(body: Body, now: float) -> Decoded[st.HalfTeamStats]:
    """`match/half/team_stats/detail?uuid=<match>`: one `HalfTeamStats`; a half that does not
    decode is rejected (item `half:<name>`) and left empty, the others are kept."""
    endpoint = "match/half/team_stats/detail"
    env = _success(endpoint, body)
    try:
        return Decoded([_HALF_STATS.decode(env.results)])
    except DECODE_FAILURES:
        pass
    sections = raw_sections(endpoint, env.results, "$.results")
    halves, rejections = {}, []
    for half in st.HALVES:
        if half in sections:
            value, rejected = decode_one(endpoint, sections[half], _HALF, item=f"half:{half}", base=f"$.results.{half}")
            if rejected:
                rejections.append(rejected)
            else:
                halves[half] = value
    return Decoded([st.HalfTeamStats(**halves)], rejections)


def _paged_list(endpoint: str, body: Body, kind: ItemKind) -> Decoded:
    env = _success(endpoint, body)
    query = _query(endpoint, env)
    items, rejections = decode_list(endpoint, env.results, kind)
    return Decoded(items, rejections, query)


def competitions(body: Body, now: float) -> Decoded[ref.Competition]:
    """`competition/additional/list`: a page of competitions; `extra` is the `ListQuery`."""
    return _paged_list("competition/additional/list", body, COMPETITION)


def teams(body: Body, now: float) -> Decoded[ref.Team]:
    """`team/additional/list`: a page of teams; `extra` is the `ListQuery`."""
    return _paged_list("team/additional/list", body, TEAM)


# --- sub-containers: a bad one is a rejection, not the end of the page --------------------------


def _tolerant_list(endpoint: str, raw: msgspec.Raw, item_kind: ItemKind, base: str,
                   prefix: str) -> tuple[tuple, list[Rejection]]:
    """A list inside the results: its good items, or () and one rejection if it is no list."""
    try:
        items, rejections = decode_list(endpoint, raw, item_kind, base=base, prefix=prefix)
    except PayloadRejected as exc:
        if exc.reason != "results_invalid":
            raise
        return (), [Rejection(endpoint, prefix + "*", "wrong_type", exc.detail)]
    return tuple(items), rejections


def _tolerant_sections(endpoint: str, raw: msgspec.Raw | None, base: str, item: str,
                       rejections: list[Rejection]) -> dict[str, msgspec.Raw]:
    """An object inside the results as its members, or {} and a rejection if it is no object."""
    if raw is None:
        return {}
    try:
        return raw_sections(endpoint, raw, base)
    except PayloadRejected as exc:
        if exc.reason != "results_invalid":
            raise
        rejections.append(Rejection(endpoint, item, "wrong_type", exc.detail))
        return {}


Decoder = Callable[[Body, float], Decoded]

MEMOIZED = frozenset({"match/detail_live"})
"""The endpoints whose decoder takes an ItemMemo: polled every few seconds, mostly unchanged."""

DECODERS: dict[str, Decoder] = {
    "match/detail_live": detail_live,
    "match/diary": diary,
    "match/recent/list": recent_list,
    "data/update": data_update,
    "match/analysis": analysis,
    "season/recent/table/detail": season_table,
    "table/live": table_live,
    "competition/additional/list": competitions,
    "team/additional/list": teams,
    "match/team_stats/list": team_stats,
    "match/half/team_stats/detail": half_team_stats,
}
"""Each endpoint path (as in `GET {base}/v1/football/<path>`) to its decoder."""
