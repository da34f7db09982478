"""MySQL connections: timeouts set, errors classified, secrets kept out of messages."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pymysql.cursors
from pymysql.constants import CR, ER, SERVER_STATUS
from pymysql.protocol import MysqlPacket

from myshift.config import SourceConfig
from myshift.errors import SourceQueryError, SourceUnavailableError

# Client-side and server-side codes that mean "the connection is gone, try again":
# refused, gone away, lost during a query, too many connections, shutdown, our query or
# connection killed from another session (MariaDB's 1927, MySQL 8's 4031 idle cut-off).
_CONNECTION_LOST = {
    2002,
    2003,
    2006,
    2013,
    2055,
    ER.CON_COUNT_ERROR,
    ER.SERVER_SHUTDOWN,
    ER.QUERY_INTERRUPTED,
    1927,
    4031,
}


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


class OversizeRowError(Exception):
    """A server-built line was NULL: the row is larger than the server's max_allowed_packet.

    Raised by `stream_lines` after closing the connection; the caller reconnects and
    reads the chunk the slow way. Internal to extraction, never leaves a Lambda.
    """


_READ_BYTES = 1 << 20
_MAX_PACKET = 0xFFFFFF


def _abandon(conn: pymysql.Connection) -> None:
    """Close the connection mid-result, so that a reconnect starts clean."""
    if conn._result is not None:
        conn._result.unbuffered_active = False  # else connect() would drain the old socket
        conn._result = None
    conn._force_close()


def _lost(conn: pymysql.Connection, why: str) -> pymysql.err.OperationalError:
    _abandon(conn)
    return pymysql.err.OperationalError(
        CR.CR_SERVER_LOST, f"Lost connection to MySQL server during query ({why})"
    )


def stream_lines(
    conn: pymysql.Connection, sql: str, params: tuple | list, batch_rows: int
) -> Iterator[tuple[bytearray, int]]:
    """Run a one-column query unbuffered; yield its values as newline-ended lines.

    pymysql sends the query and reads the column definitions; the rows are then read
    straight off the socket in 1 MB blocks and their packets split here, which costs a
    small fraction of pymysql's per-row reading. Each batch is `(lines, count)`: the
    values of about `batch_rows` rows (one block more at most), each followed by a
    newline, so memory is bounded by the batch, not the result. The values are the
    bytes the server sent: the query builds them (see `schema.csv_line_sql`).

    A NULL value (a line the server could not build within max_allowed_packet) or a
    value of 16 MB or more raises `OversizeRowError`. A dropped connection or a read
    timeout raises pymysql's OperationalError 2013 (classified transient); an error
    the server sends mid-result is raised as pymysql raises it. If anything stops the
    iteration early the connection is closed: the rest of the result would otherwise
    still be on the wire.
    """
    query = sql % tuple(conn.escape(value) for value in params)  # always: see quote_mysql
    conn.query(query, unbuffered=True)
    result = conn._result
    if result is None or not result.unbuffered_active:
        return  # not a result set (cannot happen for a SELECT)
    if result.field_count != 1:
        _abandon(conn)
        raise pymysql.err.ProgrammingError(0, f"expected 1 column, got {result.field_count}")
    rfile = conn._rfile
    seq = conn._next_seq_id
    buf = b""
    pos = 0
    lines = bytearray()
    count = 0
    finished = False
    try:
        while True:
            end = len(buf)
            while pos + 4 <= end:
                length = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)
                stop = pos + 4 + length
                if stop > end:
                    break
                if buf[pos + 3] != seq:
                    raise _lost(conn, f"packet sequence {buf[pos + 3]}, expected {seq}")
                seq = (seq + 1) & 0xFF
                first = buf[pos + 4]
                if length == _MAX_PACKET:  # continued in the next packet: 16 MB or more
                    _abandon(conn)
                    finished = True
                    raise OversizeRowError("a row of 16 MB or more")
                if first < 0xFB:  # a length-encoded string: 1, 3 or 4 length bytes
                    lines += buf[pos + 5 : stop]
                elif first == 0xFC:
                    lines += buf[pos + 7 : stop]
                elif first == 0xFD:
                    lines += buf[pos + 8 : stop]
                elif first == 0xFE and length < 9:  # EOF: warnings, status
                    status = buf[pos + 7] | (buf[pos + 8] << 8) if length >= 5 else 0
                    if stop != end:
                        raise _lost(conn, "data after the end of the result")
                    result.unbuffered_active = False
                    result.has_next = status & SERVER_STATUS.SERVER_MORE_RESULTS_EXISTS
                    result.connection = None
                    conn._next_seq_id = seq
                    finished = True
                    if count:
                        yield lines, count
                    return
                elif first == 0xFF:  # an error in the middle of the result
                    result.unbuffered_active = False
                    result.connection = None
                    finished = True
                    MysqlPacket(buf[pos + 4 : stop], conn.encoding).raise_for_error()
                else:  # 0xFB: NULL, the server could not build the line
                    _abandon(conn)
                    finished = True
                    raise OversizeRowError(f"a NULL line (first byte {first:#x})")
                lines += b"\n"
                count += 1
                pos = stop
            if count >= batch_rows:
                yield lines, count
                lines = bytearray()
                count = 0
            need = _READ_BYTES
            if pos + 4 <= end:  # a packet is incomplete: read at least the rest of it
                length = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)
                need = max(need, pos + 4 + length - end)
            try:
                block = rfile.read1(need) if need == _READ_BYTES else rfile.read(need)
            except OSError as exc:
                raise _lost(conn, str(exc) or type(exc).__name__) from None
            if not block:
                raise _lost(conn, "server closed the connection")
            buf = buf[pos:] + block
            pos = 0
    finally:
        if not finished:
            _abandon(conn)
