"""Which PostgreSQL goald uses, and the pool onto it.

`Database.open(cfg)` runs in the main greenlet at start-up: with `database.url` set it uses that
server; otherwise it starts the embedded PostgreSQL in the data directory (as root: run by
`database.embedded_user`, behind a password that only the DSN held here carries; `where`, the
text logs and the console show, never includes it). Either way it opens the
pool and checks that one query answers, raising `DatabaseUnavailable` (exit code 3 at the CLI)
with a message that says what to do. `close()` closes the pool and stops the embedded server if
goald started it.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Mapping

from goald.config import Config
from goald.db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from goald.db.pool import DatabaseUnavailable, Pool
from goald.redact import mask_dsn


ROOT_DATA_DIR = Path("/var/lib/goald")  # FHS: a system service's state; /var/lib is traversable by all


def data_dir(cfg: Config, environ: Mapping[str, str] | None = None) -> Path:
    """database.data_dir, else $STATE_DIRECTORY (systemd), else /var/lib/goald as root (whose home
    the embedded PostgreSQL's user cannot enter), else $XDG_DATA_HOME/goald, ~/.local/share/goald."""
    environ = os.environ if environ is None else environ
    if cfg["database.data_dir"]:
        return Path(cfg["database.data_dir"]).expanduser()
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0])
    if os.geteuid() == 0:
        return ROOT_DATA_DIR
    if environ.get("XDG_DATA_HOME"):
        return Path(environ["XDG_DATA_HOME"]) / "goald"
    return Path.home() / ".local" / "share" / "goald"


def node_name(cfg: Config) -> str:
    return cfg["node.name"] or socket.gethostname()


class Database:
    """The DSN in use, the embedded server (when goald runs one) and the pool."""

    def __init__(self, dsn: str, pool: Pool, embedded: EmbeddedPostgres | None):
        self.dsn, self.pool, self.embedded = dsn, pool, embedded

    @classmethod
    def open(cls, cfg: Config, *, pool_max: int | None = None, pool_min: int | None = None,
             environ: Mapping[str, str] | None = None) -> "Database":
        embedded = None
        dsn = cfg["database.url"]
        if not dsn:
            embedded = EmbeddedPostgres(data_dir(cfg, environ), user=cfg["database.embedded_user"])
            try:
                dsn = embedded.start()
            except EmbeddedPostgresError as e:
                raise DatabaseUnavailable(str(e)) from None
        try:
            pool = Pool(
                dsn,
                maxconn=pool_max or cfg["database.pool_max"],
                minconn=cfg["database.pool_min"] if pool_min is None else pool_min,
                timeout_s=cfg["database.pool_timeout_s"],
                connect_timeout_s=cfg["database.connect_timeout_s"],
                statement_timeout_ms=cfg["database.statement_timeout_ms"],
                application_name=f"goald@{node_name(cfg)}"[:63],
            )
            with pool.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
        except BaseException:
            if embedded is not None:
                embedded.stop()
            raise
        return cls(dsn, pool, embedded)

    @property
    def where(self) -> str:
        """Human description for logs: the masked DSN or the embedded data directory."""
        if self.embedded is not None:
            return f"embedded PostgreSQL in {self.embedded.pgdata}"
        return mask_dsn(self.dsn)

    def close(self) -> None:
        self.pool.close()
        if self.embedded is not None:
            self.embedded.stop()
