"""Unit tests of myshift.schema: the type mapping, the name rules, the row conversion."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from myshift.errors import IdentifierError, SchemaError
from myshift.schema import (
    COLUMNS_QUERY,
    REDSHIFT_MAX_VARBYTE,
    Column,
    ConversionReport,
    arrow_schema,
    columns_from_information_schema,
    format_time,
    redshift_columns_ddl,
    sanitize_column_name,
    select_list,
    target_name_map,
    to_record_batch,
    truncate_utf8,
)

from tests.support.schema_rows import info


def one(row: dict[str, Any], **kwargs: Any) -> Column:
    (column,) = columns_from_information_schema([row], **kwargs)
    return column


# --- the query ----------------------------------------------------------------------


def test_columns_query_is_parameterized_and_ordered() -> None:
    assert COLUMNS_QUERY.count("%s") == 2
    assert "TABLE_SCHEMA = %s AND TABLE_NAME = %s" in COLUMNS_QUERY
    assert COLUMNS_QUERY.rstrip().endswith("ORDER BY ORDINAL_POSITION")
    for name in (
        "COLUMN_NAME",
        "DATA_TYPE",
        "COLUMN_TYPE",
        "IS_NULLABLE",
        "CHARACTER_MAXIMUM_LENGTH",
        "NUMERIC_PRECISION",
        "NUMERIC_SCALE",
        "DATETIME_PRECISION",
        "CHARACTER_SET_NAME",
        "COLUMN_KEY",
    ):
        assert f"AS {name}" in COLUMNS_QUERY


# --- the mapping --------------------------------------------------------------------


def varchar_10(charset: str) -> dict[str, Any]:
    """A VARCHAR(10) column of `charset`."""
    return info("c", "varchar", "varchar(10)", chars=10, charset=charset)


def as_varchar(row: dict[str, Any], size: int) -> tuple[dict[str, Any], pa.DataType, str, int]:
    """A MAPPING entry: the column becomes a string, VARCHAR(`size`) of at most `size` bytes."""
    return row, pa.string(), f"VARCHAR({size})", size


def as_decimal(row: dict[str, Any]) -> tuple[dict[str, Any], pa.DataType, str, None]:
    """A MAPPING entry: the column keeps its precision and scale as a DECIMAL."""
    precision, scale = row["NUMERIC_PRECISION"], row["NUMERIC_SCALE"]
    return row, pa.decimal128(precision, scale), f"DECIMAL({precision},{scale})", None


MAPPING = [
    # (information_schema row, arrow type, Redshift type, max_bytes)
    (info("c", "tinyint", "tinyint(4)", precision=3), pa.int16(), "SMALLINT", None),
    (info("c", "tinyint", "tinyint(1)", precision=3), pa.int16(), "SMALLINT", None),
    (info("c", "tinyint", "tinyint(3) unsigned", precision=3), pa.int16(), "SMALLINT", None),
    (info("c", "smallint", "smallint(6)", precision=5), pa.int16(), "SMALLINT", None),
    (info("c", "year", "year(4)"), pa.int16(), "SMALLINT", None),
    (info("c", "smallint", "smallint(5) unsigned"), pa.int32(), "INTEGER", None),
    (info("c", "mediumint", "mediumint(9)"), pa.int32(), "INTEGER", None),
    (info("c", "mediumint", "mediumint(8) unsigned"), pa.int32(), "INTEGER", None),
    (info("c", "int", "int(11)"), pa.int32(), "INTEGER", None),
    (info("c", "int", "int(10) unsigned"), pa.int64(), "BIGINT", None),
    (info("c", "int", "int(10) unsigned zerofill"), pa.int64(), "BIGINT", None),
    (info("c", "bigint", "bigint(20)"), pa.int64(), "BIGINT", None),
    (info("c", "bigint", "bigint(20) unsigned"), pa.decimal128(20, 0), "DECIMAL(20,0)", None),
    as_decimal(info("c", "decimal", "decimal(15,4)", precision=15, scale=4)),
    as_decimal(info("c", "decimal", "decimal(38,10)", precision=38, scale=10)),
    as_decimal(info("c", "decimal", "decimal(10,0) unsigned", precision=10, scale=0)),
    as_varchar(info("c", "decimal", "decimal(39,2)", precision=39, scale=2), 41),
    as_varchar(info("c", "decimal", "decimal(65,30)", precision=65, scale=30), 67),
    (info("c", "float", "float", precision=12), pa.float32(), "REAL", None),
    (info("c", "double", "double", precision=22), pa.float64(), "DOUBLE PRECISION", None),
    (info("c", "bit", "bit(1)", precision=1), pa.bool_(), "BOOLEAN", None),
    (info("c", "bit", "bit(2)", precision=2), pa.int64(), "BIGINT", None),
    (info("c", "bit", "bit(63)", precision=63), pa.int64(), "BIGINT", None),
    (info("c", "bit", "bit(64)", precision=64), pa.decimal128(20, 0), "DECIMAL(20,0)", None),
    (info("c", "bit", "bit(5)"), pa.int64(), "BIGINT", None),  # precision from COLUMN_TYPE
    (info("c", "date"), pa.date32(), "DATE", None),
    (info("c", "datetime", dt_precision=0), pa.timestamp("us"), "TIMESTAMP", None),
    (info("c", "datetime", "datetime(6)", dt_precision=6), pa.timestamp("us"), "TIMESTAMP", None),
    (info("c", "timestamp", "timestamp(3)"), pa.timestamp("us"), "TIMESTAMP", None),
    as_varchar(info("c", "time", dt_precision=0), 20),
    as_varchar(info("c", "time", "time(6)", dt_precision=6), 20),
    # CHAR/VARCHAR: characters x the most UTF-8 bytes a character of the charset takes.
    as_varchar(varchar_10("utf8mb4"), 40),
    as_varchar(info("c", "char", "char(10)", chars=10, charset="utf8mb3"), 30),
    as_varchar(varchar_10("utf8"), 30),
    # latin1 is cp1252: 'é' takes 2 UTF-8 bytes and '€' 3 (see the integration test).
    as_varchar(varchar_10("latin1"), 30),
    as_varchar(varchar_10("ascii"), 10),
    as_varchar(varchar_10("ucs2"), 30),
    as_varchar(varchar_10("utf16"), 40),
    as_varchar(varchar_10("utf32"), 40),
    as_varchar(info("c", "varchar", "varchar(20000)", chars=20000, charset="utf8mb4"), 65535),
    as_varchar(info("c", "char", "char(0)", chars=0, charset="utf8mb4"), 1),
    # ENUM/SET: CHARACTER_MAXIMUM_LENGTH is the longest member / the whole set.
    as_varchar(info("c", "enum", "enum('small','medium')", chars=6, charset="utf8mb4"), 24),
    as_varchar(info("c", "set", "set('a','bb','ccc')", chars=8, charset="latin1"), 24),
    # Without CHARACTER_MAXIMUM_LENGTH: read from COLUMN_TYPE.
    as_varchar(info("c", "enum", "enum('a','it''s')", charset="utf8mb4"), 16),
    as_varchar(info("c", "set", "set('a','bb','ccc')", charset="utf8mb4"), 32),
    # TEXT: the column's byte limit in UTF-8, capped at 65535.
    as_varchar(info("c", "tinytext", octets=255, charset="utf8mb4"), 255),
    as_varchar(info("c", "tinytext", charset="utf8mb4"), 255),
    as_varchar(info("c", "tinytext", octets=255, charset="latin1"), 765),
    as_varchar(info("c", "text", octets=65535, charset="utf8mb4"), 65535),
    as_varchar(info("c", "mediumtext", charset="utf8mb4"), 65535),
    as_varchar(info("c", "longtext", octets=4294967295, charset="utf8mb4"), 65535),
    as_varchar(info("c", "json"), 65535),
    (info("c", "binary", "binary(16)", chars=16, octets=16), pa.binary(), "VARBYTE(16)", None),
    (info("c", "varbinary", "varbinary(300)", chars=300), pa.binary(), "VARBYTE(300)", None),
    (info("c", "varbinary", "varbinary(0)", chars=0), pa.binary(), "VARBYTE(1)", None),
    (info("c", "tinyblob"), pa.binary(), "VARBYTE(1024000)", None),
    (info("c", "blob"), pa.binary(), "VARBYTE(1024000)", None),
    (info("c", "mediumblob"), pa.binary(), "VARBYTE(1024000)", None),
    (info("c", "longblob"), pa.binary(), "VARBYTE(1024000)", None),
]


@pytest.mark.parametrize(
    ("row", "arrow_type", "redshift_type", "max_bytes"),
    MAPPING,
    ids=[f"{r[0]['COLUMN_TYPE']}-{r[0]['CHARACTER_SET_NAME']}" for r in MAPPING],
)
def test_mapping(
    row: dict[str, Any], arrow_type: pa.DataType, redshift_type: str, max_bytes: int | None
) -> None:
    column = one(row)
    assert column.arrow_type == arrow_type
    assert column.redshift_type == redshift_type
    assert column.max_bytes == max_bytes
    assert column.data_type == row["DATA_TYPE"]


def test_tinyint1_as_boolean_only_when_configured() -> None:
    row = info("flag", "tinyint", "tinyint(1)")
    assert one(row).arrow_type == pa.int16()
    flag = one(row, tinyint1_as_boolean=True)
    assert (flag.arrow_type, flag.redshift_type) == (pa.bool_(), "BOOLEAN")
    # Only TINYINT(1): a wider TINYINT stays an integer.
    wide = one(info("n", "tinyint", "tinyint(4)"), tinyint1_as_boolean=True)
    assert wide.arrow_type == pa.int16()


@pytest.mark.parametrize(
    ("data_type", "column_type"),
    [("geometry", "geometry"), ("point", "point"), ("polygon", "polygon"), ("inet6", "inet6")],
)
def test_unsupported_type_names_column_and_type(data_type: str, column_type: str) -> None:
    rows = [info("id", "int"), info("shape", data_type, column_type)]
    with pytest.raises(SchemaError, match=rf"'shape'.*{column_type}"):
        columns_from_information_schema(rows)


def test_column_fields_and_normalization() -> None:
    rows = [
        {
            k.lower(): v
            for k, v in info("ID", "BIGINT", "BIGINT(20) UNSIGNED", nullable=False).items()
        },
        info("Status", "enum", "ENUM('Open','Closed')", chars=6, charset="utf8mb4"),
        {**info("raw", "varchar", "varchar(3)", chars=3), "DATA_TYPE": b"varchar"},
    ]
    cid, status, raw = columns_from_information_schema(rows)
    assert cid == Column(
        source_name="ID",
        target_name="id",
        data_type="bigint",
        column_type="bigint(20) unsigned",
        nullable=False,
        arrow_type=pa.decimal128(20, 0),
        redshift_type="DECIMAL(20,0)",
        max_bytes=None,
        charset=None,
        source_nullable=False,
    )
    # Keywords are lower-cased, ENUM members are data and keep their case.
    assert status.column_type == "enum('Open','Closed')"
    assert (status.charset, status.source_nullable) == ("utf8mb4", True)
    assert status.target_name == "status"
    assert raw.data_type == "varchar" and raw.redshift_type == "VARCHAR(12)"


def test_date_columns_are_nullable_targets_even_when_not_null() -> None:
    # A zero date is loaded as NULL, so a NOT NULL DATETIME cannot be NOT NULL in Redshift.
    rows = [
        info("d", "date", nullable=False),
        info("dt", "datetime", nullable=False),
        info("ts", "timestamp", nullable=False),
        info("n", "int", nullable=False),
    ]
    assert [c.nullable for c in columns_from_information_schema(rows)] == [True, True, True, False]


# --- names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("id", "id"),
        ("CustomerID", "customerid"),
        ("190_time", "col_190_time"),
        ("9", "col_9"),
        ("first name", "first_name"),
        ("a-b.c$d", "a_b_c_d"),
        ("prénom", "pr_nom"),
        ("\u212a", "_"),  # the Kelvin sign lower-cases to ASCII 'k': not a letter here
        ("日付", "__"),
        ("", "col_"),
        ("_x", "_x"),
        # reserved words stay: every identifier is quoted
        ("order", "order"),
        ("user", "user"),
        ("select", "select"),
        ("table", "table"),
        # system columns cannot be used even quoted
        ("xmin", "col_xmin"),
        ("OID", "col_oid"),
        ("ctid", "col_ctid"),
        ("insertxid", "col_insertxid"),
    ],
)
def test_sanitize_column_name(source: str, target: str) -> None:
    assert sanitize_column_name(source) == target


def test_sanitize_shortens_long_names_deterministically() -> None:
    long_a = "a" * 200
    long_b = "a" * 199 + "b"
    short_a = sanitize_column_name(long_a)
    assert short_a == sanitize_column_name(long_a)
    assert len(short_a.encode()) == 127
    digest = hashlib.sha1(long_a.encode()).hexdigest()[:8]
    assert short_a == "a" * 118 + "_" + digest
    assert sanitize_column_name(long_b) != short_a
    assert len(sanitize_column_name("é" * 200).encode()) == 127
    assert len(sanitize_column_name("1" * 127)) == 127  # the col_ prefix pushes it over
    assert (
        len(sanitize_column_name("a" * 127)) == 127 and sanitize_column_name("a" * 127) == "a" * 127
    )


@given(st.text(max_size=300))
def test_sanitized_names_are_always_valid(name: str) -> None:
    out = sanitize_column_name(name)
    assert out and len(out.encode("utf-8")) <= 127
    assert set(out) <= set("abcdefghijklmnopqrstuvwxyz0123456789_")
    assert not out[0].isdigit()


def test_target_name_map_collision_names_both() -> None:
    with pytest.raises(IdentifierError, match=r"'first name'.*'first-name'.*'first_name'"):
        target_name_map(["id", "first name", "first-name"])


def test_target_name_map_keeps_existing_names() -> None:
    existing = {"Customer Name": "customer_name_v1", "id": "id"}
    result = target_name_map(["id", "Customer Name", "New Col"], existing)
    assert result == {"id": "id", "Customer Name": "customer_name_v1", "New Col": "new_col"}
    assert list(result) == ["id", "Customer Name", "New Col"]


def test_target_name_map_reserves_targets_of_dropped_columns() -> None:
    # 'old name' left MySQL, but its Redshift column is still there.
    with pytest.raises(IdentifierError, match=r"'old name'.*'old_name'"):
        target_name_map(["id", "old_name"], {"id": "id", "old name": "old_name"})


def test_target_name_map_rejects_an_existing_map_with_a_collision() -> None:
    with pytest.raises(IdentifierError):
        target_name_map(["a", "b"], {"a": "x", "b": "x"})


def test_columns_use_the_name_map() -> None:
    rows = [info("id", "int"), info("Amount", "decimal", precision=15, scale=4)]
    columns = columns_from_information_schema(rows, {"Amount": "amount_old"})
    assert [c.target_name for c in columns] == ["id", "amount_old"]


# --- schema, DDL, SELECT list ------------------------------------------------------


def sample_columns() -> list[Column]:
    return columns_from_information_schema(
        [
            info("id", "bigint", "bigint(20)", nullable=False, key="PRI"),
            info("amount", "decimal", "decimal(15,4)", precision=15, scale=4),
            info("order", "varchar", "varchar(64)", chars=64, charset="utf8mb4", nullable=False),
            info('we`ird "name"', "float", "float"),
        ]
    )


def test_arrow_schema() -> None:
    schema = arrow_schema(sample_columns())
    assert schema == pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("amount", pa.decimal128(15, 4)),
            pa.field("order", pa.string(), nullable=False),
            pa.field("we_ird__name_", pa.float32()),
        ]
    )


def test_redshift_columns_ddl() -> None:
    assert redshift_columns_ddl(sample_columns()) == (
        '"id" BIGINT NOT NULL, "amount" DECIMAL(15,4), "order" VARCHAR(256) NOT NULL, '
        '"we_ird__name_" REAL'
    )


def test_select_list_quotes_and_reads_float_exactly() -> None:
    assert select_list(sample_columns()) == (
        '`id`, `amount`, `order`, (`we``ird "name"` + 0e0) AS `we``ird "name"`'
    )


# --- conversions --------------------------------------------------------------------


def test_format_time() -> None:
    assert format_time(timedelta(hours=12, minutes=3, seconds=4)) == "12:03:04"
    assert format_time(timedelta(0)) == "00:00:00"
    assert format_time(-timedelta(hours=838, minutes=59, seconds=59)) == "-838:59:59"
    assert format_time(timedelta(hours=838, minutes=59, seconds=59)) == "838:59:59"
    assert format_time(timedelta(hours=100, microseconds=500000)) == "100:00:00.500000"
    assert format_time(timedelta(hours=25)) == "25:00:00"
    assert format_time(-timedelta(microseconds=500000)) == "-00:00:00.500000"
    assert format_time(-timedelta(seconds=1)) == "-00:00:01"
    assert format_time(timedelta(seconds=1), precision=3) == "00:00:01.000000"


def test_time_column() -> None:
    cols = columns_from_information_schema(
        [info("t", "time", dt_precision=0), info("t6", "time", "time(6)", dt_precision=6)]
    )
    rows = [
        (-timedelta(hours=838, minutes=59, seconds=59), timedelta(hours=1)),
        (timedelta(hours=100, microseconds=500000), timedelta(days=-1, seconds=86399)),
        (None, None),
    ]
    batch, _ = to_record_batch(cols, rows)
    assert batch.column(0).to_pylist() == ["-838:59:59", "100:00:00.500000", None]
    assert batch.column(1).to_pylist() == ["01:00:00.000000", "-00:00:01.000000", None]


def test_bit_conversions() -> None:
    cols = columns_from_information_schema(
        [
            info("b1", "bit", "bit(1)", precision=1),
            info("b5", "bit", "bit(5)", precision=5),
            info("b63", "bit", "bit(63)", precision=63),
            info("b64", "bit", "bit(64)", precision=64),
        ]
    )
    rows = [
        (b"\x01", b"\x1f", b"\x7f" + b"\xff" * 7, b"\xff" * 8),
        (b"\x00", b"\x00", b"\x00" * 8, b"\x00" * 8),
        (1, 3, 2**62, 2**63),  # an int (a CAST column) is taken as it is
        (None, None, None, None),
    ]
    batch, _ = to_record_batch(cols, rows)
    assert batch.to_pydict() == {
        "b1": [True, False, True, None],
        "b5": [31, 0, 3, None],
        "b63": [2**63 - 1, 0, 2**62, None],
        "b64": [Decimal(2**64 - 1), Decimal(0), Decimal(2**63), None],
    }


def test_integers_at_their_limits() -> None:
    specs = [
        (info("ti", "tinyint", "tinyint(4)"), -128, 127),
        (info("tiu", "tinyint", "tinyint(3) unsigned"), 0, 255),
        (info("si", "smallint"), -32768, 32767),
        (info("siu", "smallint", "smallint(5) unsigned"), 0, 65535),
        (info("mi", "mediumint"), -8388608, 8388607),
        (info("miu", "mediumint", "mediumint(8) unsigned"), 0, 16777215),
        (info("i", "int"), -(2**31), 2**31 - 1),
        (info("iu", "int", "int(10) unsigned"), 0, 2**32 - 1),
        (info("bi", "bigint"), -(2**63), 2**63 - 1),
        (info("yr", "year", "year(4)"), 1901, 2155),
    ]
    cols = columns_from_information_schema([s[0] for s in specs])
    rows = [tuple(s[1] for s in specs), tuple(s[2] for s in specs)]
    batch, _ = to_record_batch(cols, rows)
    for i, (_, low, high) in enumerate(specs):
        assert batch.column(i).to_pylist() == [low, high]


def test_bigint_unsigned_max_survives() -> None:
    cols = columns_from_information_schema([info("u", "bigint", "bigint(20) unsigned")])
    batch, _ = to_record_batch(cols, [(18446744073709551615,), (0,), (None,)])
    assert batch.column(0).type == pa.decimal128(20, 0)
    assert batch.column(0).to_pylist() == [Decimal("18446744073709551615"), Decimal(0), None]


def test_tinyint1_values_kept_or_booleans() -> None:
    row = info("flag", "tinyint", "tinyint(1)")
    batch, _ = to_record_batch([one(row)], [(2,), (13,), (0,), (None,)])
    assert batch.column(0).to_pylist() == [2, 13, 0, None]
    batch, _ = to_record_batch([one(row, tinyint1_as_boolean=True)], [(2,), (0,), (None,)])
    assert batch.column(0).to_pylist() == [True, False, None]


def test_decimals() -> None:
    cols = columns_from_information_schema(
        [
            info("d15", "decimal", "decimal(15,4)", precision=15, scale=4),
            info("d38", "decimal", "decimal(38,10)", precision=38, scale=10),
            info("d65", "decimal", "decimal(65,30)", precision=65, scale=30),
        ]
    )
    big38 = Decimal("9" * 28 + "." + "9" * 10)
    neg38 = Decimal("-" + str(big38))  # not -big38: unary minus rounds to 28 digits
    big65 = "9" * 35 + "." + "9" * 30
    rows = [
        (Decimal("12345678901.2345"), big38, Decimal(big65)),
        (Decimal("-0.0001"), neg38, Decimal("-" + big65)),
        # pymysql gives Decimal('0E-30') for a zero DECIMAL(65,30); str() would say '0E-30'.
        (Decimal("0.0000"), Decimal("0E-10"), Decimal("0E-30")),
        (None, None, None),
    ]
    batch, _ = to_record_batch(cols, rows)
    assert batch.column(0).to_pylist() == [
        Decimal("12345678901.2345"),
        Decimal("-0.0001"),
        Decimal(0),
        None,
    ]
    assert batch.column(1).to_pylist() == [big38, neg38, Decimal(0), None]
    assert batch.column(2).to_pylist() == [big65, "-" + big65, "0." + "0" * 30, None]


def test_floats() -> None:
    cols = columns_from_information_schema([info("f", "float"), info("d", "double")])
    rows = [(123456792.0, 0.30000000000000004), (-3.4028234663852886e38, 1.7976931348623157e308)]
    batch, _ = to_record_batch(cols, rows)
    assert batch.column(0).to_pylist() == [123456792.0, -3.4028234663852886e38]
    assert batch.column(1).to_pylist() == [0.30000000000000004, 1.7976931348623157e308]


def test_zero_dates_nulled_and_counted() -> None:
    cols = columns_from_information_schema(
        [
            info("d", "date"),
            info("dt", "datetime", "datetime(6)", dt_precision=6),
            info("ts", "timestamp", nullable=False),
        ]
    )
    rows = [
        (
            date(2024, 2, 29),
            datetime(2024, 2, 29, 23, 59, 59, 999999),
            datetime(1970, 1, 1, 0, 0, 1),
        ),
        ("0000-00-00", "0000-00-00 00:00:00.000000", "0000-00-00 00:00:00"),
        ("2021-02-00", datetime(1000, 1, 1), "0000-00-00 00:00:00"),
        (None, None, datetime(2038, 1, 19, 3, 14, 7)),
    ]
    batch, report = to_record_batch(cols, rows)
    assert batch.to_pydict() == {
        "d": [date(2024, 2, 29), None, None, None],
        "dt": [datetime(2024, 2, 29, 23, 59, 59, 999999), None, datetime(1000, 1, 1), None],
        "ts": [datetime(1970, 1, 1, 0, 0, 1), None, None, datetime(2038, 1, 19, 3, 14, 7)],
    }
    assert batch.schema.field("dt").type == pa.timestamp("us")
    assert report.as_dict() == {
        "zero_dates_nulled": {"d": 2, "dt": 1, "ts": 2},
        "values_truncated": {},
    }


def test_truncate_utf8_at_a_character_boundary() -> None:
    assert truncate_utf8("abc", 3) == "abc"
    assert truncate_utf8("ab\U0001f600", 5) == "ab"  # the emoji's 4 bytes do not fit
    assert truncate_utf8("ab\U0001f600", 6) == "ab\U0001f600"
    assert truncate_utf8("\U0001f600\U0001f600", 7) == "\U0001f600"
    assert truncate_utf8("éé", 3) == "é"
    assert truncate_utf8("\U0001f600", 3) == ""


def test_text_values_truncated_and_counted() -> None:
    cols = columns_from_information_schema(
        [
            info("body", "longtext", charset="utf8mb4"),
            info("tiny", "tinytext", octets=255, charset="utf8mb4"),
        ]
    )
    over = "a" * 65533 + "\U0001f600" + "tail"  # the emoji would end at byte 65537
    rows = [(over, "x" * 254 + "é"), ("short", "ok"), (None, None), ("b" * 65535, "y" * 255)]
    batch, report = to_record_batch(cols, rows)
    body = batch.column(0).to_pylist()
    assert body[0] == "a" * 65533 and body[1:] == ["short", None, "b" * 65535]
    assert batch.column(1).to_pylist() == ["x" * 254, "ok", None, "y" * 255]
    assert report.values_truncated == {"body": 1, "tiny": 1}
    assert report.zero_dates_nulled == {}


def test_strings_within_their_length_are_untouched() -> None:
    cols = columns_from_information_schema(
        [
            info("v", "varchar", "varchar(10)", chars=10, charset="utf8mb4"),
            info("e", "enum", "enum('a','b')", chars=1, charset="utf8mb4"),
            info("s", "set", "set('a','b')", chars=3, charset="utf8mb4"),
            info("j", "json"),
        ]
    )
    rows = [("\U0001f600" * 10, "a", "a,b", '{"k": "é"}'), ("", "", "", "[]")]
    batch, report = to_record_batch(cols, rows)
    assert batch.to_pylist()[0] == {"v": "\U0001f600" * 10, "e": "a", "s": "a,b", "j": '{"k": "é"}'}
    assert report.values_truncated == {}


def test_binary_values() -> None:
    cols = columns_from_information_schema(
        [info("b", "binary", "binary(4)", chars=4), info("blob", "longblob")]
    )
    huge = bytes(range(256)) * 5000  # 1,280,000 bytes, over VARBYTE's 1,024,000
    batch, report = to_record_batch(cols, [(b"ab\x00\x00", b"\x00\xff"), (None, huge)])
    assert batch.column(0).to_pylist() == [b"ab\x00\x00", None]
    assert batch.column(1).to_pylist() == [b"\x00\xff", huge[:REDSHIFT_MAX_VARBYTE]]
    assert report.values_truncated == {"blob": 1}


ALL_TYPES = [
    info("ti", "tinyint", "tinyint(4)"),
    info("ti1", "tinyint", "tinyint(1)"),
    info("si", "smallint"),
    info("siu", "smallint", "smallint(5) unsigned"),
    info("mi", "mediumint"),
    info("i", "int"),
    info("iu", "int", "int(10) unsigned"),
    info("bi", "bigint"),
    info("biu", "bigint", "bigint(20) unsigned"),
    info("yr", "year", "year(4)"),
    info("d15", "decimal", "decimal(15,4)", precision=15, scale=4),
    info("d65", "decimal", "decimal(65,30)", precision=65, scale=30),
    info("f", "float"),
    info("dbl", "double"),
    info("b1", "bit", "bit(1)", precision=1),
    info("b5", "bit", "bit(5)", precision=5),
    info("b64", "bit", "bit(64)", precision=64),
    info("d", "date"),
    info("dt", "datetime", "datetime(6)", dt_precision=6),
    info("ts", "timestamp"),
    info("tm", "time"),
    info("tm1", "time", "time(1)", dt_precision=1),
    info("vc", "varchar", "varchar(10)", chars=10, charset="utf8mb4"),
    info("vl", "varchar", "varchar(10)", chars=10, charset="latin1"),
    info("ch", "char", "char(3)", chars=3, charset="utf8mb4"),
    info("en", "enum", "enum('s','m','l')", chars=1, charset="utf8mb4"),
    info("st", "set", "set('a','bb')", chars=4, charset="utf8mb4"),
    info("tt", "tinytext", octets=255, charset="utf8mb4"),
    info("lt", "longtext", charset="utf8mb4"),
    info("js", "json"),
    info("bn", "binary", "binary(4)", chars=4),
    info("vb", "varbinary", "varbinary(16)", chars=16),
    info("bl", "blob"),
]


def test_null_in_every_nullable_type() -> None:
    cols = columns_from_information_schema(ALL_TYPES)
    assert all(c.nullable for c in cols)
    batch, report = to_record_batch(cols, [(None,) * len(cols)] * 2)
    assert batch.schema == arrow_schema(cols)
    assert all(batch.column(i).null_count == 2 for i in range(len(cols)))
    assert report.as_dict() == {"zero_dates_nulled": {}, "values_truncated": {}}


def test_no_rows_gives_an_empty_batch_of_the_schema() -> None:
    cols = columns_from_information_schema(ALL_TYPES)
    batch, _ = to_record_batch(cols, [])
    assert batch.num_rows == 0 and batch.schema == arrow_schema(cols)


def test_bad_rows_raise_schema_error() -> None:
    cols = columns_from_information_schema([info("id", "int"), info("n", "smallint")])
    with pytest.raises(SchemaError, match="values for 2 columns"):
        to_record_batch(cols, [(1,)])
    with pytest.raises(SchemaError, match="values for 2 columns"):
        to_record_batch(cols, [(1, 2), (1, 2, 3)])
    with pytest.raises(SchemaError, match=r"'n'.*int16"):
        to_record_batch(cols, [(1, 40000)])
    with pytest.raises(SchemaError, match="'id'"):
        to_record_batch(cols, [("x", 1)])


def test_conversion_report_merge_and_as_dict() -> None:
    a = ConversionReport({"d": 1}, {})
    a.merge(ConversionReport({"d": 2, "e": 1}, {"t": 3}))
    a.merge(ConversionReport())
    assert a.as_dict() == {"zero_dates_nulled": {"d": 3, "e": 1}, "values_truncated": {"t": 3}}
    copy = a.as_dict()
    copy["zero_dates_nulled"]["d"] = 99
    assert a.zero_dates_nulled["d"] == 3


# --- property: the batch always has the declared schema --------------------------------

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_max_time = timedelta(hours=838, minutes=59, seconds=59)


def _bits(n: int) -> st.SearchStrategy[bytes]:
    return st.integers(0, 2**n - 1).map(lambda v: v.to_bytes((n + 7) // 8, "big"))


VALUE_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "ti": st.integers(-128, 127),
    "ti1": st.integers(-128, 127),
    "si": st.integers(-(2**15), 2**15 - 1),
    "siu": st.integers(0, 2**16 - 1),
    "mi": st.integers(-(2**23), 2**23 - 1),
    "i": st.integers(-(2**31), 2**31 - 1),
    "iu": st.integers(0, 2**32 - 1),
    "bi": st.integers(-(2**63), 2**63 - 1),
    "biu": st.integers(0, 2**64 - 1),
    "yr": st.integers(1901, 2155) | st.just(0),
    "d15": st.decimals(min_value=-(10**11) + 1, max_value=10**11 - 1, places=4),
    "d65": st.decimals(min_value=-(10**35) + 1, max_value=10**35 - 1, places=30),
    "f": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "dbl": st.floats(allow_nan=False, allow_infinity=False),
    "b1": _bits(1),
    "b5": _bits(5),
    "b64": _bits(64),
    "d": st.dates() | st.just("0000-00-00"),
    "dt": st.datetimes() | st.just("0000-00-00 00:00:00.000000"),
    "ts": st.datetimes() | st.just("0000-00-00 00:00:00"),
    "tm": st.timedeltas(min_value=-_max_time, max_value=_max_time).map(
        lambda t: timedelta(seconds=int(t.total_seconds()))
    ),
    "tm1": st.timedeltas(min_value=-_max_time, max_value=_max_time),
    "vc": st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10),
    "vl": st.text(alphabet="abcé€ ", max_size=10),
    "ch": st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=3),
    "en": st.sampled_from(["s", "m", "l", ""]),
    "st": st.sampled_from(["", "a", "bb", "a,bb"]),
    "tt": st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300),
    "lt": _text,
    "js": _text,
    "bn": st.binary(min_size=4, max_size=4),
    "vb": st.binary(max_size=16),
    "bl": st.binary(max_size=64),
}


@st.composite
def columns_and_rows(draw: st.DrawFn) -> tuple[list[Column], list[tuple]]:
    picked = draw(st.lists(st.sampled_from(ALL_TYPES), min_size=1, max_size=8, unique_by=id))
    boolean = draw(st.booleans())
    columns = columns_from_information_schema(picked, tinyint1_as_boolean=boolean)
    value_sets = [st.none() | VALUE_STRATEGIES[row["COLUMN_NAME"]] for row in picked]
    rows = draw(st.lists(st.tuples(*value_sets), max_size=12))
    return columns, rows


@settings(max_examples=150, deadline=None)
@given(columns_and_rows())
def test_batch_types_always_equal_the_schema(case: tuple[list[Column], list[tuple]]) -> None:
    columns, rows = case
    batch, report = to_record_batch(columns, rows)
    schema = arrow_schema(columns)
    assert batch.schema == schema
    assert [f.type for f in batch.schema] == [c.arrow_type for c in columns]
    assert batch.num_rows == len(rows)
    for i, col in enumerate(columns):
        values = batch.column(i)
        if col.max_bytes is not None:
            lengths = [len(v.encode()) for v in values.to_pylist() if v is not None]
            assert all(n <= col.max_bytes for n in lengths)
        zero_dates = col.data_type in ("date", "datetime", "timestamp")
        expected_nulls = sum(
            1 for row in rows if row[i] is None or (zero_dates and isinstance(row[i], str))
        )
        assert values.null_count == expected_nulls
    zero = sum(report.zero_dates_nulled.values())
    assert zero == sum(
        1
        for row in rows
        for i, col in enumerate(columns)
        if col.data_type in ("date", "datetime", "timestamp") and isinstance(row[i], str)
    )
