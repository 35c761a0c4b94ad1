"""`goald jobs`: the catalog with effective offsets and next starts, collisions, and the job flags.

    goald jobs [--collisions] [--json]        every job: schedule, effective offset, enabled,
                                              timeout, overlap policy, next three start times
    goald jobs enable|disable NAME [--reason]  persist job.<NAME>.enabled (audited)
    goald jobs stagger on|off [--reason]       persist stagger.enabled: the seeds' 30-second rollback

Runs in the main greenlet as a one-shot command against the configured database (the flags table
decides what is enabled). A running goald picks flag changes up within `jobs.flag_poll_s`; no
restart. Exit codes: 0; 1 when --collisions finds any; 2 bad name or configuration; 3 database.
"""
from __future__ import annotations

import getpass
import json
import os
import time
from datetime import datetime, timezone

from goald import exitcodes, flags as flagnames

NEXT_STARTS = 3


def add_parser(sub, common, epilog: str) -> None:
    p = sub.add_parser("jobs", parents=[common], help="list jobs, their next starts and collisions; toggle flags",
                       description=__doc__.split("\n\n")[1], epilog=epilog,
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="?", choices=("list", "enable", "disable", "stagger"), default="list",
                   help="list (default), enable NAME, disable NAME, stagger on|off")
    p.add_argument("target", nargs="?", metavar="NAME|on|off", help="the job (enable/disable) or on|off (stagger)")
    p.add_argument("--collisions", action="store_true",
                   help="list only pairs of enabled jobs starting in the same second (exit 1 if any)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--reason", help="why (kept in the flag audit trail)")


def cmd_jobs(args, open_database, fail) -> int:
    cfg, db, code = open_database(args)
    if db is None:
        return code
    try:
        from goald.actors import catalog

        try:
            specs = catalog.load(cfg, os.environ)
        except catalog.CatalogError as e:
            for p in e.problems:
                fail("jobs", p)
            return exitcodes.CONFIG
        try:
            with db.pool.connection() as conn:
                if args.action == "list":
                    flags = flagnames.read(conn)
                    return _list(args, cfg, specs, flags)
                return _set(args, conn, cfg, specs, db, fail)
        except Exception as e:  # psycopg2 errors: missing table, connection lost
            return database_failure(fail, "jobs", "flags", e)
    finally:
        db.close()


def _runtime_view(cfg, specs, flags):
    from goald.actors.runtime import Runtime

    return Runtime(pool=None, node="", cfg=cfg, specs={s.name: s for s in specs}, flags=flags)


def _list(args, cfg, specs, flags) -> int:
    from goald.actors.schedule import collisions, is_poller

    rt = _runtime_view(cfg, specs, flags)
    now = time.time()
    rows = []
    for s in specs:
        sched = rt.effective_schedule(s.name)
        starts = sched.occurrences(now, now + 366 * 86400, limit=NEXT_STARTS)
        rows.append({
            "name": s.name, "schedule": s.schedule.cron or f"every {s.schedule.every_s}s",
            "catalog_offset_s": s.schedule.offset_s, "offset_s": sched.offset_s,
            "staggered": rt.stagger_enabled() and rt.job_stagger(s.name) and sched.offset_s > 0,
            "enabled": rt.job_enabled(s.name), "timeout_s": s.timeout_s, "overlap": s.overlap,
            "next_starts": [_iso(t) for t in starts], "description": s.description,
        })
    enabled = rt.enabled_schedules()
    found = collisions(enabled, now)
    pairs = [{"first": c.first, "second": c.second, "second_of_minute": c.second_of_minute,
              "first_at": _iso(c.at), "count_24h": c.count, "message": c.describe()} for c in found]
    if args.collisions:
        if args.json:
            print(json.dumps({"collisions": pairs}, indent=2))
        elif pairs:
            for p in pairs:
                print(f"collision: {p['message']}")
        else:
            print(f"no collisions among {len(enabled)} enabled jobs (next 24 h)")
        pollers = sorted(n for n, sched in enabled.items() if is_poller(sched))
        if pollers and not args.json:
            print(f"sub-minute pollers, checked among themselves (not against jobs of a minute or longer): "
                  f"{', '.join(f'{n} ({enabled[n].describe()})' for n in pollers)}")
        return exitcodes.CHECK_FAILED if pairs else exitcodes.OK
    if args.json:
        print(json.dumps({"stagger_enabled": rt.stagger_enabled(), "jobs": rows, "collisions": pairs}, indent=2))
        return exitcodes.OK
    print(f"stagger {'enabled' if rt.stagger_enabled() else 'disabled'}; {len(rows)} jobs; times in UTC")
    header = f"{'JOB':<22} {'SCHEDULE':<16} {'OFFSET':>6} {'ENABLED':<7} {'TIMEOUT':>8}  NEXT STARTS"
    print(header)
    for r in rows:
        nxt = ", ".join(t[11:19] for t in r["next_starts"])
        print(f"{r['name']:<22} {r['schedule']:<16} {'+' + str(r['offset_s']) + 's':>6} "
              f"{'yes' if r['enabled'] else 'no':<7} {r['timeout_s']:>7g}s  {nxt}")
    for p in pairs:
        print(f"warning: collision: {p['message']}")
    return exitcodes.OK


def _set(args, conn, cfg, specs, db, fail) -> int:
    from goald.db.database import node_name

    names = [s.name for s in specs]
    if args.action == "stagger":
        if args.target not in ("on", "off"):
            fail("jobs", "usage: goald jobs stagger on|off [--reason TEXT]")
            return exitcodes.CONFIG
        name, value, default = flagnames.STAGGER, args.target == "on", cfg["jobs.stagger_enabled"]
    else:
        if not args.target:
            fail("jobs", f"usage: goald jobs {args.action} NAME (one of: {', '.join(names)})")
            return exitcodes.CONFIG
        if args.target not in names:
            from goald.config import _suggest

            fail("jobs", f"no job named {args.target!r}{_suggest(args.target, names, kind='job')}; "
                         f"`goald jobs` lists them")
            return exitcodes.CONFIG
        spec = next(s for s in specs if s.name == args.target)
        name, value, default = flagnames.job_enabled(args.target), args.action == "enable", spec.enabled
    change = flagnames.set_flag(conn, name, value, by=_who(), node=node_name(cfg), reason=args.reason,
                                default=default)
    word = "on" if value else "off"
    if not change.changed:
        print(f"{name} is already {word}; nothing changed")
    else:
        print(f"{name}: {'on' if change.old else 'off'} -> {word} (a running goald applies it within "
              f"{cfg['jobs.flag_poll_s']:g}s)")
    return exitcodes.OK


def database_failure(fail, command: str, table: str, e: Exception) -> int:
    """A one-shot command's database error, in one line (a table missing: the schema is not
    migrated yet); returns the exit code."""
    if table in str(e) and "does not exist" in str(e):
        fail(command, f"the {table} table does not exist yet: run `goald migrate` (or start `goald run` once)")
    else:
        fail(command, f"database error: {str(e).strip().splitlines()[0]}")
    return exitcodes.DATABASE


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = f"uid {os.getuid()}"
    return f"{user} (cli)"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
