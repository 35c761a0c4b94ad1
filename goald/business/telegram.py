"""The Telegram Bot API client: `sendMessage` replying to a channel post, over `requests`.

    POST {telegram.api_url}/bot<token>/sendMessage
         {"chat_id": ..., "text": ..., "reply_parameters": {"message_id": N, "allow_sending_without_reply": true}}
    200 {"ok": true, "result": {"message_id": M, ...}}
    4xx {"ok": false, "error_code": 429, "description": ..., "parameters": {"retry_after": S}}

`TelegramBot.reply(chat_id, message_id, text)` returns the reply's message id, or raises
- `TelegramUnavailable` (a failed attempt): a transport error, a timeout or a 5xx that survived
  `retries` quick retries (0.5 s, 1 s, ...); the breaker counts it;
- `TelegramRejected` (a failed attempt): `ok: false` or an HTTP 4xx other than 429 (chat not
  found, the bot not in the channel, a revoked token): never retried within the call; the breaker
  counts it as an answer (the API is up);
- `TelegramThrottled` (not an attempt: the reply waits for the next run): a 429 whose
  `retry_after` is longer than `MAX_WAIT_S`, or still 429 after the retries, or a call made while
  an earlier 429's `retry_after` runs (no I/O then); a 429 with a short `retry_after` is waited
  for and retried within the call;
- `CircuitOpen` (goald.provider.errors; not an attempt): the breaker is open after
  `BREAKER_FAILURES` consecutive unavailable calls, for `BREAKER_OPEN_S`: a dead API is not
  hammered. The breaker is shared by every client of the same API URL in the process (runs come
  and go; the breaker stays), and logs `telegram.circuit.opened` / `half_open` / `closed`.

The bot token is part of the URL: it never appears in an error or a log line (messages are built
from reasons and Telegram's description, never from requests' exception texts, and the token is
registered with goald.redact). The Bot API has no idempotency key: a reply whose answer is lost
(a timeout after Telegram took it) may be sent again by a retry. Runs in the caller's greenlet
(requests over gevent-patched sockets); calls block it for at most about
(retries + 1) × timeout_s + the waits.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import gevent
import requests

from goald import __version__, redact
from goald.provider.breaker import Breaker
from goald.provider.errors import CircuitOpen

MAX_WAIT_S = 5.0            # a 429's retry_after up to this long is waited for within the call
RETRY_BASE_S = 0.5
BREAKER_FAILURES = 5
BREAKER_OPEN_S = 120.0
EVENTS = {"label": "Telegram Bot API", "open": "telegram.circuit.opened", "half-open": "telegram.circuit.half_open",
          "closed": "telegram.circuit.closed"}

_breakers: dict[str, Breaker] = {}
_breakers_lock = threading.Lock()

__all__ = ["TelegramBot", "TelegramError", "TelegramUnavailable", "TelegramRejected", "TelegramThrottled",
           "CircuitOpen"]


class TelegramError(Exception):
    """Base of what `reply` raises (besides CircuitOpen); `str()` never holds the token."""


class TelegramUnavailable(TelegramError):
    """No usable answer (transport, timeout, 5xx) after the retries: a failed attempt."""


class TelegramRejected(TelegramError):
    """The API refused the message (ok: false, HTTP 4xx other than 429): a failed attempt."""


class TelegramThrottled(TelegramError):
    """Too many requests: try at the next run (`retry_after_s`); not an attempt."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def breaker_for(api_url: str) -> Breaker:
    """The process's breaker of one Bot API URL."""
    with _breakers_lock:
        if api_url not in _breakers:
            _breakers[api_url] = Breaker("telegram", BREAKER_FAILURES, BREAKER_OPEN_S, events=EVENTS)
        return _breakers[api_url]


class TelegramBot:
    def __init__(self, token: str, api_url: str = "https://api.telegram.org", *, timeout_s: float = 10.0,
                 retries: int = 2, breaker: Breaker | None = None, sleep: Callable[[float], None] = gevent.sleep,
                 clock: Callable[[], float] = time.monotonic):
        if not token:
            raise ValueError("a bot token is required")
        redact.register_secret(token)
        self.api_url = api_url.rstrip("/")
        self._url = f"{self.api_url}/bot{token}/sendMessage"
        self._token = token
        self.timeout_s, self.retries, self.sleep, self.clock = timeout_s, retries, sleep, clock
        self.breaker = breaker or breaker_for(self.api_url)
        self.throttled_until = 0.0
        self.session = requests.Session()
        self.session.headers.update({"Content-Type": "application/json", "Accept": "application/json",
                                     "User-Agent": f"goald/{__version__}"})

    @classmethod
    def from_config(cls, cfg) -> "TelegramBot | None":
        """The configured bot, or None (telegram.bot_token empty: replies wait in the outbox)."""
        if not cfg["telegram.bot_token"]:
            return None
        return cls(cfg["telegram.bot_token"], cfg["telegram.api_url"], timeout_s=cfg["telegram.timeout_s"],
                   retries=cfg["telegram.retries"])

    def close(self) -> None:
        self.session.close()

    def reply(self, chat_id: str, message_id: int, text: str) -> int:
        """Send `text` to `chat_id` as a reply to `message_id`; the reply's message id."""
        left = self.throttled_until - self.clock()
        if left > 0:
            raise TelegramThrottled(f"throttled by Telegram: {left:.0f}s of retry_after left", left)
        trial = self.breaker.admit("sendMessage")
        try:
            message = self._send({"chat_id": chat_id, "text": text,
                                  "reply_parameters": {"message_id": message_id,
                                                       "allow_sending_without_reply": True}})
        except TelegramUnavailable as e:
            self.breaker.failure(trial, str(e))
            raise
        except TelegramRejected:
            self.breaker.success(trial)
            raise
        except BaseException:
            self.breaker.release(trial)     # throttled, killed (job timeout) or a bug: neither way
            raise
        self.breaker.success(trial)
        return message

    def _send(self, body: dict) -> int:
        attempt = 0
        while True:
            attempt += 1
            try:
                r = self.session.post(self._url, json=body, timeout=self.timeout_s)
                problem = f"HTTP {r.status_code}" if r.status_code >= 500 else None
            except requests.exceptions.Timeout:
                problem = f"no answer within {self.timeout_s:g}s"
            except requests.exceptions.ConnectionError:
                problem = f"cannot connect to {self.api_url}"
            except requests.exceptions.RequestException as e:
                problem = type(e).__name__      # never str(e): it quotes the URL, token included
            if problem is None:
                answer = _json(r)
                if r.status_code == 429 or answer.get("error_code") == 429:
                    wait = _retry_after(answer)
                    if wait <= MAX_WAIT_S and attempt <= self.retries:
                        self.sleep(wait)
                        continue
                    self.throttled_until = self.clock() + wait
                    raise TelegramThrottled(f"HTTP 429: retry after {wait:g}s", wait)
                if r.status_code == 200 and answer.get("ok") is True:
                    try:
                        return int(answer["result"]["message_id"])
                    except (KeyError, TypeError, ValueError):
                        raise TelegramRejected("an ok answer without result.message_id") from None
                raise TelegramRejected(f"HTTP {r.status_code}: {self._clean(answer.get('description'))}")
            if attempt > self.retries:
                raise TelegramUnavailable(f"{problem} (after {attempt} attempt{'s' if attempt > 1 else ''})")
            self.sleep(RETRY_BASE_S * 2 ** (attempt - 1))

    def _clean(self, text) -> str:
        text = str(text or "no description")[:300]
        return text.replace(self._token, redact.MASK)


def _json(r: requests.Response) -> dict:
    try:
        answer = r.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _retry_after(answer: dict) -> float:
    try:
        value = float((answer.get("parameters") or {}).get("retry_after"))
    except (TypeError, ValueError, AttributeError):
        return 1.0
    return min(max(value, 0.0), 3600.0)
