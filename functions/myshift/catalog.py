"""A source table's columns: read from MySQL, named and ordered for Redshift for good."""

from __future__ import annotations

from typing import Any

import pymysql

from myshift import evolve, state
from myshift.clients import StateTable
from myshift.config import TableConfig
from myshift.errors import SchemaError
from myshift.schema import COLUMNS_QUERY, Column, columns_from_information_schema, target_name_map
from myshift.source import query_dicts


def source_columns(
    conn: pymysql.Connection, table: TableConfig, name_map: dict[str, str] | None
) -> list[Column]:
    """The table's columns in MySQL order, with stored target names reused."""
    rows = query_dicts(conn, COLUMNS_QUERY, (table.database, table.table))
    if not rows:
        raise SchemaError(f"source table {table.name} does not exist or has no columns")
    names = target_name_map([r["COLUMN_NAME"] for r in rows], name_map)
    return columns_from_information_schema(rows, names)


def table_evolution(
    conn: pymysql.Connection, state_table: StateTable, pipeline: str, table: TableConfig
) -> tuple[evolve.Evolution, dict[str, Any]]:
    """How the table's columns changed since its earlier files, and this run's schema record.

    The order and the target types come from the layout of the table's earlier files
    (see `myshift.evolve`); a change Redshift cannot follow is a SchemaError here,
    before anything is read. The record is stored when the extraction commits.
    """
    stored = state.get_schema(state_table, pipeline, table.name) or {}
    current = source_columns(conn, table, stored.get("name_map"))
    evolution = evolve.reconcile(table.name, stored.get("layout"), current)
    targets = {c.source_name: c.target_name for c in evolution.columns}
    record = {
        "name_map": {**stored.get("name_map", {}), **targets},
        "layout": evolution.stored_columns(),
        "primary_key": [targets[k] for k in table.primary_key],
        "cursor": targets[table.cursor],
    }
    return evolution, record


def table_columns(
    conn: pymysql.Connection,
    state_table: StateTable,
    pipeline: str,
    table: TableConfig,
    planned_count: int | None = None,
) -> tuple[list[Column], dict[str, Any]]:
    """The columns to extract, in the Redshift table's order, and this run's schema record.

    With `planned_count` (the plan's layout) a column MySQL gained since the plan is
    left out: new columns come last, every file of a run keeps the plan's layout, and
    the next run adds the column.
    """
    evolution, record = table_evolution(conn, state_table, pipeline, table)
    if planned_count is not None:
        return evolution.columns[:planned_count], record
    return evolution.columns, record
