"""MySQL connections: timeouts set, errors classified, secrets kept out of messages."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import CR, ER, SERVER_STATUS

from myshift import tls
from myshift.config import SourceConfig
from myshift.errors import ConfigError, SourceQueryError, SourceUnavailableError
from myshift.wire import UnbufferedResult, server_capabilities

# A row as pymysql returns it, and the %s parameters of a statement.
Row = tuple[Any, ...]
Params = Sequence[Any]

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


def connect(
    source: SourceConfig,
    password: str,
    *,
    utc: bool = True,
    via: tuple[str, int] | None = None,
) -> pymysql.Connection:
    """Open a MySQL connection (autocommit, utf8mb4, UTC session unless `utc=False`).

    TLS as `source.tls` says (see `myshift.tls`). `via`: dial this address instead of
    `source.host:port` (an SSH tunnel's local end); the certificate must still name
    `source.host`, and messages name it too.

    A refused or unreachable server is a `SourceUnavailableError` (retried); a refused
    login is a `SourceQueryError`; a TLS handshake that fails, or a login pymysql cannot
    perform without a package, is a `ConfigError`. Messages never contain the password.
    """
    host, port = via or (source.host, source.port)
    where = f"{source.user}@{source.host}:{source.port}"
    # Deferred, so that a refused login can still say whether the server offered TLS.
    conn = pymysql.Connection(
        host=host,
        port=port,
        user=source.user,
        password=password,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=source.connect_timeout_seconds,
        read_timeout=source.read_timeout_seconds,
        write_timeout=source.read_timeout_seconds,
        init_command="SET time_zone = '+00:00'" if utc else None,
        defer_connect=True,
        **tls.connect_arguments(source),
    )
    try:
        conn.connect()
    except pymysql.err.OperationalError as exc:
        error = tls.handshake_error(exc, source, where) or classify(exc, where)
        hint = tls.refused_plain_login_hint(exc, source, server_capabilities(conn))
        raise (type(error)(f"{error}; {hint}") if hint else error) from None
    except RuntimeError as exc:
        auth_error = missing_auth_package(exc, source, where)
        if auth_error is None:
            raise
        raise auth_error from None
    return conn


def missing_auth_package(exc: RuntimeError, source: SourceConfig, where: str) -> ConfigError | None:
    """The ConfigError for pymysql's "package X is required" login RuntimeError, else None.

    caching_sha2_password (MySQL 8.0's and RDS/Aurora MySQL 8.4's default for new
    accounts) and sha256_password send the password RSA-encrypted when the connection is
    not TLS, which pymysql does with `cryptography`; caching_sha2 needs it only when the
    server's cache of the password is cold (after a restart), so a missing package can
    pass for days and then fail.
    """
    text = str(exc)
    account = f"'{source.user}'@'<client host>'"
    if "'cryptography' package is required" in text:
        return ConfigError(
            f"MySQL account {where} logs in with caching_sha2_password or sha256_password, "
            "which without TLS needs the Python package 'cryptography' (not installed here): "
            "deploy the layer built from layers/requirements.txt (it ships cryptography) or "
            "pip install cryptography, or enable TLS (source.tls.mode), or as a last resort "
            f"ALTER USER {account} IDENTIFIED WITH mysql_native_password BY '...' "
            "(MySQL 8.4 loads that plugin only with mysql_native_password=ON)"
        )
    if "'pynacl' package is required" in text:
        return ConfigError(
            f"MySQL account {where} logs in with MariaDB's ed25519 plugin, which needs the "
            "Python package 'pynacl' (not in the layer): give the account "
            f"mysql_native_password (ALTER USER {account} IDENTIFIED VIA "
            "mysql_native_password USING PASSWORD('...'))"
        )
    return None


def classify(exc: pymysql.MySQLError, where: str) -> SourceUnavailableError | SourceQueryError:
    """Map a pymysql error to a transient or terminal myshift error (one line, no secret)."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    message = f"MySQL {where}: ({code}) {text}".splitlines()[0]
    if code in _CONNECTION_LOST or isinstance(exc, pymysql.err.InterfaceError):
        return SourceUnavailableError(message)
    return SourceQueryError(message)


def query_all(conn: pymysql.Connection, sql: str, params: Params = ()) -> list[Row]:
    """Run one query and return every row; pymysql errors become myshift errors."""
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
    except pymysql.MySQLError as exc:
        raise classify(exc, f"{conn.host}:{conn.port}") from None


def query_dicts(conn: pymysql.Connection, sql: str, params: Params = ()) -> list[dict[str, Any]]:
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

# What `split_rows` stopped at (the same codes as the compiled `myshift_packets.split`).
SPLIT_MORE = 0  # the bytes ran out in a packet, or `max_rows` rows were taken
SPLIT_END = 1  # the EOF packet that ends the result
SPLIT_ERROR = 2  # an error packet the server sent mid-result
SPLIT_NULL = 3  # a NULL value, or a length the server only uses for 16 MB or more
SPLIT_OVERSIZE = 4  # a packet of 16 MB or more (continued in the next one)
SPLIT_SEQUENCE = 5  # a packet out of sequence: the stream is not what it should be


def split_rows_python(
    buf: bytes | bytearray, pos: int, seq: int, max_rows: int
) -> tuple[bytes, int, int, int, int]:
    """Take the rows of a one-column text result from `buf[pos:]`: the reference splitter.

    Returns `(lines, count, pos, seq, status)`: the values of up to `max_rows` complete
    row packets, each followed by a newline; where the next packet starts and the
    sequence number it must carry; and a `SPLIT_*` status saying why it stopped (the
    packet at `pos` is then the one that stopped it). `myshift_packets.split`, compiled,
    does exactly this at a fifth of the cost; tests hold the two to the same results.
    """
    end = len(buf)
    parts: list[bytes | bytearray] = []
    count = 0
    status = SPLIT_MORE
    while count < max_rows and pos + 4 <= end:
        length = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)
        stop = pos + 4 + length
        if stop > end:
            break
        if buf[pos + 3] != seq:
            status = SPLIT_SEQUENCE
            break
        if length == _MAX_PACKET:
            status = SPLIT_OVERSIZE
            break
        if length == 0:
            status = SPLIT_NULL
            break
        first = buf[pos + 4]
        if first < 0xFB:  # a length-encoded string: 1, 3 or 4 length bytes
            skip = 1
        elif first == 0xFC:
            skip = 3
        elif first == 0xFD:
            skip = 4
        elif first == 0xFE and length < 9:
            status = SPLIT_END
            break
        elif first == 0xFF:
            status = SPLIT_ERROR
            break
        else:  # 0xFB (NULL) or 0xFE with 8 length bytes
            status = SPLIT_NULL
            break
        if skip > length:
            status = SPLIT_NULL
            break
        parts.append(buf[pos + 4 + skip : stop])
        parts.append(b"\n")
        count += 1
        seq = (seq + 1) & 0xFF
        pos = stop
    return b"".join(parts), count, pos, seq, status


# Every kind of packet, each split at every position: what the compiled splitter must
# agree on with the reference before it is trusted with a chunk.
_SELF_CHECK_STREAM = (
    b"\x02\x00\x00\xfe\x01a"  # a row, sequence 254
    + b"\x04\x00\x00\xff\xfc\x01\x00b"  # a row with a 3-byte length, sequence 255
    + b"\x01\x00\x00\x00\x00"  # an empty value, sequence wraps to 0
    + b"\x01\x00\x00\x01\xfb"  # NULL
    + b"\x05\x00\x00\x02\xfe\x00\x00\x02\x00"  # EOF
    + b"\x03\x00\x00\x09\xff\x01\x02"  # an error packet, out of sequence
)


def _agrees(split: Callable[..., tuple[Any, ...]]) -> bool:
    stream = _SELF_CHECK_STREAM
    return all(
        split(stream[:end], pos, seq, rows) == split_rows_python(stream[:end], pos, seq, rows)
        for end in range(len(stream) + 1)
        for pos in (0, 6, 14, 19, 24, 33)
        if pos <= end
        for seq in (254, 0, 9)
        for rows in (1, 2, 9)
    )


def _splitter() -> Callable[..., tuple[Any, ...]]:
    """The compiled splitter when it is built and agrees with the reference."""
    try:  # built by `pip install -e .` here and by scripts/build_layer.py for Lambda
        from myshift_packets import split
    except ImportError:  # no compiler where it was installed: the same results, slower
        return split_rows_python
    return split if _agrees(split) else split_rows_python


split_rows = _splitter()


def _lost(stream: UnbufferedResult, why: str) -> pymysql.err.OperationalError:
    stream.abandon()
    return pymysql.err.OperationalError(
        CR.CR_SERVER_LOST, f"Lost connection to MySQL server during query ({why})"
    )


def stream_lines(
    conn: pymysql.Connection, sql: str, params: Params, batch_rows: int
) -> Generator[tuple[bytes, int], None, None]:
    """Run a one-column query unbuffered; yield its values as newline-ended lines.

    pymysql sends the query and reads the column definitions; the rows are then read
    straight off the socket (through `wire.UnbufferedResult`, the only code that touches
    pymysql's internals) in 1 MB blocks and their packets split by `split_rows`, which
    costs a small fraction of pymysql's per-row reading. Each batch is `(lines, count)`:
    the values of `batch_rows` rows (fewer in the last), each followed by a newline, so
    memory is bounded by the batch, not the result. The values are the bytes the server
    sent: the query builds them (see `schema.csv_line_sql`).

    A NULL value (a line the server could not build within max_allowed_packet) or a
    value of 16 MB or more raises `OversizeRowError`. A dropped connection or a read
    timeout raises pymysql's OperationalError 2013 (classified transient); an error
    the server sends mid-result is raised as pymysql raises it. If anything stops the
    iteration early the connection is closed: the rest of the result would otherwise
    still be on the wire.
    """
    query = sql % tuple(conn.escape(value) for value in params)  # always: see quote_mysql
    stream = UnbufferedResult.start(conn, query)  # the one door into pymysql's internals
    if stream is None:
        return  # not a result set (cannot happen for a SELECT)
    if stream.field_count != 1:
        stream.abandon()
        raise pymysql.err.ProgrammingError(0, f"expected 1 column, got {stream.field_count}")
    read_some, read_exactly = stream.read_some, stream.read_exactly
    seq = stream.seq
    buf: bytes = b""
    pos = 0
    parts: list[bytes] = []
    count = 0
    finished = False
    try:
        while True:
            lines, taken, pos, seq, status = split_rows(buf, pos, seq, batch_rows - count)
            if taken:
                parts.append(lines)
                count += taken
            if status == SPLIT_END:
                length = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)
                if pos + 4 + length != len(buf):
                    raise _lost(stream, "data after the end of the result")
                flags = buf[pos + 7] | (buf[pos + 8] << 8) if length >= 5 else 0
                more = bool(flags & SERVER_STATUS.SERVER_MORE_RESULTS_EXISTS)
                stream.finish((seq + 1) & 0xFF, more)
                finished = True
                if count:
                    yield b"".join(parts), count
                return
            if status == SPLIT_ERROR:
                finished = True
                length = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)
                stream.raise_server_error(buf[pos + 4 : pos + 4 + length])
            if status == SPLIT_SEQUENCE:
                raise _lost(stream, f"packet sequence {buf[pos + 3]}, expected {seq}")
            if status in (SPLIT_NULL, SPLIT_OVERSIZE):
                stream.abandon()
                finished = True
                if status == SPLIT_OVERSIZE:
                    raise OversizeRowError("a row of 16 MB or more")
                raise OversizeRowError(f"a NULL line (first byte {buf[pos + 4]:#x})")
            if count >= batch_rows:
                yield b"".join(parts), count
                parts = []
                count = 0
                continue  # the buffer may hold more complete rows
            end = len(buf)
            need = _READ_BYTES
            if pos + 4 <= end:  # a packet is incomplete: read at least the rest of it
                length = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)
                need = max(need, pos + 4 + length - end)
            try:
                block = read_some(need) if need == _READ_BYTES else read_exactly(need)
            except OSError as exc:
                raise _lost(stream, str(exc) or type(exc).__name__) from None
            if not block:
                raise _lost(stream, "server closed the connection")
            buf = buf[pos:] + block
            pos = 0
    finally:
        if not finished:
            stream.abandon()
