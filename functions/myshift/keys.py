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
from typing import Any

from myshift.errors import SchemaError
from myshift.identifiers import quote_mysql

KeyValue = int | str
Key = list[KeyValue]


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
    """A row of key-column values as a key."""
    return [to_key_value(v) for v in row]


def _compare(columns: Sequence[str], values: Sequence[KeyValue], last_op: str) -> tuple[str, list]:
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


def after(columns: Sequence[str], key: Sequence[KeyValue]) -> tuple[str, list]:
    """Predicate: the row's key is strictly greater than `key`."""
    return _compare(columns, key, ">")


def at_or_before(columns: Sequence[str], key: Sequence[KeyValue]) -> tuple[str, list]:
    """Predicate: the row's key is less than or equal to `key`."""
    return _compare(columns, key, "<=")


def key_range(
    columns: Sequence[str], lower: Sequence[KeyValue] | None, upper: Sequence[KeyValue] | None
) -> tuple[str, list]:
    """Predicate for `lower < key <= upper` (either side open when None), cursor not NULL.

    A bound may be a prefix of the key: `[cursor value]` alone (a watermark set to a
    timestamp by an operator) compares the cursor column only.
    """
    parts = [f"{quote_mysql(columns[0])} IS NOT NULL"]
    params: list[KeyValue] = []
    if lower is not None:
        sql, values = after(columns[: len(lower)], lower)
        parts.append(sql)
        params.extend(values)
    if upper is not None:
        sql, values = at_or_before(columns[: len(upper)], upper)
        parts.append(sql)
        params.extend(values)
    return " AND ".join(parts), params


def order_by(columns: Sequence[str], descending: bool = False) -> str:
    """`ORDER BY` list for the key."""
    direction = " DESC" if descending else ""
    return ", ".join(f"{quote_mysql(c)}{direction}" for c in columns)
