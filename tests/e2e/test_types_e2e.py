"""Every MySQL type, through the real state machine, into the warehouse: value by value.

The source table holds each type of issue 3 at its edges (the rows of the schema
integration test: integer limits signed and unsigned, TINYINT(1) holding 2 and 13,
BIT(1) and BIT(64), YEAR, DECIMAL(15,4), DECIMAL(38,10) at its extremes,
DECIMAL(65,30), FLOAT, DOUBLE, DATE, DATETIME(6), TIMESTAMP(6), zero dates, TIME
negative and over 24 h, VARCHAR of 4-byte characters at its declared length, latin1,
CHAR, ENUM, SET, JSON, a TEXT over 65,535 bytes, BINARY/VARBINARY/BLOB, reserved-word
and digit-leading column names, NULL in every nullable column). The expected warehouse
value of each is derived here from what MySQL itself returns, by the documented rules,
not by the extractor's code.
"""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from myshift.local.engine import LocalEngine

from tests.conftest import MYSQL
from tests.e2e.conftest import run
from tests.support import edge_table as edge
from tests.support.mariadb import connect

PIPELINE = "e2e_types"
DATABASE = "myshift_e2e_types"
TABLE = "edge_types"
SCHEMA = "types_dw"
QUALIFIED = f"`{DATABASE}`.`{TABLE}`"
MAX_VARCHAR = 65535
NAMES = {"190_time": "col_190_time", "Mixed Case": "mixed_case", "we`ird": "we_ird"}
EXTRA = (
    5,
    'a"b,\nc\r\x1f',
    "\u00e9\u20ac",
    "xyz",
    "\U0001f600" * 255,
    b'"\n,\x00\xff',
    b"\xff" * 4,
)


@pytest.fixture(scope="module")
def synced(pipelines_dir: Path, engine: LocalEngine) -> dict[str, Any]:
    """The table created and filled, then synced by one run (chunks of 2 rows)."""
    engine.clear_faults()  # a fault another test left armed must not hit these runs
    conn = connect(utc=True)
    with conn.cursor() as cur, edge.edge_table(cur, DATABASE):
        # The cursor column, on the rows already there and every row after.
        cur.execute(
            f"ALTER TABLE {QUALIFIED} ADD COLUMN updated_at DATETIME(6) NOT NULL "
            "DEFAULT '2025-08-01 00:00:00', ADD KEY idx_updated_at_id (updated_at, id)"
        )
        cur.execute(
            f"INSERT INTO {QUALIFIED} (id, vu, vl, ch, tt, bl, bn) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            EXTRA,
        )
    conn.close()
    source = f"{{host: {MYSQL['host']}, port: {MYSQL['port']}, user: {MYSQL['user']}"
    (pipelines_dir / f"{PIPELINE}.yml").write_text(
        f"""name: {PIPELINE}
source: {source}, password_env: MYSQL_PASSWORD}}
target: {{database: dev, schema: {SCHEMA}, workgroup: local}}
chunk_rows: 2
max_concurrent_chunks: 2
safety_lag_seconds: 0
tables:
  - {{name: {DATABASE}.{TABLE}, cursor: updated_at, primary_key: [id]}}
"""
    )
    description = run(engine, {"pipeline": PIPELINE, "tables": [f"{DATABASE}.{TABLE}"]})
    assert description["status"] == "SUCCEEDED", description.get("cause")
    return description["output_json"]["results"][0]


def source_rows() -> tuple[list[str], dict[int, dict[str, Any]]]:
    """The source as MySQL gives it, with FLOAT read exactly and TIME as MySQL prints it."""
    conn = connect()
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(
            f"SELECT *, f + 0e0 AS f_exact, CAST(tm AS CHAR) AS tm_text, "
            f"CAST(tm1 AS CHAR) AS tm1_text FROM {QUALIFIED} ORDER BY id"
        )
        rows = cur.fetchall()
        names = [d[0] for d in cur.description][:-3]
    conn.close()
    return names, {row["id"]: row for row in rows}


def time_text(text: str | None) -> str | None:
    """MySQL's TIME text with the fraction as six digits (the documented VARCHAR form)."""
    if text is None or "." not in text:
        return text
    whole, fraction = text.split(".")
    return f"{whole}.{fraction.ljust(6, '0')}"


def cut(text: str, limit: int = MAX_VARCHAR) -> str:
    """At most `limit` UTF-8 bytes, never half a character."""
    return text.encode()[:limit].decode("utf-8", errors="ignore")


def expected(name: str, row: dict[str, Any]) -> Any:
    """The warehouse value of one source value, by the rules of DESIGN.md's type table."""
    value = row[name]
    if name == "f":
        return (
            None
            if row["f_exact"] is None
            else struct.unpack("f", struct.pack("f", row["f_exact"]))[0]
        )
    if name in ("tm", "tm1"):
        return time_text(row[f"{name}_text"])
    if value is None:
        return None
    if name in ("b1", "b5", "b64"):
        number = int.from_bytes(value, "big")
        return number != 0 if name == "b1" else Decimal(number) if name == "b64" else number
    if name in ("dt", "dpart", "dtm", "ts", "dz"):
        return value if isinstance(value, dt.date) else None  # pymysql keeps zero dates as str
    if name == "biu":
        return Decimal(value)
    if name == "d6530":
        return format(value, "f")  # VARCHAR: every digit, never rounded
    if isinstance(value, str):
        return cut(value)
    return value


def warehouse_value(name: str, value: Any) -> Any:
    if isinstance(value, memoryview):
        return bytes(value)
    if name == "f" and value is not None:
        return struct.unpack("f", struct.pack("f", value))[0]
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return value


def test_every_value_arrives_unchanged(synced: dict[str, Any], warehouse_dsn: str) -> None:
    names, source = source_rows()
    targets = [NAMES.get(n, n) for n in names]
    with psycopg.connect(warehouse_dsn) as pg:
        cursor = pg.execute(
            "SELECT "
            + ", ".join(f'"{t}"' for t in targets)
            + f' FROM {SCHEMA}."{TABLE}" ORDER BY id'
        )
        target = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    assert sorted(target) == sorted(source) == [1, 2, 3, 4, 5]
    mismatches = []
    for key, row in source.items():
        for name in names:
            want, got = expected(name, row), warehouse_value(name, target[key][name])
            if isinstance(want, Decimal) and isinstance(got, Decimal):
                same = want == got
            else:
                same = (want == got and type(want) is type(got)) or (want is None and got is None)
            if not same:
                mismatches.append((key, name, want, got))
    assert mismatches == []


def test_nulls_edges_and_conversions_are_as_documented(
    synced: dict[str, Any], warehouse_dsn: str
) -> None:
    with psycopg.connect(warehouse_dsn) as pg:
        low, high, zero, null, extra = pg.execute(
            f'SELECT biu, ti1, b64, d3810, d6530, tm, tm1, lt, vu, dz, "order", col_190_time, '
            f'octet_length(lt), ts, bl FROM {SCHEMA}."{TABLE}" ORDER BY id'
        ).fetchall()
    assert high[0] == Decimal(18446744073709551615) and high[2] == Decimal(18446744073709551615)
    assert (low[1], high[1]) == (2, 13)  # TINYINT(1) keeps its values
    assert low[3] == Decimal("-" + edge.BIG_38) and high[3] == Decimal(edge.BIG_38)
    assert high[4] == edge.BIG_65 and low[4] == "-" + edge.BIG_65  # not rounded
    assert (low[5], high[5], low[6], high[6]) == (
        "-838:59:59",
        "838:59:59",
        "-00:00:00.500000",
        "100:00:00.500000",
    )
    assert low[12] <= MAX_VARCHAR and low[7].endswith("a") and "\U0001f600" not in low[7]
    assert low[8] == "\U0001f600" * 10  # VARCHAR(10) of 4-byte characters: 40 bytes
    assert extra[8] == 'a"b,\nc\r\x1f' and extra[14] == b'"\n,\x00\xff'
    assert zero[9] is None and zero[13] is None  # zero dates
    assert (low[10], low[11]) == (1, 2)  # reserved word and leading digit
    assert null[:10] == (None,) * 10  # NULL in every nullable column (dz: a zero date)
    report = synced["conversion_report"]
    assert report["zero_dates_nulled"] == {"dt": 1, "dpart": 1, "dtm": 1, "ts": 1, "dz": 3}
    assert report["values_truncated"] == {"lt": 1}
