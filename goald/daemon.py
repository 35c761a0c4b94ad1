"""`goald run`: start-up, the wait for a stop signal, and an orderly stop.

Runs in the main greenlet. Start-up order: database (embedded PostgreSQL when no database.url),
migrations (unless switched off), PoolMonitor, HTTP listener. SIGTERM or SIGINT (Ctrl-C) stop in
reverse order and stop the embedded PostgreSQL last; the exit code is 0. A failing start-up step
logs one line saying what to do, undoes what was started and returns its exit code (see
goald.exitcodes). The actor runtime (supervisor, clock, jobs) arrives with its own issue and will
take the place of the PoolMonitor greenlet here.
"""
from __future__ import annotations

import signal

import gevent
import gevent.event

from goald import __version__, exitcodes, logs
from goald.config import Config
from goald.console.app import AppContext, make_app
from goald.console.server import ConsoleStartError, HttpServer
from goald.db.database import Database, node_name
from goald.db.pool import DatabaseUnavailable
from goald.migrations.runner import MigrationError, migrate as apply_migrations
from goald.pool_monitor import PoolMonitor

STOP_TIMEOUT_S = 10.0


def run(cfg: Config, *, migrate: bool = True) -> int:
    node = node_name(cfg)
    stop = gevent.event.Event()
    received: list[str] = []

    def on_signal(signum: int) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    handlers = [gevent.signal_handler(sig, on_signal, sig) for sig in (signal.SIGTERM, signal.SIGINT)]
    logs.event("INFO", "goald.starting", f"goald {__version__} starting on {node}", node=node,
               version=__version__)
    try:
        return _run(cfg, node, stop, received, migrate)
    finally:
        for h in handlers:
            h.cancel()


def _run(cfg: Config, node: str, stop: gevent.event.Event, received: list[str], migrate: bool) -> int:
    try:
        db = Database.open(cfg)
    except DatabaseUnavailable as e:
        logs.event("ERROR", "database.unavailable", f"Database unavailable: {e}")
        return exitcodes.DATABASE
    logs.event("INFO", "database.ready", f"Database ready: {db.where}", embedded=db.embedded is not None,
               pool_max=db.pool.maxconn)
    monitor = server = None
    try:
        if migrate and cfg["database.migrate_on_start"]:
            try:
                applied = apply_migrations(db.dsn, node=node, connect_timeout_s=cfg["database.connect_timeout_s"])
            except MigrationError as e:
                logs.event("ERROR", "migrations.failed", f"Migration failed: {e}")
                return exitcodes.MIGRATION
            logs.event("INFO", "migrations.done", f"Migrations up to date ({len(applied)} applied)",
                       applied=len(applied))
        monitor = PoolMonitor(db.pool, node=node, interval_s=cfg["pool_monitor.interval_s"],
                              retention_days=cfg["pool_monitor.retention_days"])
        monitor.start()
        app = make_app(AppContext(pool=db.pool, node=node, database=db.where, embedded=db.embedded is not None))
        server = HttpServer(app, cfg["console.host"], cfg["console.port"])
        try:
            server.start()
        except ConsoleStartError as e:
            logs.event("ERROR", "console.bind_failed", str(e))
            return exitcodes.STARTUP
        logs.event("INFO", "goald.ready", f"goald ready: console on http://{server.host}:{server.port}",
                   host=server.host, port=server.port)
        stop.wait()
        logs.event("INFO", "goald.stopping", f"goald stopping ({', '.join(received) or 'requested'})",
                   signal=received[0] if received else None)
        return exitcodes.OK
    finally:
        if server is not None:
            server.stop(timeout_s=STOP_TIMEOUT_S / 2)
        if monitor is not None:
            monitor.stop()
        db.close()
        logs.event("INFO", "goald.stopped", "goald stopped")
