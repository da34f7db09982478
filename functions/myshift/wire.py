"""The one place myshift reaches into pymysql's internals.

`source.stream_lines` reads the row packets of a one-column text result straight off the
socket, past pymysql (see there for why). For that it needs connection state pymysql
does not publish; this module is the only one that touches it, through a narrow API:

- `UnbufferedResult.start(conn, sql)`: send a query unbuffered and hand over its rows;
- `UnbufferedResult.read_some` / `read_exactly`, `field_count`, `seq`: what the caller
  needs to read and check the row packets itself;
- `finish` / `raise_server_error` / `abandon`: give the connection back to pymysql in
  a state it accepts (the result read to its end, the server's error raised as pymysql
  raises it, or the connection closed mid-result);
- `server_capabilities(conn)`: the handshake's capability flags.

What it relies on in pymysql (pinned in requirements.txt and layers/requirements.txt),
listed in `RELIES_ON`: tests/integration/test_wire.py checks each on a real connection
and names the one a pymysql upgrade changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

import pymysql
from pymysql.connections import MySQLResult
from pymysql.protocol import MysqlPacket

# (owner, name, what it is and how it is used): the contract with pymysql, checked by
# tests/integration/test_wire.py. Keep it in step with the code below. The last packet
# of a result must be an EOF packet (`source.split_rows` ends on it): pymysql does not
# ask for CLIENT.DEPRECATE_EOF, which would end it with an OK packet instead.
RELIES_ON: tuple[tuple[str, str, str], ...] = (
    ("Connection", "query", "method query(sql, unbuffered=False): sends, reads the header"),
    ("Connection", "_result", "MySQLResult of the last query (None before one)"),
    ("Connection", "_rfile", "the socket's buffered reader: read1(n) and read(n)"),
    ("Connection", "_next_seq_id", "int, read and written: the next packet's sequence"),
    ("Connection", "_force_close", "method _force_close(): close without QUIT"),
    ("Connection", "server_capabilities", "int, set by the handshake (absent before)"),
    ("Connection", "encoding", "str, the Python codec of the connection's charset"),
    ("Connection", "client_flag", "int without CLIENT.DEPRECATE_EOF: rows end with EOF"),
    ("MySQLResult", "field_count", "int, the result's number of columns"),
    ("MySQLResult", "unbuffered_active", "bool, read and written: rows still on the wire"),
    ("MySQLResult", "has_next", "written: more result sets follow"),
    ("MySQLResult", "connection", "written None: the result is done with the connection"),
    ("MysqlPacket", "raise_for_error", "MysqlPacket(payload, encoding).raise_for_error()"),
)


def server_capabilities(conn: pymysql.Connection) -> int:
    """The capability flags the server sent in its handshake (0 if it sent none)."""
    return getattr(conn, "server_capabilities", 0)


class UnbufferedResult:
    """A result set whose row packets the caller reads off the socket itself.

    Made by `start`. The caller reads bytes with `read_some(n)` (up to n, at least one,
    b"" at the end of the stream) and `read_exactly(n)` (n, fewer only at the end), the
    first row packet carrying sequence number `seq`; and ends with exactly one of
    `finish`, `raise_server_error` or `abandon`, after which pymysql owns the connection
    again (`abandon`: closed; the next `connect()` starts clean).
    """

    __slots__ = ("_conn", "_result", "field_count", "read_exactly", "read_some", "seq")

    def __init__(self, conn: pymysql.Connection, result: MySQLResult) -> None:
        self._conn = conn
        self._result = result
        self.field_count: int = result.field_count
        self.seq: int = conn._next_seq_id
        rfile = conn._rfile
        self.read_some: Callable[[int], bytes] = rfile.read1
        self.read_exactly: Callable[[int], bytes] = rfile.read

    @classmethod
    def start(cls, conn: pymysql.Connection, sql: str) -> UnbufferedResult | None:
        """Send `sql` unbuffered; its result, or None if it returned no result set.

        pymysql reads the column count and definitions; the rows are left on the wire.
        """
        conn.query(sql, unbuffered=True)
        result = conn._result
        if result is None or not result.unbuffered_active:
            return None
        return cls(conn, result)

    def finish(self, next_seq: int, more_results: bool) -> None:
        """The caller read the EOF packet; `next_seq` is the sequence number after it."""
        result = self._result
        result.unbuffered_active = False
        result.has_next = more_results
        result.connection = None
        self._conn._next_seq_id = next_seq

    def raise_server_error(self, payload: bytes | bytearray) -> NoReturn:
        """The caller read an error packet (`payload`: without its header): raise it.

        The exception is the one pymysql raises for it (`pymysql.err.*`, by its code).
        """
        result = self._result
        result.unbuffered_active = False
        result.connection = None
        MysqlPacket(payload, self._conn.encoding).raise_for_error()
        raise pymysql.err.InternalError(0, "pymysql did not raise a server error packet")

    def abandon(self) -> None:
        """Close the connection mid-result, so that a reconnect starts clean."""
        conn = self._conn
        if conn._result is not None:
            conn._result.unbuffered_active = False  # else connect() would drain the old socket
            conn._result = None
        conn._force_close()
