"""The test PostgreSQL: throw-away databases."""

from __future__ import annotations

import psycopg
from psycopg import sql as pgsql

from tests.conftest import POSTGRES_ADMIN_DSN


def database_dsn(name: str) -> str:
    """The DSN of database `name` on the test server."""
    return POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    """Drop database `name` if it exists, closing its sessions."""
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(
            pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name))
        )


def drop_role(name: str) -> None:
    """Drop a role (a stand-in's database user) if it exists; roles are server-wide."""
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(name)))
