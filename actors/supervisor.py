"""Supervisor: starts children in order, restarts the ones that exit, escalates a crash storm.

Erlang/OTP semantics, one_for_one strategy:
- restart types: `permanent` (always restarted), `transient` (restarted only after a crash),
  `temporary` (never restarted);
- a restart waits an exponential backoff with jitter: base * 2^(n-1) capped at `backoff_max_s`,
  times a random factor in [0.5, 1.0]; n counts the child's crashes since it last ran for longer than
  `max_seconds` without one;
- restart intensity: more than `max_restarts` restarts within `max_seconds` and the supervisor gives
  up: it stops its other children (in reverse order) and crashes itself, which its own parent sees
  as a child crash. The root has no parent: it calls `on_escalate(reason)` instead (the daemon then
  exits non-zero, and systemd restarts the process);
- children start in order (a child that fails to start during the supervisor's own start fails the
  supervisor) and stop in reverse order, each within its `shutdown_timeout_s`.

A child tells its exit through `ChildExited` (see actors.base). A child that dies without telling
(its greenlet killed, `on_start` raised) is found by a sweep once a second and treated as a crash.

Runs in the supervisor's own actor greenlet; the restart timers and the sweep are helper greenlets
that only `tell` the supervisor. `directory` (name → live ActorRef) is a plain dict shared with
readers such as the clock; it is only written here, and under gevent a reader never sees it half
updated. Per child, `describe()` reports state, restarts and the last failure (type, message, time):
that is GET /health/actors.
"""
from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import gevent
import pykka

from goald.actors.base import ChildExited, Start, SupervisedActor
from goald import logs

PERMANENT, TRANSIENT, TEMPORARY = "permanent", "transient", "temporary"
RESTART_TYPES = (PERMANENT, TRANSIENT, TEMPORARY)

DEFAULT_MAX_RESTARTS = 5
DEFAULT_MAX_SECONDS = 60.0
DEFAULT_BACKOFF_BASE_S = 0.5
DEFAULT_BACKOFF_MAX_S = 30.0
DEFAULT_START_TIMEOUT_S = 30.0
SWEEP_INTERVAL_S = 1.0


class StartFailed(Exception):
    """A child did not start: its constructor or `started()` raised, or it did not answer in time."""


class Escalation(Exception):
    """Restart intensity exceeded: raised by a supervisor so that its parent sees it crash."""


@dataclass(frozen=True)
class ChildSpec:
    """How to (re)start one child. `start(parent_ref, name)` starts the actor and returns its ref."""

    name: str
    start: Callable[[pykka.ActorRef, str], pykka.ActorRef]
    restart: str = PERMANENT
    shutdown_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.restart not in RESTART_TYPES:
            raise ValueError(f"child {self.name}: restart must be one of {RESTART_TYPES}, not {self.restart!r}")


@dataclass
class _Child:
    spec: ChildSpec
    ref: pykka.ActorRef | None = None
    state: str = "stopped"          # starting | running | restarting | stopping | stopped | failed
    restarts: int = 0
    crashes_in_row: int = 0
    started_at: float | None = None
    last_failure: dict | None = None
    suspect: Any = None             # a ref seen dead by the sweep, pending a second look


@dataclass(frozen=True)
class _Restart:
    name: str


@dataclass(frozen=True)
class _Sweep:
    pass


@dataclass
class Intensity:
    max_restarts: int = DEFAULT_MAX_RESTARTS
    max_seconds: float = DEFAULT_MAX_SECONDS
    backoff_base_s: float = DEFAULT_BACKOFF_BASE_S
    backoff_max_s: float = DEFAULT_BACKOFF_MAX_S
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S


class Supervisor(SupervisedActor):
    kind = "supervisor"

    def __init__(self, *, name: str, children: list[ChildSpec], parent: pykka.ActorRef | None = None,
                 intensity: Intensity | None = None, on_escalate: Callable[[str], None] | None = None,
                 directory: dict | None = None):
        super().__init__(name=name, parent=parent)
        names = [c.name for c in children]
        if len(set(names)) != len(names):
            raise ValueError(f"supervisor {name}: two children share a name: {names}")
        self.intensity = intensity or Intensity()
        self.on_escalate = on_escalate
        self.directory = directory if directory is not None else {}
        self.children: dict[str, _Child] = {c.name: _Child(spec=c) for c in children}
        self._restart_times: deque[float] = deque()
        self._escalated: str | None = None

    # --- lifecycle (actor greenlet) -----------------------------------------------------------

    def started(self) -> None:
        for child in self.children.values():
            try:
                self._start_child(child)
            except StartFailed as e:
                self._stop_children()
                raise StartFailed(f"{self.name}: child {child.spec.name} did not start: {e}") from None
        self.spawn(self._sweep_loop)

    def stopping(self) -> None:
        self._stop_children()

    def handle(self, message: Any) -> Any:
        if isinstance(message, ChildExited):
            return self._on_child_exited(message)
        if isinstance(message, _Restart):
            return self._on_restart(message.name)
        if isinstance(message, _Sweep):
            return self._sweep()
        return super().handle(message)

    # --- asks ---------------------------------------------------------------------------------

    def describe(self) -> dict:
        """The live subtree as JSON-ready data (asked by GET /health/actors)."""
        return {
            "name": self.name, "kind": self.kind, "state": "escalated" if self._escalated else "running",
            "strategy": "one_for_one",
            "intensity": {"max_restarts": self.intensity.max_restarts, "max_seconds": self.intensity.max_seconds,
                          "recent_restarts": len(self._recent_restarts(time.time()))},
            "children": [self._describe_child(c) for c in self.children.values()],
        }

    def child_ref(self, name: str) -> pykka.ActorRef | None:
        return self.directory.get(name)

    def child_states(self) -> dict[str, str]:
        return {name: c.state for name, c in self.children.items()}

    # --- internals ----------------------------------------------------------------------------

    def _describe_child(self, c: _Child) -> dict:
        out = {
            "name": c.spec.name, "kind": "worker", "state": c.state, "restart": c.spec.restart,
            "restarts": c.restarts, "last_failure": c.last_failure,
            "started_at": _iso(c.started_at), "alive": bool(c.ref and c.ref.is_alive()),
        }
        if c.ref is not None and c.state == "running" and issubclass(c.ref.actor_class, Supervisor):
            try:
                sub = c.ref.proxy().describe().get(timeout=2.0)
                out.update(kind="supervisor", strategy=sub["strategy"], intensity=sub["intensity"],
                           children=sub["children"])
            except (pykka.ActorDeadError, pykka.Timeout):
                out["children"] = None
        elif c.ref is not None:
            out["kind"] = getattr(c.ref.actor_class, "kind", "worker")
        return out

    def _start_child(self, child: _Child) -> None:
        child.state = "starting"
        ref = None
        try:
            ref = child.spec.start(self.actor_ref, child.spec.name)
            ref.ask(Start(), timeout=self.intensity.start_timeout_s)
        except (pykka.ActorDeadError, pykka.Timeout, Exception) as e:
            child.state = "failed"
            if ref is not None and ref.is_alive():
                ref.stop(block=False)
            raise StartFailed(f"{type(e).__name__}: {e}") from None
        child.ref, child.state, child.started_at, child.suspect = ref, "running", time.time(), None
        self.directory[child.spec.name] = ref

    def _stop_children(self) -> None:
        for child in reversed(list(self.children.values())):
            ref = child.ref
            if ref is None or child.state in ("stopped", "failed"):
                child.state = "stopped" if child.state != "failed" else "failed"
                continue
            child.state = "stopping"
            self.directory.pop(child.spec.name, None)
            try:
                ref.stop(block=True, timeout=child.spec.shutdown_timeout_s)
            except pykka.Timeout:
                logs.event("WARNING", "supervisor.stop_timeout",
                           f"{self.name}: {child.spec.name} did not stop within {child.spec.shutdown_timeout_s:g}s",
                           supervisor=self.name, child=child.spec.name)
            except pykka.ActorDeadError:
                pass
            child.state = "stopped"

    def _on_child_exited(self, msg: ChildExited) -> None:
        child = self.children.get(msg.name)
        if child is None or child.ref is not msg.ref or child.state != "running":
            return  # a stop we asked for, or news of an earlier incarnation
        self.directory.pop(msg.name, None)
        if not msg.normal:
            child.last_failure = {"type": msg.error_type, "message": msg.error, "at": _iso(msg.at or time.time())}
            logs.event("WARNING", "actor.crashed",
                       f"{self.name}: {msg.name} crashed: {msg.error_type}: {msg.error}",
                       supervisor=self.name, child=msg.name, error_type=msg.error_type, error=msg.error)
        restart = child.spec.restart == PERMANENT or (child.spec.restart == TRANSIENT and not msg.normal)
        if not restart:
            child.state = "stopped" if msg.normal else "failed"
            return
        self._schedule_restart(child, crashed=not msg.normal)

    def _schedule_restart(self, child: _Child, *, crashed: bool) -> None:
        now = time.time()
        if child.started_at is not None and now - child.started_at > self.intensity.max_seconds:
            child.crashes_in_row = 0  # it ran long enough: back to the shortest backoff
        recent = self._recent_restarts(now)
        if len(recent) >= self.intensity.max_restarts:
            self._escalate(f"{child.spec.name} exited {len(recent) + 1} times within "
                           f"{self.intensity.max_seconds:g}s (limit {self.intensity.max_restarts})")
            return
        self._restart_times.append(now)
        child.crashes_in_row += 1
        delay = min(self.intensity.backoff_max_s, self.intensity.backoff_base_s * 2 ** (child.crashes_in_row - 1))
        delay *= random.uniform(0.5, 1.0)
        child.state = "restarting"
        logs.event("INFO", "actor.restarting",
                   f"{self.name}: restarting {child.spec.name} in {delay:.2f}s (restart {child.restarts + 1})",
                   supervisor=self.name, child=child.spec.name, delay_s=round(delay, 3), crashed=crashed)
        self.spawn(_tell_later, delay, self.actor_ref, _Restart(child.spec.name))

    def _on_restart(self, name: str) -> None:
        child = self.children[name]
        if child.state != "restarting" or self._escalated:
            return
        child.restarts += 1
        try:
            self._start_child(child)
        except StartFailed as e:
            child.last_failure = {"type": "StartFailed", "message": str(e), "at": _iso(time.time())}
            child.state = "running"  # so that the exit below is handled as a crash of this incarnation
            child.ref = None
            self._on_child_exited(ChildExited(name, None, False, "StartFailed", str(e), time.time()))
            return
        logs.event("INFO", "actor.restarted", f"{self.name}: {name} restarted (restart {child.restarts})",
                   supervisor=self.name, child=name, restarts=child.restarts)

    def _escalate(self, reason: str) -> None:
        self._escalated = reason
        logs.event("ERROR", "supervisor.escalated", f"{self.name}: restart intensity exceeded, giving up: {reason}",
                   supervisor=self.name, reason=reason)
        self._stop_children()
        if self.on_escalate is not None:
            self.on_escalate(f"{self.name}: {reason}")
            return
        raise Escalation(f"{self.name}: {reason}")

    def _recent_restarts(self, now: float) -> deque:
        while self._restart_times and now - self._restart_times[0] > self.intensity.max_seconds:
            self._restart_times.popleft()
        return self._restart_times

    def _sweep_loop(self) -> None:
        while True:
            gevent.sleep(SWEEP_INTERVAL_S)
            try:
                self.actor_ref.tell(_Sweep())
            except pykka.ActorDeadError:
                return

    def _sweep(self) -> None:
        """Find children that died without a ChildExited (second look a sweep later)."""
        for child in self.children.values():
            ref = child.ref
            if child.state != "running" or ref is None or ref.is_alive():
                child.suspect = None
                continue
            if child.suspect is ref:
                self._on_child_exited(ChildExited(child.spec.name, ref, False, "Died",
                                                  "the actor stopped without telling its supervisor", time.time()))
            else:
                child.suspect = ref


def _tell_later(delay: float, ref: pykka.ActorRef, message: Any) -> None:
    gevent.sleep(delay)
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        pass


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"
