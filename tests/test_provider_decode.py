"""Decoding the provider's payloads: good pages decode, one bad item is rejected alone with the
right reason, unusable bodies raise PayloadRejected, envelopes tell the client what happened."""
import copy
import json

import msgspec
import pytest

import provider_samples as s
from goald.provider import decode
from goald.provider.errors import Decoded, PayloadRejected, Rejection
from goald.provider.payloads import (DataChange, DiaryExtra, Envelope, ListQuery, LiveMatch, Match, Score,
                                     TeamScore)
from goald.provider.payloads_reference import (Competition, LiveSeasonTable, MatchAnalysis, StandingTable,
                                               Team)

NOW = s.NOW

from goald.provider.payloads_stats import HalfTeamStats, MatchTeamStats
ITEM_TYPES = {
    "match/detail_live": LiveMatch, "match/diary": Match, "match/recent/list": Match,
    "data/update": DataChange, "match/analysis": MatchAnalysis, "season/recent/table/detail": StandingTable,
    "table/live": LiveSeasonTable, "competition/additional/list": Competition, "team/additional/list": Team,
    "match/team_stats/list": MatchTeamStats, "match/half/team_stats/detail": HalfTeamStats,
}


def decode_live(payload):
    return decode.detail_live(s.body(payload), NOW)


def only_rejection(decoded: Decoded) -> Rejection:
    assert len(decoded.rejections) == 1, decoded.rejections
    return decoded.rejections[0]


# --- good pages ---------------------------------------------------------------------------------


def test_every_endpoint_path_has_a_decoder():
    assert set(decode.DECODERS) == set(ITEM_TYPES)


@pytest.mark.parametrize("endpoint", sorted(ITEM_TYPES))
def test_a_good_page_of_every_endpoint_decodes_with_no_rejections(endpoint):
    decoded = decode.DECODERS[endpoint](s.body(s.valid_page(endpoint, 4)), NOW)
    assert decoded.rejections == []
    assert decoded.items and all(isinstance(item, ITEM_TYPES[endpoint]) for item in decoded.items)


def test_detail_live_positional_score_decodes_into_named_fields():
    item = s.live_item("m1", 4, home=s.team_score(2, 1, 0, 3, 7, 0, 0), away=s.team_score(1, 1, 1, 2, -1, 0, 0),
                       kickoff_ts=NOW - 600)
    [match] = decode_live(s.page([item])).items
    assert match.id == "m1" and match.status_id == 4 and match.kickoff_ts == NOW - 600
    assert match.score == Score(match_id="m1", status_id=4, home=TeamScore(2, 1, 0, 3, 7, 0, 0),
                                away=TeamScore(1, 1, 1, 2, -1, 0, 0), kickoff_ts=NOW - 600, reserved="")
    home = match.score.home
    assert (home.goals, home.half_time_goals, home.red_cards, home.yellow_cards, home.corners) == (2, 1, 0, 3, 7)
    assert match.score.away.corners == -1  # -1 = no corner data, not a bad value
    assert [i.type for i in match.incidents] == [1, 3] and match.incidents[0].player_name == "Player 0"
    assert match.stats[0].type == 2 and match.tlive[1].data == "Line 1 of the commentary"


def test_the_display_score_is_the_overtime_score_when_there_is_one_and_never_adds_the_shoot_out():
    assert TeamScore(1, 0, 0, 0, -1, 0, 0).display_goals == 1
    assert TeamScore(1, 0, 0, 0, -1, 2, 4).display_goals == 2


def test_decoded_items_are_immutable():
    [match] = decode_live(s.page([s.live_item("m1")])).items
    with pytest.raises(AttributeError):
        match.id = "other"
    assert isinstance(match.stats, tuple)


def test_a_match_object_without_the_optional_fields_gets_their_defaults():
    [match] = decode.diary(s.body(s.page([s.match_object("m1", optional=False)])), NOW).items
    assert (match.venue_id, match.coverage, match.round, match.agg_score, match.has_ot) == ("", None, None, (), 0)
    assert match.home_scores == TeamScore(0, 0, 0, 0, -1, 0, 0)


def test_unknown_extra_fields_are_ignored_for_forward_compatibility():
    item = s.live_item("m1")
    item["new_field"] = {"anything": [1, 2]}
    item["incidents"][0]["new_incident_field"] = "x"
    payload = s.page([item], new_envelope_member=1)
    assert [m.id for m in decode_live(payload).items] == ["m1"]


def test_a_page_without_optional_lists_in_a_live_item_still_decodes():
    item = s.live_item("m1")
    for key in ("stats", "incidents", "tlive"):
        del item[key]
    [match] = decode_live(s.page([item])).items
    assert (match.stats, match.incidents, match.tlive) == ((), (), ())


# --- one bad item among many --------------------------------------------------------------------


def test_one_bad_match_among_two_thousand_is_rejected_and_the_rest_survive():
    payload = s.live_page(2000)
    payload["results"][1234]["score"][1] = "2"
    decoded = decode_live(payload)
    rejection = only_rejection(decoded)
    assert rejection == Rejection("match/detail_live", "m001234", "wrong_type",
                                  "Expected `int`, got `str` - at `$.results[1234].score[1]`")
    assert len(decoded.items) == 1999
    assert "m001234" not in {m.id for m in decoded.items}
    assert [m.id for m in decoded.items][1233:1235] == ["m001233", "m001235"]  # order is kept


def _score(item, side, index, value):
    item["score"][2 if side == "home" else 3][index] = value


LIVE_MUTATIONS = {
    "missing_field": (lambda item: item.pop("score"), "Object missing required field `score`"),
    "wrong_type": (lambda item: item["score"].__setitem__(4, "1700000000"), "got `str` - at `$.results[1].score[4]`"),
    "not_an_object": (None, "Expected `object`, got `array` - at `$.results[1]`"),
    "negative_value": (lambda item: _score(item, "home", 0, -1), "Expected `int` >= 0 - at `$.results[1].score[2][0]`"),
    "value_too_large": (lambda item: _score(item, "away", 3, 1000), "<= 999 - at `$.results[1].score[3][3]`"),
    "out_of_range": (lambda item: item["stats"][0].__setitem__("home", s.raw_number("1e400")), "out of range"),
    "unknown_status": (lambda item: item["score"].__setitem__(1, 14),
                       "Expected `int` <= 13 - at `$.results[1].score[1]`"),
    "score_length": (lambda item: item["score"][2].pop(), "length 7, got 6 - at `$.results[1].score[2]`"),
    "invalid_value": (lambda item: item.__setitem__("id", ""), "Expected `str` of length >= 1 - at `$.results[1].id`"),
    "kickoff_out_of_range": (lambda item: item["score"].__setitem__(4, NOW - 2 * 86_400), "-48.0 h from now"),
    "id_mismatch": (lambda item: item["score"].__setitem__(0, "m999999"), "score[0] is 'm999999'"),
}


@pytest.mark.parametrize("reason", sorted(LIVE_MUTATIONS))
def test_one_bad_live_match_is_rejected_alone_with_the_reason_that_names_what_is_wrong(reason):
    mutate, detail_part = LIVE_MUTATIONS[reason]
    payload = s.live_page(3)
    if mutate is None:
        payload["results"][1] = ["m000001", 2]
    else:
        mutate(payload["results"][1])
    decoded = decode_live(payload)
    rejection = only_rejection(decoded)
    assert rejection.reason == reason
    assert detail_part in rejection.detail
    assert rejection.item == ("m000001" if reason != "not_an_object" and reason != "invalid_value" else "#1")
    assert [m.id for m in decoded.items] == ["m000000", "m000002"]


def test_a_score_array_with_an_extra_element_is_rejected_for_its_length():
    for mutate in (lambda item: item["score"][3].append(0), lambda item: item["score"].append(0),
                   lambda item: item["score"].pop()):
        payload = s.live_page(2)
        mutate(payload["results"][0])
        assert only_rejection(decode_live(payload)).reason == "score_length"


@pytest.mark.parametrize("kickoff, rejected", [
    (0, False), (NOW - 86_400, False), (NOW + 3600, False), (NOW - 86_401, True), (NOW + 3601, True),
])
def test_a_kickoff_more_than_a_day_before_or_an_hour_after_now_is_rejected_and_zero_means_unknown(kickoff, rejected):
    decoded = decode_live(s.page([s.live_item("m1", kickoff_ts=kickoff)]))
    assert [r.reason for r in decoded.rejections] == (["kickoff_out_of_range"] if rejected else [])


def test_the_kickoff_check_uses_the_now_it_is_given_not_the_clock():
    payload = s.page([s.live_item("m1", kickoff_ts=1_000)])
    assert decode.detail_live(s.body(payload), 1_000 + 60).items
    assert decode.detail_live(s.body(payload), NOW).rejections


@pytest.mark.parametrize("status", list(range(14)))
def test_every_documented_status_is_accepted(status):
    assert decode_live(s.page([s.live_item("m1", status)])).items
    assert decode.diary(s.body(s.page([s.match_object("m1", status)])), NOW).items


@pytest.mark.parametrize("status", [-1, 14, 99])
def test_a_status_outside_the_documented_list_is_an_unknown_status(status):
    live = decode_live(s.page([s.live_item("m1", status)]))
    diary = decode.diary(s.body(s.page([s.match_object("m1", status)])), NOW)
    assert only_rejection(live).reason == only_rejection(diary).reason == "unknown_status"


MATCH_MUTATIONS = {
    "missing_field": lambda m: m.pop("home_team_id"),
    "wrong_type": lambda m: m.__setitem__("match_time", "soon"),
    "negative_value": lambda m: m["away_scores"].__setitem__(2, -1),
    "unknown_status": lambda m: m.__setitem__("status_id", 20),
    "score_length": lambda m: m.__setitem__("home_scores", [1, 0]),
    "invalid_value": lambda m: m.__setitem__("home_team_id", ""),
    "match_time_out_of_range": lambda m: m.__setitem__("match_time", NOW + 401 * 86_400),
}


@pytest.mark.parametrize("reason", sorted(MATCH_MUTATIONS))
@pytest.mark.parametrize("endpoint", ["match/diary", "match/recent/list"])
def test_one_bad_match_object_is_rejected_alone_with_the_reason_that_names_what_is_wrong(endpoint, reason):
    payload = s.valid_page(endpoint, 5)
    MATCH_MUTATIONS[reason](payload["results"][3])
    decoded = decode.DECODERS[endpoint](s.body(payload), NOW)
    rejection = only_rejection(decoded)
    assert (rejection.endpoint, rejection.item, rejection.reason) == (endpoint, "m000003", reason)
    assert "$.results[3]" in rejection.detail
    assert [m.id for m in decoded.items] == ["m000000", "m000001", "m000002", "m000004"]


def test_a_match_time_400_days_from_now_is_still_accepted():
    matches = [s.match_object("m1", match_time=NOW - 400 * 86_400), s.match_object("m2", match_time=NOW + 400 * 86_400)]
    assert len(decode.diary(s.body(s.page(matches)), NOW).items) == 2


def test_a_rejected_item_without_a_readable_id_is_named_by_its_index():
    payload = s.live_page(3)
    payload["results"][2]["id"] = 12345
    payload["results"][0]["id"] = "x" * 500
    payload["results"][0]["score"][1] = None
    decoded = decode_live(payload)
    assert sorted((r.item, r.reason) for r in decoded.rejections) == [("#0", "wrong_type"), ("#2", "wrong_type")]


# --- other endpoints' isolation -----------------------------------------------------------------


def test_a_bad_record_in_the_diary_extra_is_rejected_alone_and_the_matches_survive():
    payload = s.diary_page(2)
    payload["results_extra"]["team"][1]["name"] = None
    decoded = decode.diary(s.body(payload), NOW)
    assert len(decoded.items) == 2
    assert isinstance(decoded.extra, DiaryExtra) and [t.id for t in decoded.extra.team] == ["t0"]
    rejection = only_rejection(decoded)
    assert (rejection.item, rejection.reason) == ("team:t1", "wrong_type")
    assert "$.results_extra.team[1].name" in rejection.detail
    assert decoded.extra.competition[0].name == "League 1" and decoded.extra.venue[0].id == "v1"


def test_the_diary_extra_of_the_wrong_shape_is_rejected_but_the_matches_are_kept():
    payload = s.diary_page(2)
    payload["results_extra"] = "nope"
    decoded = decode.diary(s.body(payload), NOW)
    assert len(decoded.items) == 2 and decoded.extra == DiaryExtra()
    assert only_rejection(decoded).item == "results_extra"


def test_paged_lists_return_their_query_as_the_extra():
    decoded = decode.recent_list(s.body(s.recent_page(3, page_no=7)), NOW)
    assert decoded.extra == ListQuery(total=3, type="page", page=7)
    assert decode.competitions(s.body(s.page([])), NOW).extra is None


def test_data_update_items_are_flattened_with_the_type_id_of_their_group():
    decoded = decode.data_update(s.body(s.page(s.data_update_results())), NOW)
    assert [(c.type_id, c.match_id or c.season_id or c.team_id or c.pub_time) for c in decoded.items] == [
        (1, "m000001"), (1, "m000002"), (3, "s1"), (7, NOW - 86_400), (12, "t1")]


def test_data_update_with_nothing_changed_may_come_as_an_empty_array():
    assert decode.data_update(s.body(s.page([])), NOW).items == []
    assert decode.data_update(s.body(s.page({})), NOW).items == []


def test_a_bad_data_update_item_or_type_key_is_rejected_alone():
    results = s.data_update_results()
    results["3"][0]["update_time"] = -5
    results["abc"] = [{"match_id": "m9", "update_time": NOW}]
    decoded = decode.data_update(s.body(s.page(results)), NOW)
    assert sorted((r.item, r.reason) for r in decoded.rejections) == [("3:s1", "negative_value"),
                                                                       ("abc:*", "invalid_key")]
    assert [c.type_id for c in decoded.items] == [1, 1, 7, 12]


def test_a_bad_analysis_row_is_left_out_of_its_list_and_the_rest_of_the_analysis_survives():
    results = s.analysis_results(rows=3)
    results["history"]["vs"][1][5] = results["history"]["vs"][1][5][:5]  # home score row too short
    results["history"]["home"][0] = results["history"]["home"][0][:3]  # a row cut after match_time
    decoded = decode.analysis(s.body(s.page(results)), NOW)
    [result] = decoded.items
    assert [r.match_id for r in result.history.vs] == ["vs0", "vs2"]
    assert [r.match_id for r in result.history.home] == ["hh1", "hh2"]
    assert result.info.match_id == "m000001" and result.info.home.position == "4"
    assert result.goal_distribution.home.all.matches == 10
    assert sorted((r.item, r.reason) for r in decoded.rejections) == [("history.home:hh0", "wrong_length"),
                                                                       ("history.vs:vs1", "score_length")]


def test_a_bad_analysis_info_row_becomes_none_and_is_rejected():
    results = s.analysis_results()
    results["info"][2] = 42
    decoded = decode.analysis(s.body(s.page(results)), NOW)
    assert decoded.items[0].info is None and len(decoded.items[0].history.vs) == 3
    assert (only_rejection(decoded).item, only_rejection(decoded).reason) == ("info", "unknown_status")


def test_a_standings_table_with_a_bad_row_is_rejected_whole_and_the_other_tables_survive():
    results = s.season_table_results(tables=2)
    results["tables"][0]["rows"][2]["won"] = -3
    decoded = decode.season_table(s.body(s.page(results)), NOW)
    assert [t.id for t in decoded.items] == ["tb1"]
    assert [p.name for p in decoded.extra] == ["Champions League", "Relegation"]
    rejection = only_rejection(decoded)
    assert (rejection.item, rejection.reason) == ("tb0", "negative_value")
    assert "$.results.tables[0].rows[2].won" in rejection.detail


def test_a_bad_live_standings_season_is_named_by_its_season_id():
    payload = s.page([s.live_season_table("s1"), s.live_season_table("s2")])
    del payload["results"][1]["updated_at"]
    decoded = decode.table_live(s.body(payload), NOW)
    assert [t.season_id for t in decoded.items] == ["s1"]
    assert (only_rejection(decoded).item, only_rejection(decoded).reason) == ("s2", "missing_field")


def test_reference_lists_reject_a_bad_team_or_competition_alone():
    teams = s.valid_page("team/additional/list", 3)
    teams["results"][1]["total_players"] = -2
    decoded = decode.teams(s.body(teams), NOW)
    assert [t.id for t in decoded.items] == ["t0", "t2"] and only_rejection(decoded).reason == "negative_value"
    comps = s.valid_page("competition/additional/list", 2)
    comps["results"][0]["title_holder"] = ["t1", "six"]
    decoded = decode.competitions(s.body(comps), NOW)
    assert [c.id for c in decoded.items] == ["c1"] and only_rejection(decoded).reason == "wrong_type"


# --- whole bodies -------------------------------------------------------------------------------


def test_an_err_body_decodes_to_an_envelope_the_client_can_read():
    env = decode.envelope("match/detail_live", s.body(s.error_body("IP is not authorized")))
    assert isinstance(env, Envelope)
    assert (env.err, env.code, env.ok, env.throttled) == ("IP is not authorized", None, False, False)


def test_a_429_body_decodes_to_a_throttled_envelope():
    env = decode.envelope("match/detail_live", s.body(s.throttled_body()))
    assert (env.code, env.throttled, env.ok, env.msg) == (429, True, False, "Too Many Requests")


def test_the_envelope_keeps_results_undecoded_and_a_decoder_takes_it_instead_of_the_body():
    body = s.body(s.live_page(3))
    env = decode.envelope("match/detail_live", body)
    assert env.ok and isinstance(env.results, msgspec.Raw) and json.loads(bytes(env.results))[0]["id"] == "m000000"
    assert decode.detail_live(env, NOW).items == decode.detail_live(body, NOW).items


@pytest.mark.parametrize("endpoint", sorted(ITEM_TYPES))
@pytest.mark.parametrize("payload", [s.error_body(), s.throttled_body(), {"code": 500, "msg": "oops"}])
def test_a_decoder_given_a_refusal_raises_payload_rejected_not_anything_else(endpoint, payload):
    with pytest.raises(PayloadRejected) as caught:
        decode.DECODERS[endpoint](s.body(payload), NOW)
    assert (caught.value.endpoint, caught.value.reason) == (endpoint, "envelope_invalid")


HOSTILE_BODIES = {
    b"": "malformed_json",
    b"not json": "malformed_json",
    b'{"code": 0, "results": [': "malformed_json",
    b"\xff\xfe\x00garbage": "malformed_json",
    b'{"code": 0, "results": [{"id": "\xff"}]}': "malformed_json",
    b'{"code": 0, "results": [{"id": 1}, {"id": "m1", "score": ["\xff", 2]}]}': "malformed_json",
    b'{"code": NaN}': "malformed_json",
    b"[" * 100_000 + b"]" * 100_000: "envelope_invalid",
    b'{"code": 0, "results": ' + b"[" * 100_000 + b"]" * 100_000 + b"}": "malformed_json",
    b'{"code": 0, "results": []} trailing': "malformed_json",
    b"[]": "envelope_invalid",
    b"{}": "envelope_invalid",
    b"42": "envelope_invalid",
    b'{"code": "0", "results": []}': "envelope_invalid",
    b'{"code": 1e400}': "envelope_invalid",
    b'{"code": ' + b"9" * 5000 + b"}": "envelope_invalid",
    b'{"err": 5}': "envelope_invalid",
    b'{"code": 0}': "results_invalid",
    b'{"code": 0, "results": null}': "results_invalid",
    b'{"code": 0, "results": "lots"}': "results_invalid",
}


@pytest.mark.parametrize("body", list(HOSTILE_BODIES), ids=lambda b: repr(b[:30]))
def test_a_body_unusable_as_a_whole_raises_payload_rejected_with_a_stable_reason(body):
    with pytest.raises(PayloadRejected) as caught:
        decode.detail_live(body, NOW)
    assert caught.value.reason == HOSTILE_BODIES[body]
    assert caught.value.endpoint == "match/detail_live" and caught.value.detail


def test_a_results_container_of_the_wrong_shape_is_results_invalid_for_every_endpoint():
    for endpoint, decoder in decode.DECODERS.items():
        with pytest.raises(PayloadRejected) as caught:
            decoder(s.body(s.page("a string")), NOW)
        assert caught.value.reason == "results_invalid", endpoint


def test_the_query_of_the_wrong_shape_is_an_invalid_envelope():
    payload = s.recent_page(1)
    payload["query"] = {"total": "many"}
    with pytest.raises(PayloadRejected) as caught:
        decode.recent_list(s.body(payload), NOW)
    assert caught.value.reason == "envelope_invalid" and "$.query.total" in caught.value.detail


def test_every_reason_a_test_here_expects_is_in_the_documented_sets():
    expected = set(LIVE_MUTATIONS) | set(MATCH_MUTATIONS) | {"wrong_length", "invalid_key", "not_an_object"}
    assert expected <= decode.REJECTION_REASONS
    assert set(HOSTILE_BODIES.values()) == decode.PAYLOAD_REASONS


# --- size (speed is measured by bench/provider.py, never asserted here) ---------------------------


def test_two_thousand_live_matches_with_their_stats_incidents_and_text_decode_whole():
    payload = s.live_page(2000, n_stats=10, n_incidents=10, n_tlive=20)
    decoded = decode.detail_live(s.body(payload), NOW)
    assert len(decoded.items) == 2000 and not decoded.rejections
    assert all(len(m.incidents) == 10 and len(m.tlive) == 20 for m in decoded.items)


def test_the_slow_path_for_a_page_with_a_bad_item_gives_the_same_items_as_the_fast_path():
    payload = s.live_page(50)
    fast = decode_live(payload).items
    bad = copy.deepcopy(payload)
    bad["results"].append({"id": "broken"})
    slow = decode_live(bad)
    assert slow.items == fast and only_rejection(slow).item == "broken"


def test_a_big_page_decoded_in_chunks_gives_what_the_whole_page_gives_with_the_same_rejections(monkeypatch):
    from goald.provider import validation
    import provider_samples as ps

    items = [ps.live_item(f"m{i:06d}", n_tlive=0) for i in range(700)]
    items[3]["score"][1] = 99            # unknown status
    items[600]["score"] = items[600]["score"][:4]   # a short score array
    body = ps.body(ps.page(items))
    whole = decode.detail_live(body, ps.NOW)
    monkeypatch.setattr(validation, "CHUNK_BYTES", 0)
    chunked = decode.detail_live(body, ps.NOW)
    assert chunked.items == whole.items and len(chunked.items) == 698
    assert [(r.item, r.reason, r.detail) for r in chunked.rejections] == \
        [(r.item, r.reason, r.detail) for r in whole.rejections]
    assert [r.item for r in chunked.rejections] == ["m000003", "m000600"]
    assert "$.results[600]" in chunked.rejections[1].detail

