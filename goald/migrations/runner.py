"""Applying sql/NNNN_name.sql migrations, once each, in order, under an advisory lock.

`migrate()` runs in the calling greenlet on a dedicated connection (not a pool connection: a
migration may legitimately run longer than the pool's statement_timeout). It takes a
session-level advisory lock first, so two goald processes starting together apply each file once:
the second waits, then finds nothing left to do. A transactional file is applied and recorded in
`schema_migrations` in one transaction; a file holding statements that cannot run in a
transaction (CREATE INDEX CONCURRENTLY, ...) runs statement by statement in autocommit and is
recorded when all succeeded (such statements must be re-runnable; the validator insists).
Failures raise `MigrationError` naming file and line; nothing after the failing file is applied.
"""
from __future__ import annotations

import importlib.resources
import re
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.errors

from goald import logs
from goald.migrations.sqlfile import MigrationFile, MigrationFileError, discover
from goald.redact import mask_dsn

# pg_advisory_lock key owned by goald's migration runner ("goald" in ASCII, as a bigint).
LOCK_KEY = 0x676F616C64
DEFAULT_LOCK_WAIT_S = 300.0
LOCK_POLL_FIRST_S, LOCK_POLL_MAX_S = 0.05, 1.0

SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    applied_by  text NOT NULL
)"""


class MigrationError(Exception):
    """A migration could not be applied; str() is 'file:line: reason'."""


@dataclass(frozen=True)
class Applied:
    version: int
    name: str
    duration_ms: int


def default_dir() -> Path:
    """The migrations shipped with this goald (package data `goald.sql`)."""
    return Path(str(importlib.resources.files("goald.sql")))


def migrate(dsn: str, directory: Path | None = None, *, node: str = "goald",
            lock_wait_s: float = DEFAULT_LOCK_WAIT_S, connect_timeout_s: float = 5.0) -> list[Applied]:
    """Apply every pending migration; return what this call applied (empty when up to date)."""
    files = _files(directory)
    conn = _connect(dsn, connect_timeout_s)
    try:
        _lock(conn, lock_wait_s)
        try:
            with conn.cursor() as cur:
                cur.execute(SCHEMA_MIGRATIONS)
                cur.execute("SELECT version, name, checksum FROM schema_migrations")
                done = {v: (n, c) for v, n, c in cur.fetchall()}
            _warn_about_drift(files, done)
            applied = []
            for f in files:
                if f.version not in done:
                    applied.append(_apply(conn, f, node))
            return applied
        finally:
            _unlock(conn)
    finally:
        conn.close()


def pending(dsn: str, directory: Path | None = None, *, connect_timeout_s: float = 5.0) -> list[MigrationFile]:
    """Migrations not yet recorded in schema_migrations (all of them on an empty database)."""
    files = _files(directory)
    conn = _connect(dsn, connect_timeout_s)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
            if not cur.fetchone()[0]:
                return files
            cur.execute("SELECT version FROM schema_migrations")
            done = {r[0] for r in cur.fetchall()}
        return [f for f in files if f.version not in done]
    finally:
        conn.close()


def shipped(directory: Path | None = None) -> list[MigrationFile]:
    """The migrations this goald ships (or those in `directory`), in order."""
    return _files(directory)


def _files(directory: Path | None) -> list[MigrationFile]:
    try:
        return discover(directory or default_dir())
    except MigrationFileError as e:
        raise MigrationError(str(e)) from None


def _connect(dsn: str, connect_timeout_s: float):
    try:
        conn = psycopg2.connect(dsn, connect_timeout=max(1, int(connect_timeout_s)),
                                application_name="goald-migrate", options="-c statement_timeout=0")
    except psycopg2.OperationalError as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise MigrationError(f"cannot connect to {mask_dsn(dsn)}: {reason}") from None
    conn.autocommit = True
    return conn


def _lock(conn, lock_wait_s: float) -> None:
    """Take the session lock, polling with pg_try_advisory_lock rather than waiting inside
    pg_advisory_lock: a waiting statement holds a snapshot, and CREATE INDEX CONCURRENTLY in the
    holder's migration waits for every older snapshot of the database, so a blocked waiter would
    deadlock with it. Between polls this connection holds nothing (autocommit)."""
    deadline = time.monotonic() + lock_wait_s
    delay = LOCK_POLL_FIRST_S
    with conn.cursor() as cur:
        while True:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            if cur.fetchone()[0]:
                return
            if time.monotonic() >= deadline:
                raise MigrationError(
                    f"another process held the migration lock for over {lock_wait_s:g} s; is a migration "
                    f"still running? (pg_locks: locktype advisory, objid {LOCK_KEY & 0xFFFFFFFF})")
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, LOCK_POLL_MAX_S)


def _unlock(conn) -> None:
    """Release the migration lock. A lost connection (server restart, terminated backend) has
    released it already: it is a session lock. Never let this hide the MigrationError at hand."""
    if conn.closed:
        return
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    except psycopg2.Error:
        pass  # conn.close() in the caller ends the session, and the lock with it


def _warn_about_drift(files: list[MigrationFile], done: dict[int, tuple[str, str]]) -> None:
    known = {f.version: f for f in files}
    for version, (name, checksum) in sorted(done.items()):
        f = known.get(version)
        if f is None:
            logs.event("WARNING", "migrations.unknown_applied",
                       f"Migration {version:04d}_{name} is applied in the database but unknown to this goald "
                       f"(an older goald on a newer schema?)", version=version)
        elif f.checksum != checksum:
            logs.event("WARNING", "migrations.changed_after_apply",
                       f"Migration {f.path.name} changed after it was applied; the change is NOT applied. "
                       f"Put schema changes in a new file", version=version)


def _pg_reason(e: psycopg2.Error) -> str:
    """One line: the server's message plus its DETAIL (e.g. which key is duplicated)."""
    diag = getattr(e, "diag", None)
    primary = diag.message_primary if diag is not None and diag.message_primary else None
    reason = primary or (str(e).strip().splitlines() or [type(e).__name__])[0]
    if diag is not None and diag.message_detail:
        reason += f" ({diag.message_detail.strip()})"
    return reason


INVALID_INDEXES = """
SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE NOT i.indisvalid AND pg_catalog.pg_table_is_visible(c.oid)
"""


def _refuse_invalid_indexes(cur, f: MigrationFile) -> None:
    """A CREATE INDEX CONCURRENTLY that failed leaves an INVALID index behind; re-running the file
    skips it (IF NOT EXISTS) and would record a broken index as applied. Refuse instead."""
    cur.execute(INVALID_INDEXES)
    for (name,) in cur.fetchall():
        stmt = next((s for s in f.statements if re.search(rf"\b{re.escape(name)}\b", s.sql, re.I)), None)
        if stmt is not None:
            raise MigrationError(
                f"{f.path}:{stmt.line}: index {name} is INVALID (an earlier CREATE INDEX CONCURRENTLY failed "
                f"part-way): run DROP INDEX CONCURRENTLY {name}; fix the cause, then goald migrate again")


def _apply(conn, f: MigrationFile, node: str) -> Applied:
    logs.event("INFO", "migrations.apply", f"Applying migration {f.path.name}",
               version=f.version, transactional=f.transactional)
    started = time.monotonic()
    stmt = None
    try:
        with conn.cursor() as cur:
            if f.transactional:
                cur.execute("BEGIN")
            for stmt in f.statements:
                cur.execute(stmt.sql)
            if not f.transactional:
                _refuse_invalid_indexes(cur, f)
            duration_ms = int((time.monotonic() - started) * 1000)
            cur.execute(
                "INSERT INTO schema_migrations (version, name, checksum, duration_ms, applied_by) "
                "VALUES (%s, %s, %s, %s, %s)", (f.version, f.name, f.checksum, duration_ms, node))
            if f.transactional:
                cur.execute("COMMIT")
    except psycopg2.Error as e:
        if f.transactional and not conn.closed:
            with conn.cursor() as cur:
                cur.execute("ROLLBACK")
        line = stmt.line if stmt is not None else 0
        reason = _pg_reason(e)
        outcome = ("the file was rolled back" if f.transactional else
                   "statements before this one stay applied; they are re-runnable, fix and run again")
        raise MigrationError(f"{f.path}:{line}: {reason} ({outcome})") from None
    logs.event("INFO", "migrations.applied", f"Applied migration {f.path.name} ({duration_ms}ms)",
               version=f.version, duration_ms=duration_ms)
    return Applied(f.version, f.name, duration_ms)
