"""Hostile names and values without I/O: sanitized target names, refused table names,
operator timestamps, and SQL that must survive pymysql's `%` parameter formatting."""

from __future__ import annotations

from pathlib import Path

import pytest
from myshift import extract
from myshift.config import TableConfig, load_pipeline_file
from myshift.errors import ConfigError, IdentifierError, InputError
from myshift.schema import (
    columns_from_information_schema,
    sanitize_column_name,
    target_name_map,
)
from myshift.workflow import parse_cursor_timestamp
from pydantic import ValidationError

from tests.support.schema_rows import info

HOSTILE_COLUMNS = {
    "back`tick": "back_tick",
    'double"quote': "double_quote",
    "single'quote": "single_quote",
    "semi;colon": "semi_colon",
    "with space": "with_space",
    "주문_금액": "_____",
    '"; DROP TABLE x; --': "___drop_table_x____",
    "Mixed-Case": "mixed_case",
    "190_time": "col_190_time",
    "xmin": "col_xmin",
    "select": "select",
    "new\nline": "new_line",
    "back\\slash": "back_slash",
    "tab\tname": "tab_name",
    "percent%s": "percent_s",
    "가" * 64: "_" * 64,
}


@pytest.mark.parametrize(("source", "target"), HOSTILE_COLUMNS.items())
def test_hostile_column_names_get_plain_target_names(source: str, target: str) -> None:
    assert sanitize_column_name(source) == target


def test_hostile_column_names_map_without_collisions_and_collisions_are_refused() -> None:
    assert target_name_map(list(HOSTILE_COLUMNS)) == HOSTILE_COLUMNS
    with pytest.raises(IdentifierError, match="'a b' and 'a-b' both map"):
        target_name_map(["a b", "a-b"])


@pytest.mark.parametrize(
    "name",
    [
        "shop.ord`ers",
        'shop."; DROP TABLE x; --',
        "shop.my table",
        "shop.주문",
        "shop.o'rders",
        "shop.a;b",
        "shop.a%s",
        "orders",
        "a.b.c",
        "",
    ],
)
def test_hostile_table_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        TableConfig(name=name, cursor="updated_at", primary_key=["id"])


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "",
        "2025-13-01",
        "2025-08-09 24:00:00",
        "1754769601",
        "0000-00-00 00:00:00",
        "2025-08-09 20:00:01.1234567",
        "2025-08-09'; DROP TABLE x; --",
        "2025-08-09T20:00:01Z",
        "2025-08-09 20:00:01+09:00",
        "2025-08-09 20:00:01-0500",
        "2025-08-09 20:00:01 UTC",
    ],
)
def test_bad_operator_timestamps_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="timestamp"):
        parse_cursor_timestamp(text)


def test_chunk_query_survives_percent_signs_in_column_names() -> None:
    columns = columns_from_information_schema(
        [
            info("id", "bigint", nullable=False, key="PRI"),
            info("updated_at", "datetime", "datetime(6)", nullable=False, dt_precision=6),
            info("percent%s", "int"),
        ],
        {"id": "id", "updated_at": "updated_at", "percent%s": "percent_s"},
    )
    for reader in ("text", "rows"):
        sql, params = extract.chunk_query(
            "db", "t", columns, ["updated_at", "id"], ["2025-01-01", 1], ["2025-01-02", 9], reader
        )
        # What pymysql does with a query and its parameters (Cursor.mogrify).
        formatted = sql % tuple(f"'{p}'" for p in params)
        assert "`percent%s`" in formatted


def test_a_pipeline_file_that_is_not_utf8_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "latin.yml"
    path.write_bytes("name: latin\n# café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.yml"):
        load_pipeline_file(path)
