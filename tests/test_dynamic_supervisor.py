"""DynamicSupervisor: children by key at runtime, per-child restart type and budget, a registry,
starts that never block the supervisor, and a parallel stop within one deadline. No database."""
import time

import gevent
import pykka
import pytest
from support import wait_for

from goald.actors.base import Start, SupervisedActor
from goald.actors.dynamic import DynamicSupervisor, StartChild, StopChild
from goald.actors.restart import ESCALATE, PERMANENT, TEMPORARY, Intensity


class Match(SupervisedActor):
    """A stand-in for a match actor: echoes asks, crashes on "crash", stops on "done"."""

    def __init__(self, *, name, parent, journal=None, start_delay=0.0, stop_delay=0.0):
        super().__init__(name=name, parent=parent)
        self.journal, self.start_delay, self.stop_delay = journal, start_delay, stop_delay

    def started(self):
        if self.start_delay:
            gevent.sleep(self.start_delay)
        if self.journal is not None:
            self.journal.append(("start", self.name, time.monotonic()))

    def stopping(self):
        if self.stop_delay:
            gevent.sleep(self.stop_delay)

    def handle(self, message):
        if message == "crash":
            raise RuntimeError(f"{self.name}: bad update")
        if message == "done":
            self.actor_ref.stop(block=False)
        return message


def match(**kw):
    return lambda parent, name: Match.start(name=name, parent=parent, **kw)


@pytest.fixture
def sup():
    refs = []

    def make(**kw):
        kw.setdefault("intensity", Intensity(max_restarts=3, max_seconds=10, backoff_base_s=0.05, backoff_max_s=0.1))
        registry = {}
        ref = DynamicSupervisor.start(name="matches", registry=registry, **kw)
        ref.ask(Start(), timeout=5)
        refs.append(ref)
        return ref, registry

    yield make
    for ref in refs:
        if ref.is_alive():
            ref.stop(block=True, timeout=10)


def test_children_are_started_and_stopped_by_key_and_looked_up_in_the_registry(sup):
    ref, registry = sup()
    for key in (101, 102, 103):
        DynamicSupervisor.start_child(ref, key, match())
    wait_for(lambda: len(registry) == 3, what="three children")
    assert registry[102].ask("ping", timeout=2) == "ping"
    DynamicSupervisor.stop_child(ref, 102)
    wait_for(lambda: 102 not in registry and ref.proxy().child_count().get(timeout=2) == 2, what="stopped")
    assert sorted(registry) == [101, 103]


def test_a_message_told_right_after_start_child_is_handled_after_the_childs_start(sup):
    journal = []
    ref, registry = sup()
    ref.tell(StartChild(7, match(journal=journal, start_delay=0.2)))
    child = wait_for(lambda: registry.get(7), what="registered at once")
    assert child.ask("first", timeout=5) == "first" and journal and journal[0][:2] == ("start", "matches/7")


def test_a_slow_starting_child_does_not_hold_up_the_supervisor_or_the_others(sup):
    journal = []
    ref, registry = sup()
    t0 = time.monotonic()
    ref.tell([StartChild(0, match(journal=journal, start_delay=1.0))]
             + [StartChild(k, match(journal=journal)) for k in range(1, 101)])
    assert ref.proxy().child_count().get(timeout=0.5) == 101     # answered while child 0 still starts
    wait_for(lambda: len(journal) >= 100, timeout_s=2, what="the hundred quick children")
    assert time.monotonic() - t0 < 0.9 and ("start", "matches/0") not in [j[:2] for j in journal]


def test_a_transient_child_is_restarted_after_a_crash_and_removed_after_a_normal_exit(sup):
    journal = []
    ref, registry = sup()
    DynamicSupervisor.start_child(ref, "m", match(journal=journal))
    first = wait_for(lambda: registry.get("m"), what="start")
    first.tell("crash")
    second = wait_for(lambda: (r := registry.get("m")) not in (None, first) and r, what="restart")
    second.tell("done")
    wait_for(lambda: ref.proxy().child_count().get(timeout=2) == 0, what="removal")
    assert "m" not in registry and len(journal) == 2


def test_restart_types_per_child_permanent_comes_back_after_a_normal_exit_temporary_never(sup):
    ref, registry = sup()
    ref.tell([StartChild("p", match(), restart=PERMANENT), StartChild("t", match(), restart=TEMPORARY)])
    p, t = wait_for(lambda: registry.get("p") and registry.get("t") and (registry["p"], registry["t"]), what="both")
    p.tell("done")
    t.tell("crash")
    wait_for(lambda: registry.get("p") not in (None, p), what="permanent back")
    gevent.sleep(0.3)
    assert "t" not in registry and ref.proxy().child_count().get(timeout=2) == 1


def test_a_child_that_spends_its_own_budget_is_given_up_and_its_siblings_go_on(sup, log_lines):
    ref, registry = sup()
    ref.tell([StartChild("bad", match(), max_restarts=2), StartChild("good", match())])
    wait_for(lambda: "bad" in registry and "good" in registry, what="start")
    good = registry["good"]
    for _ in range(3):
        bad = wait_for(lambda: registry.get("bad"), what="bad running")
        bad.tell("crash")
        wait_for(lambda: registry.get("bad") is not bad, what="crash seen")
    wait_for(lambda: ref.proxy().describe().get(timeout=2)["counts"]["gave_up"] == 1, what="given up")
    assert ref.is_alive() and registry.get("good") is good and good.ask("x", timeout=2) == "x"
    desc = ref.proxy().describe().get(timeout=2)
    assert desc["gave_up"][0]["key"] == "bad" and desc["gave_up"][0]["last_failure"]["type"] == "RuntimeError"
    assert any(r.get("event") == "supervisor.gave_up" for r in log_lines())


def test_crashes_of_many_children_once_each_spend_no_shared_budget(sup):
    ref, registry = sup(intensity=Intensity(max_restarts=2, max_seconds=60, backoff_base_s=0.05))
    ref.tell([StartChild(k, match(), on_exhausted=ESCALATE) for k in range(20)])
    wait_for(lambda: len(registry) == 20, what="twenty children")
    firsts = dict(registry)
    for child in firsts.values():
        child.tell("crash")              # one slow database minute: every child crashes once
    wait_for(lambda: all(registry.get(k) not in (None, firsts[k]) for k in range(20)), what="all restarted")
    assert ref.is_alive() and ref.proxy().describe().get(timeout=2)["state"] == "running"


def test_stopping_the_supervisor_stops_all_children_at_once_within_its_deadline(sup):
    ref, registry = sup(shutdown_timeout_s=3.0)
    ref.tell([StartChild(k, match(stop_delay=0.5)) for k in range(200)])
    wait_for(lambda: len(registry) == 200, what="two hundred children")
    children = list(registry.values())
    t0 = time.monotonic()
    ref.stop(block=True, timeout=10)
    took = time.monotonic() - t0
    assert took < 2.0, took                       # 200 × 0.5 s one after the other would be 100 s
    assert not any(c.is_alive() for c in children)


def test_a_child_that_misses_the_stop_deadline_is_killed(sup):
    ref, registry = sup(shutdown_timeout_s=0.3)
    DynamicSupervisor.start_child(ref, "stuck", match(stop_delay=30))
    child = wait_for(lambda: registry.get("stuck"), what="start")
    t0 = time.monotonic()
    ref.stop(block=True, timeout=10)
    assert time.monotonic() - t0 < 3
    with pytest.raises(pykka.ActorDeadError):
        child.tell("x")


def test_describe_summarises_thousands_of_children_and_lists_only_the_notable_ones(sup):
    ref, registry = sup()
    ref.tell([StartChild(k, match()) for k in range(2000)])
    wait_for(lambda: len(registry) == 2000, timeout_s=10, what="two thousand children")
    registry[5].tell("crash")
    wait_for(lambda: ref.proxy().describe().get(timeout=2)["counts"]["restarted"] == 1, what="restart")
    desc = ref.proxy().describe().get(timeout=5)
    assert desc["counts"]["children"] == 2000 and desc["counts"]["running"] == 2000
    assert [c["key"] for c in desc["children"]] == ["5"] and desc["children"][0]["restarts"] == 1
    assert desc["strategy"] == "simple_one_for_one"


def test_stop_child_of_an_unknown_key_changes_nothing(sup):
    ref, registry = sup()
    DynamicSupervisor.start_child(ref, 1, match())
    wait_for(lambda: 1 in registry, what="start")
    ref.tell(StopChild("nope"))
    assert ref.proxy().child_count().get(timeout=2) == 1 and ref.is_alive()
