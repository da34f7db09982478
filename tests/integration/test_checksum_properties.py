"""Properties of the checksums on random rows, in MariaDB and in the Redshift stand-in.

Hypothesis draws rows of a few types (a VARCHAR key with quotes and backslashes under a
case-insensitive collation, BIGINT UNSIGNED, DECIMAL, DOUBLE, FLOAT, DATETIME(6), short
and long text, binary with 0x00 bytes, NULLs). Each row goes into MariaDB and, converted
by the product's `schema.to_record_batch`, into PostgreSQL through the stand-in:

- both engines give each row the same hash and each range the same (count, sum);
- a one-byte change of any column's value in the warehouse changes that row's hash and
  its range's sum.

Needs MariaDB on 127.0.0.1:3306 and PostgreSQL on 127.0.0.1:5432; databases of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from myshift import checksum
from myshift.checksum import KeyRange
from myshift.local.redshift_standin import RedshiftDataStandIn, translate_sql
from myshift.schema import Column, to_record_batch

from tests.support.mariadb import empty_database, read_columns
from tests.support.postgres import database_dsn, drop_database

DATABASE = f"myshift_checksum_props_{os.getpid()}"
WAREHOUSE = f"myshift_checksum_props_dw_{os.getpid()}"
TABLE = "t"
KEY = ["k", "n"]
CREATE = f"""
CREATE TABLE `{DATABASE}`.`{TABLE}` (
  k VARCHAR(12) NOT NULL, n INT NOT NULL,
  u BIGINT UNSIGNED, d DECIMAL(20,6), f FLOAT, x DOUBLE, t DATETIME(6),
  s VARCHAR(40), l MEDIUMTEXT, b VARBINARY(40),
  PRIMARY KEY (k, n)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci
"""
RANGES = [
    KeyRange(None, ["B"]),
    KeyRange(["B"], ["a\\"]),
    KeyRange(["a\\"], ["b", 5]),
    KeyRange(["b", 5], None),
]

keys = st.tuples(st.sampled_from(["A", "a", "B", "b", "a\\", "a'b", "é", "Z"]), st.integers(0, 9))
doubles = st.floats(allow_nan=False, allow_infinity=False)
texts = st.text(st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from(",:N\\'"))
row_values = st.tuples(
    st.none() | st.integers(0, 2**64 - 1),
    st.none() | st.decimals(min_value=-(10**13), max_value=10**13, places=6, allow_nan=False),
    st.none() | st.floats(width=32, allow_nan=False, allow_infinity=False),
    st.none() | doubles,
    st.none()
    | st.datetimes(datetime(1000, 1, 1), datetime(9999, 12, 31)).map(
        lambda v: v.replace(tzinfo=None)
    ),
    st.none() | texts.map(lambda v: v[:40]),
    st.none() | texts | st.integers(1025, 3000).map(lambda n: "é" * n),
    st.none() | st.binary(max_size=40),
)
tables = st.dictionaries(keys, row_values, min_size=1, max_size=8)


@pytest.fixture(scope="module")
def source() -> Iterator[pymysql.Connection]:
    with empty_database(DATABASE) as conn:
        with conn.cursor() as cur:
            cur.execute(CREATE)
        yield conn


@pytest.fixture(scope="module")
def columns(source: pymysql.Connection) -> list[Column]:
    return read_columns(source, DATABASE, TABLE)


@pytest.fixture(scope="module")
def warehouse(columns: list[Column]) -> Iterator[psycopg.Connection]:
    """PostgreSQL with the target table; statements go through the stand-in's translation."""
    drop_database(WAREHOUSE)
    dsn = database_dsn(WAREHOUSE)
    standin = RedshiftDataStandIn(dsn, lambda: None, workers=1)  # creates STRTOL, SHA2...
    standin.shutdown()
    conn = psycopg.connect(dsn, autocommit=True)
    ddl = ", ".join(f'"{c.target_name}" {c.redshift_type}' for c in columns)
    conn.execute(translate_sql(f'CREATE TABLE "{TABLE}" ({ddl})'))
    try:
        yield conn
    finally:
        conn.close()
        drop_database(WAREHOUSE)


def fill(
    source: pymysql.Connection, warehouse: psycopg.Connection, columns: list[Column], table: dict
) -> None:
    """The rows into MariaDB, then read back and loaded as the extractor converts them."""
    rows = [(*key, *values) for key, values in table.items()]
    with source.cursor() as cur:
        cur.execute(f"DELETE FROM `{DATABASE}`.`{TABLE}`")
        cur.executemany(
            f"INSERT INTO `{DATABASE}`.`{TABLE}` VALUES ({', '.join(['%s'] * 10)})", rows
        )
        names = ", ".join(f"`{c.source_name}`" for c in columns)
        cur.execute(f"SELECT {names.replace('`f`', '`f` + 0e0')} FROM `{DATABASE}`.`{TABLE}`")
        batch, _ = to_record_batch(columns, cur.fetchall())
    warehouse.execute(f'DELETE FROM "{TABLE}"')
    with warehouse.cursor() as cur:
        cur.executemany(
            f'INSERT INTO "{TABLE}" VALUES ({", ".join(["%s"] * len(columns))})',
            [tuple(r.values()) for r in batch.to_pylist()],
        )


def as_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def source_side(source: pymysql.Connection, columns: list[Column]) -> tuple[list, dict]:
    everything = KeyRange(None, None)
    sql, params = checksum.source_row_checksums_sql(DATABASE, TABLE, columns, KEY, everything)
    with source.cursor() as cur:
        cur.execute(sql, params)
        rows = [tuple(as_text(v) for v in r[-2:]) for r in cur.fetchall()]
        sql, params = checksum.source_range_checksums_sql(DATABASE, TABLE, columns, KEY, RANGES)
        cur.execute(sql, params)
        return rows, checksum.parse_range_checksums(cur.fetchall())


def target_side(warehouse: psycopg.Connection, columns: list[Column]) -> tuple[list, dict]:
    everything = KeyRange(None, None)
    rows_sql = checksum.target_row_checksums_sql("public", TABLE, columns, KEY, everything)
    rows = [tuple(r[-2:]) for r in warehouse.execute(translate_sql(rows_sql)).fetchall()]
    ranges_sql = checksum.target_range_checksums_sql("public", TABLE, columns, KEY, RANGES)
    return rows, checksum.parse_range_checksums(warehouse.execute(translate_sql(ranges_sql)))


def one_byte_changed(col: Column, value: Any) -> Any:
    """The value with one byte of it changed (a value of the same type)."""
    if isinstance(value, bytes):
        return (value[:-1] + bytes([value[-1] ^ 1])) if value else b"\x00"
    if isinstance(value, str):
        return (value[:-1] + chr(ord(value[-1]) ^ 1)) if value else "x"
    if isinstance(value, datetime):
        return value + timedelta(microseconds=1 if value.microsecond < 999_999 else -1)
    if isinstance(value, float):
        return value / 2 if value else 1.0
    if isinstance(value, Decimal):
        unit = Decimal(1).scaleb(value.as_tuple().exponent)  # the column's last digit
        return value + unit if value <= 0 else value - unit
    return value ^ 1


@settings(
    max_examples=int(os.environ.get("CHECKSUM_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(table=tables, data=st.data())
def test_both_engines_agree_and_a_one_byte_change_is_detected(
    source: pymysql.Connection,
    warehouse: psycopg.Connection,
    columns: list[Column],
    table: dict,
    data: st.DataObject,
) -> None:
    # Keys equal under MariaDB's case-insensitive collation are one row there.
    folded: dict[tuple, tuple] = {}
    for key, values in table.items():
        folded.setdefault((key[0].lower(), key[1]), (key, values))
    table = dict(folded.values())
    fill(source, warehouse, columns, table)
    source_rows, source_ranges = source_side(source, columns)
    target_rows, target_ranges = target_side(warehouse, columns)
    assert sorted(source_rows) == sorted(target_rows)
    assert source_ranges == target_ranges
    assert sum(r.rows for r in target_ranges.values()) == len(table)

    # One byte of one value of one row, changed in the warehouse only.
    changed = data.draw(st.sampled_from(sorted(table)), label="row")
    column = data.draw(st.sampled_from(columns[2:]), label="column")
    where = 'WHERE "k" = %s AND "n" = %s'
    old = warehouse.execute(f'SELECT "{column.target_name}" FROM "{TABLE}" {where}', changed)
    value = old.fetchone()[0]
    if value is not None:
        new = one_byte_changed(column, bytes(value) if isinstance(value, memoryview) else value)
    else:
        new = {"f": 1.0, "x": 1.0, "t": datetime(2000, 1, 1), "b": b"\x00"}.get(
            column.source_name, 1 if column.source_name in ("u", "d") else "x"
        )
    warehouse.execute(f'UPDATE "{TABLE}" SET "{column.target_name}" = %s {where}', (new, *changed))
    after_rows, after_ranges = target_side(warehouse, columns)
    differing = set(after_rows) - set(target_rows)
    assert len(differing) == 1, (column.source_name, value, new)
    assert after_ranges != target_ranges
    assert sum(a.total != target_ranges[i].total for i, a in after_ranges.items()) == 1
