"""Checksums agree between MariaDB and the Redshift stand-in on every type at its edges.

The type-fidelity table of the schema integration test (every MySQL type at its edges,
NULLs, zero dates, a TEXT over 65,535 bytes, binary with 0x00 bytes...) plus rows for
the checksum's own edges (CHAR with trailing spaces, subnormal and extreme floats, a
BLOB over 32,000 bytes, a text with the separator and a backslash key) is extracted to
Parquet by the product's extractor and loaded into PostgreSQL by the stand-in's COPY, as
a sync would. Then both sides compute each canonical text, each row hash and each
range's (count, sum), and the Python reference (`checksum.canonical_text`) computes them
from the values PostgreSQL holds: all three agree. Changed rows are found by range and
named by key.

Needs MariaDB on 127.0.0.1:3306 and PostgreSQL on 127.0.0.1:5432; databases of its own.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pymysql
import pytest
from myshift import checksum, extract
from myshift.checksum import KeyRange
from myshift.identifiers import quote_redshift_table
from myshift.local.redshift_standin import CALLER, RedshiftDataStandIn
from myshift.schema import Column

from tests.support import edge_table as edge
from tests.support.mariadb import Capture, empty_database, read_columns
from tests.support.postgres import database_dsn, drop_database, drop_role

DATABASE = f"myshift_checksum_{os.getpid()}"
WAREHOUSE = f"myshift_checksum_dw_{os.getpid()}"
SCHEMA = "ck"
TABLE = edge.TABLE
BUCKET = "ck"
# Statements run as a role's database user, granted what a DBA grants myshift's load role.
LOADER = f"checksum-loader-{os.getpid()}"
TARGET = {
    "WorkgroupName": "local",
    "Database": "dev",
    CALLER: f"arn:aws:iam::123456789012:role/{LOADER}",
}
QUALIFIED = f"`{DATABASE}`.`{TABLE}`"
KEY = ["id"]

# Rows for the checksum's own edges (the four edge rows are ids 1-4).
EXTRA_ROWS = [
    # CHAR keeps no trailing space; a text holding the separator, a colon and 'N'.
    "INSERT INTO {t} (id, ch, vu, tt, f, dbl) VALUES (5, 'a  ', 'N', '1:a,2:bc', "
    "1.401298464324817e-45, 4.9406564584124654e-324)",
    # The float extremes, a negative zero, a BLOB over one 32,000-byte piece.
    "INSERT INTO {t} (id, f, dbl, bl, vb) VALUES (6, -1.1754943508222875e-38, "
    "2.2250738585072014e-308, REPEAT(x'00ff10', 20000), x'')",
    "INSERT INTO {t} (id, f, dbl, vu) VALUES (7, -0e0, -0e0, 'back\\\\slash''quote')",
]


# --- the stand-in -----------------------------------------------------------------------------


class FakeS3:
    """What the stand-in's COPY reads: the objects under a prefix, and their bodies."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def get_paginator(self, name: str) -> Any:
        files = self.files

        class Pages:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict]:
                keys = [k for k in files if k.startswith(Prefix)]
                return [{"Contents": [{"Key": k, "Size": len(files[k])} for k in keys]}]

        return Pages()

    def get_object(self, Bucket: str, Key: str) -> dict:
        return {"Body": io.BytesIO(self.files[Key])}


def run(standin: RedshiftDataStandIn, sql: str) -> list[list[Any]]:
    """One statement through the stand-in (translated as Redshift SQL); its rows."""
    submitted = standin.execute_statement({"Sql": sql, **TARGET})
    while True:
        described = standin.describe_statement({"Id": submitted["Id"]})
        if described["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            break
        time.sleep(0.02)
    assert described["Status"] == "FINISHED", described.get("Error")
    if not described.get("HasResultSet"):
        return []
    result = standin.get_statement_result({"Id": submitted["Id"]})
    return [
        [next(iter(f.values())) if not f.get("isNull") else None for f in r]
        for r in result["Records"]
    ]


def drop_warehouse() -> None:
    drop_database(WAREHOUSE)
    drop_role(f"iamr:{LOADER}")


def warehouse_dsn() -> str:
    return database_dsn(WAREHOUSE)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source() -> Iterator[pymysql.Connection]:
    """The edge table and the extra rows in MariaDB (UTC session, as the extractor's)."""
    with empty_database(DATABASE) as conn:
        with conn.cursor() as cur, edge.edge_table(cur, DATABASE):
            for statement in EXTRA_ROWS:
                cur.execute(statement.format(t=QUALIFIED))
        yield conn


@pytest.fixture(scope="module")
def columns(source: pymysql.Connection) -> list[Column]:
    return read_columns(source, DATABASE, TABLE)


@pytest.fixture(scope="module")
def standin(source: pymysql.Connection, columns: list[Column]) -> Iterator[RedshiftDataStandIn]:
    """The table extracted by the product's extractor and COPYed by the stand-in."""
    drop_warehouse()
    s3 = Capture()
    result = extract.extract_chunk(
        source,
        s3,
        bucket=BUCKET,
        s3_key="data/chunk-00000.parquet",
        index=0,
        database=DATABASE,
        table=TABLE,
        columns=columns,
        key_cols=KEY,
        lower=None,
        upper=[1_000],
    )
    assert result.rows == 7
    assert result.report.values_truncated == {"lt": 1}  # the TEXT over 65,535 bytes
    instance = RedshiftDataStandIn(warehouse_dsn(), lambda: FakeS3(s3.files))
    try:
        qualified = quote_redshift_table(SCHEMA, TABLE)
        ddl = ", ".join(
            f'"{c.target_name}" {c.redshift_type}{"" if c.nullable else " NOT NULL"}'
            for c in columns
        )
        instance.run_as_admin(f'CREATE USER "IAMR:{LOADER}" PASSWORD DISABLE')
        instance.run_as_admin(f'GRANT CREATE ON DATABASE "{WAREHOUSE}" TO "IAMR:{LOADER}"')
        run(instance, f"CREATE SCHEMA {SCHEMA}")
        run(instance, f"CREATE TABLE {qualified} ({ddl})")
        run(
            instance,
            f"COPY {qualified} FROM 's3://{BUCKET}/data/' IAM_ROLE default FORMAT AS PARQUET",
        )
        yield instance
    finally:
        instance.shutdown()
        drop_warehouse()


def source_rows(conn: pymysql.Connection, sql: str, params: list | tuple = ()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, list(params))  # always %-formatted, as the product sends SQL
        return list(cur.fetchall())


def warehouse_values(columns: list[Column]) -> dict[int, tuple]:
    """The rows as PostgreSQL holds them, by id."""
    names = ", ".join(f'"{c.target_name}"' for c in columns)
    with psycopg.connect(warehouse_dsn()) as conn:
        rows = conn.execute(f'SELECT {names} FROM {SCHEMA}."{TABLE}" ORDER BY id').fetchall()
    return {row[0]: row for row in rows}


def as_text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes | bytearray) else str(value)


# --- tests ------------------------------------------------------------------------------------


def test_every_canonical_text_agrees(
    source: pymysql.Connection, columns: list[Column], standin: RedshiftDataStandIn
) -> None:
    mysql = source_rows(
        source,
        f"SELECT id, {', '.join(checksum.mysql_field(c) for c in columns)} FROM {QUALIFIED} "
        "ORDER BY id",
    )
    redshift = run(
        standin,
        f"SELECT id, {', '.join(checksum.redshift_field(c) for c in columns)} "
        f'FROM {SCHEMA}."{TABLE}" ORDER BY 1',
    )
    reference = warehouse_values(columns)
    mismatches = []
    for mine, theirs in zip(mysql, redshift, strict=True):
        values = reference[mine[0]]
        for i, col in enumerate(columns):
            texts = (
                as_text(mine[i + 1]),
                as_text(theirs[i + 1]),
                checksum.canonical_text(col, values[i]),
            )
            if len(set(texts)) != 1:
                mismatches.append((mine[0], col.source_name, *(t[:80] for t in texts)))
    assert len(mysql) == len(redshift) == 7
    assert mismatches == []


def test_the_forms_are_as_documented(columns: list[Column], standin: RedshiftDataStandIn) -> None:
    by_name = {c.source_name: c for c in columns}
    low, high, zero, null = (warehouse_values(columns)[i] for i in (1, 2, 3, 4))
    names = [c.source_name for c in columns]

    def text(row: tuple, name: str) -> str:
        return checksum.canonical_text(by_name[name], row[names.index(name)])

    assert text(high, "biu") == "18446744073709551615" and text(high, "b64") == text(high, "biu")
    assert text(low, "d154") == "-99999999999.9999" and text(zero, "d6530") == "0." + "0" * 30
    assert text(high, "dbl") == "5404319552844596p-2"  # 0.1 + 0.2, exactly
    assert text(high, "dtm") == "9999-12-31 23:59:59.999999"
    assert text(low, "dtm") == "1000-01-01 00:00:00.000000"
    assert text(zero, "dz") == text(zero, "dt") == text(null, "ti") == "N"
    assert text(low, "tm1") == "-00:00:00.500000" and text(high, "tm") == "838:59:59"
    assert text(low, "vu") == f"40:{edge.EMOJI * 10}" and text(high, "st") == "8:a,bb,ccc"
    assert text(low, "bn") == "x61620000" and text(high, "vb") == "x"  # BINARY(4) padded
    assert len(text(low, "lt")) == 65 and len(text(low, "bl")) == 64  # hashed
    assert text(low, "js") == "24:" + '{"k": "é", "n": [1, 2]}'  # a short JSON inline


def test_row_hashes_agree_row_by_row(
    source: pymysql.Connection, columns: list[Column], standin: RedshiftDataStandIn
) -> None:
    everything = KeyRange(None, None)
    sql, params = checksum.source_row_checksums_sql(DATABASE, TABLE, columns, KEY, everything)
    mysql = [(row[0], as_text(row[1]), as_text(row[2])) for row in source_rows(source, sql, params)]
    redshift = [
        (row[0], row[1], row[2])
        for row in run(
            standin, checksum.target_row_checksums_sql(SCHEMA, TABLE, columns, KEY, everything)
        )
    ]
    reference = warehouse_values(columns)
    assert mysql == redshift
    assert [row[2] for row in mysql] == [
        checksum.row_hash(columns, reference[i]) for i in range(1, 8)
    ]
    assert checksum.differing_keys(mysql, redshift) == {
        "missing": [],
        "extra": [],
        "differing": [],
        "duplicated": [],
    }


RANGES = {
    "contiguous": [
        KeyRange(None, [2]),
        KeyRange([2], [4]),
        KeyRange([4], [5]),
        KeyRange([5], None),
    ],
    "gaps and empty ranges": [
        KeyRange([0], [1]),
        KeyRange([2], [3]),
        KeyRange([3], [3]),  # empty
        KeyRange([5], [7]),
        KeyRange([100], None),  # empty
    ],
    "one range": [KeyRange(None, None)],
}


@pytest.mark.parametrize("name", list(RANGES))
def test_range_checksums_agree(
    name: str, source: pymysql.Connection, columns: list[Column], standin: RedshiftDataStandIn
) -> None:
    ranges = RANGES[name]
    sql, params = checksum.source_range_checksums_sql(DATABASE, TABLE, columns, KEY, ranges)
    mysql = checksum.parse_range_checksums(source_rows(source, sql, params))
    target_sql = checksum.target_range_checksums_sql(SCHEMA, TABLE, columns, KEY, ranges)
    redshift = checksum.parse_range_checksums(run(standin, target_sql))
    assert mysql == redshift
    # The reference: each row's 60 bits added up in its range.
    reference = warehouse_values(columns)
    expected: dict[int, list[int]] = {}
    for index, key_range in enumerate(ranges):
        for row_id, values in reference.items():
            low, high = key_range.lower, key_range.upper
            if (low is None or row_id > low[0]) and (high is None or row_id <= high[0]):
                expected.setdefault(index, []).append(
                    checksum.row_number(checksum.row_hash(columns, values))
                )
    assert {i: (r.rows, r.total) for i, r in mysql.items()} == {
        i: (len(n), sum(n)) for i, n in expected.items()
    }


def test_a_changed_row_is_found_by_range_and_named(
    source: pymysql.Connection, columns: list[Column], standin: RedshiftDataStandIn
) -> None:
    ranges = RANGES["contiguous"]
    before = checksum.parse_range_checksums(
        run(standin, checksum.target_range_checksums_sql(SCHEMA, TABLE, columns, KEY, ranges))
    )
    # One byte of the BLOB over 32,000 bytes (its second piece), as a bad load would leave it.
    qualified = f'{SCHEMA}."{TABLE}"'
    flip = (
        f"UPDATE {qualified} SET bl = set_byte(bl, 39999, 255 - get_byte(bl, 39999)) WHERE id = 6"
    )
    run(standin, flip)
    try:
        after = checksum.parse_range_checksums(
            run(standin, checksum.target_range_checksums_sql(SCHEMA, TABLE, columns, KEY, ranges))
        )
        changed = [i for i in before if before[i] != after[i]]
        assert changed == [3]  # (5, +inf)
        assert after[3].rows == before[3].rows
        sql, params = checksum.source_row_checksums_sql(DATABASE, TABLE, columns, KEY, ranges[3])
        mine = source_rows(source, sql, params)
        theirs = run(
            standin, checksum.target_row_checksums_sql(SCHEMA, TABLE, columns, KEY, ranges[3])
        )
        assert checksum.differing_keys(
            [(r[0], as_text(r[1]), as_text(r[2])) for r in mine], theirs
        )["differing"] == ["6"]
    finally:
        run(standin, flip)  # its own inverse


def test_wide_rows_are_hashed_in_groups(
    source: pymysql.Connection,
    columns: list[Column],
    standin: RedshiftDataStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A row whose text could pass Redshift's VARCHAR limit is hashed per column group."""
    monkeypatch.setattr(checksum, "GROUP_BYTES", 120)
    assert len(checksum.column_groups(columns)) > 5
    everything = KeyRange(None, None)
    sql, params = checksum.source_row_checksums_sql(DATABASE, TABLE, columns, KEY, everything)
    mysql = [as_text(row[2]) for row in source_rows(source, sql, params)]
    target = checksum.target_row_checksums_sql(SCHEMA, TABLE, columns, KEY, everything)
    reference = warehouse_values(columns)
    assert (
        mysql
        == [row[2] for row in run(standin, target)]
        == [checksum.row_hash(columns, reference[i]) for i in range(1, 8)]
    )


def test_the_sums_are_exact_integers(
    source: pymysql.Connection, columns: list[Column], standin: RedshiftDataStandIn
) -> None:
    """No double on either side: a sum of 60-bit values keeps every digit."""
    sql, params = checksum.source_range_checksums_sql(
        DATABASE, TABLE, columns, KEY, [KeyRange(None, None)]
    )
    mysql_sum = source_rows(source, sql, params)[0][2]
    reference = warehouse_values(columns)
    exact = sum(checksum.row_number(checksum.row_hash(columns, v)) for v in reference.values())
    assert isinstance(mysql_sum, Decimal) and mysql_sum == exact > 2**53  # past a double
    redshift = run(
        standin,
        checksum.target_range_checksums_sql(SCHEMA, TABLE, columns, KEY, [KeyRange(None, None)]),
    )
    assert Decimal(redshift[0][2]) == mysql_sum
