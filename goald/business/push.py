"""The push gateway: an Expo / FCM-style JSON API that takes a list of messages and answers one
ticket per message, in order.

    POST <push.gateway_url>   [{"to": token, "title": ..., "body": ..., "data": {...},
                               "idempotencyKey": "<outbox dedupe key>:<token>"}, ...]
    200 {"data": [{"status": "ok", "id": ...} | {"status": "error", "message": ..., "details":
                  {"error": "DeviceNotRegistered"}}, ...]}

Each message carries an `idempotencyKey`, the same every time that message is sent to that token:
a gateway (or the relay in front of it) that keeps the keys it has seen drops a repeat, so a
message sent again after a sender was killed between the gateway's answer and recording it
reaches the device once.

`PushGateway.send(messages)` returns the tickets; a transport failure, a timeout, a 429 or a 5xx
raises `PushUnavailable` (the messages are tried again at the next run); any other answer raises
`PushRejected` (a misconfiguration: the messages are tried again too, up to their attempt limit).
Runs in the caller's greenlet (requests over gevent-patched sockets), with the configured
timeouts; at most `MAX_BATCH` messages a request.
"""
from __future__ import annotations

import requests

MAX_BATCH = 100
UNREGISTERED = "DeviceNotRegistered"
IDEMPOTENCY_FIELD = "idempotencyKey"


class PushUnavailable(Exception):
    """The gateway could not be reached or was overloaded; try again later."""


class PushRejected(Exception):
    """The gateway refused the request itself (bad credentials, bad payload)."""


class PushGateway:
    def __init__(self, url: str, access_token: str = "", *, timeout_s: float = 10.0,
                 session: requests.Session | None = None):
        self.url, self.timeout_s = url, timeout_s
        self.session = session or requests.Session()
        self.session.headers.update({"Content-Type": "application/json", "Accept": "application/json"})
        if access_token:
            self.session.headers["Authorization"] = f"Bearer {access_token}"

    @classmethod
    def from_config(cls, cfg) -> "PushGateway | None":
        """The configured gateway, or None (push.gateway_url empty: messages stay in the outbox)."""
        if not cfg["push.gateway_url"]:
            return None
        return cls(cfg["push.gateway_url"], cfg["push.access_token"], timeout_s=cfg["push.timeout_s"])

    def send(self, messages: list[dict]) -> list[dict]:
        if len(messages) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} messages a request")
        try:
            r = self.session.post(self.url, json=messages, timeout=self.timeout_s)
        except requests.RequestException as e:
            raise PushUnavailable(f"{type(e).__name__}: {e}") from None
        if r.status_code == 429 or r.status_code >= 500:
            raise PushUnavailable(f"HTTP {r.status_code}")
        if r.status_code != 200:
            raise PushRejected(f"HTTP {r.status_code}: {r.text[:200]}")
        try:
            tickets = r.json()["data"]
        except (ValueError, KeyError, TypeError):
            raise PushRejected(f"an answer without data[]: {r.text[:200]}") from None
        if not isinstance(tickets, list) or len(tickets) != len(messages):
            raise PushRejected(f"{len(tickets) if isinstance(tickets, list) else 'no'} tickets for "
                               f"{len(messages)} messages")
        return tickets

    def close(self) -> None:
        self.session.close()
