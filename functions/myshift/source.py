"""MySQL connections: timeouts set, errors classified, secrets kept out of messages."""

from __future__ import annotations

import pymysql
import pymysql.cursors
from pymysql.constants import ER

from myshift.config import SourceConfig
from myshift.errors import SourceQueryError, SourceUnavailableError

# Client-side and server-side codes that mean "the connection is gone, try again".
_CONNECTION_LOST = {2003, 2006, 2013, 2055, ER.CON_COUNT_ERROR, ER.SERVER_SHUTDOWN}


def connect(source: SourceConfig, password: str, *, utc: bool = True) -> pymysql.Connection:
    """Open a MySQL connection (autocommit, utf8mb4, UTC session unless `utc=False`).

    A refused or unreachable server is a `SourceUnavailableError` (retried); a refused
    login is a `SourceQueryError`. Messages never contain the password.
    """
    try:
        return pymysql.connect(
            host=source.host,
            port=source.port,
            user=source.user,
            password=password,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=source.connect_timeout_seconds,
            read_timeout=source.read_timeout_seconds,
            write_timeout=source.read_timeout_seconds,
            init_command="SET time_zone = '+00:00'" if utc else None,
        )
    except pymysql.err.OperationalError as exc:
        raise classify(exc, f"{source.user}@{source.host}:{source.port}") from None


def classify(exc: pymysql.MySQLError, where: str) -> SourceUnavailableError | SourceQueryError:
    """Map a pymysql error to a transient or terminal myshift error (one line, no secret)."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    message = f"MySQL {where}: ({code}) {text}".splitlines()[0]
    if code in _CONNECTION_LOST or isinstance(exc, pymysql.err.InterfaceError):
        return SourceUnavailableError(message)
    return SourceQueryError(message)


def query_all(conn: pymysql.Connection, sql: str, params: tuple | list = ()) -> list[tuple]:
    """Run one query and return every row; pymysql errors become myshift errors."""
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
    except pymysql.MySQLError as exc:
        raise classify(exc, f"{conn.host}:{conn.port}") from None


def query_dicts(conn: pymysql.Connection, sql: str, params: tuple | list = ()) -> list[dict]:
    """Run one query and return rows as dicts."""
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
    except pymysql.MySQLError as exc:
        raise classify(exc, f"{conn.host}:{conn.port}") from None
