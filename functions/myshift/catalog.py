"""A source table's columns: read from MySQL, named for Redshift once and for good."""

from __future__ import annotations

from typing import Any

import pymysql

from myshift import state
from myshift.config import TableConfig
from myshift.errors import SchemaError
from myshift.load import TargetTable
from myshift.schema import (
    COLUMNS_QUERY,
    Column,
    columns_from_information_schema,
    redshift_columns_ddl,
    target_name_map,
)
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


def resolve_columns(
    conn: pymysql.Connection, state_table: Any, pipeline: str, table: TableConfig
) -> list[Column]:
    """Read the columns and store the name map and target DDL the first time."""
    stored = state.get_schema(state_table, pipeline, table.name)
    columns = source_columns(conn, table, stored.get("name_map") if stored else None)
    if stored is None:
        state.put_schema(state_table, pipeline, table.name, schema_record(columns, table))
    return columns


def schema_record(columns: list[Column], table: TableConfig) -> dict[str, Any]:
    """What the load needs to know about the target table, as stored in DynamoDB."""
    by_source = {c.source_name: c.target_name for c in columns}
    return {
        "name_map": by_source,
        "columns_ddl": redshift_columns_ddl(columns),
        "column_names": [c.target_name for c in columns],
        "primary_key": [by_source[k] for k in table.primary_key],
        "cursor": by_source[table.cursor],
    }


def target_table(schema: dict[str, Any], target_schema: str, table: TableConfig) -> TargetTable:
    """The Redshift table `<target schema>.<mysql table name>` from the stored record."""
    return TargetTable(
        schema=target_schema,
        name=table.table.lower(),
        columns_ddl=schema["columns_ddl"],
        column_names=list(schema["column_names"]),
        primary_key=list(schema["primary_key"]),
        cursor=schema["cursor"],
    )
