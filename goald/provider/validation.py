"""Page decoding with per-item isolation, and msgspec's errors turned into stable reason tokens.

Owns the one strategy every decoder in `decode.py` uses for a list of items: the fast path
decodes the whole list typed in one msgspec call (validation done in C); only when that raises
a ValidationError does the slow path decode the list as `list[msgspec.Raw]` and then each item on
its own, so one bad item becomes a `Rejection` and the rest of the page survives. Checks that need
Python (relative times, cross-field consistency) run as a cheap loop over the decoded items.

A poller that reads the same list again and again (detail_live every 2 s: 3,500 items, most of
them unchanged) passes an `ItemMemo`: an item whose bytes equal an item of the previous answer
is not decoded again but reused (the payload Structs are frozen), and only the checks run on it.

Runs in whatever greenlet calls the decoder: CPU only, no I/O, no module state besides the
compiled msgspec decoders; a big page yields to the other greenlets between its chunks. The only exception that leaves this module is
`PayloadRejected` (a list container of the wrong shape, or JSON that cannot be read at all).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Generic, Iterable, TypeVar

import gevent
import msgspec

from goald.provider.errors import PayloadRejected, Rejection

T = TypeVar("T")

PAYLOAD_REASONS = frozenset({"malformed_json", "envelope_invalid", "results_invalid"})
"""Reasons of `PayloadRejected`: the body as a whole is unusable."""

REJECTION_REASONS = frozenset({
    "missing_field",           # a documented-required field is absent
    "wrong_type",              # a documented field of the wrong JSON type (also `null`)
    "not_an_object",           # the item itself is not a JSON object
    "negative_value",          # a count/timestamp below its floor (goals < 0, corners < -1, ...)
    "value_too_large",         # a count above its ceiling (goals > MAX_COUNT, ...)
    "out_of_range",            # a number no integer type can hold (1e400, 2**70 where int64)
    "unknown_status",          # status_id is an int but not a documented match state (0..13)
    "score_length",            # a score array of the wrong length
    "wrong_length",            # another positional array (analysis row) of the wrong length
    "invalid_value",           # any other constraint (an empty id, ...)
    "invalid_key",             # a map key of the wrong form (data/update's type ids)
    "kickoff_out_of_range",    # detail_live kickoff_ts > 1 day before or > 1 hour after now
    "match_time_out_of_range",  # match_time more than 400 days from now
    "id_mismatch",             # detail_live score[0] is not the item's id
})
"""Reasons of `Rejection`: one item of a page was left out."""

DECODE_FAILURES = (msgspec.DecodeError, RecursionError, ValueError, OverflowError, UnicodeDecodeError,
                   TypeError, MemoryError)
"""Everything msgspec (or a hostile body) can make a decode call raise. `ValidationError` is a
subclass of `DecodeError`: catch it first where it means something else."""

CHUNK_BYTES = 1 << 20   # a page above 1 MiB is decoded in chunks, yielding in between (decode_list)
CHUNK_ITEMS = 250
LABEL_MAX = 64  # an id longer than this (or unprintable) is not "readable": the item gets #<index>

_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_MAP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_BOUND = re.compile(r"^Expected `\w+` (>=|>|<=|<) (-?[0-9.e+]+)")

Check = Callable[[Any], "tuple[str, str, str] | None"]
"""A Python check of one decoded item: None if it passes, else (reason, detail, path suffix)."""


class ItemMemo:
    """The decoded items of a list's previous answer, keyed by their exact bytes (no hash
    collision can hand back a wrong item). Each decode replaces it with the current answer's
    items, so it holds one answer at most. Items that failed to decode are never kept: they are
    decoded, rejected and counted again each time. Owned by one poller (one greenlet at a time)."""

    def __init__(self) -> None:
        self.items: dict[bytes, Any] = {}
        self.reused = 0      # items of the last answer taken from the previous one
        self.decoded = 0     # items of the last answer decoded

    def __len__(self) -> int:
        return len(self.items)


class ItemKind(Generic[T]):
    """How to decode and judge one kind of list item: its compiled decoders (one item, a whole
    list), the msgspec paths relative to the item (`$.score[1]`) where a range error means
    `unknown_status` and a length error means `score_length`, and the fields (`labels`) or the
    position (`label_index`, for positional rows) whose string identifies a rejected item."""

    __slots__ = ("item_type", "one", "many", "status_paths", "score_paths", "label_keys", "label_index")

    def __init__(self, item_type: Any, *, status: Iterable[str] = (), scores: Iterable[str] = (),
                 labels: tuple[str, ...] = ("id",), label_index: int | None = None):
        self.item_type = item_type
        self.one = msgspec.json.Decoder(item_type)
        self.many = msgspec.json.Decoder(list[item_type])
        self.status_paths = frozenset(status)
        self.score_paths = frozenset(scores)
        self.label_keys = labels
        self.label_index = label_index


# --- msgspec messages -> reasons ----------------------------------------------------------------


def split_message(exc: BaseException) -> tuple[str, str | None, bool]:
    """(message without its location, the path relative to what was decoded or None for the
    root, whether the location is a map key)."""
    text = str(exc) or type(exc).__name__
    message, sep, where = text.rpartition(" - at ")
    if not sep:
        return text, None, False
    if where.startswith("`key` in "):
        return message, where[len("`key` in "):].strip("`"), True
    return message, where.strip("`"), False


def reason_for(message: str, path: str | None, is_key: bool, item_kind: ItemKind | None) -> str:
    """The reason token of a msgspec ValidationError, from its message and path."""
    rel = path or "$"
    if is_key:
        return "invalid_key"
    if message.startswith("Object missing required field"):
        return "missing_field"
    if message.startswith("Expected `array` of at most length"):
        # Only ExactPayloadRow types (the score arrays) refuse extra elements, and msgspec gives
        # no path for that error: it is a score array, somewhere in the item.
        return "score_length"
    if message.startswith("Expected `array` of"):
        return "score_length" if item_kind and rel in item_kind.score_paths else "wrong_length"
    is_status = item_kind is not None and rel in item_kind.status_paths
    bound = _BOUND.match(message)
    if bound or "out of range" in message:
        if is_status:
            return "unknown_status"
        if not bound:
            return "out_of_range"
        if bound.group(1) in ("<=", "<"):
            return "value_too_large"
        return "negative_value" if float(bound.group(2)) <= 0 else "invalid_value"
    if message.startswith("Expected `object`, got") and rel == "$":
        return "not_an_object"
    if message.startswith("Expected `") and ", got `" in message:
        return "wrong_type"
    return "invalid_value"


def absolute(path: str | None, base: str) -> str:
    """A path relative to an item (`$.score[1]`) made relative to the body (`$.results[3]...`)."""
    return base if path is None else base + path[1:]


def describe(exc: BaseException, base: str) -> str:
    """The detail of a rejection: msgspec's message with the path from the body's root."""
    message, path, is_key = split_message(exc)
    where = f"`key` in `{absolute(path, base)}`" if is_key else f"`{absolute(path, base)}`"
    return f"{message} - at {where}"


def payload_rejected(endpoint: str, reason: str, exc: BaseException, base: str) -> PayloadRejected:
    """`PayloadRejected(reason)` for a ValidationError (the shape is wrong); any other decode
    failure means the bytes are not readable JSON (invalid UTF-8 in a string, nesting too deep,
    a number too long): `malformed_json`, whatever the caller was decoding."""
    if isinstance(exc, msgspec.ValidationError):
        return PayloadRejected(endpoint, reason, describe(exc, base))
    text = str(exc) or type(exc).__name__
    return PayloadRejected(endpoint, "malformed_json", f"{type(exc).__name__}: {text[:200]} - at `{base}`")


# --- labels -------------------------------------------------------------------------------------


def _readable(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= LABEL_MAX and value.isprintable():
        return value
    return None


def label_raw(raw: msgspec.Raw, index: int, item_kind: ItemKind) -> str:
    """Who a rejected raw item is: its readable id, else `#<index>`. Only the id is decoded, so
    a bad value elsewhere in the item does not hide it."""
    try:
        if item_kind.label_index is None:
            members = _RAW_MAP.decode(raw)
            candidates = [members[key] for key in item_kind.label_keys if key in members]
        else:
            elements = _RAW_LIST.decode(raw)
            candidates = elements[item_kind.label_index:item_kind.label_index + 1]
    except DECODE_FAILURES:
        return f"#{index}"
    for candidate in candidates:
        try:
            found = _readable(msgspec.json.decode(candidate))
        except DECODE_FAILURES:
            continue
        if found:
            return found
    return f"#{index}"


def label_item(item: object, index: int, item_kind: ItemKind) -> str:
    """Who a decoded item that failed a Python check is."""
    for key in item_kind.label_keys:
        found = _readable(getattr(item, key, None))
        if found:
            return found
    return f"#{index}"


# --- pages --------------------------------------------------------------------------------------


def raw_list(endpoint: str, raw: msgspec.Raw, base: str) -> list[msgspec.Raw]:
    """A JSON array as its undecoded items; anything else rejects the payload (`results_invalid`)."""
    try:
        return _RAW_LIST.decode(raw)
    except DECODE_FAILURES as exc:
        raise payload_rejected(endpoint, "results_invalid", exc, base) from None


def raw_sections(endpoint: str, raw: msgspec.Raw, base: str) -> dict[str, msgspec.Raw]:
    """A JSON object as its undecoded members. An empty array is read as the empty object (PHP
    encoders write an empty map as `[]`); anything else rejects the payload (`results_invalid`)."""
    try:
        return _RAW_MAP.decode(raw)
    except DECODE_FAILURES as exc:
        try:
            if not _RAW_LIST.decode(raw):
                return {}
        except DECODE_FAILURES:
            pass
        raise payload_rejected(endpoint, "results_invalid", exc, base) from None


def decode_list(endpoint: str, raw: msgspec.Raw, item_kind: ItemKind[T], *, base: str = "$.results",
                prefix: str = "", check: Check | None = None,
                memo: ItemMemo | None = None) -> tuple[list[T], list[Rejection]]:
    """Decode a JSON array of items: (the items that passed, the rejections).

    Fast path: one typed msgspec call for the whole list. On a ValidationError, the slow path
    isolates the bad items. `check` then runs on every decoded item. The container itself not
    being an array (or not JSON) raises `PayloadRejected(results_invalid)`. A page larger than
    CHUNK_BYTES (detail_live of a busy evening is 13 MB) is decoded CHUNK_ITEMS items at a time,
    yielding to the other greenlets in between, so that no single call holds the process for
    the 120 ms a whole page takes (the console's answers would wait that long)."""
    if memo is not None:
        return _decode_memo(endpoint, raw, item_kind, base, prefix, check, memo)
    if len(raw) > CHUNK_BYTES:
        return _decode_chunked(endpoint, raw, item_kind, base, prefix, check)
    try:
        items = item_kind.many.decode(raw)
    except msgspec.ValidationError:
        return _decode_one_by_one(endpoint, enumerate(raw_list(endpoint, raw, base)), item_kind, base, prefix, check)
    except DECODE_FAILURES as exc:
        raise payload_rejected(endpoint, "results_invalid", exc, base) from None
    return _check_all(endpoint, items, 0, item_kind, base, prefix, check)


def _check_all(endpoint: str, items: list, offset: int, item_kind: ItemKind, base: str, prefix: str,
               check: Check | None) -> tuple[list, list[Rejection]]:
    if check is None:
        return items, []
    failed = [(index, verdict) for index, item in enumerate(items) if (verdict := check(item)) is not None]
    if not failed:
        return items, []
    bad = {index for index, _ in failed}
    rejections = [_checked(endpoint, items[index], offset + index, verdict, item_kind, base, prefix)
                  for index, verdict in failed]
    return [item for index, item in enumerate(items) if index not in bad], rejections


def _decode_chunked(endpoint: str, raw: msgspec.Raw, item_kind: ItemKind[T], base: str, prefix: str,
                    check: Check | None) -> tuple[list[T], list[Rejection]]:
    raws = raw_list(endpoint, raw, base)
    items: list[T] = []
    rejections: list[Rejection] = []
    for start in range(0, len(raws), CHUNK_ITEMS):
        chunk = raws[start:start + CHUNK_ITEMS]
        try:
            got = item_kind.many.decode(b"[" + b",".join(chunk) + b"]")
        except msgspec.ValidationError:
            got_items, got_rejections = _decode_one_by_one(endpoint, enumerate(chunk, start), item_kind, base,
                                                           prefix, check)
        except DECODE_FAILURES as exc:
            raise payload_rejected(endpoint, "results_invalid", exc, base) from None
        else:
            got_items, got_rejections = _check_all(endpoint, got, start, item_kind, base, prefix, check)
        items += got_items
        rejections += got_rejections
        gevent.sleep(0)
    return items, rejections


def _decode_memo(endpoint: str, raw: msgspec.Raw, item_kind: ItemKind[T], base: str, prefix: str,
                 check: Check | None, memo: ItemMemo) -> tuple[list[T], list[Rejection]]:
    big = len(raw) > CHUNK_BYTES
    raws = raw_list(endpoint, raw, base)
    if big:
        gevent.sleep(0)
    known, kept = memo.items, {}
    items: list[T] = []
    rejections: list[Rejection] = []
    reused = 0
    for start in range(0, len(raws), CHUNK_ITEMS):
        chunk = [bytes(one) for one in raws[start:start + CHUNK_ITEMS]]
        got = [known.get(one) for one in chunk]
        new = [(start + i, one) for i, one in enumerate(chunk) if got[i] is None]
        reused += len(chunk) - len(new)
        if new:
            try:
                fresh = iter(item_kind.many.decode(b"[" + b",".join(one for _, one in new) + b"]"))
            except msgspec.ValidationError:
                fresh = (_decode_item(endpoint, index, one, item_kind, base, prefix) for index, one in new)
            except DECODE_FAILURES as exc:
                raise payload_rejected(endpoint, "results_invalid", exc, base) from None
            for i, item in enumerate(got):
                if item is None:
                    got[i] = next(fresh)
        for i, (one, item) in enumerate(zip(chunk, got)):
            if isinstance(item, Rejection):
                rejections.append(item)
                continue
            kept[one] = item
            verdict = check(item) if check is not None else None
            if verdict is None:
                items.append(item)
            else:
                rejections.append(_checked(endpoint, item, start + i, verdict, item_kind, base, prefix))
        if big:
            gevent.sleep(0)
    memo.items, memo.reused, memo.decoded = kept, reused, len(raws) - reused
    return items, rejections


def _decode_item(endpoint: str, index: int, one: msgspec.Raw | bytes, item_kind: ItemKind[T], base: str,
                 prefix: str) -> T | Rejection:
    """One item decoded on its own: the item, or the Rejection saying why not."""
    where = f"{base}[{index}]"
    try:
        return item_kind.one.decode(one)
    except msgspec.ValidationError as exc:
        message, path, is_key = split_message(exc)
        return Rejection(endpoint, prefix + label_raw(one, index, item_kind),
                         reason_for(message, path, is_key, item_kind), describe(exc, where))
    except DECODE_FAILURES as exc:  # unreadable bytes inside the item: the body is not JSON
        raise payload_rejected(endpoint, "malformed_json", exc, where) from None


def _decode_one_by_one(endpoint: str, raws: Iterable[tuple[int, msgspec.Raw]], item_kind: ItemKind[T], base: str,
                       prefix: str, check: Check | None) -> tuple[list[T], list[Rejection]]:
    items: list[T] = []
    rejections: list[Rejection] = []
    for index, one in raws:
        item = _decode_item(endpoint, index, one, item_kind, base, prefix)
        if isinstance(item, Rejection):
            rejections.append(item)
            continue
        verdict = check(item) if check is not None else None
        if verdict is None:
            items.append(item)
        else:
            rejections.append(_checked(endpoint, item, index, verdict, item_kind, base, prefix))
    return items, rejections


def _checked(endpoint: str, item: object, index: int, verdict: tuple[str, str, str], item_kind: ItemKind,
             base: str, prefix: str) -> Rejection:
    reason, detail, suffix = verdict
    return Rejection(endpoint, prefix + label_item(item, index, item_kind), reason,
                     f"{detail} - at `{base}[{index}]{suffix}`")


def decode_one(endpoint: str, raw: msgspec.Raw, decoder: msgspec.json.Decoder, *, item: str, base: str,
               item_kind: ItemKind | None = None) -> tuple[Any, Rejection | None]:
    """Decode one sub-object of a page on its own: (value, None) or (None, its rejection)."""
    try:
        return decoder.decode(raw), None
    except msgspec.ValidationError as exc:
        message, path, is_key = split_message(exc)
        return None, Rejection(endpoint, item, reason_for(message, path, is_key, item_kind), describe(exc, base))
    except DECODE_FAILURES as exc:  # unreadable bytes: the body is not JSON
        raise payload_rejected(endpoint, "malformed_json", exc, base) from None
