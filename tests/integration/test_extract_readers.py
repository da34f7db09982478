"""The two readers against a real MariaDB: the same Parquet file, value for value.

The table holds every supported type at its edges (the rows of tests/support/edge_table.py,
plus strings that would break a naive CSV), so any difference between the server-built
CSV lines parsed by Arrow and pymysql's rows shows up here. Also: the fallback for a
row the server cannot build as one line, and connection handling (timeouts, a killed
query or connection, reuse of a warm connection).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pyarrow as pa
import pymysql
import pytest
from myshift import catalog, extract, runtime, source
from myshift.config import SourceConfig, TableConfig
from myshift.errors import SourceUnavailableError
from myshift.identifiers import quote_mysql_table
from myshift.source import query_all

from tests.conftest import MYSQL
from tests.support import edge_table as edge
from tests.support.mariadb import connect, execute_alone, extract_to_memory

DATABASE = "myshift_extract_readers"
TABLE = edge.TABLE
QUALIFIED = quote_mysql_table(DATABASE, TABLE)
EXTRA_ROWS = [  # id, vu (VARCHAR(10) utf8mb4), vl (latin1), ch (CHAR(3)), tt, js, bl, vb
    (5, 'a"b,\nc\r', 'x"\n,', "a", "", '"x"', b'"\n\r,\x00\xff"', b""),
    (6, "q\x1fq\x1f", "\x1f", "", "\\", "{}", b"\x1f\xff\xff", b"\xff"),
]


@pytest.fixture(scope="module")
def conn() -> Iterator[pymysql.Connection]:
    connection = connect(utc=True)
    with connection.cursor() as cur, edge.edge_table(cur, DATABASE) as table:
        cur.executemany(
            f"INSERT INTO {table} (id, vu, vl, ch, tt, js, bl, vb) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            EXTRA_ROWS,
        )
    yield connection
    with connection.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
    connection.close()


@pytest.fixture(scope="module")
def columns(conn: pymysql.Connection):
    table = TableConfig(name=f"{DATABASE}.{TABLE}", cursor="id", primary_key=["id"])
    return catalog.source_columns(conn, table, None)


def extract_all(
    conn: pymysql.Connection, columns, reader: str, batch_rows: int = 3
) -> tuple[extract.ChunkResult, pa.Table]:
    return extract_to_memory(
        conn,
        s3_key=f"{reader}.parquet",
        index=0,
        lower=None,
        upper=[1_000],
        database=DATABASE,
        table=TABLE,
        columns=columns,
        key_cols=["id"],
        batch_rows=batch_rows,
        reader=reader,
    )


def test_text_and_rows_readers_write_the_same_file(conn, columns) -> None:
    rows_result, rows_table = extract_all(conn, columns, "rows")
    text_result, text_table = extract_all(conn, columns, "text")
    assert text_table.schema == rows_table.schema
    for name in rows_table.column_names:
        assert text_table.column(name).to_pylist() == rows_table.column(name).to_pylist(), name
    assert text_result.rows == rows_result.rows == 4 + len(EXTRA_ROWS)
    assert text_result.last_key == rows_result.last_key == [6]
    assert text_result.report.as_dict() == rows_result.report.as_dict()
    assert text_result.report.zero_dates_nulled == {"dt": 1, "dpart": 1, "dtm": 1, "ts": 1, "dz": 4}
    assert text_result.report.values_truncated == {"lt": 1}
    assert text_table.column("vu").to_pylist()[4:] == ['a"b,\nc\r', "q\x1fq\x1f"]
    assert text_table.column("bl").to_pylist()[4] == b'"\n\r,\x00\xff"'


def test_a_row_too_large_for_one_line_falls_back_to_rows(
    conn, columns, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server gives NULL for a line over max_allowed_packet; id 2 plays that row.
    line = extract.csv_line_sql
    monkeypatch.setattr(extract, "csv_line_sql", lambda cols: f"IF(`id` = 2, NULL, {line(cols)})")
    connection = connect(utc=True)
    try:
        before = connection.thread_id()
        result, table = extract_all(connection, columns, "text")
        assert connection.thread_id() != before  # reconnected: the rest was on the wire
    finally:
        connection.close()
    _, reference = extract_all(conn, columns, "rows")
    assert result.rows == reference.num_rows
    assert table.equals(reference)


def test_large_values_read_alike(conn) -> None:
    """Rows of 3 and 12 MB: long packets, reads of a packet's rest, one-block parses."""
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{DATABASE}`.big")
        cur.execute(
            f"CREATE TABLE `{DATABASE}`.big (id INT PRIMARY KEY, t LONGTEXT, b LONGBLOB) "
            "DEFAULT CHARSET=utf8mb4"
        )
        for i, size in ((1, 3_000_000), (2, 12_000_000), (3, 10)):
            cur.execute(
                f"INSERT INTO `{DATABASE}`.big VALUES (%s, REPEAT('\u00e9,\n', %s), "
                "REPEAT(x'FF00', %s))",
                (i, size // 4, size // 4),
            )
    table = TableConfig(name=f"{DATABASE}.big", cursor="id", primary_key=["id"])
    columns = catalog.source_columns(conn, table, None)
    files = {}
    for reader in ("rows", "text"):
        result, files[reader] = extract_to_memory(
            conn,
            s3_key=reader,
            index=0,
            lower=None,
            upper=[3],
            database=DATABASE,
            table="big",
            columns=columns,
            key_cols=["id"],
            reader=reader,
        )
        assert result.rows == 3 and result.report.values_truncated == {"t": 2, "b": 2}
    assert files["text"].equals(files["rows"])


# --- connections ---------------------------------------------------------------------


SOURCE = SourceConfig(
    host=MYSQL["host"],
    port=MYSQL["port"],
    user=MYSQL["user"],
    password_env="MYSQL_PASSWORD",
    connect_timeout_seconds=3,
    read_timeout_seconds=1,
)


def kill_later(what: str, thread_id: int, after: float) -> threading.Thread:
    def kill() -> None:
        time.sleep(after)
        execute_alone(f"KILL {what} {int(thread_id)}")

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


def test_timeouts_come_from_the_pipeline() -> None:
    connection = source.connect(SOURCE, "")
    try:
        assert connection.connect_timeout == 3
        assert connection._read_timeout == 1 and connection._write_timeout == 1
        # A read that outlasts the timeout is a lost connection: retried, not terminal.
        with pytest.raises(SourceUnavailableError):
            query_all(connection, "SELECT SLEEP(2)")
    finally:
        connection.close()


@pytest.mark.parametrize("what", ["QUERY", "CONNECTION"])
def test_a_killed_query_or_connection_mid_stream_is_transient(what: str, conn) -> None:
    connection = source.connect(SOURCE, "")
    # One row every 20 ms: the KILL lands while rows are streaming.
    sql = f"SELECT CONCAT(seq, SLEEP(0.02)) FROM `{DATABASE}`.seq_1_to_500"
    killer = kill_later(what, connection.thread_id(), 0.3)
    try:
        with pytest.raises(pymysql.MySQLError) as raised:
            for _ in source.stream_lines(connection, sql, [], 10):
                pass
        assert isinstance(source.classify(raised.value, "db"), SourceUnavailableError)
    finally:
        killer.join()
        connection.close()


def test_a_warm_connection_is_reused_and_replaced_when_killed() -> None:
    first = runtime.mysql(SOURCE)
    assert runtime.mysql(SOURCE) is first  # checked with a ping, not reopened
    kill_later("CONNECTION", first.thread_id(), 0).join()
    # The dropped connection is itself a transient error...
    with pytest.raises(SourceUnavailableError):
        query_all(first, "SELECT 1")
    # ...and the next invocation gets a fresh one.
    second = runtime.mysql(SOURCE)
    assert second is not first
    assert query_all(second, "SELECT 1") == [(1,)]
    second.close()
