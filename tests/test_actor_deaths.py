"""Deaths are seen (helper greenlets, actors killed while idle, schedules that never fire), the GC
is paced without pinning actors, and a reload's drain time is the one a stop uses."""
import gc
import time
import weakref

import gevent
import pytest
import requests
from runtime_support import job, make_config, running_tree, runs, soon
from support import wait_for

from goald.actors import gc_pacer
from goald.actors.base import Start, SupervisedActor, loop_greenlet
from goald.actors.ledger import Occurrence
from goald.actors.schedule import Schedule, ScheduleError
from goald.actors.supervisor import ChildSpec, Intensity, Supervisor
from goald.console.app import AppContext, make_app
from goald.console.server import HttpServer


def ok_job(ctx):
    with ctx.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")


def child_node(tree, *path):
    node = tree.describe()
    for name in path:
        node = next(c for c in node["children"] if c["name"] == name)
    return node


def test_a_due_told_to_an_actor_killed_while_idle_is_recorded_never_lost(db_dsn):
    with running_tree(db_dsn, [job("idle", ok_job, every_s=60, offset_s=soon(60, 30))],
                      GOALD_JOBS_GRACE_S="0.5") as tree:
        ref = tree.jobs_directory["idle"]
        g = loop_greenlet(ref)
        g.kill(block=False)          # killed while waiting on its inbox: pykka would not notice
        while not g.dead:
            gevent.sleep(0)
        period = float(int(time.time()))
        tree.root_directory["clock"]._actor_weakref()._dispatch(Occurrence("idle", period))
        wait_for(lambda: [r for r in runs(db_dsn, "idle") if r["period_at"].timestamp() == period],
                 timeout_s=5, what="the occurrence's row")
        node = child_node(tree, "jobs", "idle")
    row = [r for r in runs(db_dsn, "idle") if r["period_at"].timestamp() == period][0]
    assert row["outcome"] == "missed" and ("not claimed" in row["error"] or "not running" in row["error"]), row
    assert node["restarts"] == 1 and node["last_failure"]["type"] == "Died"


class Flaky(SupervisedActor):
    """Crashes on "crash"; a helper loop of its own crashes it when told "kill helper"."""

    def started(self):
        self.helper = self.spawn_linked(gevent.sleep, 3600)

    def handle(self, message):
        if message == "crash":
            raise RuntimeError("told to crash")
        if message == "kill helper":
            self.helper.kill(block=False)


def test_health_actors_is_unhealthy_while_a_child_waits_for_its_restart(pool):
    root = Supervisor.start(name="root", children=[ChildSpec("w", lambda p, n: Flaky.start(name=n, parent=p))],
                            intensity=Intensity(max_restarts=10, max_seconds=60, backoff_base_s=1.5,
                                                backoff_max_s=1.5))
    root.ask(Start(), timeout=5)
    directory = root._actor_weakref().directory
    app = make_app(AppContext(pool=pool, node="n", database="db", embedded=False,
                              actors=lambda: root.proxy().describe().get(timeout=2)))
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    url = f"http://127.0.0.1:{server.port}/health/actors"
    try:
        assert requests.get(url, timeout=5).json()["healthy"] is True
        first = directory["w"]
        first.tell("kill helper")       # crash 1: restarted at once
        second = wait_for(lambda: (r := directory.get("w")) not in (None, first) and r, what="first restart")
        second.tell("crash")            # crash 2 in a row: waits the backoff
        wait_for(lambda: directory.get("w") is None, what="the crash")
        body = requests.get(url, timeout=5).json()
        assert body["healthy"] is False and body["tree"]["children"][0]["state"] == "restarting"
        assert body["tree"]["children"][0]["last_failure"]["type"] == "RuntimeError"
        wait_for(lambda: directory.get("w") is not None, timeout_s=5, what="second restart")
        assert requests.get(url, timeout=5).json()["healthy"] is True
    finally:
        server.stop()
        root.stop()


def test_a_linked_helper_that_dies_crashes_its_actor_with_the_helpers_name():
    root = Supervisor.start(name="root", children=[ChildSpec("w", lambda p, n: Flaky.start(name=n, parent=p))])
    root.ask(Start(), timeout=5)
    try:
        directory = root._actor_weakref().directory
        first = directory["w"]
        first.tell("kill helper")
        wait_for(lambda: directory.get("w") not in (None, first), what="restart")
        failure = root.proxy().describe().get(timeout=2)["children"][0]["last_failure"]
        assert failure["type"] == "HelperDied" and "its sleep ended: it was killed" in failure["message"]
    finally:
        root.stop()


def test_a_cron_schedule_that_parses_but_never_fires_is_rejected():
    with pytest.raises(ScheduleError, match="never fires"):
        Schedule(cron="0 0 30 2 *")
    assert Schedule(cron="0 0 29 2 *").next_after(0) > 0   # leap days do fire


def test_the_catalog_names_a_job_whose_schedule_never_fires(tmp_path, monkeypatch):
    from goald.actors import catalog

    (tmp_path / "never_jobs.py").write_text(
        "from goald.actors.catalog import JobSpec\n"
        "from goald.actors.schedule import Schedule\n"
        "JOBS = [JobSpec('feb30', lambda ctx: None, Schedule(cron='0 0 30 2 *'), timeout_s=1, description='x')]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(catalog.CatalogError) as e:
        catalog.load(make_config(GOALD_JOBS_MODULES="never_jobs"), {})
    assert "never_jobs" in e.value.problems[0] and "never fires" in e.value.problems[0]


def test_gc_is_frozen_once_per_process_not_at_every_clock_start(db_dsn):
    with running_tree(db_dsn, [job("ok", ok_job, every_s=60, offset_s=soon(60, 30))]) as tree:
        frozen = gc.get_freeze_count()
        for _ in range(2):   # two clock restarts
            clock = tree.root_directory["clock"]
            clock._actor_weakref()._loop_g.kill()
            wait_for(lambda: tree.root_directory.get("clock") not in (None, clock), what="clock restart")
        assert gc.get_freeze_count() <= frozen


class Cyclic(SupervisedActor):
    def started(self):
        self.me = self   # a reference cycle: only the cyclic collector frees it


def test_garbage_of_a_stopped_actor_is_collected_under_the_paced_gc(db_dsn, monkeypatch):
    monkeypatch.setattr(gc_pacer, "FULL_EVERY", 2)
    with running_tree(db_dsn, [job("ok", ok_job, every_s=60, offset_s=soon(60, 30))]) as tree:
        wait_for(lambda: not gc.isenabled(), what="the pacer")
        ref = Cyclic.start(name="cyclic")
        ref.ask(Start(), timeout=5)
        gone = weakref.ref(ref._actor_weakref())
        clock = tree.root_directory["clock"]          # a clock restart used to freeze (pin) it
        clock._actor_weakref()._loop_g.kill()
        wait_for(lambda: tree.root_directory.get("clock") not in (None, clock), what="clock restart")
        ref.stop()
        del ref
        wait_for(lambda: gone() is None, timeout_s=6, what="the stopped actor to be collected")


def test_a_reload_that_lengthens_the_drain_is_what_the_stop_waits_for(db_dsn):
    with running_tree(db_dsn, [job("slow", lambda ctx: gevent.sleep(16.5), every_s=60, offset_s=soon(60),
                                             timeout_s=30)],
                      GOALD_JOBS_SHUTDOWN_TIMEOUT_S="0.5") as tree:
        wait_for(lambda: tree.rt.runs, timeout_s=5, what="the run")
        tree.rt.cfg = make_config(GOALD_JOBS_SHUTDOWN_TIMEOUT_S="20")   # what SIGHUP does
    assert [r["outcome"] for r in runs(db_dsn, "slow")] == ["succeeded"]
