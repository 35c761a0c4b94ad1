"""`goald operator`: the console's operators (goald/operators.py), from the command line.

    goald operator list [--json]                      names, roles, when their password changed
    goald operator add NAME [--read-only] [PASSWORD]  a new operator (admin unless --read-only)
    goald operator passwd NAME [PASSWORD]             a new password; their sessions end
    goald operator remove NAME                        remove (never the last admin)

PASSWORD: typed twice at a terminal (not echoed), `--password-stdin` (one line from standard
input, for scripts), or `--generate` (a random one, printed once). Every change is in the audit
trail with the Unix user who made it. Runs in the main greenlet as a one-shot command against
the configured database.
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys

from goald import exitcodes, operators
from goald.cli_jobs import _who, database_failure


def add_parser(sub, common, epilog: str) -> None:
    p = sub.add_parser("operator", parents=[common], help="manage the console's operators (add, passwd, remove)",
                       description=__doc__.split("\n\n")[1], epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("list", "add", "passwd", "remove"))
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--read-only", action="store_true", help="add: may look at the console but change nothing")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    how.add_argument("--generate", action="store_true", help="make a random password and print it once")
    p.add_argument("--json", action="store_true", help="list: machine-readable output")


def _password(args, fail) -> str | None:
    if args.generate:
        return operators.new_password()
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        fail("operator", "no terminal to type a password at: use --password-stdin or --generate")
        return None
    first = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Again: ") != first:
        fail("operator", "the two passwords differ; nothing changed")
        return None
    return first


def cmd_operator(args, open_database, fail) -> int:
    if args.action != "list" and not args.name:
        fail("operator", f"usage: goald operator {args.action} NAME")
        return exitcodes.CONFIG
    password = None
    if args.action in ("add", "passwd"):
        try:
            operators.check_name(args.name)
            password = _password(args, fail)
            if password is None:
                return exitcodes.CONFIG
            operators.check_password(password)
        except operators.OperatorError as e:
            fail("operator", str(e))
            return exitcodes.CONFIG
    cfg, db, code = open_database(args)
    if db is None:
        return code
    from goald.db.database import node_name

    node, by = node_name(cfg), _who()
    try:
        with db.pool.connection() as conn:
            if args.action == "list":
                return _list(conn, args.json)
            if args.action == "add":
                role = "readonly" if args.read_only else "admin"
                operators.add(conn, args.name, operators.hash_password(password), role, by=by, node=node)
                print(f"operator {args.name} added ({role})")
            elif args.action == "passwd":
                ended = operators.set_password(conn, args.name, operators.hash_password(password), by=by, node=node)
                print(f"password of {args.name} changed; {ended} session(s) ended")
            else:
                operators.remove(conn, args.name, by=by, node=node)
                print(f"operator {args.name} removed")
            if args.generate:
                print(f"password: {password}  (shown once)")
            return exitcodes.OK
    except operators.OperatorError as e:
        fail("operator", str(e))
        return exitcodes.CONFIG
    except Exception as e:  # psycopg2 errors: missing table, connection lost
        return database_failure(fail, "operator", "operators", e)
    finally:
        db.close()


def _list(conn, as_json: bool) -> int:
    ops = operators.list_all(conn)
    if as_json:
        print(json.dumps([{"name": o.name, "role": o.role, "created_at": o.created_at.isoformat(timespec="seconds"),
                           "password_changed_at": o.password_changed_at.isoformat(timespec="seconds")}
                          for o in ops], indent=2))
        return exitcodes.OK
    if not ops:
        print("no operators (the next `goald run` makes one, or: goald operator add NAME)")
    for o in ops:
        print(f"{o.name:<24} {o.role:<9} password changed {o.password_changed_at:%Y-%m-%d %H:%M}")
    return exitcodes.OK
