"""myshift.schema against a real MariaDB: every supported type, edge values, zero dates.

The table is read exactly as the extractor reads it: COLUMNS_QUERY with a DictCursor,
then `SELECT select_list(...)` with pymysql's default converters, then to_record_batch.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pymysql
import pymysql.cursors
import pytest
from myshift.errors import SchemaError
from myshift.identifiers import quote_mysql_table
from myshift.schema import (
    COLUMNS_QUERY,
    PARQUET_COMPRESSION,
    Column,
    ConversionReport,
    arrow_schema,
    columns_from_information_schema,
    file_schema,
    redshift_columns_ddl,
    select_list,
    to_record_batch,
)

from tests.support.edge_table import BIG_38, BIG_65, BLOB, EMOJI, LATIN1, TABLE, edge_table

DATABASE = "myshift_schema_it"


def connect(**kwargs: Any) -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1", port=3306, user="root", password="", charset="utf8mb4", **kwargs
    )


@pytest.fixture(scope="module")
def conn() -> Iterator[pymysql.Connection]:
    """A connection to MariaDB with DATABASE holding TABLE and its four rows."""
    try:
        connection = connect(autocommit=True)
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MariaDB not reachable at 127.0.0.1:3306: {exc}")
    with connection.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")  # TIMESTAMP values as written (UTC session)
        with edge_table(cur, DATABASE):
            pass  # the four rows are all this module reads
    try:
        yield connection
    finally:
        with connection.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        connection.close()


def read_columns(conn: pymysql.Connection, table: str = TABLE, **kwargs: Any) -> list[Column]:
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(COLUMNS_QUERY, (DATABASE, table))
        return columns_from_information_schema(list(cur.fetchall()), **kwargs)


def read_batch(
    conn: pymysql.Connection, columns: list[Column]
) -> tuple[pa.RecordBatch, ConversionReport]:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {select_list(columns)} FROM {quote_mysql_table(DATABASE, TABLE)} ORDER BY id"
        )
        return to_record_batch(columns, cur.fetchall())


@pytest.fixture(scope="module")
def columns(conn: pymysql.Connection) -> list[Column]:
    return read_columns(conn)


@pytest.fixture(scope="module")
def converted(
    conn: pymysql.Connection, columns: list[Column]
) -> tuple[dict[str, list[Any]], ConversionReport, pa.RecordBatch]:
    batch, report = read_batch(conn, columns)
    return batch.to_pydict(), report, batch


def test_target_names(columns: list[Column]) -> None:
    names = {c.source_name: c.target_name for c in columns}
    assert names["order"] == "order"
    assert names["190_time"] == "col_190_time"
    assert names["Mixed Case"] == "mixed_case"
    assert names["we`ird"] == "we_ird"


def test_redshift_ddl(columns: list[Column]) -> None:
    ddl = {c.target_name: c.redshift_type + ("" if c.nullable else " NOT NULL") for c in columns}
    assert ddl == {
        "id": "INTEGER NOT NULL",
        "ti": "SMALLINT",
        "tiu": "SMALLINT",
        "ti1": "SMALLINT",
        "si": "SMALLINT",
        "siu": "INTEGER",
        "mi": "INTEGER",
        "miu": "INTEGER",
        "i": "INTEGER",
        "iu": "BIGINT",
        "bi": "BIGINT",
        "biu": "DECIMAL(20,0)",
        "yr": "SMALLINT",
        "d154": "DECIMAL(15,4)",
        "d3810": "DECIMAL(38,10)",
        "d6530": "VARCHAR(67)",
        "f": "REAL",
        "dbl": "DOUBLE PRECISION",
        "b1": "BOOLEAN",
        "b5": "BIGINT",
        "b64": "DECIMAL(20,0)",
        "dt": "DATE",
        "dpart": "DATE",
        "dtm": "TIMESTAMP",
        "ts": "TIMESTAMP",
        "dz": "TIMESTAMP",  # NOT NULL in MariaDB, but a zero date loads as NULL
        "tm": "VARCHAR(20)",
        "tm1": "VARCHAR(20)",
        "vu": "VARCHAR(40)",  # utf8mb4: 10 characters x 4 bytes
        "vl": "VARCHAR(30)",  # latin1 (cp1252): '€' is 3 UTF-8 bytes
        "ch": "VARCHAR(12)",
        "en": "VARCHAR(24)",  # 'medium' x 4
        "st": "VARCHAR(32)",  # 'a,bb,ccc' x 4
        "js": "VARCHAR(65535)",  # MariaDB's JSON is a LONGTEXT
        "tt": "VARCHAR(255)",
        "lt": "VARCHAR(65535)",
        "bn": "VARBYTE(4)",
        "vb": "VARBYTE(16)",
        "bl": "VARBYTE(1024000)",
        "order": "INTEGER",
        "col_190_time": "INTEGER",
        "mixed_case": "INTEGER",
        "we_ird": "INTEGER",
    }
    full = redshift_columns_ddl(columns)
    assert full.startswith('"id" INTEGER NOT NULL, "ti" SMALLINT, ')
    assert '"order" INTEGER, "col_190_time" INTEGER' in full


def test_batch_has_the_schema_and_survives_parquet(
    columns: list[Column], converted: tuple[dict[str, list[Any]], ConversionReport, pa.RecordBatch]
) -> None:
    batch = converted[2]
    assert batch.schema == arrow_schema(columns)
    sink = io.BytesIO()  # as the extractor writes files
    pq.write_table(
        pa.Table.from_batches([batch.cast(file_schema(columns))]),
        sink,
        compression=PARQUET_COMPRESSION,
    )
    back = pq.read_table(io.BytesIO(sink.getvalue()))
    assert back.schema == file_schema(columns)
    assert back.cast(arrow_schema(columns)).to_pydict() == batch.to_pydict()  # same values
    parquet = pq.ParquetFile(io.BytesIO(sink.getvalue()))
    for index, column in enumerate(columns):
        leaf = parquet.schema.column(index)
        assert parquet.metadata.row_group(0).column(index).compression == "SNAPPY"
        if pa.types.is_timestamp(column.arrow_type):  # the legacy annotation Redshift reads
            assert (leaf.physical_type, leaf.converted_type) == ("INT64", "TIMESTAMP_MICROS")


def test_integer_values(converted: tuple[dict[str, list[Any]], ConversionReport, Any]) -> None:
    data = converted[0]
    expected = {
        "id": [1, 2, 3, 4],
        "ti": [-128, 127, None, None],
        "tiu": [0, 255, None, None],
        "ti1": [2, 13, None, None],
        "si": [-32768, 32767, None, None],
        "siu": [0, 65535, None, None],
        "mi": [-8388608, 8388607, None, None],
        "miu": [0, 16777215, None, None],
        "i": [-2147483648, 2147483647, None, None],
        "iu": [0, 4294967295, None, None],
        "bi": [-9223372036854775808, 9223372036854775807, None, None],
        "biu": [Decimal(0), Decimal(18446744073709551615), None, None],
        "yr": [1901, 2155, None, None],
        "b1": [False, True, None, None],
        "b5": [0, 31, None, None],
        "b64": [Decimal(0), Decimal(18446744073709551615), None, None],
        "order": [1, 5, None, None],
        "col_190_time": [2, 6, None, None],
        "mixed_case": [3, 7, None, None],
        "we_ird": [4, 8, None, None],
    }
    assert {name: data[name] for name in expected} == expected


def test_decimal_and_float_values(
    converted: tuple[dict[str, list[Any]], ConversionReport, Any],
) -> None:
    data = converted[0]
    assert data["d154"] == [Decimal("-99999999999.9999"), Decimal("99999999999.9999"), None, None]
    assert data["d3810"] == [Decimal("-" + BIG_38), Decimal(BIG_38), None, None]
    # The exact decimal text, zero included (pymysql's Decimal('0E-30')).
    assert data["d6530"] == ["-" + BIG_65, BIG_65, "0." + "0" * 30, None]
    # FLOAT is read through a DOUBLE: the stored float32 exactly, not MySQL's 6 digits.
    assert data["f"] == [-3.4028234663852886e38, 123456792.0, None, None]
    assert data["dbl"] == [-1.7976931348623157e308, 0.30000000000000004, None, None]


def test_date_and_time_values(
    converted: tuple[dict[str, list[Any]], ConversionReport, Any],
) -> None:
    data, report, _ = converted
    assert data["dt"] == [date(1000, 1, 1), date(9999, 12, 31), None, None]
    assert data["dpart"] == [date(2000, 1, 1), date(2024, 2, 29), None, None]
    assert data["dtm"] == [
        datetime(1000, 1, 1),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
        None,
        None,
    ]
    assert data["ts"] == [
        datetime(1970, 1, 1, 0, 0, 1),
        datetime(2038, 1, 19, 3, 14, 7, 999999),
        None,
        None,
    ]
    assert data["dz"] == [datetime(1000, 1, 1), datetime(2024, 2, 29, 12, 34, 56), None, None]
    assert data["tm"] == ["-838:59:59", "838:59:59", None, None]
    assert data["tm1"] == ["-00:00:00.500000", "100:00:00.500000", None, None]
    # Row 3 holds zero dates (and '2021-02-00'); row 4's NOT NULL dz defaulted to zero.
    assert report.zero_dates_nulled == {"dt": 1, "dpart": 1, "dtm": 1, "ts": 1, "dz": 2}


def test_string_and_binary_values(
    converted: tuple[dict[str, list[Any]], ConversionReport, Any],
) -> None:
    data, report, _ = converted
    assert data["vu"] == [EMOJI * 10, "ab" + EMOJI, None, None]
    assert data["vl"] == [LATIN1, "plain", None, None]
    assert data["ch"] == ["abc", "é€", None, None]
    assert data["en"] == ["small", "large", None, None]
    assert data["st"] == ["", "a,bb,ccc", None, None]
    assert data["js"] == ['{"k": "é", "n": [1, 2]}', "[]", None, None]
    assert data["tt"] == ["x" * 255, "ü" * 127, None, None]
    assert data["lt"] == ["a" * 65533, "short", None, None]  # cut before the emoji
    assert data["bn"] == [b"ab\x00\x00", b"abcd", None, None]  # BINARY pads with NUL
    assert data["vb"] == [b"\x00\xff", b"", None, None]
    assert data["bl"] == [BLOB, b"", None, None]
    assert report.values_truncated == {"lt": 1}


def test_string_byte_lengths_fit_the_ddl(
    columns: list[Column], converted: tuple[dict[str, list[Any]], ConversionReport, Any]
) -> None:
    data = converted[0]
    for col in columns:
        if col.max_bytes is not None:
            longest = max((len(v.encode()) for v in data[col.target_name] if v), default=0)
            assert longest <= col.max_bytes, col.source_name


def test_tinyint1_as_boolean(conn: pymysql.Connection) -> None:
    columns = read_columns(conn, tinyint1_as_boolean=True)
    ti1 = next(c for c in columns if c.source_name == "ti1")
    assert (ti1.arrow_type, ti1.redshift_type) == (pa.bool_(), "BOOLEAN")
    batch, _ = read_batch(conn, columns)
    assert batch.column("ti1").to_pylist() == [True, True, None, None]


def test_unsupported_type_is_refused(conn: pymysql.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {quote_mysql_table(DATABASE, 'shapes')} (id INT PRIMARY KEY, pos POINT)"
        )
    with pytest.raises(SchemaError, match=r"'pos'.*point"):
        read_columns(conn, "shapes")
