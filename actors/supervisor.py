"""Supervisor: starts a fixed list of children in order, restarts the ones that exit, escalates.

Erlang/OTP semantics, one_for_one strategy (restart types, per-child budgets and backoff: see
actors/restart.py):
- a child whose budget is spent makes the supervisor give up (`on_exhausted="escalate"`, the
  default): it stops its other children (in reverse order) and crashes itself, which its own
  parent sees as a child crash. The root has no parent: it calls `on_escalate(reason)` instead
  (the daemon then exits non-zero, and systemd restarts the process). A child spec may say
  `on_exhausted="give_up"`: that child is left `failed` (and /health/actors unhealthy), the rest
  go on;
- children start in order (a child that fails to start during the supervisor's own start fails
  the supervisor) and stop in reverse order, each within its `shutdown_timeout_s` (a number or a
  callable read at stop time, so a reload that changes `jobs.shutdown_timeout_s` is followed).

A child tells its exit through `ChildExited` (see actors.base), also when its greenlet was killed
without a stop. Children that come and go at runtime (one per match) belong to the dynamic
supervisor (actors/dynamic.py).

Runs in the supervisor's own actor greenlet; restart timers are helper greenlets that only `tell`
the supervisor. `directory` (name → live ActorRef) is a plain dict shared with readers such as the
clock; it is only written here, and under gevent a reader never sees it half updated. Per child,
`describe()` reports state, restarts and the last failure (type, message, time): that is
GET /health/actors.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import gevent
import pykka

from goald import logs, metrics
from goald.actors.base import ChildExited, Start, SupervisedActor
from goald.actors.restart import (ESCALATE, GIVE_UP, PERMANENT, RESTART_TYPES, TEMPORARY, TRANSIENT, Intensity,
                                  RestartState, should_restart)

__all__ = ["ChildSpec", "Escalation", "Intensity", "PERMANENT", "StartFailed", "Supervisor", "TEMPORARY",
           "TRANSIENT"]


class StartFailed(Exception):
    """A child did not start: its constructor or `started()` raised, or it did not answer in time."""


class Escalation(Exception):
    """A child's restart budget is spent: raised by a supervisor so that its parent sees it crash."""


@dataclass(frozen=True)
class ChildSpec:
    """How to (re)start one child. `start(parent_ref, name)` starts the actor and returns its ref.
    `max_restarts` / `max_seconds` default to the supervisor's Intensity."""

    name: str
    start: Callable[[pykka.ActorRef, str], pykka.ActorRef]
    restart: str = PERMANENT
    shutdown_timeout_s: float | Callable[[], float] = 5.0
    max_restarts: int | None = None
    max_seconds: float | None = None
    on_exhausted: str = ESCALATE
    kind: str | None = None            # shown in /health/actors; default: the actor class's kind

    def __post_init__(self) -> None:
        if self.restart not in RESTART_TYPES:
            raise ValueError(f"child {self.name}: restart must be one of {RESTART_TYPES}, not {self.restart!r}")
        if self.on_exhausted not in (ESCALATE, GIVE_UP):
            raise ValueError(f"child {self.name}: on_exhausted must be {ESCALATE!r} or {GIVE_UP!r}")

    def stop_timeout(self) -> float:
        t = self.shutdown_timeout_s
        return float(t() if callable(t) else t)

    def restart_state(self, intensity: Intensity) -> RestartState:
        return RestartState(max_restarts=intensity.max_restarts if self.max_restarts is None else self.max_restarts,
                            max_seconds=intensity.max_seconds if self.max_seconds is None else self.max_seconds)


@dataclass
class _Child:
    spec: ChildSpec
    policy: RestartState
    ref: pykka.ActorRef | None = None
    state: str = "stopped"          # starting | running | restarting | stopping | stopped | failed
    last_failure: dict | None = None


@dataclass(frozen=True)
class _Restart:
    name: str


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
        self.children: dict[str, _Child] = {c.name: _Child(spec=c, policy=c.restart_state(self.intensity))
                                            for c in children}
        self._escalated: str | None = None

    # --- lifecycle (actor greenlet) -----------------------------------------------------------

    def started(self) -> None:
        for child in self.children.values():
            try:
                self._start_child(child)
            except StartFailed as e:
                self._stop_children()
                raise StartFailed(f"{self.name}: child {child.spec.name} did not start: {e}") from None

    def stopping(self) -> None:
        self._stop_children()

    def handle(self, message: Any) -> Any:
        if isinstance(message, ChildExited):
            return self._on_child_exited(message)
        if isinstance(message, _Restart):
            return self._on_restart(message.name)
        return super().handle(message)

    # --- asks ---------------------------------------------------------------------------------

    def describe(self) -> dict:
        """The live subtree as JSON-ready data (asked by GET /health/actors)."""
        now = time.time()
        return {
            "name": self.name, "kind": self.kind, "state": "escalated" if self._escalated else "running",
            "strategy": "one_for_one",
            "intensity": {"max_restarts": self.intensity.max_restarts, "max_seconds": self.intensity.max_seconds,
                          "per_child": True,
                          "recent_restarts": sum(c.policy.recent_restarts(now) for c in self.children.values())},
            "children": [self._describe_child(c, now) for c in self.children.values()],
        }

    def child_ref(self, name: str) -> pykka.ActorRef | None:
        return self.directory.get(name)

    def child_states(self) -> dict[str, str]:
        return {name: c.state for name, c in self.children.items()}

    # --- internals ----------------------------------------------------------------------------

    def _describe_child(self, c: _Child, now: float) -> dict:
        out = {
            "name": c.spec.name, "kind": "worker", "state": c.state, "restart": c.spec.restart,
            "restarts": c.policy.restarts, "recent_restarts": c.policy.recent_restarts(now),
            "last_failure": c.last_failure, "started_at": _iso(c.policy.started_at),
            "alive": bool(c.ref and c.ref.is_alive()),
        }
        if c.ref is not None and c.state == "running" and hasattr(c.ref.actor_class, "describe"):
            try:
                sub = c.ref.proxy().describe().get(timeout=2.0)
                out.update({k: v for k, v in sub.items() if k not in ("name", "state")})
                out["state"] = c.state if sub.get("state") in ("running", None) else sub["state"]
            except (pykka.ActorDeadError, pykka.Timeout):
                out["children"] = None
        elif c.ref is not None:
            out["kind"] = c.spec.kind or getattr(c.ref.actor_class, "kind", "worker")
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
        child.ref, child.state, child.policy.started_at = ref, "running", time.time()
        self.directory[child.spec.name] = ref

    def _stop_children(self) -> None:
        for child in reversed(list(self.children.values())):
            ref = child.ref
            if ref is None or child.state in ("stopped", "failed"):
                continue
            child.state = "stopping"
            self.directory.pop(child.spec.name, None)
            timeout = child.spec.stop_timeout()
            try:
                ref.stop(block=True, timeout=timeout)
            except pykka.Timeout:
                logs.event("WARNING", "supervisor.stop_timeout",
                           f"{self.name}: {child.spec.name} did not stop within {timeout:g}s",
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
        if not should_restart(child.spec.restart, crashed=not msg.normal):
            child.state = "stopped" if msg.normal else "failed"
            return
        self._schedule_restart(child, crashed=not msg.normal)

    def _schedule_restart(self, child: _Child, *, crashed: bool) -> None:
        now = time.time()
        delay = child.policy.next_restart(now, self.intensity)
        if delay is None:
            reason = child.policy.exhausted_reason(child.spec.name, now)
            if child.spec.on_exhausted == GIVE_UP:
                child.state = "failed"
                logs.event("ERROR", "supervisor.gave_up", f"{self.name}: giving up on {child.spec.name}: {reason}",
                           supervisor=self.name, child=child.spec.name, reason=reason)
                return
            self._escalate(reason)
            return
        child.state = "restarting"
        logs.event("INFO", "actor.restarting",
                   f"{self.name}: restarting {child.spec.name} in {delay:.2f}s (restart {child.policy.restarts + 1})",
                   supervisor=self.name, child=child.spec.name, delay_s=round(delay, 3), crashed=crashed)
        if delay <= 0:
            self._on_restart(child.spec.name)
        else:
            self.spawn(_tell_later, delay, self.actor_ref, _Restart(child.spec.name))

    def _on_restart(self, name: str) -> None:
        child = self.children[name]
        if child.state != "restarting" or self._escalated:
            return
        child.policy.restarts += 1
        metrics.actor_restarted(self.name, name)
        try:
            self._start_child(child)
        except StartFailed as e:
            child.last_failure = {"type": "StartFailed", "message": str(e), "at": _iso(time.time())}
            child.state = "running"  # so that the exit below is handled as a crash of this incarnation
            child.ref = None
            self._on_child_exited(ChildExited(name, None, False, "StartFailed", str(e), time.time()))
            return
        logs.event("INFO", "actor.restarted", f"{self.name}: {name} restarted (restart {child.policy.restarts})",
                   supervisor=self.name, child=name, restarts=child.policy.restarts)

    def _escalate(self, reason: str) -> None:
        self._escalated = reason
        logs.event("ERROR", "supervisor.escalated", f"{self.name}: restart intensity exceeded, giving up: {reason}",
                   supervisor=self.name, reason=reason)
        self._stop_children()
        if self.on_escalate is not None:
            self.on_escalate(f"{self.name}: {reason}")
            return
        raise Escalation(f"{self.name}: {reason}")


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
