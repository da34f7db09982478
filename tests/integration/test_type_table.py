"""Every row of the type table, as a real MariaDB column: mapped, read and checksummed alike.

The canary columns of `mysql_types.MYSQL_TYPES` (each type at its edges, plus a row of
NULLs) become a real MariaDB table. Then, for every row of the table, whatever it is:

- information_schema gives the same target (Arrow type, Redshift type, byte length) as
  the canary's synthetic rows, so the doctor's canary is the type as a source holds it;
- both readers extract the rows into exactly the canary file's values;
- MariaDB's canonical checksum text of every value equals the Python reference computed
  from the extracted value (the Redshift side is the doctor's: `test_doctor_e2e`).

A type added to the table is tested here without a line of test code.

Needs MariaDB on 127.0.0.1:3306.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pymysql
import pytest
from myshift import canary, checksum
from myshift.identifiers import quote_mysql
from myshift.mysql_types import MYSQL_TYPES, Family
from myshift.schema import Column

from tests.support.mariadb import empty_database, extract_to_memory, read_columns

DATABASE = f"myshift_type_table_{os.getpid()}"
TABLE = "canary"
KEY = canary.KEY_COLUMN


def _declaration(column: Column, canary_column: canary.CanaryColumn | None) -> str:
    """The column's DDL; a charset only where it is not the table's (JSON takes none)."""
    charset = canary_column.charset if canary_column else None
    other = f" CHARACTER SET {charset}" if charset and charset != "utf8mb4" else ""
    return f"{quote_mysql(column.source_name)} {column.column_type}{other}"


@pytest.fixture(scope="module")
def source() -> Iterator[tuple[pymysql.Connection, list[Column]]]:
    """The canary as a MariaDB table, and its columns as information_schema gives them."""
    by_name = {c.name: c for c in canary.canary_types()}
    columns = canary.canary_columns()
    ddl = ", ".join(_declaration(c, by_name.get(c.source_name)) for c in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    with empty_database(DATABASE) as conn:
        with conn.cursor() as cur:
            table = f"`{DATABASE}`.{TABLE}"
            cur.execute(f"CREATE TABLE {table} ({ddl}, PRIMARY KEY ({KEY})) CHARSET utf8mb4")
            cur.executemany(
                f"INSERT INTO `{DATABASE}`.{TABLE} VALUES ({placeholders})", canary.canary_rows()
            )
        yield conn, read_columns(conn, DATABASE, TABLE)


# Rows without canary columns: names information_schema never reports, and size variants
# of a row that has them (the same target but for its length).
WITHOUT_CANARY = {
    "integer", "numeric", "tinytext", "mediumtext", "longtext",
    "tinyblob", "mediumblob", "longblob",
}  # fmt: skip


def test_every_type_has_canary_values() -> None:
    assert {name for name, row in MYSQL_TYPES.items() if not row.canary} == WITHOUT_CANARY
    assert {row.family for row in MYSQL_TYPES.values()} == set(Family)
    for name, row in MYSQL_TYPES.items():
        for column in row.canary:
            assert column.column_type.split("(")[0].split(" ")[0] == name, column.name
            assert len(column.values) == canary.EDGE_ROWS, column.name


def test_information_schema_maps_as_the_canary_says(
    source: tuple[pymysql.Connection, list[Column]],
) -> None:
    _, columns = source
    synthetic = canary.canary_columns()
    assert [c.source_name for c in columns] == [c.source_name for c in synthetic]
    for real, declared in zip(columns, synthetic, strict=True):
        assert (real.arrow_type, real.redshift_type, real.max_bytes) == (
            declared.arrow_type,
            declared.redshift_type,
            declared.max_bytes,
        ), real.source_name


@pytest.mark.parametrize("reader", ["rows", "text"])
def test_both_readers_extract_the_canary_values(
    source: tuple[pymysql.Connection, list[Column]], reader: str
) -> None:
    conn, columns = source
    result, parquet = extract_to_memory(
        conn,
        s3_key=reader,
        index=0,
        lower=None,
        upper=[canary.EDGE_ROWS + 1],
        database=DATABASE,
        table=TABLE,
        columns=columns,
        key_cols=[KEY],
        reader=reader,
    )
    _, expected = canary.canary_table()
    assert result.rows == canary.EDGE_ROWS + 1
    parquet = parquet.cast(expected.schema)  # the file's timestamps are marked UTC
    for name in expected.column_names:
        assert parquet.column(name).to_pylist() == expected.column(name).to_pylist(), name


def test_mysql_checksum_text_equals_the_reference(
    source: tuple[pymysql.Connection, list[Column]],
) -> None:
    conn, columns = source
    fields = ", ".join(checksum.mysql_field(c) for c in columns)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {fields} FROM `{DATABASE}`.{TABLE} ORDER BY {KEY}")
        texts = [[t.decode() if isinstance(t, bytes) else str(t) for t in row] for row in cur]
    _, expected = canary.canary_table()
    for position, column in enumerate(columns):
        values = expected.column(column.target_name).to_pylist()
        wanted = [checksum.canonical_text(column, v) for v in values]
        assert [row[position] for row in texts] == wanted, column.source_name
