"""The order key predicates: lexicographic, written out, parameters never inlined."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from myshift import keys
from myshift.errors import SchemaError


def test_after_single_column() -> None:
    sql, params = keys.after(["id"], [5])
    assert sql == "((`id` > %s))"
    assert params == [5]


def test_after_two_columns_is_written_out() -> None:
    sql, params = keys.after(["updated_at", "id"], ["2025-01-01 00:00:00.000000", 7])
    assert sql == "((`updated_at` > %s) OR (`updated_at` = %s AND `id` > %s))"
    assert params == ["2025-01-01 00:00:00.000000", "2025-01-01 00:00:00.000000", 7]


def test_at_or_before_two_columns() -> None:
    sql, params = keys.at_or_before(["c", "id"], ["x", 3])
    assert sql == "((`c` < %s) OR (`c` = %s AND `id` <= %s))"
    assert params == ["x", "x", 3]


def test_key_range_open_sides() -> None:
    sql, params = keys.key_range(["c", "id"], None, None)
    assert sql == "`c` IS NOT NULL" and params == []


def test_identifiers_are_quoted() -> None:
    sql, _ = keys.after(["we`ird"], [1])
    assert "`we``ird`" in sql


def test_key_length_must_match() -> None:
    with pytest.raises(SchemaError):
        keys.after(["a", "b"], [1])


def test_to_key_values() -> None:
    assert keys.to_key([dt.datetime(2025, 1, 2, 3, 4, 5, 6), 7]) == [
        "2025-01-02 03:04:05.000006",
        7,
    ]
    assert keys.to_key([dt.date(2025, 1, 2), Decimal("1.50"), "a"]) == ["2025-01-02", "1.50", "a"]
    with pytest.raises(SchemaError):
        keys.to_key([b"bytes"])


def _evaluate(columns: list[str], sql_key: list[int], op: str, row: tuple[int, ...]) -> bool:
    """Evaluate what `_compare` generates, in Python, for a row of ints."""
    sql, params = keys._compare(columns, sql_key, op)
    expression = sql.replace("`", "").replace(" = ", " == ").replace(" AND ", " and ")
    expression = expression.replace(" OR ", " or ")
    for value in params:
        expression = expression.replace("%s", repr(value), 1)
    return bool(eval(expression, {}, dict(zip(columns, row, strict=True))))


@given(
    key=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
)
def test_predicates_equal_tuple_comparison(key: tuple[int, int, int]) -> None:
    columns = ["a", "b", "c"]
    for row in itertools.product(range(4), repeat=3):
        assert _evaluate(columns, list(key), ">", row) == (row > key)
        assert _evaluate(columns, list(key), "<=", row) == (row <= key)


def test_prefix_bound_compares_the_cursor_only() -> None:
    sql, params = keys.key_range(["c", "id"], ["2025-08-09 20:00:01.000000"], None)
    assert sql == "`c` IS NOT NULL AND ((`c` > %s))"
    assert params == ["2025-08-09 20:00:01.000000"]
