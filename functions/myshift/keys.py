"""The order key `(cursor column, primary key...)` and its SQL predicates.

A key is a list of JSON-safe values, one per key column: datetimes as
'YYYY-MM-DD HH:MM:SS.ffffff' strings, decimals as strings, integers as ints. MySQL
compares such strings with DATETIME/DECIMAL columns exactly.

The predicates are written out as `a > x OR (a = x AND b > y)` rather than the row
value `(a, b) > (x, y)`: MariaDB does not use the `(cursor, id)` index for the row
value form (a full scan and a sort per chunk; see DESIGN.md).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from typing import Any, cast

from myshift.errors import SchemaError
from myshift.identifiers import quote_mysql

KeyValue = int | str
Key = list[KeyValue]
# A WHERE clause and its %s parameters, in order.
Predicate = tuple[str, list[Any]]


def to_key_value(value: Any) -> KeyValue:
    """A MySQL value of a key column as a JSON-safe value."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return value
    raise SchemaError(f"key column value of type {type(value).__name__} cannot be a sync key")


def to_key(row: Sequence[Any]) -> Key:
    """A row of key-column values as a key.

    Only the cursor (the first value) may be NULL: rows with a NULL cursor are read
    only when a table loads them (`null_cursor_range`), and their key is `[None, pk...]`.
    """
    if row and row[0] is None:
        # `Key` has no NULL: this key is the one exception, which only `key_range` with
        # `include_null_cursor` reads (null_cursor_range takes its cursor off first).
        return [None, *[to_key_value(v) for v in row[1:]]]  # type: ignore[list-item]
    return [to_key_value(v) for v in row]


def _values(bound: Sequence[KeyValue | None]) -> Sequence[KeyValue]:
    """A bound's values, none NULL. Only a NULL-cursor key (`to_key`) holds a NULL, its
    cursor; such keys exist only for tables that read NULL cursors, whose ranges go
    through `null_cursor_range`, which takes that cursor off before comparing. A type
    narrowing only: nothing is checked or copied."""
    return cast(Sequence[KeyValue], bound)


def _compare(columns: Sequence[str], values: Sequence[KeyValue], last_op: str) -> Predicate:
    """`(c1, c2, ...) <last_op> (v1, v2, ...)` lexicographically, written out with OR/AND."""
    if len(columns) != len(values):
        raise SchemaError(f"key has {len(values)} values for {len(columns)} columns")
    strict = ">" if last_op in (">", ">=") else "<"
    disjuncts: list[str] = []
    params: list[KeyValue] = []
    for i, column in enumerate(columns):
        equal_prefix = [f"{quote_mysql(c)} = %s" for c in columns[:i]]
        op = last_op if i == len(columns) - 1 else strict
        disjuncts.append(
            "(" + " AND ".join([*equal_prefix, f"{quote_mysql(column)} {op} %s"]) + ")"
        )
        params.extend([*values[:i], values[i]])
    return "(" + " OR ".join(disjuncts) + ")", params


def after(columns: Sequence[str], key: Sequence[KeyValue]) -> Predicate:
    """Predicate: the row's key is strictly greater than `key`."""
    return _compare(columns, key, ">")


def at_or_before(columns: Sequence[str], key: Sequence[KeyValue]) -> Predicate:
    """Predicate: the row's key is less than or equal to `key`."""
    return _compare(columns, key, "<=")


def key_range(
    columns: Sequence[str],
    lower: Sequence[KeyValue | None] | None,
    upper: Sequence[KeyValue | None] | None,
    *,
    include_null_cursor: bool = False,
) -> Predicate:
    """Predicate for `lower < key <= upper` (either side open when None), cursor not NULL.

    A bound may be a prefix of the key: `[cursor value]` alone (a watermark set to a
    timestamp by an operator) compares the cursor column only.

    With `include_null_cursor` rows whose cursor is NULL are part of the order too, before
    every other row (as MySQL sorts them): a key `[None, pk...]` is such a row's key, and
    those rows are ordered by the primary key alone (`null_cursor_range`).
    """
    if include_null_cursor:
        return null_cursor_range(columns, lower, upper)
    parts = [f"{quote_mysql(columns[0])} IS NOT NULL"]
    params: list[KeyValue] = []
    if lower is not None:
        sql, values = after(columns[: len(lower)], _values(lower))
        parts.append(sql)
        params.extend(values)
    if upper is not None:
        sql, values = at_or_before(columns[: len(upper)], _values(upper))
        parts.append(sql)
        params.extend(values)
    return " AND ".join(parts), params


def null_cursor_range(
    columns: Sequence[str],
    lower: Sequence[KeyValue | None] | None,
    upper: Sequence[KeyValue | None] | None,
) -> Predicate:
    """`lower < key <= upper` where a NULL cursor sorts before every value.

    The NULL-cursor rows `(NULL, pk)` come first, ordered by the primary key; MySQL's
    `(cursor, pk)` index holds them in that order, so ranges and ORDER BY still use it.
    """
    cursor = quote_mysql(columns[0])
    # `<=> NULL`, not `IS NULL`: MariaDB then reads the NULL rows of the index in key
    # order (with IS NULL, EXPLAIN shows a filesort per chunk).
    is_null = f"{cursor} <=> NULL"
    parts: list[str] = []
    params: list[KeyValue] = []
    if lower is not None:
        if lower[0] is None:  # inside the NULL rows: the rest of them, then every value
            sql, values = after(columns[1 : len(lower)], _values(lower[1:]))
            parts.append(f"(({is_null} AND {sql}) OR {cursor} IS NOT NULL)")
            params.extend(values)
        else:
            sql, values = after(columns[: len(lower)], _values(lower))
            parts.append(f"({cursor} IS NOT NULL AND {sql})")
            params.extend(values)
    if upper is not None:
        if upper[0] is None:
            sql, values = at_or_before(columns[1 : len(upper)], _values(upper[1:]))
            parts.append(f"({is_null} AND {sql})")
            params.extend(values)
        else:
            sql, values = at_or_before(columns[: len(upper)], _values(upper))
            parts.append(f"({is_null} OR {sql})")
            params.extend(values)
    return (" AND ".join(parts) or "TRUE"), params


def any_of(columns: Sequence[str], keys: Sequence[Sequence[KeyValue]]) -> Predicate:
    """Predicate: the row's key is one of `keys` (values of `columns`, e.g. the primary
    key's), as `c IN (...)` for one column and OR/AND for several (the key's index)."""
    if not keys:
        raise SchemaError("no key to match")
    if any(len(key) != len(columns) for key in keys):
        raise SchemaError(f"a key has other than {len(columns)} values")
    params: list[KeyValue] = [value for key in keys for value in key]
    if len(columns) == 1:
        marks = ", ".join(["%s"] * len(keys))
        return f"{quote_mysql(columns[0])} IN ({marks})", params
    one = "(" + " AND ".join(f"{quote_mysql(c)} = %s" for c in columns) + ")"
    return "(" + " OR ".join([one] * len(keys)) + ")", params


def order_by(columns: Sequence[str], descending: bool = False) -> str:
    """`ORDER BY` list for the key."""
    direction = " DESC" if descending else ""
    return ", ".join(f"{quote_mysql(c)}{direction}" for c in columns)
