"""Counting rows on both sides: what "loaded" means is rows counted in the target."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pymysql

from myshift import keys
from myshift.clients import RedshiftDataClient
from myshift.config import PipelineConfig, TableConfig
from myshift.errors import LoadError, WarehouseUnavailableError
from myshift.identifiers import quote_mysql_table, quote_redshift, quote_redshift_table, sql_string
from myshift.load import connection_params, statement_rows
from myshift.source import query_all


@dataclass(frozen=True)
class Counts:
    """Rows in the source up to the watermark, rows and duplicate keys in the target."""

    source_rows: int
    target_rows: int
    duplicate_keys: int

    @property
    def match(self) -> bool:
        return self.source_rows == self.target_rows and self.duplicate_keys == 0


def source_rows_up_to(conn: pymysql.Connection, table: TableConfig, upper: keys.Key | None) -> int:
    """Rows of the source table whose key is at or before `upper` (0 when None).

    A table that loads NULL-cursor rows orders them first, so they are counted too.
    """
    if upper is None:
        return 0
    key_cols = [table.cursor, *[c for c in table.primary_key if c != table.cursor]]
    where, params = keys.key_range(
        key_cols, None, upper, include_null_cursor=table.load_null_cursor
    )
    sql = f"SELECT COUNT(*) FROM {quote_mysql_table(table.database, table.table)} WHERE {where}"  # noqa: S608
    return int(query_all(conn, sql, params)[0][0])


def run_query(
    redshift_data: RedshiftDataClient,
    pipeline: PipelineConfig,
    sql: str,
    timeout_seconds: float = 300,
) -> list[list[Any]]:
    """Run one read query through the Data API and return its rows (operator side)."""
    statement_id = redshift_data.execute_statement(Sql=sql, **connection_params(pipeline.target))[
        "Id"
    ]
    deadline = time.monotonic() + timeout_seconds
    while True:
        description = redshift_data.describe_statement(Id=statement_id)
        status = description["Status"]
        if status == "FINISHED":
            break
        if status in ("FAILED", "ABORTED"):
            raise LoadError(f"Redshift query {status}: {description.get('Error', '')}")
        if time.monotonic() > deadline:
            raise WarehouseUnavailableError(f"Redshift query did not finish in {timeout_seconds}s")
        time.sleep(0.2)
    return statement_rows(redshift_data, statement_id)


def target_counts(
    redshift_data: RedshiftDataClient,
    pipeline: PipelineConfig,
    table: TableConfig,
    primary_key: list[str],
) -> tuple[int, int]:
    """(rows, duplicate primary keys) of the warehouse table."""
    qualified = quote_redshift_table(pipeline.target.schema_name, table.table.lower())
    pk = ", ".join(quote_redshift(c) for c in primary_key)
    sql = (
        f"SELECT (SELECT COUNT(*) FROM {qualified}), "  # noqa: S608
        f"(SELECT COUNT(*) FROM (SELECT {pk} FROM {qualified} GROUP BY {pk} "
        f"HAVING COUNT(*) > 1) AS d)"
    )
    rows = run_query(redshift_data, pipeline, sql)
    return int(rows[0][0]), int(rows[0][1])


def table_exists(
    redshift_data: RedshiftDataClient, pipeline: PipelineConfig, table: TableConfig
) -> bool:
    """Whether the warehouse table exists yet."""
    schema, name = sql_string(pipeline.target.schema_name), sql_string(table.table.lower())
    sql = (
        "SELECT COUNT(*) FROM information_schema.tables "  # noqa: S608 (literals quoted)
        f"WHERE table_schema = {schema} AND table_name = {name}"
    )
    return int(run_query(redshift_data, pipeline, sql)[0][0]) > 0
