"""The base of every goald actor: a pykka ThreadingActor (a greenlet under monkey-patching) that a
supervisor can watch.

pykka's failure contract, and what this base does about it:
- an exception while answering an `ask` goes back to the caller; the actor lives on;
- an exception while handling a `tell` stops the actor and calls `on_failure`: here that tells the
  parent supervisor `ChildExited(normal=False)` with the exception's type and message;
- a BaseException (`gevent.Timeout`, `GreenletExit`) escaping a handler would make pykka call
  `ActorRegistry.stop_all()` and take the whole daemon down. `_handle_receive` turns those two into
  `ActorInterrupted` (an ordinary Exception), so they crash this actor only and its supervisor
  restarts it. `SystemExit` and `KeyboardInterrupt` keep pykka's behaviour.

Subclasses implement `started()` (run on the `Start` ask, see below) and `stopping()` (run on stop
and after a crash), both in the actor's own greenlet, instead of `on_start` / `on_stop`, and start helper greenlets with `spawn()` so that they die with the actor.
A stop (normal or not) always tells the parent `ChildExited`; the parent knows whether it asked.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import gevent
import greenlet
import pykka

from goald import logs


class ActorInterrupted(Exception):
    """A gevent.Timeout or GreenletExit escaped an actor's handler (converted, see module doc)."""


@dataclass(frozen=True)
class ChildExited:
    """Told to the parent when a child stops. `normal` is False when it crashed."""

    name: str
    ref: Any
    normal: bool
    error_type: str = ""
    error: str = ""
    at: float = 0.0


@dataclass(frozen=True)
class Start:
    """Asked by whoever starts the actor (its supervisor): runs `started()` and answers True.

    Starting through an ask, not pykka's `on_start`, means a failing `started()` raises in the
    caller with its real exception (pykka returns ask errors to the caller) instead of a bare
    "actor stopped"; the caller then stops the half-started actor.
    """


class SupervisedActor(pykka.ThreadingActor):
    """An actor with a name and a parent. `kind` shows in /health/actors."""

    kind = "worker"

    def __init__(self, *, name: str, parent: pykka.ActorRef | None = None):
        super().__init__()
        self.name = name
        self.parent = parent
        self._greenlets: list[gevent.Greenlet] = []
        self._exit_told = False
        self._started = False

    # --- hooks for subclasses (actor greenlet) ------------------------------------------------

    def started(self) -> None:
        """Set up after start, before the first message. An exception: the start failed."""

    def stopping(self) -> None:
        """Clean up on a normal stop, and after a crash (then best effort: errors are logged)."""

    def handle(self, message: Any) -> Any:
        """Handle a `tell`/`ask` message that is not a proxy call. An exception in a tell crashes."""
        raise ValueError(f"{self.name}: unexpected message {message!r}")

    # --- helpers ------------------------------------------------------------------------------

    def spawn(self, fn: Callable, *args: Any, **kwargs: Any) -> gevent.Greenlet:
        """Start a helper greenlet owned by this actor: it is killed when the actor stops."""
        g = gevent.spawn(fn, *args, **kwargs)
        self._greenlets = [x for x in self._greenlets if not x.dead]
        self._greenlets.append(g)
        return g

    # --- pykka hooks --------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Start):
            if not self._started:
                self._started = True
                self.started()
            return True
        return self.handle(message)

    def on_stop(self) -> None:
        try:
            self.stopping()
        finally:
            self._kill_greenlets()
            self._tell_parent(normal=True)

    def on_failure(self, exc_type, exc, tb) -> None:
        try:
            self.stopping()
        except Exception as e:  # a crash's clean-up must not hide the crash
            logs.event("WARNING", "actor.cleanup_failed", f"{self.name}: clean-up after a crash failed: {e!r}")
        finally:
            self._kill_greenlets()
            self._tell_parent(normal=False, error_type=getattr(exc_type, "__name__", str(exc_type)),
                              error=str(exc))

    def _handle_receive(self, message: Any) -> Any:
        try:
            return super()._handle_receive(message)
        except (gevent.Timeout, greenlet.GreenletExit) as e:
            raise ActorInterrupted(f"{type(e).__name__} escaped a handler of {self.name}: {e}") from None

    # --- internals ----------------------------------------------------------------------------

    def _kill_greenlets(self) -> None:
        current = gevent.getcurrent()
        others = [g for g in self._greenlets if g is not current and not g.dead]
        if others:
            gevent.killall(others, block=True, timeout=2)
        self._greenlets = []

    def _tell_parent(self, *, normal: bool, error_type: str = "", error: str = "") -> None:
        if self.parent is None or self._exit_told:
            return
        self._exit_told = True
        try:
            self.parent.tell(ChildExited(self.name, self.actor_ref, normal, error_type, error, time.time()))
        except pykka.ActorDeadError:
            pass  # the parent is gone too; nothing to tell
