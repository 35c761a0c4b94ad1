"""DynamicSupervisor: children started and stopped at runtime by key (Erlang's simple_one_for_one).

For the match pipeline's one actor per tracked match: thousands of children that come and go.
- `start_child(key, start, ...)` / `stop_child(key)` are tells (from any greenlet): the supervisor
  never waits for a child. It creates the actor (pykka's start only spawns its greenlet) and
  *tells* it `Start`; a failing `started()` crashes the child like any failing tell, and the
  child's restart policy applies. Messages sent to a child right after `start_child` queue behind
  its `Start`, in order.
- `registry` (key → live ActorRef) is a plain dict shared with routers, which look a child up
  without an ask; it is only written in the supervisor's greenlet. Starting a key that is already
  running is a no-op (logged at DEBUG).
- Per child: restart type (default transient: a normal exit removes it), its own budget
  (`max_restarts` in `max_seconds`) and backoff (actors/restart.py). A child whose budget is spent
  is given up by default (`on_exhausted="give_up"`: logged at ERROR, removed, its last failure kept
  for /health/actors): one poisonous match must not restart thousands of healthy ones. With
  `on_exhausted="escalate"` the supervisor gives up instead, as a static supervisor does.
- Stop: every child is told to stop at once and awaited against one deadline (the spec's
  `shutdown_timeout_s`, a number or a callable read at stop time); pykka's own `stop_all` stops
  actors one after the other (4.6 s for 10,000). A child that misses the deadline has its greenlet
  killed.
- `describe()` summarises (counts per state, restarts) and lists at most DESCRIBE_LIMIT children
  that failed or restarted, newest first: /health/actors stays small with 10,000 matches.

Runs in the supervisor's own actor greenlet; restart timers are helper greenlets that only tell it.
"""
from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

import gevent
import pykka

from goald import logs, metrics
from goald.actors.base import ChildExited, Start, SupervisedActor, loop_greenlet
from goald.actors.restart import (ESCALATE, GIVE_UP, RESTART_TYPES, TRANSIENT, Intensity, RestartState,
                                  should_restart)
from goald.actors.supervisor import Escalation, _iso, _tell_later

DESCRIBE_LIMIT = 50
GAVE_UP_KEPT = 200


@dataclass(frozen=True)
class StartChild:
    """Start a child under `key`: `start(parent_ref, name)` returns its ref (pykka `Actor.start`)."""

    key: Hashable
    start: Callable[[pykka.ActorRef, str], pykka.ActorRef]
    restart: str = TRANSIENT
    max_restarts: int | None = None
    max_seconds: float | None = None
    on_exhausted: str = GIVE_UP

    def __post_init__(self) -> None:
        if self.restart not in RESTART_TYPES:
            raise ValueError(f"child {self.key!r}: restart must be one of {RESTART_TYPES}")
        if self.on_exhausted not in (ESCALATE, GIVE_UP):
            raise ValueError(f"child {self.key!r}: on_exhausted must be {ESCALATE!r} or {GIVE_UP!r}")


@dataclass(frozen=True)
class StopChild:
    key: Hashable


@dataclass(frozen=True)
class _Restart:
    key: Hashable
    generation: int


@dataclass
class _Child:
    spec: StartChild
    policy: RestartState
    name: str
    ref: pykka.ActorRef | None = None
    state: str = "starting"          # running | restarting | stopping
    generation: int = 0
    last_failure: dict | None = None


@dataclass
class _Summary:
    started: int = 0
    crashed: int = 0
    restarted: int = 0
    gave_up: int = 0
    gave_up_recent: deque = field(default_factory=lambda: deque(maxlen=GAVE_UP_KEPT))


class DynamicSupervisor(SupervisedActor):
    kind = "dynamic_supervisor"

    def __init__(self, *, name: str, parent: pykka.ActorRef | None = None, intensity: Intensity | None = None,
                 registry: dict | None = None, shutdown_timeout_s: float | Callable[[], float] = 5.0):
        super().__init__(name=name, parent=parent)
        self.intensity = intensity or Intensity()
        self.registry: dict = registry if registry is not None else {}
        self.shutdown_timeout_s = shutdown_timeout_s
        self.children: dict[Hashable, _Child] = {}
        self._by_ref: dict[int, Hashable] = {}
        self._stats = _Summary()
        self._escalated: str | None = None

    # --- the public side (any greenlet) -------------------------------------------------------

    @staticmethod
    def start_child(sup: pykka.ActorRef, key: Hashable, start: Callable, **options: Any) -> None:
        sup.tell(StartChild(key, start, **options))

    @staticmethod
    def stop_child(sup: pykka.ActorRef, key: Hashable) -> None:
        sup.tell(StopChild(key))

    # --- actor greenlet -----------------------------------------------------------------------

    def handle(self, message: Any) -> Any:
        if isinstance(message, StartChild):
            return self._start_child(message)
        if isinstance(message, StopChild):
            return self._stop_child(message.key)
        if isinstance(message, ChildExited):
            return self._on_child_exited(message)
        if isinstance(message, _Restart):
            return self._on_restart(message)
        if isinstance(message, list):        # a batch of StartChild / StopChild, in order
            for m in message:
                self.handle(m)
            return None
        return super().handle(message)

    def stopping(self) -> None:
        self._stop_all()

    def describe(self) -> dict:
        now = time.time()
        states = Counter(c.state for c in self.children.values())
        notable = sorted((c for c in self.children.values() if c.last_failure or c.policy.restarts),
                         key=lambda c: (c.last_failure or {}).get("at") or "", reverse=True)[:DESCRIBE_LIMIT]
        return {
            "name": self.name, "kind": self.kind, "state": "escalated" if self._escalated else "running",
            "strategy": "simple_one_for_one",
            "intensity": {"max_restarts": self.intensity.max_restarts, "max_seconds": self.intensity.max_seconds,
                          "per_child": True},
            "counts": {"children": len(self.children), **states, "started": self._stats.started,
                       "crashed": self._stats.crashed, "restarted": self._stats.restarted,
                       "gave_up": self._stats.gave_up},
            "children": [self._describe_child(c, now) for c in notable],
            "gave_up": list(self._stats.gave_up_recent)[-DESCRIBE_LIMIT:],
        }

    def child_count(self) -> int:
        return len(self.children)

    # --- internals ----------------------------------------------------------------------------

    def _describe_child(self, c: _Child, now: float) -> dict:
        return {"name": c.name, "key": str(c.spec.key), "kind": getattr(c.ref.actor_class, "kind", "worker")
                if c.ref is not None else "worker", "state": c.state, "restart": c.spec.restart,
                "restarts": c.policy.restarts, "recent_restarts": c.policy.recent_restarts(now),
                "last_failure": c.last_failure, "started_at": _iso(c.policy.started_at)}

    def _start_child(self, spec: StartChild) -> None:
        if self._escalated or self._stopping:
            return
        if spec.key in self.children:
            logs.event("DEBUG", "supervisor.child_exists", f"{self.name}: {spec.key!r} is already running",
                       supervisor=self.name)
            return
        policy = RestartState(
            max_restarts=self.intensity.max_restarts if spec.max_restarts is None else spec.max_restarts,
            max_seconds=self.intensity.max_seconds if spec.max_seconds is None else spec.max_seconds)
        child = _Child(spec=spec, policy=policy, name=f"{self.name}/{spec.key}")
        self.children[spec.key] = child
        self._stats.started += 1
        self._launch(child)

    def _launch(self, child: _Child) -> None:
        try:
            ref = child.spec.start(self.actor_ref, child.name)
            ref.tell(Start())
        except Exception as e:  # the constructor raised: a crash of this incarnation
            child.ref, child.state = None, "running"
            self._on_child_exited(ChildExited(child.name, None, False, type(e).__name__, str(e), time.time()),
                                  child=child)
            return
        if child.ref is not None:
            self._by_ref.pop(id(child.ref), None)
        child.ref, child.state, child.policy.started_at = ref, "running", time.time()
        self._by_ref[id(ref)] = child.spec.key
        self.registry[child.spec.key] = ref

    def _stop_child(self, key: Hashable) -> None:
        child = self.children.get(key)
        if child is None:
            return
        self.registry.pop(key, None)
        if child.state != "running" or child.ref is None:
            self._forget(key)              # restarting: cancel the restart by forgetting the child
            return
        child.state = "stopping"
        child.ref.stop(block=False)         # its ChildExited removes it

    def _forget(self, key: Hashable) -> None:
        child = self.children.pop(key, None)
        if child is not None and child.ref is not None:
            self._by_ref.pop(id(child.ref), None)
        if self.registry.get(key) is (child.ref if child else None):
            self.registry.pop(key, None)

    def _on_child_exited(self, msg: ChildExited, child: _Child | None = None) -> None:
        if child is None:
            key = self._by_ref.get(id(msg.ref))
            child = self.children.get(key) if key is not None else None
            if child is None or child.ref is not msg.ref:
                return  # an earlier incarnation, or a child already forgotten
        key = child.spec.key
        if child.state == "stopping" or self._stopping:
            self._forget(key)
            return
        if self.registry.get(key) is child.ref:
            self.registry.pop(key, None)
        crashed = not msg.normal
        if crashed:
            self._stats.crashed += 1
            child.last_failure = {"type": msg.error_type, "message": msg.error, "at": _iso(msg.at or time.time())}
            logs.event("WARNING", "actor.crashed", f"{self.name}: {child.name} crashed: {msg.error_type}: {msg.error}",
                       supervisor=self.name, child=child.name, error_type=msg.error_type, error=msg.error)
        if not should_restart(child.spec.restart, crashed):
            self._forget(key)
            return
        now = time.time()
        delay = child.policy.next_restart(now, self.intensity)
        if delay is None:
            reason = child.policy.exhausted_reason(child.name, now)
            if child.spec.on_exhausted == ESCALATE:
                self._escalate(reason)
                return
            self._stats.gave_up += 1
            self._stats.gave_up_recent.append({"key": str(key), "reason": reason, "last_failure": child.last_failure})
            logs.event("ERROR", "supervisor.gave_up", f"{self.name}: giving up on {child.name}: {reason}",
                       supervisor=self.name, child=child.name, reason=reason)
            self._forget(key)
            return
        child.state = "restarting"
        child.generation += 1
        if delay <= 0:
            self._restart_now(child)
        else:
            self.spawn(_tell_later, delay, self.actor_ref, _Restart(key, child.generation))

    def _on_restart(self, msg: _Restart) -> None:
        child = self.children.get(msg.key)
        if child is None or child.generation != msg.generation or child.state != "restarting":
            return
        self._restart_now(child)

    def _restart_now(self, child: _Child) -> None:
        if self._escalated or self._stopping:
            return
        child.policy.restarts += 1
        self._stats.restarted += 1
        metrics.actor_restarted(self.name, metrics.DYNAMIC_CHILD)   # children are keyed by match: unbounded
        self._launch(child)

    def _stop_all(self) -> None:
        """Tell every child to stop at once; wait for all against one deadline; kill stragglers."""
        t = self.shutdown_timeout_s
        deadline = time.monotonic() + float(t() if callable(t) else t)
        self.registry.clear()
        pending = []
        for child in self.children.values():
            if child.ref is not None and child.state in ("running", "stopping"):
                child.state = "stopping"
                try:
                    pending.append((child, child.ref.stop(block=False)))
                except pykka.ActorDeadError:
                    pass
        late = []
        for child, future in pending:
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except pykka.Timeout:
                late.append(child)
            except pykka.ActorDeadError:
                pass
        if late:
            logs.event("WARNING", "supervisor.stop_timeout",
                       f"{self.name}: {len(late)} child(ren) did not stop in time; killing them",
                       supervisor=self.name, count=len(late))
            gevent.killall([g for g in (loop_greenlet(c.ref) for c in late) if g is not None], block=True,
                           timeout=2)
        self.children.clear()
        self._by_ref.clear()

    def _escalate(self, reason: str) -> None:
        self._escalated = reason
        logs.event("ERROR", "supervisor.escalated", f"{self.name}: restart intensity exceeded, giving up: {reason}",
                   supervisor=self.name, reason=reason)
        self._stop_all()
        raise Escalation(f"{self.name}: {reason}")
