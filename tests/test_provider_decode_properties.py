"""Properties of every decoder, for any input: nothing but `PayloadRejected` ever escapes, every
rejection carries a documented reason and a detail, and damage inside one item of a page costs
that item only. Inputs: random bytes, random JSON values, and valid pages with random mutations
(fields deleted, types swapped, values made negative or huge, arrays shortened or lengthened,
values nested deep, bytes truncated)."""
import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import provider_samples as s
from goald.provider import decode
from goald.provider.errors import Decoded, PayloadRejected, Rejection
from goald.provider.payloads import DataChange, Envelope, LiveMatch, Match
from goald.provider.payloads_reference import Competition, LiveSeasonTable, MatchAnalysis, StandingTable, Team
from goald.provider.payloads_stats import HalfTeamStats, MatchTeamStats

NOW = s.NOW
ENDPOINTS = sorted(decode.DECODERS)
ITEM_TYPES = {
    "match/detail_live": LiveMatch, "match/diary": Match, "match/recent/list": Match,
    "data/update": DataChange, "match/analysis": MatchAnalysis, "season/recent/table/detail": StandingTable,
    "table/live": LiveSeasonTable, "competition/additional/list": Competition, "team/additional/list": Team,
    "match/team_stats/list": MatchTeamStats, "match/half/team_stats/detail": HalfTeamStats,
}
LIST_PAGE_IDS = {  # list endpoints: how to tell a decoded item from the sample it came from
    "match/detail_live": "id", "match/diary": "id", "match/recent/list": "id", "table/live": "season_id",
    "competition/additional/list": "id", "team/additional/list": "id", "match/team_stats/list": "id",
}
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def field_names(value, found=None):
    found = set() if found is None else found
    if isinstance(value, dict):
        for key, member in value.items():
            found.add(key)
            field_names(member, found)
    elif isinstance(value, list):
        for member in value:
            field_names(member, found)
    return found


FIELD_NAMES = sorted(set().union(*(field_names(s.valid_page(e)) for e in ENDPOINTS)))

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
json_keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(json_keys, inner, max_size=4), max_leaves=12)
EXTREMES = [-1, -(2**31), 2**31, 2**63, 2**64, -(2**63) - 1, 10**30, -(10**30), 1e308, -1e308, 0.5,
            s.raw_number("1e400"), s.raw_number("-1e400"), s.raw_number("9" * 5000), s.raw_number("NaN"),
            s.raw_number("Infinity"), "", "\u0000", "x" * 10_000, True, None]


def decode_or_reject(endpoint: str, body: bytes) -> Decoded | None:
    """Run the decoder; fail on anything but a Decoded or a well-formed PayloadRejected."""
    try:
        decoded = decode.DECODERS[endpoint](body, NOW)
    except PayloadRejected as rejected:
        assert rejected.endpoint == endpoint
        assert rejected.reason in decode.PAYLOAD_REASONS, rejected.reason
        assert rejected.detail
        return None
    assert isinstance(decoded, Decoded)
    assert all(isinstance(item, ITEM_TYPES[endpoint]) for item in decoded.items)
    for rejection in decoded.rejections:
        assert isinstance(rejection, Rejection) and rejection.endpoint == endpoint
        assert rejection.reason in decode.REJECTION_REASONS, rejection.reason
        assert rejection.detail and rejection.item
    return decoded


# --- mutations of valid pages -------------------------------------------------------------------


def paths(value, here=()):
    """Every location in a JSON value, as the keys/indexes leading to it (the root is ())."""
    yield here
    if isinstance(value, dict):
        for key, member in value.items():
            yield from paths(member, here + (key,))
    elif isinstance(value, list):
        for index, member in enumerate(value):
            yield from paths(member, here + (index,))


def get(value, path):
    for step in path:
        value = value[step]
    return value


def swap_type(node):
    if isinstance(node, bool):
        return int(node)
    if isinstance(node, int):
        return str(node)
    if isinstance(node, float):
        return int(node)
    if isinstance(node, str):
        return len(node)
    if isinstance(node, list):
        return {str(i): member for i, member in enumerate(node)}
    if isinstance(node, dict):
        return list(node.values())
    return 0


def mutated(node, how: str, data):
    """The replacement of `node` for mutation `how` (DELETE to remove it)."""
    if how == "replace":
        return data.draw(json_values)
    if how == "extreme":
        return data.draw(st.sampled_from(EXTREMES))
    if how == "negate":
        return -node - 1 if isinstance(node, (int, float)) and not isinstance(node, bool) else node
    if how == "swap_type":
        return swap_type(node)
    if how == "shorten":
        return node[:data.draw(st.integers(0, max(0, len(node) - 1)))] if isinstance(node, list) else node
    if how == "lengthen":
        if isinstance(node, list):
            return node + [data.draw(st.sampled_from([copy.deepcopy(node[-1]) if node else 0, 0, "", None]))]
        return node
    if how == "nest":
        depth = data.draw(st.sampled_from([1, 2, 5, 200, 3000]))
        if depth > 500:  # deeper than Python's json can write: written bare by provider_samples.body
            return s.raw_number("[" * depth + "0" + "]" * depth)
        for _ in range(depth):
            node = [node]
        return node
    return DELETE


DELETE = object()
MUTATIONS = ["delete", "replace", "extreme", "negate", "swap_type", "shorten", "lengthen", "nest"]


def mutate(payload, data, within=()):
    """Apply 1-3 random mutations to `payload` at or below `within`; returns the new payload."""
    payload = copy.deepcopy(payload)
    for _ in range(data.draw(st.integers(1, 3))):
        try:
            region = get(payload, within)
        except (KeyError, IndexError, TypeError):
            break
        path = within + data.draw(st.sampled_from(list(paths(region))))
        how = data.draw(st.sampled_from(MUTATIONS))
        if how == "delete" and within and path == within:
            how = "replace"  # deleting the region itself would shift the items after it
        if not path:
            if how != "delete":
                payload = mutated(payload, how, data)
            continue
        parent, step = get(payload, path[:-1]), path[-1]
        replacement = mutated(parent[step], how, data)
        if replacement is DELETE:
            del parent[step]
        else:
            parent[step] = replacement
    return payload


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_mutated_valid_page_decodes_or_raises_payload_rejected_and_nothing_else(endpoint, data):
    payload = mutate(s.valid_page(endpoint, 3), data)
    decode_or_reject(endpoint, s.body(payload))


@pytest.mark.parametrize("endpoint", sorted(LIST_PAGE_IDS))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_damage_inside_one_item_of_a_page_costs_that_item_only(endpoint, data):
    page = s.valid_page(endpoint, 4)
    key = LIST_PAGE_IDS[endpoint]
    damaged = data.draw(st.integers(0, 3))
    others = [item[key] for index, item in enumerate(page["results"]) if index != damaged]
    body = s.body(mutate(page, data, within=("results", damaged)))
    decoded = decode_or_reject(endpoint, body)
    if decoded is None:  # only bytes that cannot be read as JSON may take the page down
        with pytest.raises(PayloadRejected, match="malformed_json"):
            decode.DECODERS[endpoint](body, NOW)
        assert b"NaN" in body or b"Infinity" in body or b"[" * 1000 in body  # not JSON, or too deep to read
        return
    survivors = [getattr(item, key) for item in decoded.items]
    assert [i for i in survivors if i in others] == others
    assert len(decoded.items) + len(decoded.rejections) == 4
    assert len(decoded.rejections) <= 1


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_valid_body_cut_or_corrupted_at_any_byte_raises_payload_rejected_or_decodes(endpoint, data):
    body = bytearray(s.body(s.valid_page(endpoint, 2)))
    at = data.draw(st.integers(0, len(body)))
    how = data.draw(st.sampled_from(["truncate", "overwrite", "insert"]))
    if how == "truncate":
        body = body[:at]
    elif how == "overwrite" and at < len(body):
        body[at] = data.draw(st.integers(0, 255))
    else:
        body[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    decode_or_reject(endpoint, bytes(body))


# --- random inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@settings(PROPERTY_SETTINGS, max_examples=100)
@given(body=st.binary(max_size=200))
def test_random_bytes_raise_payload_rejected_or_decode(endpoint, body):
    decode_or_reject(endpoint, body)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@settings(PROPERTY_SETTINGS, max_examples=100)
@given(value=json_values, where=st.sampled_from(["body", "results", "results_extra", "query"]))
def test_a_random_json_value_as_the_body_or_any_member_of_it_raises_payload_rejected_or_decodes(
        endpoint, value, where):
    payload = value if where == "body" else {**s.valid_page(endpoint, 2), where: value}
    decode_or_reject(endpoint, json.dumps(payload).encode())


@settings(PROPERTY_SETTINGS, max_examples=150)
@given(body=st.one_of(st.binary(max_size=100), json_values.map(lambda v: json.dumps(v).encode())))
def test_the_envelope_of_any_body_is_an_envelope_or_payload_rejected(body):
    try:
        env = decode.envelope("match/detail_live", body)
    except PayloadRejected as rejected:
        assert rejected.reason in {"malformed_json", "envelope_invalid"} and rejected.detail
        return
    assert isinstance(env, Envelope) and (env.code is not None or env.err is not None)
