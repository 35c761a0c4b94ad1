"""`goald audit matches`: check the match tables against the invariants that can be checked after
the fact (goald/match/audit.py), listing each violation.

    goald audit matches [--json]      exit 0: none; 1: violations, one line each on stdout

Runs in the main greenlet as a one-shot, read-only command against the configured database.
Exit codes: 0 clean; 1 violations; 2 configuration; 3 database (unreachable, or not migrated).
"""
from __future__ import annotations

import argparse
import json
import time

from goald import exitcodes


def add_parser(sub, common, epilog: str) -> None:
    p = sub.add_parser("audit", parents=[common], help="check the match tables' invariants (exit 1 on a violation)",
                       description=__doc__.split("\n\n")[0], epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("matches",), help="what to audit: matches")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_audit(args, open_database, fail) -> int:
    from psycopg2 import errors

    from goald.match import audit

    _, db, code = open_database(args)
    if db is None:
        return code
    now = time.time()
    try:
        with db.pool.connection() as conn:
            checked, violations = audit.run(conn, now)
            conn.rollback()
    except (errors.UndefinedTable, errors.UndefinedColumn) as e:
        fail(args.command, f"{db.where} lacks the match tables ({e.diag.message_primary}): run `goald migrate` first")
        return exitcodes.DATABASE
    finally:
        db.close()
    if args.json:
        print(json.dumps({"checked": checked, "checks": {k: v[0] for k, v in audit.CHECKS.items()},
                          "violations": [v.__dict__ for v in violations]}, indent=2))
    else:
        for v in violations:
            print(v.line())
        print(f"{checked} match(es) checked against {len(audit.CHECKS)} invariants: "
              + (f"{len(violations)} violation(s)" if violations else "no violation"))
    return exitcodes.CHECK_FAILED if violations else exitcodes.OK
