"""Property: runs from the watermark extract every row exactly once, on a real MariaDB.

Hypothesis draws small tables with heavy ties on the cursor (a handful of distinct
values), an integer or a composite string key, NULL cursors (loaded or not), rows
arriving between runs, and random `limit` / `max_chunks`, readers and chunking methods.
Each run is planned and its chunks extracted like the state machine does; the Parquet
files are read back. Across the runs every row is extracted exactly once, in key order,
and no run exceeds `limit x max_chunks` rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from myshift import catalog, plan
from myshift.config import TableConfig
from myshift.schema import arrow_schema

from tests.support import mariadb

DATABASE = "myshift_extract_props"
BASE = dt.datetime(2025, 8, 1, 12, 0, 0)

SHAPES = {
    "int_key": (
        "id BIGINT NOT NULL PRIMARY KEY, c DATETIME(6) NULL, v VARCHAR(20), KEY idx_c (c, id)",
        ["id"],
    ),
    "composite_key": (
        "shop VARCHAR(8) NOT NULL, n INT NOT NULL, c DATETIME(6) NULL, v VARCHAR(20), "
        "PRIMARY KEY (shop, n), KEY idx_c (c, shop, n)",
        ["shop", "n"],
    ),
}


@pytest.fixture(scope="module")
def conn() -> Iterator[pymysql.Connection]:
    with mariadb.empty_database(DATABASE) as connection:
        yield connection


# A row: (key part 1, key part 2, cursor seconds or None). Few distinct cursors: ties.
rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "\u00e9", "zz", "A"]),
        st.integers(0, 40),
        st.one_of(st.none(), st.integers(0, 5)),
    ),
    max_size=45,
)


def insert(conn: pymysql.Connection, shape: str, rows: list[tuple], microseconds: int) -> None:
    values = []
    for shop, n, second in rows:
        cursor = (
            None
            if second is None
            else BASE + dt.timedelta(seconds=second, microseconds=microseconds)
        )
        if shape == "int_key":
            values.append((n * 7 + len(shop), cursor, f"{shop}{n}"))
        else:
            values.append((shop, n, cursor, f"{shop}{n}"))
    columns = "id, c, v" if shape == "int_key" else "shop, n, c, v"
    marks = ", ".join(["%s"] * len(columns.split(", ")))
    with conn.cursor() as cursor:
        # IGNORE: the collation decides which drawn keys are duplicates ('A' = 'a').
        cursor.executemany(
            f"INSERT IGNORE INTO {DATABASE}.{shape} ({columns}) VALUES ({marks})", values
        )


def table_keys(conn: pymysql.Connection, shape: str, load_null_cursor: bool) -> list[tuple]:
    """Every key of the table in the order key's order (NULL cursors first), as the server sorts."""
    pk = ", ".join(SHAPES[shape][1])
    where = "" if load_null_cursor else "WHERE c IS NOT NULL"
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT c, {pk} FROM {DATABASE}.{shape} {where} ORDER BY c, {pk}")
        return [tuple(row) for row in cursor.fetchall()]


def one_run(
    conn: pymysql.Connection,
    shape: str,
    lower: Any,
    limit: int,
    max_chunks: int | None,
    load_null_cursor: bool,
    reader: str,
    chunking: str,
) -> tuple[plan.TablePlan, list[tuple]]:
    primary_key = SHAPES[shape][1]
    config = TableConfig(name=f"{DATABASE}.{shape}", cursor="c", primary_key=primary_key)
    columns = catalog.source_columns(conn, config, None)
    table_plan = mariadb.plan_table(
        conn,
        DATABASE,
        shape,
        columns,
        cursor="c",
        primary_key=primary_key,
        lower=lower,
        limit=limit,
        max_chunks=max_chunks,
        load_null_cursor=load_null_cursor,
        chunking=chunking,
    )
    extracted: list[tuple] = []
    for chunk, result, table in mariadb.extract_plan(
        conn,
        table_plan,
        database=DATABASE,
        table=shape,
        columns=columns,
        key_cols=["c", *primary_key],
        batch_rows=4,
        reader=reader,
        include_null_cursor=load_null_cursor,
    ):
        assert result.rows == table.num_rows == chunk.rows
        # Files carry UTC-adjusted timestamps (Redshift's converted type): the key's
        # values, as the rows read them, are the same numbers without the zone.
        naive = table.cast(arrow_schema(columns))
        columns_back = [naive.column(name).to_pylist() for name in ["c", *primary_key]]
        extracted += [tuple(values) for values in zip(*columns_back, strict=True)]
    return table_plan, extracted


@given(
    shape=st.sampled_from(sorted(SHAPES)),
    initial=rows_strategy,
    arriving=st.lists(rows_strategy, max_size=3),
    microseconds=st.sampled_from([0, 1, 999_999]),
    limit=st.integers(1, 12),
    max_chunks=st.one_of(st.none(), st.integers(1, 4)),
    load_null_cursor=st.booleans(),
    reader=st.sampled_from(["text", "rows"]),
    chunking=st.sampled_from(["seek", "window"]),
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_runs_from_the_watermark_extract_every_row_exactly_once(
    conn: pymysql.Connection,
    shape: str,
    initial: list[tuple],
    arriving: list[list[tuple]],
    microseconds: int,
    limit: int,
    max_chunks: int | None,
    load_null_cursor: bool,
    reader: str,
    chunking: str,
) -> None:
    ddl, _ = SHAPES[shape]
    with conn.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {DATABASE}.{shape}")
        cursor.execute(f"CREATE TABLE {DATABASE}.{shape} ({ddl}) DEFAULT CHARSET=utf8mb4")
    insert(conn, shape, initial, microseconds)
    pending = list(arriving)
    extracted: list[tuple] = []
    lower = None
    later = 10  # rows that arrive are stamped after everything before them
    # Each run moves at least one row, or one batch arrives: more runs mean no progress.
    for _ in range(2 + len(initial) + sum(len(batch) + 1 for batch in arriving)):
        table_plan, rows = one_run(
            conn, shape, lower, limit, max_chunks, load_null_cursor, reader, chunking
        )
        if max_chunks is not None:
            assert len(rows) <= limit * max_chunks
        extracted += rows
        lower = table_plan.upper_key
        if not rows:
            if not pending:
                break
            batch = [(shop, n, later) for shop, n, second in pending.pop(0) if second is not None]
            later += 1
            insert(conn, shape, batch, microseconds)
    else:
        raise AssertionError("the runs never caught up with the table")
    # Rows that arrived sort after every earlier row, so the runs together read the
    # table once, in the server's own key order (its collation decides string order).
    assert len(extracted) == len(set(extracted)), "a row was extracted twice"
    assert extracted == table_keys(conn, shape, load_null_cursor)
