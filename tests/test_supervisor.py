"""Supervisor: start order, restarts with backoff, restart types, intensity and escalation.

In-process with small test actors (no database). Backoffs are shortened through Intensity.
"""
import time

import gevent
import pykka
import pytest
from support import wait_for

from goald.actors.base import Start, SupervisedActor
from goald.actors.supervisor import (PERMANENT, TEMPORARY, TRANSIENT, ChildSpec, Intensity, StartFailed,
                                     Supervisor)

FAST = Intensity(max_restarts=3, max_seconds=10, backoff_base_s=0.05, backoff_max_s=0.2, start_timeout_s=5)


class Crash(Exception):
    pass


class Worker(SupervisedActor):
    """Records its life in `journal`; `tell("crash")` raises, `tell("stop")` stops normally."""

    def __init__(self, *, name, parent, journal):
        super().__init__(name=name, parent=parent)
        self.journal = journal

    def started(self):
        self.journal.append(("start", self.name, time.monotonic()))

    def stopping(self):
        self.journal.append(("stop", self.name, time.monotonic()))

    def handle(self, message):
        if message == "crash":
            raise Crash(f"{self.name} was told to crash")
        if message == "timeout":
            with gevent.Timeout(0.01):
                gevent.sleep(1)
        if message == "stop":
            self.actor_ref.stop(block=False)
        return message


def spec(name, journal, restart=PERMANENT):
    return ChildSpec(name, lambda parent, n: Worker.start(name=n, parent=parent, journal=journal), restart=restart)


@pytest.fixture
def tree():
    roots = []

    def make(children, **kwargs):
        kwargs.setdefault("intensity", FAST)
        ref = Supervisor.start(name="root", children=children, **kwargs)
        ref.ask(Start(), timeout=5)
        roots.append(ref)
        return ref

    yield make
    for ref in roots:
        if ref.is_alive():
            ref.stop(block=True, timeout=10)
    pykka.ActorRegistry.stop_all()


def child(root, name):
    return root.proxy().child_ref(name).get(timeout=2)


def describe(root):
    return root.proxy().describe().get(timeout=2)


def test_children_start_in_order_and_stop_in_reverse_order(tree):
    journal = []
    root = tree([spec("a", journal), spec("b", journal), spec("c", journal)])
    root.stop(block=True, timeout=5)
    assert [(e[0], e[1]) for e in journal] == [("start", "a"), ("start", "b"), ("start", "c"),
                                               ("stop", "c"), ("stop", "b"), ("stop", "a")]


def test_a_crashed_child_is_restarted_at_once_and_its_restart_shows_in_describe(tree, log_lines):
    journal = []
    root = tree([spec("a", journal), spec("b", journal)], intensity=Intensity(
        max_restarts=3, max_seconds=10, backoff_base_s=1.0, backoff_max_s=2.0))
    first = child(root, "a")
    crashed_at = time.monotonic()
    first.tell("crash")
    second = wait_for(lambda: (r := child(root, "a")) is not None and r is not first and r, what="restart")
    assert second.is_alive() and not first.is_alive()
    restarted_at = [e[2] for e in journal if e[:2] == ("start", "a")][-1]
    assert restarted_at - crashed_at < 0.5  # the first restart does not wait the 1 s backoff base
    node = next(c for c in describe(root)["children"] if c["name"] == "a")
    assert node["restarts"] == 1 and node["state"] == "running"
    assert node["last_failure"]["type"] == "Crash"
    assert "a was told to crash" in node["last_failure"]["message"] and node["last_failure"]["at"].endswith("Z")
    assert child(root, "b").is_alive()  # one_for_one: the sibling was not touched
    events = [r.get("event") for r in log_lines()]
    assert "actor.crashed" in events and "actor.restarted" in events


def test_after_an_immediate_first_restart_the_backoff_doubles_with_each_crash_in_a_row(tree):
    journal = []
    root = tree([spec("a", journal)], intensity=Intensity(max_restarts=10, max_seconds=30, backoff_base_s=0.1,
                                                          backoff_max_s=5))
    gaps = []
    for _ in range(4):
        ref = child(root, "a")
        t0 = time.monotonic()
        ref.tell("crash")
        wait_for(lambda: (r := child(root, "a")) is not None and r is not ref, interval_s=0.002, what="restart")
        gaps.append(time.monotonic() - t0)
    # at once, then base * 2^(n-2) * [0.5, 1]: 0.05-0.1, 0.1-0.2, 0.2-0.4 (plus scheduling slack)
    assert gaps[0] < 0.04 and 0.05 <= gaps[1] < 0.2 and 0.1 <= gaps[2] < 0.35 and 0.2 <= gaps[3] < 0.6, gaps


def test_a_temporary_child_is_never_restarted(tree):
    journal = []
    root = tree([spec("t", journal, TEMPORARY)])
    child(root, "t").tell("crash")
    wait_for(lambda: next(c for c in describe(root)["children"] if c["name"] == "t")["state"] == "failed",
             what="failed state")
    gevent.sleep(0.3)
    assert [e[1] for e in journal if e[0] == "start"] == ["t"]


def test_a_transient_child_is_restarted_after_a_crash_but_not_after_a_normal_exit(tree):
    journal = []
    root = tree([spec("t", journal, TRANSIENT)])
    first = child(root, "t")
    first.tell("crash")
    wait_for(lambda: (r := child(root, "t")) is not None and r is not first, what="restart after crash")
    child(root, "t").tell("stop")
    wait_for(lambda: next(c for c in describe(root)["children"] if c["name"] == "t")["state"] == "stopped",
             what="stopped state")
    gevent.sleep(0.3)
    assert len([e for e in journal if e[0] == "start"]) == 2


def test_a_gevent_timeout_escaping_a_handler_crashes_only_that_actor(tree):
    journal = []
    root = tree([spec("a", journal), spec("b", journal)])
    first, sibling = child(root, "a"), child(root, "b")
    first.tell("timeout")
    wait_for(lambda: (r := child(root, "a")) is not None and r is not first, what="restart")
    assert root.is_alive() and sibling.is_alive()  # pykka's stop_all was not called
    node = next(c for c in describe(root)["children"] if c["name"] == "a")
    assert node["last_failure"]["type"] == "ActorInterrupted"


def test_a_crash_loop_past_the_intensity_escalates_to_the_parent_supervisor(tree, log_lines):
    journal = []
    inner = [spec("w", journal)]
    escalations = []
    root = tree([ChildSpec("inner", lambda parent, n: Supervisor.start(name=n, parent=parent, children=inner,
                                                                        intensity=FAST))],
                intensity=Intensity(max_restarts=5, max_seconds=10, backoff_base_s=0.05, backoff_max_s=0.1),
                on_escalate=escalations.append)
    first_inner = child(root, "inner")
    for _ in range(FAST.max_restarts + 1):
        ref = wait_for(lambda: first_inner.proxy().child_ref("w").get(timeout=2), what="worker")
        ref.tell("crash")
        wait_for(lambda: not ref.is_alive(), what="crash")
    new_inner = wait_for(lambda: (r := child(root, "inner")) is not None and r is not first_inner and r,
                         what="inner supervisor restarted by the root")
    assert not first_inner.is_alive() and new_inner.is_alive()
    node = next(c for c in describe(root)["children"] if c["name"] == "inner")
    assert node["restarts"] == 1 and node["last_failure"]["type"] == "Escalation"
    assert escalations == []
    assert any(r.get("event") == "supervisor.escalated" for r in log_lines())


def test_the_roots_escalation_calls_on_escalate_and_stops_its_children(tree):
    journal = []
    escalations = []
    root = tree([spec("w", journal)], on_escalate=escalations.append)
    for _ in range(FAST.max_restarts + 1):
        ref = wait_for(lambda: child(root, "w"), what="worker")
        ref.tell("crash")
        wait_for(lambda: not ref.is_alive(), what="crash")
    wait_for(lambda: escalations, what="escalation")
    assert "w exited 4 times within 10s (limit 3)" in escalations[0]
    assert describe(root)["state"] == "escalated"
    assert child(root, "w") is None


def test_a_child_that_fails_to_start_fails_the_supervisors_start_and_earlier_children_are_stopped():
    journal = []

    def broken(parent, name):
        raise RuntimeError("cannot bind")

    ref = Supervisor.start(name="root", children=[spec("a", journal), ChildSpec("b", broken)], intensity=FAST)
    with pytest.raises(StartFailed, match="root: child b did not start: RuntimeError: cannot bind"):
        ref.ask(Start(), timeout=5)
    ref.stop()
    assert [(e[0], e[1]) for e in journal] == [("start", "a"), ("stop", "a")]


def test_a_restart_whose_start_fails_counts_as_a_crash_and_is_retried(tree):
    journal = []
    attempts = []

    def flaky(parent, name):
        attempts.append(time.monotonic())
        if len(attempts) == 2:
            raise RuntimeError("not yet")
        return Worker.start(name=name, parent=parent, journal=journal)

    root = tree([ChildSpec("f", flaky)])
    child(root, "f").tell("crash")
    wait_for(lambda: len(attempts) >= 3 and child(root, "f") is not None, what="second restart")
    node = next(c for c in describe(root)["children"] if c["name"] == "f")
    assert node["restarts"] == 2 and node["state"] == "running"


def test_restart_budgets_are_per_child_so_siblings_crashing_once_each_do_not_escalate(tree):
    journal = []
    escalations = []
    names = [f"c{i}" for i in range(6)]
    root = tree([spec(n, journal) for n in names], on_escalate=escalations.append,
                intensity=Intensity(max_restarts=2, max_seconds=30, backoff_base_s=0.05, backoff_max_s=0.1))
    firsts = {n: child(root, n) for n in names}
    for ref in firsts.values():
        ref.tell("crash")          # six crashes in a moment, one per child: a slow database minute
    wait_for(lambda: all(child(root, n) not in (None, firsts[n]) for n in names), what="all restarted")
    assert escalations == [] and describe(root)["state"] == "running"
    # ... while one child crashing past its own budget still escalates (its third exit)
    for _ in range(2):
        ref = wait_for(lambda: child(root, "c0"), what="c0")
        ref.tell("crash")
        wait_for(lambda: not ref.is_alive(), what="crash")
    wait_for(lambda: escalations, what="escalation")
    assert "c0 exited 3 times within 30s (limit 2)" in escalations[0]
