"""The canary file: one Parquet file with every column type the extractor writes.

`myshift doctor` writes it exactly as an extraction writes a chunk (the same type
mapping, `schema.to_record_batch`, the same Parquet writer and settings), COPYs it
with the pipeline's COPY role into a temporary table in the target database and reads
every value back: the COPY rules Redshift does not document (codecs, logical types,
timestamp encoding, DECIMAL precision, VARBYTE) become a fact in the user's own
account. The columns are built from synthetic information_schema rows, so no source
table is needed; each type appears at its edges, and a last row is all NULL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from myshift.schema import Column, columns_from_information_schema, to_record_batch

KEY_COLUMN = "myshift_row"


@dataclass(frozen=True)
class _Type:
    """One source column type and the values it holds in the canary rows."""

    name: str
    column_type: str
    values: tuple[Any, ...]  # as pymysql returns them; one per edge row
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    octets: int | None = None
    charset: str | None = None


_TEXT = "utf8mb4"
# Edge values: the type's minimum, maximum and an ordinary or awkward value. Every type
# has EDGE_ROWS values; the canary adds one row of NULLs.
_TYPES: tuple[_Type, ...] = (
    _Type("c_tinyint", "tinyint(4)", (-128, 127, 0), precision=3),
    _Type("c_tinyint_u", "tinyint(3) unsigned", (0, 255, 1), precision=3),
    _Type("c_smallint", "smallint(6)", (-32768, 32767, 0), precision=5),
    _Type("c_smallint_u", "smallint(5) unsigned", (0, 65535, 1), precision=5),
    _Type("c_mediumint", "mediumint(9)", (-8388608, 8388607, 0), precision=7),
    _Type("c_mediumint_u", "mediumint(8) unsigned", (0, 16777215, 1), precision=7),
    _Type("c_int", "int(11)", (-2147483648, 2147483647, 0), precision=10),
    _Type("c_int_u", "int(10) unsigned", (0, 4294967295, 1), precision=10),
    _Type("c_bigint", "bigint(20)", (-(2**63), 2**63 - 1, 0), precision=19),
    _Type("c_bigint_u", "bigint(20) unsigned", (0, 2**64 - 1, 1), precision=20),
    _Type("c_year", "year(4)", (1901, 2155, 2000)),
    _Type(
        "c_decimal",
        "decimal(15,4)",
        (Decimal("-99999999999.9999"), Decimal("99999999999.9999"), Decimal("-0.5000")),
        precision=15,
        scale=4,
    ),
    _Type(
        "c_decimal_38",
        "decimal(38,10)",
        (
            Decimal("-" + "9" * 28 + "." + "9" * 10),
            Decimal("9" * 28 + "." + "9" * 10),
            Decimal("0.0000000001"),
        ),
        precision=38,
        scale=10,
    ),
    _Type(
        "c_decimal_65",
        "decimal(65,30)",
        (Decimal("-" + "9" * 35 + "." + "9" * 30), Decimal("9" * 35 + "." + "9" * 30), Decimal(0)),
        precision=65,
        scale=30,
    ),
    _Type("c_float", "float", (-3.4028234663852886e38, 1.1754943508222875e-38, 0.1)),
    _Type("c_double", "double", (-1.7976931348623157e308, 2.2250738585072014e-308, 0.1)),
    _Type("c_bit1", "bit(1)", (b"\x00", b"\x01", b"\x01"), precision=1),
    _Type("c_bit8", "bit(8)", (b"\x00", b"\xff", b"\x80"), precision=8),
    _Type("c_bit64", "bit(64)", (b"\x00" * 8, b"\xff" * 8, b"\x80" + b"\x00" * 7), precision=64),
    _Type("c_date", "date", (date(1000, 1, 1), date(9999, 12, 31), date(1970, 1, 1))),
    _Type(
        "c_datetime",
        "datetime(6)",
        (
            datetime(1000, 1, 1, 0, 0, 0),
            datetime(9999, 12, 31, 23, 59, 59, 999999),
            datetime(2024, 2, 29, 12, 30, 45, 123456),
        ),
    ),
    _Type(
        "c_timestamp",
        "timestamp(6)",
        (
            datetime(1970, 1, 1, 0, 0, 1),
            datetime(2038, 1, 19, 3, 14, 7, 999999),
            datetime(2000, 1, 1, 0, 0, 0, 1),
        ),
    ),
    _Type(
        "c_time",
        "time(6)",
        (
            -timedelta(hours=838, minutes=59, seconds=59),
            timedelta(hours=838, minutes=59, seconds=59),
            timedelta(microseconds=1),
        ),
    ),
    _Type("c_char", "char(10)", ("", "abcdefghij", "é ü"), length=10, charset=_TEXT),
    _Type(
        "c_varchar",
        "varchar(255)",
        ("", "x" * 255, "emoji 😀, CJK 漢字, quote ' \" \\ , newline\n"),
        length=255,
        charset=_TEXT,
    ),
    _Type("c_varchar_latin1", "varchar(20)", ("", "Zürich", "naïve"), length=20, charset="latin1"),
    _Type("c_enum", "enum('a','bb','ccc')", ("a", "ccc", "bb"), length=3, charset=_TEXT),
    _Type("c_set", "set('a','bb','ccc')", ("", "a,bb,ccc", "bb"), length=8, charset=_TEXT),
    _Type("c_text", "text", ("", "t" * 5000, "multi\nline\ttext"), octets=65535, charset=_TEXT),
    _Type(
        "c_json",
        "json",
        ("{}", '{"a": [1, 2.5, null, true], "b": "é"}', "[]"),
        octets=4294967295,
        charset=_TEXT,
    ),
    _Type("c_binary", "binary(16)", (b"\x00" * 16, b"\xff" * 16, bytes(range(16))), length=16),
    _Type("c_varbinary", "varbinary(255)", (b"", b"\xff" * 255, b"\x00\x01\x02"), length=255),
    _Type("c_blob", "blob", (b"", bytes(range(256)) * 40, b"\x00"), octets=65535),
)
EDGE_ROWS = 3


def _information_schema_row(position: int, column: _Type) -> dict[str, Any]:
    data_type = column.column_type.split("(")[0].split(" ")[0]
    return {
        "COLUMN_NAME": column.name,
        "DATA_TYPE": data_type,
        "COLUMN_TYPE": column.column_type,
        "IS_NULLABLE": "YES",
        "CHARACTER_MAXIMUM_LENGTH": column.length,
        "CHARACTER_OCTET_LENGTH": column.octets,
        "NUMERIC_PRECISION": column.precision,
        "NUMERIC_SCALE": column.scale,
        "DATETIME_PRECISION": 6 if data_type in ("datetime", "timestamp", "time") else None,
        "CHARACTER_SET_NAME": column.charset,
        "COLUMN_KEY": "",
        "ORDINAL_POSITION": position,
    }


def canary_columns() -> list[Column]:
    """The canary's columns: a key column, then one column per mapped type."""
    rows = [
        {
            **_information_schema_row(1, _Type(KEY_COLUMN, "int(11)", ())),
            "IS_NULLABLE": "NO",
            "COLUMN_KEY": "PRI",
        }
    ]
    rows += [_information_schema_row(i, t) for i, t in enumerate(_TYPES, start=2)]
    return columns_from_information_schema(rows)


def canary_rows() -> list[tuple[Any, ...]]:
    """The canary's rows as pymysql would return them: the edges, then a row of NULLs."""
    rows = [(i + 1, *(t.values[i] for t in _TYPES)) for i in range(EDGE_ROWS)]
    rows.append((EDGE_ROWS + 1, *(None for _ in _TYPES)))
    return rows


def canary_table() -> tuple[list[Column], pa.Table]:
    """The columns and the rows as the extractor converts them (what the file holds)."""
    columns = canary_columns()
    batch, _ = to_record_batch(columns, canary_rows())
    return columns, pa.Table.from_batches([batch])
