"""The memo of a polled list (detail_live every 2 s): an item whose bytes equal the previous
answer's is reused, not decoded again, and still checked; bad items are rejected every time."""
import pytest

import provider_samples as s
from goald.provider import decode

NOW = s.NOW


def _memo_page(n=600):
    import provider_samples as ps

    items = [ps.live_item(f"m{i:06d}", n_tlive=0) for i in range(n)]
    items[3]["score"][1] = 99                       # unknown status
    items[n * 2 // 3]["score"] = items[n * 2 // 3]["score"][:4]   # a short score array
    return items


def _rejected(decoded):
    return [(r.item, r.reason, r.detail) for r in decoded.rejections]


@pytest.mark.parametrize("chunk_bytes", [0, 1 << 30], ids=["chunked", "whole"])
def test_a_memo_decode_gives_what_a_plain_decode_gives_items_and_rejections_in_order(monkeypatch, chunk_bytes):
    from goald.provider import validation

    monkeypatch.setattr(validation, "CHUNK_BYTES", chunk_bytes)
    body = s.body(s.page(_memo_page()))
    plain = decode.detail_live(body, NOW)
    memo = validation.ItemMemo()
    cold = decode.detail_live(body, NOW, memo)
    warm = decode.detail_live(body, NOW, memo)
    assert cold.items == warm.items == plain.items and len(plain.items) == 598
    assert _rejected(cold) == _rejected(warm) == _rejected(plain) and len(_rejected(plain)) == 2
    assert (memo.reused, memo.decoded) == (598, 2)    # the two bad items are decoded (and rejected) again


def test_an_unchanged_item_is_reused_and_a_changed_one_is_decoded_again():
    from goald.provider import validation

    items = _memo_page(50)
    memo = validation.ItemMemo()
    first = decode.detail_live(s.body(s.page(items)), NOW, memo)
    items[10]["score"][2][0] += 1                   # a home goal in m000010
    second = decode.detail_live(s.body(s.page(items)), NOW, memo)
    by_id = {i.id: i for i in first.items}
    changed = next(i for i in second.items if i.id == "m000010")
    assert changed.score.home.goals == by_id["m000010"].score.home.goals + 1
    assert all(i is by_id[i.id] for i in second.items if i.id != "m000010")
    assert (memo.reused, memo.decoded) == (47, 3) and len(memo) == 48


def test_a_reused_item_is_still_checked_against_the_clock_of_its_answer():
    from goald.provider import validation

    item = s.live_item("m1", 2, kickoff_ts=NOW - 3600)
    memo = validation.ItemMemo()
    assert len(decode.detail_live(s.body(s.page([item])), NOW, memo).items) == 1
    later = decode.detail_live(s.body(s.page([item])), NOW + 86400, memo)   # a day on: kick-off too old
    assert later.items == [] and [r.reason for r in later.rejections] == ["kickoff_out_of_range"]
    assert memo.reused == 1


def test_the_memo_holds_only_the_last_answers_items():
    from goald.provider import validation

    memo = validation.ItemMemo()
    decode.detail_live(s.body(s.page([s.live_item(f"a{i}") for i in range(5)])), NOW, memo)
    decode.detail_live(s.body(s.page([s.live_item(f"b{i}") for i in range(3)])), NOW, memo)
    assert len(memo) == 3 and memo.reused == 0
