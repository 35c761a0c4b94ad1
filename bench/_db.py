"""Throwaway databases for the benches: create and drop on a maintenance connection (autocommit)."""
import psycopg2
from psycopg2 import sql


def admin(maintenance_dsn: str, statement) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
    conn = psycopg2.connect(maintenance_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def create_database(maintenance_dsn: str, name: str) -> None:
    admin(maintenance_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(maintenance_dsn: str, name: str) -> None:
    admin(maintenance_dsn, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
