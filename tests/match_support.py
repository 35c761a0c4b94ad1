"""Test support for the match pipeline: the real pipeline (router, match actors under a
DynamicSupervisor, writer, ticker) on a test database, fed from a simulator World on a stepped
clock, and the real console app answering in-process.

`WorldFeed` is the provider as the ingest jobs see it (`ctx.provider`): each call encodes the
World's answer as the simulator server would and decodes it with goald's decoders, so the
pipeline gets exactly what it gets over HTTP, minus the socket (a replay of three hours, second by
second, must fit in a test run). `server_time` is the simulated clock, like the server's Date.
Everything runs in the test's greenlet; `step()` is one second of goald: poll, let the actors
apply, tick the minute engine, let them apply, flush the writes.
"""
from __future__ import annotations

import contextlib
import time

import gevent
import gevent.event
import msgspec
import pykka

from goald import config
from goald.actors.context import JobContext
from goald.actors.dynamic import DynamicSupervisor
from goald.actors.jobs import ingest
from goald.actors.ledger import Occurrence
from goald.actors.match_actor import Barrier
from goald.actors.matches import MatchPipeline
from goald.console.app import AppContext, make_app
from goald.db.pool import Pool
from goald.match.changes import Changes
from goald.provider import decode
from support import sql, wsgi_get  # noqa: F401  (sql re-exported: the match tests import it from here)

_ENC = msgspec.json.Encoder()

# The simulator's phases as goald's periods (goald/simulator/rules.py PHASES).
PERIOD_OF_PHASE = {"NS": "not_started", "DELAY": "delayed", "1H": "first_half", "HT": "half_time",
                   "2H": "second_half", "BT0": "break_before_extra_time", "ET1": "extra_time_first",
                   "BT": "extra_time_break", "ET2": "extra_time_second", "PEN": "penalties", "FT": "ended",
                   "INT": "interrupted", "ABD": "abandoned", "CAN": "cancelled"}


class WorldFeed:
    def __init__(self, world):
        self.world = world
        self.calls = 0

    def _decoded(self, path, results, extra=None):
        self.calls += 1
        body = {"code": 0, "results": results}
        if extra is not None:
            body["results_extra"] = extra
        decoded = decode.DECODERS[path](_ENC.encode(body), self.world.clock.now())
        decoded.server_time = int(self.world.clock.now())
        return decoded

    def detail_live(self):
        return self._decoded("match/detail_live", self.world.detail_live())

    def data_update(self):
        return self._decoded("data/update", self.world.data_update())

    def diary(self, date=None, tsp=None):
        results, extra = self.world.diary(date or tsp)
        return self._decoded("match/diary", results, extra)

    def recent_list(self, since, page=1):
        return self._decoded("match/recent/list", self.world.recent_list(since, page))

    def match(self, match_id):
        return self._decoded("match/recent/list", self.world.recent_list(uuid=match_id))

    def team_stats(self):
        return self._decoded("match/team_stats/list", self.world.team_stats())

    def half_team_stats(self, match_id):
        return self._decoded("match/half/team_stats/detail", self.world.half_team_stats(match_id) or {})

    def analysis(self, match_id):
        return self._decoded("match/analysis", self.world.analysis(match_id) or {})

    def season_table(self, season_id):
        return self._decoded("season/recent/table/detail", self.world.season_table(season_id) or {})

    def table_live(self):
        return self._decoded("table/live", self.world.table_live())

    def competitions(self, time=None, page=1):
        return self._decoded("competition/additional/list", self.world.competitions(page=page, since=time))

    def teams(self, time=None, page=1):
        return self._decoded("team/additional/list", self.world.teams(page=page, since=time))


class Harness:
    def __init__(self, dsn, world, **env):
        self.world = world
        self.clock = world.clock
        # h2h_sync unpaced: the simulated provider has no per-minute budget for match/analysis.
        self.cfg = config.load(None, {"GOALD_MATCH_RETIRE_AFTER_S": "3600", "GOALD_H2H_CALLS_PER_MINUTE": "0", **env},
                               search=False)
        self.pool = Pool(dsn, maxconn=5)
        self.changes = Changes()
        self.pipeline = MatchPipeline(self.pool, lambda: self.cfg, self.changes, clock=self.clock.now)
        self.sup = DynamicSupervisor.start(name="matches", registry=self.pipeline.registry)
        self.pipeline.supervisor = lambda: self.sup
        self.feed = WorldFeed(world)
        self.app = make_app(AppContext(pool=self.pool, node="test", database="test", embedded=False,
                                       changes=self.changes))
        self.bodies = self.app.config["goald.match_bodies"]
        # Steps take milliseconds of real time, each a second of the feed: no minimum body age here
        # (tests/test_match_realtime.py runs with the default).
        self.bodies.min_age_s = self.bodies.details.min_age_s = 0.0
        self.cache = None

    def use_cache(self, cache):
        """Serve the standings and h2h endpoints through `cache` (goald/cache/), and hand it to the jobs."""
        self.cache = cache
        self.app = make_app(AppContext(pool=self.pool, node="test", database="test", embedded=False,
                                       changes=self.changes, cache=cache))
        self.bodies = self.app.config["goald.match_bodies"]
        self.bodies.min_age_s = self.bodies.details.min_age_s = 0.0

    def ctx(self, job="detail_live"):
        return JobContext(occurrence=Occurrence(job, self.clock.now()), pool=self.pool, config=self.cfg,
                          node="test", cancel=gevent.event.Event(), provider=self.feed, matches=self.pipeline,
                          cache=self.cache)

    def run_job(self, body, job=None):
        return body(self.ctx(job or body.__name__))

    def settle(self):
        """Wait until every match actor has handled what it was told (an ask queues behind tells)."""
        self.sup.proxy().child_count().get(timeout=10)   # the supervisor has started what it was told to
        for ref in list(self.pipeline.registry.values()):
            try:
                ref.ask(Barrier(), timeout=10)
            except pykka.ActorDeadError:
                pass

    def step(self, poll=True):
        """One second: poll detail_live, apply, tick the minutes due, apply, write."""
        if poll:
            self.run_job(ingest.detail_live)
        self.settle()
        self.pipeline.tick_due(self.clock.now())
        self.settle()
        self.pipeline.flush()

    def get(self, path, headers=None):
        """(status, headers (lower-case names), body bytes) of a GET through the console app, in-process."""
        return wsgi_get(self.app, path, headers)

    def get_json(self, path):
        status, _, body = self.get(path)
        return status, msgspec.json.decode(body)

    def close(self):
        try:
            self.sup.stop(block=True, timeout=10)
        finally:
            self.pool.close()


@contextlib.contextmanager
def harness(dsn, world, **env):
    h = Harness(dsn, world, **env)
    try:
        yield h
    finally:
        h.close()




def wait_until(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        gevent.sleep(0.01)
