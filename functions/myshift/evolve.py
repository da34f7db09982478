"""Schema evolution: follow MySQL column changes in Redshift where Redshift can.

COPY from Parquet maps columns by position, so the Redshift table's column order is
fixed once created: a column added in MySQL (wherever it was added) is appended at
the end, and the extractor writes the target's order. What Redshift can follow:

- a new column: `ALTER TABLE ... ADD COLUMN` (nullable), run inside the load's
  transaction so it appears together with its first rows (when more columns are new
  than fit one Data API batch of 40 statements, they are added before the load);
- a wider VARCHAR: `ALTER COLUMN ... TYPE VARCHAR(n)`, which Redshift refuses inside a
  transaction block, so it runs as its own statement before the load;
- a narrower VARCHAR or a DECIMAL of lower precision and the same scale: nothing to
  do, the extractor keeps writing the wider target type.

A column added to a `merge` table is filled for every row, not only for the rows that
change from now on: MySQL gives the existing rows the column's DEFAULT (or a backfill
sets them without touching the cursor), which the warehouse can only learn by reading
them. So the run that first sees the column reads the table from its first key (one
full extraction; the merge replaces every row by key). An `append` table is not
re-read (that would append every row again): its old rows keep NULL in the column,
as do a merge table's with `backfill_added_columns: false` (no full re-read).

Anything else (a type change, a wider DECIMAL, a dropped column, a column that became
nullable in MySQL but is NOT NULL in Redshift) fails the run before anything is
loaded, naming the column and what to do.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from myshift.errors import SchemaError
from myshift.schema import Column, redshift_columns_ddl

VARCHAR = re.compile(r"^VARCHAR\((\d+)\)$")
DECIMAL = re.compile(r"^DECIMAL\((\d+),(\d+)\)$")


@dataclass
class Evolution:
    """The target-ordered columns to extract and the DDL that makes Redshift match."""

    columns: list[Column]
    added: list[Column] = field(default_factory=list)
    widened: list[Column] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.widened)

    @property
    def added_names(self) -> list[str]:
        """Source names of the added columns."""
        return [c.source_name for c in self.added]

    def stored_columns(self) -> list[dict[str, Any]]:
        """The column list as it is stored with the table's schema record."""
        return [stored_column(c) for c in self.columns]


def reads_from_start(write_mode: str, evolution: Evolution, backfill: bool = True) -> bool:
    """Whether this run reads the whole table instead of starting at the watermark.

    `replace` always does (a full refresh); `merge` does once when columns were added,
    so every row gets the new column's value (see the module's doc), unless the table
    turned that off (`backfill_added_columns: false`).
    """
    added = write_mode == "merge" and bool(evolution.added) and backfill
    return write_mode == "replace" or added


def stored_column(column: Column) -> dict[str, Any]:
    """What is kept of a column in the schema record (`ddl`: its CREATE TABLE part)."""
    return {
        "source": column.source_name,
        "target": column.target_name,
        "redshift_type": column.redshift_type,
        "nullable": column.nullable,
        "ddl": redshift_columns_ddl([column]),
    }


def table_ddl(layout: list[dict[str, Any]]) -> str:
    """The column list of CREATE TABLE for a stored layout."""
    return ", ".join(c["ddl"] for c in layout)


def pending_changes(
    layout: list[dict[str, Any]], table: list[dict[str, Any]] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(columns to add, VARCHAR columns to widen) that bring the Redshift table (`table`,
    as last loaded; None when not created yet) to the files' `layout`."""
    if not table:
        return [], []
    have = {c["target"]: c for c in table}
    adds = [c for c in layout if c["target"] not in have]
    widens = []
    for column in layout:
        old = have.get(column["target"])
        new_varchar = VARCHAR.match(column["redshift_type"])
        old_varchar = VARCHAR.match(old["redshift_type"]) if old else None
        if new_varchar and old_varchar and int(new_varchar[1]) > int(old_varchar[1]):
            widens.append(column)
    return adds, widens


def _fail(table: str, column: Column, stored: dict[str, Any], what: str, todo: str) -> SchemaError:
    return SchemaError(
        f"{table}: column {column.source_name!r} {what} (Redshift {stored['redshift_type']}, "
        f"MySQL now {column.redshift_type}); Redshift cannot follow this change: {todo}"
    )


def reconcile(table: str, stored: list[dict[str, Any]] | None, current: list[Column]) -> Evolution:
    """Compare the stored target columns with MySQL's current ones.

    `stored` is None for a table never loaded: the current columns are the target.
    """
    if not stored:
        return Evolution(columns=list(current))
    by_source = {c.source_name: c for c in current}
    rebuild = "rebuild the Redshift table (drop it and reset the watermark) or revert the change"
    columns: list[Column] = []
    widened: list[Column] = []
    for kept in stored:
        column = by_source.get(kept["source"])
        if column is None:
            raise SchemaError(
                f"{table}: column {kept['source']!r} was dropped in MySQL but Redshift still "
                f"has {kept['target']!r}: restore it in MySQL, or drop it in Redshift and "
                "reset the table's stored schema"
            )
        column = dataclasses.replace(column, target_name=kept["target"])
        if column.nullable and not kept["nullable"]:
            raise _fail(table, column, kept, "became nullable", rebuild)
        old, new = kept["redshift_type"], column.redshift_type
        if old == new:
            columns.append(column)
            continue
        old_varchar, new_varchar = VARCHAR.match(old), VARCHAR.match(new)
        old_decimal, new_decimal = DECIMAL.match(old), DECIMAL.match(new)
        if old_varchar and new_varchar:
            if int(new_varchar[1]) > int(old_varchar[1]):
                widened.append(column)
                columns.append(column)
            else:  # narrower in MySQL: the wider target still holds every value
                columns.append(
                    dataclasses.replace(column, redshift_type=old, max_bytes=int(old_varchar[1]))
                )
            continue
        if old_decimal and new_decimal and old_decimal[2] == new_decimal[2]:
            if int(new_decimal[1]) < int(old_decimal[1]):
                precision, scale = int(old_decimal[1]), int(old_decimal[2])
                columns.append(
                    dataclasses.replace(
                        column, redshift_type=old, arrow_type=pa.decimal128(precision, scale)
                    )
                )
                continue
            raise _fail(
                table,
                column,
                kept,
                "gained precision",
                "Redshift cannot alter a DECIMAL; " + rebuild,
            )
        raise _fail(table, column, kept, "changed type", rebuild)
    known = {kept["source"] for kept in stored}
    taken = {kept["target"] for kept in stored}
    added: list[Column] = []
    for column in current:
        if column.source_name in known:
            continue
        if column.target_name in taken:
            raise SchemaError(
                f"{table}: new column {column.source_name!r} maps to {column.target_name!r}, "
                "which the Redshift table already has; rename it in MySQL"
            )
        # Redshift adds a column to existing rows as NULL: it cannot be NOT NULL.
        added.append(dataclasses.replace(column, nullable=True))
    return Evolution(columns=[*columns, *added], added=added, widened=widened)
