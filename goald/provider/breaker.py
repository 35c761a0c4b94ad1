"""One circuit breaker per provider endpoint group, built on pybreaker, that lets calls overlap.

pybreaker's state machine (closed → open after `fail_max` consecutive failures → half-open after
`reset_timeout` → closed on a successful trial, open again on a failed one), its counters and its
listeners are used as they are. What is not used is `CircuitBreaker.call` around the real request:
it holds the breaker's lock for the whole call, and under gevent that lock is a gevent lock, so
every request of an endpoint group would wait for the one before it (ten 0.5-s calls would take
5 s). Instead a call here is

1. *admitted* (`admit()`, no I/O, no yield): refused with `CircuitOpen` while the breaker is open
   and its timeout has not passed, or while the single half-open trial is in flight;
2. made by the caller, outside any lock, as concurrently as it likes;
3. *recorded* (`success()` / `failure(exc)`): the outcome is replayed through pybreaker's `call`
   with a function that only returns or raises it, so pybreaker counts it and changes state in a
   moment, holding its lock only for that moment. A throttled call is neither (`release()`).

Time comes from an injectable monotonic `clock` (tests step it instead of sleeping 120 s);
pybreaker's own open-timeout check is fed the same time through `_ClockStorage`. State changes are
logged as `provider.circuit.opened` (WARNING) / `provider.circuit.half_open` / `provider.circuit.closed`
(INFO), or the events the owner names (the Telegram client's `telegram.circuit.*`). All methods
run in the calling greenlet; they never block.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Callable

import pybreaker

from goald import logs
from goald.provider.errors import CircuitOpen


class _ClockStorage(pybreaker.CircuitMemoryStorage):
    """pybreaker compares `datetime.now(UTC)` with `opened_at + reset_timeout`; `opened_at` is
    stored here on the injectable clock and handed back shifted so that the comparison measures
    the injectable clock's time since opening."""

    def __init__(self, clock: Callable[[], float]):
        super().__init__(pybreaker.STATE_CLOSED)
        self._clock = clock
        self._opened_mono: float | None = None

    @property
    def opened_at(self) -> datetime | None:
        if self._opened_mono is None:
            return None
        return datetime.now(timezone.utc) - timedelta(seconds=self._clock() - self._opened_mono)

    @opened_at.setter
    def opened_at(self, _value: datetime) -> None:
        self._opened_mono = self._clock()

    def open_for(self) -> float:
        return 0.0 if self._opened_mono is None else self._clock() - self._opened_mono


class _Outcome(Exception):
    """Carries a failure through pybreaker's call so it counts it."""


# The events a breaker logs on its state changes, and the name its messages give the service.
PROVIDER_EVENTS = {"label": "Provider", "open": "provider.circuit.opened", "half-open": "provider.circuit.half_open",
                   "closed": "provider.circuit.closed"}


class _LogStates(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: "Breaker"):
        self.owner = owner

    def state_change(self, cb, old_state, new_state) -> None:
        name, group, ev = new_state.name, self.owner.group, self.owner.events
        self.owner.transitions[name] = self.owner.transitions.get(name, 0) + 1
        if name == pybreaker.STATE_OPEN:
            logs.event("WARNING", ev["open"],
                       f"{ev['label']} circuit opened: {group} after {self.owner.fail_max} consecutive failures "
                       f"(last: {self.owner.last_failure}); calls refused for {self.owner.reset_timeout:g}s",
                       group=group, last_failure=self.owner.last_failure, open_s=self.owner.reset_timeout)
        elif name == pybreaker.STATE_HALF_OPEN:
            logs.event("INFO", ev["half-open"],
                       f"{ev['label']} circuit half-open: {group}: one trial call may go", group=group)
        elif name == pybreaker.STATE_CLOSED:
            logs.event("INFO", ev["closed"], f"{ev['label']} circuit closed: {group}: the trial call "
                       f"succeeded", group=group)


class Breaker:
    """The breaker of one endpoint group (e.g. `live`, `schedule`, `reference`). `events`: the
    log events of its state changes (PROVIDER_EVENTS; the Telegram client passes its own)."""

    def __init__(self, group: str, fail_max: int = 5, reset_timeout: float = 120.0,
                 clock: Callable[[], float] = time.monotonic, events: dict[str, str] = PROVIDER_EVENTS):
        self.group, self.fail_max, self.reset_timeout = group, fail_max, reset_timeout
        self.events = events
        self._storage = _ClockStorage(clock)
        self._cb = pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=reset_timeout, name=group,
                                            state_storage=self._storage, throw_new_error_on_trip=False,
                                            listeners=[_LogStates(self)])
        self._trial_in_flight = False
        self.last_failure = ""
        self.transitions: dict[str, int] = {}

    @property
    def state(self) -> str:
        """`closed`, `open` or `half-open` (pybreaker's names). An open breaker whose timeout has
        passed still says `open` until the next call makes it half-open."""
        return self._cb.current_state

    def admit(self, endpoint: str) -> bool:
        """May a call go now? True for the half-open trial (which the caller must then record or
        release), False for an ordinary call; raises CircuitOpen when it may not go."""
        state = self._cb.current_state
        if state == pybreaker.STATE_OPEN:
            left = self.reset_timeout - self._storage.open_for()
            if left > 0:
                raise CircuitOpen(endpoint, "circuit_open", f"the {self.group} breaker is open for {left:.1f}s more "
                                  f"(last failure: {self.last_failure})", retry_after_s=left)
            self._cb.half_open()
            state = pybreaker.STATE_HALF_OPEN
        if state == pybreaker.STATE_HALF_OPEN:
            if self._trial_in_flight:
                raise CircuitOpen(endpoint, "circuit_half_open", f"the {self.group} breaker's trial call is in "
                                  f"flight", retry_after_s=0.0)
            self._trial_in_flight = True
            return True
        return False

    def success(self, trial: bool) -> None:
        self._record(trial, None)

    def failure(self, trial: bool, reason: str) -> None:
        self.last_failure = reason
        self._record(trial, _Outcome(reason))

    def release(self, trial: bool) -> None:
        """The call ended without counting either way (throttled): a trial may go again."""
        if trial:
            self._trial_in_flight = False

    def _record(self, trial: bool, error: _Outcome | None) -> None:
        if trial:
            self._trial_in_flight = False
        state = self._cb.current_state
        if state != (pybreaker.STATE_HALF_OPEN if trial else pybreaker.STATE_CLOSED):
            return  # a call admitted before the breaker opened: only the trial decides now

        def replay():
            if error is not None:
                raise error

        try:
            self._cb.call(replay)
        except (_Outcome, pybreaker.CircuitBreakerError):
            pass  # counted (or the breaker opened meanwhile: this outcome changes nothing)

    def describe(self) -> dict:
        return {"state": self.state, "consecutive_failures": self._cb.fail_counter,
                "open_for_s": round(self._storage.open_for(), 1) if self.state != "closed" else 0.0,
                "last_failure": self.last_failure, "transitions": dict(self.transitions)}
