"""The checksum SQL builders without a database: values bound or escaped, batches bounded."""

from __future__ import annotations

import pyarrow as pa
import pytest
from myshift import checksum
from myshift.checksum import KeyRange
from myshift.errors import SchemaError
from myshift.schema import Column


def column(name: str, data_type: str, redshift_type: str, **kwargs: object) -> Column:
    defaults: dict = {
        "column_type": data_type,
        "nullable": False,
        "arrow_type": pa.string(),
        "max_bytes": None,
        "charset": None,
        "source_nullable": False,
    }
    defaults.update(kwargs)
    return Column(name, name, data_type, redshift_type=redshift_type, **defaults)


KEY = column(
    "k", "varchar", "VARCHAR(40)", column_type="varchar(10)", max_bytes=40, charset="utf8mb4"
)
N = column("n", "int", "INTEGER", column_type="int(11)", arrow_type=pa.int32())
TEXT = column("t", "mediumtext", "VARCHAR(65535)", max_bytes=65535, charset="latin1")
COLUMNS = [KEY, N, TEXT]


def test_mysql_binds_every_key_value_and_compares_text_keys_by_bytes() -> None:
    hostile = "x'); DROP TABLE t; --"
    sql, params = checksum.source_range_checksums_sql(
        "db", "t", COLUMNS, ["k", "n"], [KeyRange(None, [hostile, 1]), KeyRange([hostile, 1], None)]
    )
    assert hostile not in sql and params.count(hostile) == 2
    assert "CAST(%s AS BINARY)" in sql and "CAST(`k` AS BINARY)" in sql


def test_redshift_literals_escape_quotes_and_spell_backslashes() -> None:
    sql = checksum.target_range_checksums_sql(
        "s", "t", COLUMNS, ["k"], [KeyRange(None, ["a\\b'c"]), KeyRange(["a\\b'c"], None)]
    )
    assert "'a' || CHR(92) || 'b''c'" in sql and "\\" not in sql


def test_only_the_last_range_may_be_open_above() -> None:
    with pytest.raises(SchemaError, match="open above"):
        checksum.target_range_checksums_sql(
            "s", "t", COLUMNS, ["n"], [KeyRange(None, None), KeyRange([5], None)]
        )


def test_batches_fit_the_limit_and_cover_every_range_once() -> None:
    ranges = [KeyRange([i], [i + 1]) for i in range(200)]
    batches = checksum.range_batches("s", "t", COLUMNS, ["n"], ranges, max_bytes=6_000)
    assert len(batches) > 1
    assert all(len(sql.encode()) <= 6_000 for _, sql in batches)
    starts = [start for start, _ in batches]
    assert starts[0] == 0 and starts == sorted(starts) and len(set(starts)) == len(starts)


def test_text_forms_and_float_zero() -> None:
    assert checksum.canonical_text(TEXT, "ab") == "2:ab"
    assert checksum.canonical_text(TEXT, "é" * 600).startswith("h")  # 1,200 bytes: hashed
    assert checksum.canonical_text(TEXT, None) == "N"
    double = column("x", "double", "DOUBLE PRECISION", arrow_type=pa.float64())
    assert checksum.canonical_text(double, -0.0) == checksum.canonical_text(double, 0.0) == "0"
    assert checksum.canonical_text(double, 1.0) == "4503599627370496p0"
    assert checksum.canonical_text(double, -0.75) == "-6755399441055744p-1"


def test_rows_are_grouped_under_the_group_limit() -> None:
    wide = [
        column(f"c{i}", "varchar", "VARCHAR(1000)", column_type="varchar(250)", max_bytes=1000)
        for i in range(200)
    ]
    groups = checksum.column_groups(wide)
    assert [c for g in groups for c in g] == wide and len(groups) > 1
    for group in groups:
        assert sum(len("1000:") + 1000 + 1 for _ in group) <= checksum.GROUP_BYTES
