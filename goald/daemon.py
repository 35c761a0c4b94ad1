"""`goald run`: start-up, the actor tree, signals, reload and an orderly stop.

Runs in the main greenlet. Start-up: the console's listening socket (a busy port or a bad
console.host fails here, before anything slow) → database (embedded PostgreSQL when no
database.url) → migrations → job catalog and collision check → orphan rescue
→ the provider client (with no provider.base_url: the built-in simulator on loopback as a demo feed)
→ the actor tree (goald/tree.py: pool_monitor, heartbeat, the match pipeline, jobs, clock, console), then READY=1 to systemd. Signals (handled in the hub, acted on here):
- first SIGTERM/SIGINT: warm shutdown. STOPPING=1; the clock stops dispatching; running jobs may
  finish until `jobs.shutdown_timeout_s`, then they are cancelled and recorded `interrupted`;
  actors stop in reverse order; the embedded PostgreSQL stops last; exit 0;
- a second one: cold shutdown: running jobs are cancelled now;
- SIGHUP: reload goald.toml. An invalid file (or catalog) is rejected with its reasons and the
  running configuration stays; settings that need a restart are named in a warning.
When the root supervisor gives up (a crash storm) goald stops the same way and exits 6.
A failing start-up step logs one line saying what to do and returns its exit code.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Mapping

import gevent
import gevent.event
import pykka

from goald import __version__, config as config_mod, doctor, exitcodes, flags as flagnames, logs, metrics, operators
from goald.actors import catalog, ledger
from goald.actors.clock import Replan
from goald.actors.jobs import ingest
from goald.business import demo
from goald.actors.matches import MatchPipeline
from goald.actors.runtime import Runtime
from goald.actors.schedule import collisions
from goald.actors.supervisor import StartFailed
from goald.config import Config
from goald.console.app import AppContext, make_app
from goald.console.server import ConsoleStartError, bind as bind_console
from goald.db.database import Database, node_name
from goald.db.pool import DatabaseUnavailable
from goald.cache.cache import from_config as cache_from_config
from goald.console.cors import parse_origins
from goald.console.auth import Auth
from goald.console_ops import DaemonOps
from goald.db.cluster import ChangeFeed, Leadership
from goald.match.changes import Changes
from goald.migrations.runner import MigrationError, migrate as apply_migrations
from goald.provider.client import ProviderClient
from goald.simulator.service import build as demo_simulator
from goald.sdnotify import Notifier
from goald.tree import DATABASE_STOP_S, Tree, stop_budget_s

# Migrations may take longer than systemd's start timeout: ask it for this much more time.
MIGRATION_START_ALLOWANCE_US = 600 * 1_000_000
# Settings a SIGHUP cannot change in a running process (they shape the pool, listener or identity).
RESTART_ONLY = ("node.", "database.", "console.", "log.format", "log.journald_prefix", "jobs.modules",
                "supervisor.", "provider.")


class _Signals:
    """Signal bookkeeping, written by handlers in the hub, read by the main greenlet."""

    def __init__(self) -> None:
        self.wake = gevent.event.Event()
        self.stops: list[str] = []
        self.reloads = 0
        self.escalated: str | None = None

    def on_stop(self, signum: int) -> None:
        self.stops.append(signal.Signals(signum).name)
        self.wake.set()

    def on_reload(self, signum: int) -> None:
        self.reloads += 1
        self.wake.set()

    def on_escalate(self, reason: str) -> None:
        self.escalated = reason
        self.wake.set()


def run(cfg: Config, *, migrate: bool = True, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    node = node_name(cfg)
    sig = _Signals()
    notifier = Notifier.from_env(unset=True)
    handlers = [gevent.signal_handler(s, sig.on_stop, s) for s in (signal.SIGTERM, signal.SIGINT)]
    handlers.append(gevent.signal_handler(signal.SIGHUP, sig.on_reload, signal.SIGHUP))
    logs.event("INFO", "goald.starting", f"goald {__version__} starting on {node}", node=node,
               version=__version__)
    try:
        return _Daemon(cfg, node, sig, notifier, environ).run(migrate)
    finally:
        for h in handlers:
            h.cancel()
        notifier.close()


class _Daemon:
    def __init__(self, cfg: Config, node: str, sig: _Signals, notifier: Notifier, environ: Mapping[str, str]):
        self.cfg, self.node, self.sig, self.notifier, self.environ = cfg, node, sig, notifier, environ
        self.root: pykka.ActorRef | None = None
        self.rt: Runtime | None = None
        self.tree: Tree | None = None
        self.root_directory: dict = {}
        self.listener = None
        self.provider = None
        self.demo_feed = None
        self.demo_population: gevent.Greenlet | None = None
        self.leadership: Leadership | None = None
        self.feed: ChangeFeed | None = None

    def run(self, migrate: bool) -> int:
        try:
            self.listener = bind_console(self.cfg["console.host"], self.cfg["console.port"])
        except ConsoleStartError as e:
            logs.event("ERROR", "console.bind_failed", f"Cannot start: {e}")
            return exitcodes.STARTUP
        try:
            return self._run_with_listener(migrate)
        finally:
            if self.listener is not None:  # never handed to the console (start-up failed before)
                self.listener.close()

    def _run_with_listener(self, migrate: bool) -> int:
        self.notifier.status("opening the database")
        try:
            db = Database.open(self.cfg)
        except DatabaseUnavailable as e:
            logs.event("ERROR", "database.unavailable", f"Database unavailable: {e}")
            return exitcodes.DATABASE
        logs.event("INFO", "database.ready", f"Database ready: {db.where}", embedded=db.embedded is not None,
                   pool_max=db.pool.maxconn)
        try:
            code = self._start(db, migrate)
            if code is not None:
                return code
            return self._serve()
        finally:
            if self.demo_population is not None:
                self.demo_population.kill(block=True, timeout=5)
            self._stop_tree()
            if self.leadership is not None:
                self.leadership.release()
            self._stop_provider()
            db.close()
            logs.event("INFO", "goald.stopped", "goald stopped")

    # --- start-up -----------------------------------------------------------------------------

    def _start(self, db: Database, migrate: bool) -> int | None:
        cfg = self.cfg
        if migrate and cfg["database.migrate_on_start"]:
            self.notifier.status("applying migrations")
            self.notifier.extend_timeout(MIGRATION_START_ALLOWANCE_US)
            try:
                applied = apply_migrations(db.dsn, node=self.node, connect_timeout_s=cfg["database.connect_timeout_s"])
            except MigrationError as e:
                logs.event("ERROR", "migrations.failed", f"Migration failed: {e}")
                return exitcodes.MIGRATION
            logs.event("INFO", "migrations.done", f"Migrations up to date ({len(applied)} applied)",
                       applied=len(applied))
        try:
            specs = catalog.load(cfg, self.environ)
        except catalog.CatalogError as e:
            for p in e.problems:
                logs.event("ERROR", "jobs.catalog_invalid", f"Job catalog: {p}")
            return exitcodes.CONFIG
        self.rt = Runtime(pool=db.pool, node=self.node, cfg=cfg, specs={s.name: s for s in specs})
        try:
            with db.pool.connection() as conn:
                self.rt.flags = flagnames.read(conn)
            rescued = ledger.rescue_orphans(db.pool, self.rt.stale_after_s)
        except Exception as e:
            logs.event("ERROR", "database.unavailable", f"Database unavailable: cannot read flags or ledger: {e}")
            return exitcodes.DATABASE
        try:
            with db.pool.connection() as conn:
                password = operators.ensure_operator(conn, node=self.node)
        except Exception as e:
            logs.event("ERROR", "database.unavailable", f"Database unavailable: cannot read the operators: {e}")
            return exitcodes.DATABASE
        if password is not None:
            # Shown once, on standard output (the journal under systemd); only its hash is stored.
            print(f"goald: no console operator existed, so one was made: name {operators.BOOTSTRAP_NAME}, "
                  f"password {password} (shown only now; change it with `goald operator passwd "
                  f"{operators.BOOTSTRAP_NAME}`)", flush=True)
            logs.event("WARNING", "console.operator_created", f"No console operator existed: made "
                       f"{operators.BOOTSTRAP_NAME} with a random password, printed once on standard output",
                       operator=operators.BOOTSTRAP_NAME)
        for job, at, owner in rescued:
            logs.event("WARNING", "job.orphan_rescued", f"Job interrupted: {job} ({at.isoformat()}) on {owner}: "
                       f"no heartbeat", job=job, node=owner, scheduled_at=at.isoformat())
        if not self._collision_check():
            return exitcodes.CONFIG
        code = self._start_provider()
        if code is not None:
            return code
        self.notifier.status("starting actors")
        changes = Changes()
        cache = self.rt.cache = cache_from_config(cfg)
        logs.event("INFO", "cache.configured", f"Cache: {cache.describe()['backend']}", backend=cache.describe()["backend"])
        pipeline = MatchPipeline(db.pool, lambda: self.rt.cfg, changes)
        # GET /metrics: the pool, provider, cache and pipeline keep their own numbers, read at scrape time.
        exposition = metrics.Exposition(pool_stats=db.pool.stats, provider_describe=self.provider.describe,
                                        cache_describe=cache.describe, matches_describe=pipeline.describe,
                                        stale_counts=metrics.stale_counts_from(db.pool))
        app = make_app(AppContext(pool=db.pool, node=self.node, database=db.where, embedded=db.embedded is not None,
                                  actors=self._describe_tree, provider=self.provider.describe, changes=changes,
                                  cluster=self._describe_cluster,
                                  cache=cache, cors_origins=parse_origins(cfg["console.cors_origins"]),
                                  metrics=exposition,
                                  auth=Auth(db.pool, self.node, lifetime_s=cfg["console.session_lifetime_s"],
                                            free_failures=cfg["console.login_free_failures"],
                                            secure_cookies=cfg["console.secure_cookies"]),
                                  ops=DaemonOps(self.rt, lambda name: self.tree.jobs_directory.get(name),
                                                doctor=lambda: doctor.run(
                                                    self.rt.cfg, db.pool, db.dsn, provider_state=self.provider.describe,
                                                    probe_provider=False).as_dict())))
        listener, self.listener = self.listener, None
        # Several nodes on one database: one leads the match pipeline, the others serve its data
        # (goald/db/cluster.py); a single node leads from its first ingest occurrence on.
        self.leadership = Leadership(db.dsn, self.node, connect_timeout_s=cfg["database.connect_timeout_s"],
                                     on_lost=pipeline.stand_down)
        self.rt.leader = self.leadership.ensure
        feed = self.feed = ChangeFeed(db.dsn, self.node, lambda: changes.bump(publish=False),
                          connect_timeout_s=cfg["database.connect_timeout_s"],
                          on_peer_invalidate=lambda kind, scope: _peer_invalidated(cache, kind, scope))
        changes.listeners.append(feed.changed)
        cache.listeners.append(feed.invalidated)      # a change this node's syncs made reaches the others' caches
        self.tree = Tree(self.rt, notifier=self.notifier, app=app, listener=listener, on_escalate=self.sig.on_escalate,
                         pipeline=pipeline, change_feed=feed)
        self.root_directory = self.tree.root_directory
        try:
            self.root = self.tree.start()
        except (pykka.ActorDeadError, pykka.Timeout, StartFailed) as e:
            logs.event("ERROR", "goald.start_failed", f"Actors did not start: {e}")
            return exitcodes.STARTUP
        if self.sig.escalated or not self.root.is_alive():
            logs.event("ERROR", "goald.start_failed", "Actors did not start; the log above says which and why")
            return exitcodes.STARTUP
        ingest.log_started(self.rt.specs, cfg)
        if self.demo_feed is not None and cfg["provider.demo_users"] > 0:
            self.demo_population = gevent.spawn(self._populate_demo, db.pool, cfg["provider.demo_users"])
        host, port = self.tree.console_address()
        logs.event("INFO", "goald.ready", f"goald ready: console on http://{host}:{port}", host=host, port=port,
                   jobs=len(specs))
        self.notifier.ready(f"ready: {len(specs)} jobs, console on {host}:{port}")
        return None

    @staticmethod
    def _populate_demo(pool, users: int) -> None:
        """The demo feed's users (goald/business/demo.py), in their own greenlet: logged once made."""
        made = demo.populate_when_matches_arrive(pool, users, sleep=gevent.sleep)
        if made:
            logs.event("INFO", "demo.population", "Demo population made for the business jobs (provider.demo_users): "
                       + ", ".join(f"{n:,} {kind.replace('_', ' ')}" for kind, n in made.items()), **made)

    def _start_provider(self) -> int | None:
        """The provider client; with no provider.base_url, the built-in simulator as a demo feed."""
        cfg = self.cfg
        if cfg["provider.base_url"]:
            self.provider = ProviderClient.from_config(cfg)
            logs.event("INFO", "provider.configured", f"Provider: {self.provider.base_url}",
                       base_url=self.provider.base_url)
        else:
            try:
                self.demo_feed = demo_simulator(seed=cfg["provider.demo_seed"], matches=cfg["provider.demo_matches"])
                self.demo_feed.start()
            except OSError as e:
                logs.event("ERROR", "provider.demo_feed_failed", f"Cannot start the demo feed on loopback: {e}")
                return exitcodes.STARTUP
            self.provider = ProviderClient.from_config(cfg, base_url=self.demo_feed.url, user=self.demo_feed.user,
                                                       secret=self.demo_feed.secret)
            logs.event("INFO", "provider.demo_feed",
                       f"No provider configured: serving the built-in simulator on {self.demo_feed.url} as a demo "
                       f"feed ({cfg['provider.demo_matches']} matches, seed {cfg['provider.demo_seed']}); set "
                       f"provider.base_url, provider.user and provider.secret for a real provider",
                       url=self.demo_feed.url, matches=cfg["provider.demo_matches"], seed=cfg["provider.demo_seed"])
        self.rt.provider = self.provider
        return None

    def _stop_provider(self) -> None:
        if self.provider is not None:
            self.provider.close()
        if self.demo_feed is not None:
            self.demo_feed.stop()

    def _collision_check(self) -> bool:
        found = collisions(self.rt.enabled_schedules(), time.time())
        refuse = self.cfg["jobs.collisions"] == "refuse"
        for c in found:
            logs.event("ERROR" if refuse else "WARNING", "jobs.collision", f"Job collision: {c.describe()}",
                       first=c.first, second=c.second, second_of_minute=c.second_of_minute)
        if found and refuse:
            logs.event("ERROR", "jobs.collision_refused",
                       f"Refusing to start: {len(found)} job collision(s) and jobs.collisions = refuse; "
                       f"change an offset ([job.<name>] offset_s) or set jobs.collisions = warn")
            return False
        return True

    def _describe_tree(self) -> dict:
        return self.tree.describe()

    def _describe_cluster(self) -> dict | None:
        """`/api/health`'s cluster part (a request's greenlet): leadership and the change feed."""
        if self.leadership is None:
            return None
        return {**self.leadership.describe(), "feed": self.feed.describe() if self.feed is not None else None}

    # --- running ------------------------------------------------------------------------------

    def _serve(self) -> int:
        while True:
            self.sig.wake.wait()
            self.sig.wake.clear()
            if self.sig.stops or self.sig.escalated:
                break
            while self.sig.reloads:
                self.sig.reloads -= 1
                self._reload()
        if self.sig.escalated:
            logs.event("ERROR", "goald.escalated", f"goald stopping: the root supervisor gave up: {self.sig.escalated}")
            return exitcodes.ESCALATED
        logs.event("INFO", "goald.stopping", f"goald stopping ({', '.join(self.sig.stops)})", signal=self.sig.stops[0])
        return exitcodes.OK

    def _reload(self) -> None:
        self.notifier.reloading("reloading configuration")
        path = self.cfg.path
        try:
            new = config_mod.load(path, self.environ, search=path is None)
            specs = catalog.load(new, self.environ)
        except (config_mod.ConfigError, catalog.CatalogError) as e:
            for p in e.problems:
                logs.event("ERROR", "config.reload_rejected", f"Reload rejected, keeping the running configuration: {p}")
            self.notifier.ready("reload rejected; running on the previous configuration")
            return
        changed = [n for n in new.values if new[n] != self.cfg[n]]
        need_restart = [n for n in changed if n.startswith(RESTART_ONLY)]
        if set(s.name for s in specs) != set(self.rt.specs):
            need_restart.append("the set of jobs")
        for n in need_restart:
            logs.event("WARNING", "config.reload_needs_restart", f"Reload: {n} changed; it takes effect at the next restart")
        applied = dict(new.values)
        for n in need_restart:
            if n in self.cfg.values:
                applied[n] = self.cfg[n]
        self.cfg = Config(values=applied, sources=new.sources, path=new.path, warnings=new.warnings, jobs=new.jobs)
        self.rt.cfg = self.cfg
        self.rt.specs = {s.name: s for s in specs if s.name in self.rt.specs} if "the set of jobs" in need_restart \
            else {s.name: s for s in specs}
        if "log.level" in changed:
            logs.setup(self.cfg["log.level"], self.cfg["log.format"], self.cfg["log.journald_prefix"])
        self.tree.set_pool_monitor_interval(self.cfg["pool_monitor.interval_s"])
        try:
            self.root_directory["clock"].tell(Replan())
        except (KeyError, pykka.ActorDeadError):
            pass  # being restarted: it reads the new runtime configuration when it starts
        applied_names = [n for n in changed if n not in need_restart]
        logs.event("INFO", "config.reloaded", f"Configuration reloaded ({len(applied_names)} setting(s) applied)",
                   applied=applied_names)
        self.notifier.ready("configuration reloaded")

    # --- stopping -----------------------------------------------------------------------------

    def _stop_tree(self) -> None:
        if self.root is None:
            return
        timeout = self.cfg["jobs.shutdown_timeout_s"]
        self.notifier.stopping(f"stopping: running jobs get up to {timeout:g}s, goald up to "
                               f"{stop_budget_s(self.cfg):g}s")
        watcher = gevent.spawn(self._watch_second_signal, len(self.sig.stops))
        try:
            self.tree.stop()
        except pykka.Timeout:
            logs.event("ERROR", "goald.stop_timeout",
                       f"Actors did not stop within goald's stop budget ({stop_budget_s(self.cfg) - DATABASE_STOP_S:g}s "
                       f"before the database's share); leaving what is left")
        finally:
            watcher.kill(block=False)

    def _watch_second_signal(self, seen: int) -> None:
        while True:
            self.sig.wake.wait()
            self.sig.wake.clear()
            if len(self.sig.stops) > seen:
                logs.event("WARNING", "goald.cold_shutdown", "Second stop signal: cancelling running jobs now")
                self.rt.shutdown.begin_cold()
                return


def _peer_invalidated(cache, kind: str, scope: str) -> None:
    """Another node invalidated cached answers (the change feed's greenlet): drop ours too."""
    if scope == "*":
        cache.invalidate_kind(kind, publish=False)
    else:
        cache.invalidate(kind, scope, publish=False)
