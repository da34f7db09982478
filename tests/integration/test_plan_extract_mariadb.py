"""Planning and extracting against a real MariaDB: boundaries, ties, index use, Parquet."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pymysql
import pytest
from moto import mock_aws
from myshift import catalog, extract
from myshift.config import TableConfig

from tests.support import mariadb

DATABASE = "myshift_plan_it"
TABLE = "settle_orders"
ROWS = 1_003


@pytest.fixture(scope="module")
def conn() -> Iterator[pymysql.Connection]:
    with mariadb.sample_database(DATABASE, TABLE, ROWS) as connection:
        yield connection


@pytest.fixture(scope="module")
def table() -> TableConfig:
    return TableConfig(name=f"{DATABASE}.{TABLE}", cursor="updated_at", primary_key=["id"])


@pytest.fixture(scope="module")
def columns(conn: pymysql.Connection, table: TableConfig):
    return catalog.source_columns(conn, table, None)


def ordered_keys(conn: pymysql.Connection) -> list[list]:
    return mariadb.ordered_keys(conn, DATABASE, TABLE)


def test_chunks_cover_every_key_once(conn, table, columns) -> None:
    result = mariadb.plan_table(conn, DATABASE, TABLE, columns, limit=100)
    all_keys = ordered_keys(conn)
    assert [c.rows for c in result.chunks] == [100] * 10 + [3]
    assert result.chunks[0].upper == all_keys[99]
    assert result.upper_key == all_keys[-1]
    # Each chunk's upper key is the next chunk's lower key: no gap, no overlap.
    for before, after in zip(result.chunks, result.chunks[1:], strict=False):
        assert after.lower == before.upper


def test_max_chunks_caps_the_run(conn, table, columns) -> None:
    result = mariadb.plan_table(conn, DATABASE, TABLE, columns, limit=70, max_chunks=3)
    assert result.planned_rows == 210
    assert result.upper_key == ordered_keys(conn)[209]


def test_lower_key_inside_a_tie(conn, table, columns) -> None:
    # Sample rows share each updated_at four at a time: start in the middle of a tie.
    all_keys = ordered_keys(conn)
    lower = all_keys[501]
    assert all_keys[500][0] == lower[0] or all_keys[502][0] == lower[0]
    result = mariadb.plan_table(conn, DATABASE, TABLE, columns, limit=1_000, lower=lower)
    assert result.planned_rows == ROWS - 502


@contextmanager
def a_row_written_now(conn: pymysql.Connection) -> Iterator[None]:
    """A copy of row 1 (id 100001) whose updated_at is now; deleted afterwards."""
    recent = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with conn.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {DATABASE}.{TABLE} SELECT id + 100000, order_no, merchant_id, amount, "
            f"fee, currency, status, note, created_at, %s FROM {DATABASE}.{TABLE} WHERE id = 1",
            (recent,),
        )
    try:
        yield
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"DELETE FROM {DATABASE}.{TABLE} WHERE id = 100001")


def test_bound_excludes_recent_rows(conn, table, columns) -> None:
    with a_row_written_now(conn):
        result = mariadb.plan_table(
            conn, DATABASE, TABLE, columns, limit=10_000, safety_lag_seconds=3_600
        )
        assert result.planned_rows == ROWS


def test_a_full_refresh_has_no_bound_and_an_open_last_chunk(conn, table, columns) -> None:
    with a_row_written_now(conn):
        result = mariadb.plan_table(
            conn, DATABASE, TABLE, columns, limit=500, safety_lag_seconds=3_600, full_refresh=True
        )
        all_keys = ordered_keys(conn)
        assert result.bound is None
        assert result.planned_rows == ROWS + 1  # the recent row too
        assert [c.rows for c in result.chunks] == [500, 500, 4]
        assert result.chunks[1].upper == all_keys[999]
        assert result.chunks[-1].lower == all_keys[999] and result.chunks[-1].upper is None
        assert result.upper_key == all_keys[-1]


def test_chunk_query_uses_the_cursor_index(conn, table, columns) -> None:
    all_keys = ordered_keys(conn)
    sql, params = extract.chunk_query(
        DATABASE, TABLE, columns, ["updated_at", "id"], all_keys[100], all_keys[200]
    )
    mariadb.assert_uses_cursor_index(conn, sql, params)


def test_a_large_chunk_streams_along_the_forced_index(conn, table, columns) -> None:
    # Two thirds of the table in one chunk: left to itself MariaDB scans the whole table
    # and sorts; the plan names the index and the chunk query forces it.
    result = mariadb.plan_table(conn, DATABASE, TABLE, columns, limit=700)
    assert result.order_index == "idx_updated_at_id"
    assert result.as_dict()["order_index"] == "idx_updated_at_id"
    chunk = result.chunks[0]
    key_cols = ["updated_at", "id"]
    sql, params = extract.chunk_query(
        DATABASE, TABLE, columns, key_cols, chunk.lower, chunk.upper, "text"
    )
    with conn.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        unforced = cursor.fetchall()[0]
    assert unforced["key"] is None and "filesort" in unforced["Extra"], unforced
    sql, params = extract.chunk_query(
        DATABASE, TABLE, columns, key_cols, chunk.lower, chunk.upper, "text",
        order_index=result.order_index,
    )  # fmt: skip
    mariadb.assert_uses_cursor_index(conn, sql, params)
    read, _ = mariadb.extract_to_memory(
        conn,
        s3_key="k",
        index=0,
        lower=chunk.lower,
        upper=chunk.upper,
        database=DATABASE,
        table=TABLE,
        columns=columns,
        key_cols=key_cols,
        order_index=result.order_index,
    )
    assert read.rows == chunk.rows == 700
    assert read.last_key == chunk.upper


def test_extract_chunk_writes_exact_rows(conn, table, columns) -> None:
    all_keys = ordered_keys(conn)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="myshift-test-bucket")
        result = extract.extract_chunk(
            conn,
            s3,
            bucket="myshift-test-bucket",
            s3_key="k/chunk-00000.parquet",
            index=0,
            database=DATABASE,
            table=TABLE,
            columns=columns,
            key_cols=["updated_at", "id"],
            lower=all_keys[9],
            upper=all_keys[509],
            batch_rows=64,
        )
        body = s3.get_object(Bucket="myshift-test-bucket", Key="k/chunk-00000.parquet")[
            "Body"
        ].read()
    assert result.rows == 500 and result.last_key == all_keys[509]
    parquet = pq.ParquetFile(pa.BufferReader(body))
    assert parquet.metadata.num_rows == 500
    assert parquet.metadata.num_row_groups > 1  # streamed in batches, not one buffer
    ids = parquet.read(columns=["id"]).column("id").to_pylist()
    assert ids == [k[1] for k in all_keys[10:510]]
