"""What a provider call or a decoder can raise or report, and nothing else.

Callers (ingest jobs, the simulator's tests, `/health/provider`) catch `ProviderError`; every
subclass carries the endpoint and a short `reason` (a stable, lower-case token used as a counter
key and in log lines) plus a human `detail`. An item of a page that fails validation is not an
exception: it becomes a `Rejection` beside the items that survived (`Decoded`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


class ProviderError(Exception):
    """Base of everything a provider call raises."""

    def __init__(self, endpoint: str, reason: str, detail: str = ""):
        self.endpoint, self.reason, self.detail = endpoint, reason, detail
        super().__init__(f"{endpoint}: {reason}" + (f": {detail}" if detail else ""))


class PayloadRejected(ProviderError):
    """The body as a whole is unusable (not JSON, truncated, the envelope of the wrong shape):
    nothing of it is used. Reasons: `malformed_json`, `envelope_invalid`, `results_invalid`."""


class ProviderRefused(ProviderError):
    """The provider answered but refused: `{"err": ...}` inside HTTP 200 (reason `err`, the
    provider's text in `detail`: wrong user/secret, IP not allowed, ...), an HTTP 4xx (`http_4xx`)
    or a `code` other than 0 (`code_<n>`). Never retried."""


class ProviderThrottled(ProviderError):
    """`{"code": 429}` or HTTP 429, or a call made while the endpoint group is backing off from
    one (`retry_after_s` says how long is left). Counted as throttling, never as a failure."""

    def __init__(self, endpoint: str, reason: str, detail: str = "", retry_after_s: float = 0.0):
        super().__init__(endpoint, reason, detail)
        self.retry_after_s = retry_after_s


class ProviderUnavailable(ProviderError):
    """Network errors, timeouts and 5xx that survived the retries. Reasons: `timeout`,
    `connect`, `network`, `http_5xx`."""


class CircuitOpen(ProviderError):
    """The endpoint group's breaker is open (or its one half-open trial is in flight): the call
    was not made. `retry_after_s` says when the next trial may go."""

    def __init__(self, endpoint: str, reason: str, detail: str = "", retry_after_s: float = 0.0):
        super().__init__(endpoint, reason, detail)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Rejection:
    """One item of a page that was left out: which endpoint, which item (its id when it had a
    readable one, else `#<index>`), the reason token (e.g. `missing_field`, `wrong_type`,
    `negative_value`, `unknown_status`, `score_length`, `kickoff_out_of_range`) and the detail.
    The authoritative set is `goald.provider.validation.REJECTION_REASONS`."""

    endpoint: str
    item: str
    reason: str
    detail: str


@dataclass
class Decoded(Generic[T]):
    """A decoded page: the items that passed validation, the rejections, and the page's extras
    (e.g. `results_extra` of the diary, `query` of paged lists) already decoded."""

    items: list[T] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    extra: object = None
    # The provider's clock when it answered (its HTTP Date header, Unix seconds; the client's
    # wall clock when the header is missing or unreadable): the time of the state a page without
    # per-item times (detail_live) holds, which the match pipeline's provider_update_time guard compares.
    server_time: int | None = None
