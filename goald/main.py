"""The `goald` console script's entry point.

gevent's monkey-patching must come before any other import (sockets, threads, ssl, time), then
psycogreen makes psycopg2 wait cooperatively. Only then is the rest of goald imported.
"""
from gevent import monkey

monkey.patch_all()

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

import sys  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from goald.cli import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
