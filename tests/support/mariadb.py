"""The test MariaDB: connections, throw-away databases, plans and in-memory extraction."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pymysql
from myshift import extract, keys, plan
from myshift.local import sample
from myshift.schema import COLUMNS_QUERY, Column, columns_from_information_schema

from tests.conftest import MYSQL

UTC = "SET time_zone = '+00:00'"


def connect(*, utc: bool = False, autocommit: bool = True, **kwargs: Any) -> pymysql.Connection:
    """A utf8mb4 connection to the test server as root; `utc`: the session's time zone is UTC."""
    if utc:
        kwargs["init_command"] = UTC
    return pymysql.connect(**MYSQL, password="", charset="utf8mb4", autocommit=autocommit, **kwargs)


def execute(conn: pymysql.Connection, *statements: str) -> None:
    """Run each statement in turn."""
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def execute_alone(*statements: str) -> None:
    """Run the statements on a connection of their own, closed afterwards."""
    conn = connect()
    try:
        execute(conn, *statements)
    finally:
        conn.close()


@contextmanager
def empty_database(database: str) -> Iterator[pymysql.Connection]:
    """A UTC connection and `database` created empty; dropped afterwards."""
    connection = connect(utc=True)
    execute(connection, f"DROP DATABASE IF EXISTS `{database}`", f"CREATE DATABASE `{database}`")
    try:
        yield connection
    finally:
        execute(connection, f"DROP DATABASE IF EXISTS `{database}`")
        connection.close()


@contextmanager
def sample_database(database: str, table: str, rows: int) -> Iterator[pymysql.Connection]:
    """A UTC connection and the sample table seeded with `rows` rows (statistics fresh)."""
    connection = connect(utc=True)
    sample.seed(connection, database, table, rows)
    execute(connection, f"ANALYZE TABLE {database}.{table}")
    try:
        yield connection
    finally:
        execute(connection, f"DROP DATABASE IF EXISTS {database}")
        connection.close()


def ordered_keys(conn: pymysql.Connection, database: str, table: str) -> list[list]:
    """Every (updated_at, id) key of a sample table, in key order."""
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT updated_at, id FROM {database}.{table} ORDER BY updated_at, id")
        return [keys.to_key(row) for row in cursor.fetchall()]


def assert_uses_cursor_index(conn: pymysql.Connection, sql: str, params: Any) -> None:
    """The query reads along idx_updated_at_id, without a filesort."""
    with conn.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        explain = cursor.fetchall()
    assert explain[0]["key"] == "idx_updated_at_id", explain
    assert "filesort" not in (explain[0]["Extra"] or "").lower(), explain


def plan_table(
    conn: pymysql.Connection,
    database: str,
    table: str,
    columns: list[Column],
    *,
    limit: int,
    lower: keys.Key | None = None,
    max_chunks: int | None = None,
    safety_lag_seconds: int = 0,
    cursor: str = "updated_at",
    primary_key: list[str] | None = None,
    **options: Any,
) -> plan.TablePlan:
    """`plan.plan_table` with the sample table's cursor and key unless told otherwise."""
    return plan.plan_table(
        conn,
        database=database,
        table=table,
        columns=columns,
        cursor=cursor,
        primary_key=primary_key or ["id"],
        lower=lower,
        limit=limit,
        max_chunks=max_chunks,
        safety_lag_seconds=safety_lag_seconds,
        **options,
    )


class Capture:
    """An S3 client keeping what is uploaded."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def upload_file(self, path: str, bucket: str, key: str) -> None:
        with open(path, "rb") as file:
            self.files[key] = file.read()


def extract_to_memory(
    conn: pymysql.Connection,
    *,
    s3_key: str,
    index: int,
    lower: keys.Key | None,
    upper: keys.Key,
    **arguments: Any,
) -> tuple[extract.ChunkResult, pa.Table]:
    """`extract.extract_chunk` into a Capture; its result and the Parquet file read back."""
    s3 = Capture()
    result = extract.extract_chunk(
        conn, s3, bucket="b", s3_key=s3_key, index=index, lower=lower, upper=upper, **arguments
    )
    return result, pq.read_table(io.BytesIO(s3.files[s3_key]))


def extract_plan(
    conn: pymysql.Connection, table_plan: plan.TablePlan, **arguments: Any
) -> Iterator[tuple[plan.Chunk, extract.ChunkResult, pa.Table]]:
    """Extract each chunk of a plan in turn, as the state machine does."""
    for chunk in table_plan.chunks:
        result, parquet = extract_to_memory(
            conn,
            s3_key=str(chunk.index),
            index=chunk.index,
            lower=chunk.lower,
            upper=chunk.upper,
            **arguments,
        )
        yield chunk, result, parquet


def read_columns(conn: pymysql.Connection, database: str, table: str) -> list[Column]:
    """The table's columns as the product maps them (COLUMNS_QUERY)."""
    with conn.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute(COLUMNS_QUERY, (database, table))
        return columns_from_information_schema(list(cursor.fetchall()))
