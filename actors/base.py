"""The base of every goald actor: a pykka ThreadingActor whose loop is a gevent greenlet, watched.

pykka's failure contract, and what this base does about it:
- an exception while answering an `ask` goes back to the caller; the actor lives on;
- an exception while handling a `tell` stops the actor and calls `on_failure`: here that tells the
  parent supervisor `ChildExited(normal=False)` with the exception's type and message;
- a BaseException (`gevent.Timeout`, `GreenletExit`) escaping a handler would make pykka call
  `ActorRegistry.stop_all()` and take the whole daemon down. `_handle_receive` turns those two into
  `ActorInterrupted` (an ordinary Exception), so they crash this actor only and its supervisor
  restarts it. `SystemExit` and `KeyboardInterrupt` keep pykka's behaviour;
- pykka reads its inbox outside its `try`: an actor greenlet killed while idle ends without
  `on_stop`/`on_failure`, and its ref still looks alive, so messages would go nowhere. The actor
  loop runs in a plain greenlet (`_start_actor_loop`; under monkey-patching pykka's thread *is* a
  greenlet, minus the threading bookkeeping that made 10,000 starts take 2 s) that is linked:
  whenever it ends without a normal stop, the actor is marked stopped (tells then raise
  `ActorDeadError`), pending asks fail, and the parent is told `ChildExited(normal=False,
  error_type="Died")`, at once, not at the next sweep.

Subclasses implement `started()` (run on the `Start` message, see below) and `stopping()` (run on
stop and after a crash), both in the actor's own greenlet, instead of `on_start` / `on_stop`.
Helper greenlets: `spawn()` for one-shot work that dies with the actor; `spawn_linked()` for the
loops an actor lives by (the clock's tick loop, a flag poller): if one of those ends, by an
exception or by returning, while the actor is not stopping, the actor crashes (`HelperDied`) and
its supervisor restarts it, so a dead loop is never mistaken for a live actor.
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


class HelperDied(Exception):
    """A linked helper greenlet of the actor ended while the actor was not stopping."""


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
    """Runs `started()`. Asked by a static supervisor (it answers True, or the caller gets the real
    exception, e.g. the console's "port in use", instead of pykka's bare "actor stopped"); told by
    a dynamic supervisor, which never waits for a child: a failing `started()` then crashes the
    child like any failing tell, and its supervisor's restart policy applies."""


@dataclass(frozen=True)
class _HelperExit:
    name: str
    error: str


class SupervisedActor(pykka.ThreadingActor):
    """An actor with a name and a parent. `kind` shows in /health/actors."""

    kind = "worker"

    def __init__(self, *, name: str, parent: pykka.ActorRef | None = None):
        super().__init__()
        self.name = name
        self.parent = parent
        self._greenlets: list[gevent.Greenlet] = []
        self._loop_greenlet: gevent.Greenlet | None = None
        self._exit_told = False
        self._started = False
        self._stopping = False

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
        """Start a one-shot helper greenlet owned by this actor: it is killed when the actor stops."""
        g = gevent.spawn(fn, *args, **kwargs)
        self._greenlets = [x for x in self._greenlets if not x.dead]
        self._greenlets.append(g)
        return g

    def spawn_linked(self, fn: Callable, *args: Any, **kwargs: Any) -> gevent.Greenlet:
        """Start a helper greenlet the actor lives by: if it ends (raises or returns) while the
        actor is not stopping, the actor crashes with `HelperDied` naming it."""
        g = self.spawn(fn, *args, **kwargs)
        name = getattr(fn, "__name__", None) or type(fn).__name__
        g.link(lambda dead: self._on_helper_exit(dead, name))
        return g

    # --- pykka hooks --------------------------------------------------------------------------

    def _start_actor_loop(self) -> None:
        self._loop_greenlet = gevent.spawn(self._actor_loop)
        self._loop_greenlet.link(self._on_loop_exit)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Start):
            if not self._started:
                self._started = True
                self.started()
            return True
        if isinstance(message, _HelperExit):
            raise HelperDied(f"{self.name}: its {message.name} ended: {message.error}")
        return self.handle(message)

    def on_stop(self) -> None:
        self._stopping = True
        try:
            self.stopping()
        finally:
            self._kill_greenlets()
            self._tell_parent(normal=True)

    def on_failure(self, exc_type, exc, tb) -> None:
        self._stopping = True
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

    # --- internals (link callbacks run in the hub: they only spawn) ---------------------------

    def _on_helper_exit(self, g: gevent.Greenlet, name: str) -> None:
        if self._stopping or self.actor_stopped.is_set():
            return
        if g.exception is not None:
            error = f"{type(g.exception).__name__}: {g.exception}"
        else:
            error = "it was killed" if isinstance(g.value, greenlet.GreenletExit) else "it returned"
        gevent.spawn(self._tell_self, _HelperExit(name, error))

    def _tell_self(self, message: Any) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            pass

    def _on_loop_exit(self, g: gevent.Greenlet) -> None:
        if self.actor_stopped.is_set():
            return  # a normal stop or a handled crash: the parent has been told
        gevent.spawn(self._died, g)

    def _died(self, g: gevent.Greenlet) -> None:
        """The actor greenlet ended without pykka's stop (killed while idle, or a BaseException
        that pykka does not catch): make the actor dead to everyone and tell the parent."""
        self._stopping = True
        pykka.ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        why = g.exception if g.exception is not None else g.value
        self._kill_greenlets()
        self._actor_loop_teardown()  # pending asks get ActorDeadError instead of waiting forever
        self._tell_parent(normal=False, error_type="Died",
                          error=f"the actor's greenlet ended without stopping ({type(why).__name__})")

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


def loop_greenlet(ref: pykka.ActorRef) -> gevent.Greenlet | None:
    """The greenlet running a SupervisedActor's loop (None when the actor object is gone)."""
    actor = ref._actor_weakref()  # pykka keeps only a weak reference from the ref to the actor
    return getattr(actor, "_loop_greenlet", None)
