"""Boundaries against a real MariaDB: chunk cutting both ways, keys, NULL cursors, late commits.

Every test checks rows (keys), not only counts: chunks are extracted and their Parquet
files read back where it matters.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterator

import pymysql
import pytest
from myshift import catalog, extract, plan
from myshift.config import TableConfig
from myshift.errors import SchemaError, SourceQueryError

from tests.support import mariadb
from tests.support.mariadb import (
    assert_uses_cursor_index,
    connect,
    execute,
    extract_plan,
    plan_table,
    sample_database,
)

DATABASE = "myshift_extract_bounds"
TABLE = "settle_orders"
ROWS = 1_003


@pytest.fixture(scope="module")
def conn() -> Iterator[pymysql.Connection]:
    with sample_database(DATABASE, TABLE, ROWS) as connection:
        yield connection


def ordered_keys(conn: pymysql.Connection) -> list[list]:
    return mariadb.ordered_keys(conn, DATABASE, TABLE)


KEY = ["updated_at", "id"]


@pytest.mark.parametrize(
    ("lower_at", "limit", "max_chunks", "bound"),
    [
        (None, 100, None, None),
        (None, 1, 7, None),
        (501, 97, None, None),  # inside a tie of four rows
        (None, 250, 3, None),
        (10, 1_000, None, None),
        (None, 64, None, "2025-08-01 00:01:00.000000"),
        (1_002, 10, None, None),  # nothing after the last key
    ],
)
def test_seek_and_window_cut_the_same_chunks(conn, lower_at, limit, max_chunks, bound) -> None:
    all_keys = ordered_keys(conn)
    lower = None if lower_at is None else all_keys[lower_at]
    cut = {
        method: plan.cut_chunks(
            conn, DATABASE, TABLE, KEY, lower, bound, limit, max_chunks, method=method
        )
        for method in ("seek", "window")
    }
    assert cut["seek"] == cut["window"]
    chunks = cut["seek"]
    expected = [
        k for k in all_keys if (lower is None or k > lower) and (bound is None or k[0] <= bound)
    ]
    if max_chunks is not None:
        expected = expected[: limit * max_chunks]
    assert sum(c.rows for c in chunks) == len(expected)
    assert (chunks[-1].upper if chunks else None) == (expected[-1] if expected else None)
    assert all(c.rows == limit for c in chunks[:-1])
    for before, after in itertools.pairwise(chunks):
        assert after.lower == before.upper


def test_window_falls_back_to_seek_without_window_functions(
    conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    seek = plan.cut_chunks(conn, DATABASE, TABLE, KEY, None, None, 150, None, method="seek")
    real = plan.window_sql
    # What MySQL 5.7 or MariaDB 10.1 answers to OVER (...): a syntax error (1064).
    monkeypatch.setattr(plan, "window_sql", lambda *a: real(*a).replace(" OVER (", " OVERR ("))
    assert (
        plan.cut_chunks(conn, DATABASE, TABLE, KEY, None, None, 150, None, method="window") == seek
    )
    # Any other error is not taken for a missing feature.
    monkeypatch.setattr(plan, "window_sql", lambda *a: real(*a).replace("rn = total", "nope = 1"))
    with pytest.raises(SourceQueryError, match="1054"):
        plan.cut_chunks(conn, DATABASE, TABLE, KEY, None, None, 150, None, method="window")
    # The plan's snapshot transaction was rolled back: the connection is usable.
    assert plan.cut_chunks(conn, DATABASE, TABLE, KEY, None, None, 150, None) == seek


def test_auto_chunking_seeks_along_a_cursor_index_only(conn) -> None:
    execute(
        conn,
        f"DROP TABLE IF EXISTS {DATABASE}.no_cursor_index",
        f"CREATE TABLE {DATABASE}.no_cursor_index (id INT PRIMARY KEY, updated_at DATETIME(6))",
        f"INSERT INTO {DATABASE}.no_cursor_index SELECT id, updated_at FROM {DATABASE}.{TABLE}",
    )
    table = TableConfig(name=f"{DATABASE}.{TABLE}", cursor="updated_at", primary_key=["id"])
    for name, method in ((TABLE, "seek"), ("no_cursor_index", "window")):
        columns = catalog.source_columns(
            conn, table.model_copy(update={"name": f"{DATABASE}.{name}"}), None
        )
        result = plan_table(conn, DATABASE, name, columns, limit=400)
        assert result.chunking == method
        assert result.as_dict()["chunking"] == method
        assert [c.rows for c in result.chunks] == [400, 400, 203]


# --- keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ddl", "key", "key_source", "error"),
    [
        ("id INT PRIMARY KEY, code INT NOT NULL UNIQUE", ["id"], "primary_key", None),
        ("id INT PRIMARY KEY, code INT NOT NULL UNIQUE", ["code"], "unique_key", None),
        ("a INT, b INT, PRIMARY KEY (a, b)", ["b", "a"], "primary_key", None),
        ("a INT, b INT, PRIMARY KEY (a, b)", ["a"], "primary_key", "does not identify a row"),
        ("code INT NOT NULL, UNIQUE KEY uk (code)", ["code"], "unique_key", None),
        (
            "code INT NOT NULL, UNIQUE KEY uk (code)",
            ["code"],
            "primary_key",
            "configure unique_key",
        ),
        (
            "code INT NULL, UNIQUE KEY uk (code)",
            ["code"],
            "unique_key",
            "no PRIMARY KEY and no UNIQUE",
        ),
        (
            "id INT PRIMARY KEY, code INT NULL, UNIQUE KEY uk (code)",
            ["code"],
            "unique_key",
            "uk allows NULL in code",
        ),
        ("a INT, KEY (a)", ["a"], "unique_key", "cannot be synced exactly once"),
    ],
)
def test_the_key_must_identify_a_row(conn, ddl, key, key_source, error) -> None:
    execute(
        conn,
        f"DROP TABLE IF EXISTS {DATABASE}.keyed",
        f"CREATE TABLE {DATABASE}.keyed ({ddl}, updated_at DATETIME)",
    )
    indexes = plan.table_indexes(conn, DATABASE, "keyed")
    if error is None:
        plan.check_key(indexes, f"{DATABASE}.keyed", key, key_source)
    else:
        with pytest.raises(SchemaError, match=error):
            plan.check_key(indexes, f"{DATABASE}.keyed", key, key_source)


# --- NULL cursors ----------------------------------------------------------------------


@pytest.fixture()
def null_cursors(conn) -> Iterator[str]:
    """A copy of the sample table where every 7th row has a NULL updated_at."""
    execute(
        conn,
        f"DROP TABLE IF EXISTS {DATABASE}.nulls",
        f"CREATE TABLE {DATABASE}.nulls LIKE {DATABASE}.{TABLE}",
        f"ALTER TABLE {DATABASE}.nulls MODIFY updated_at DATETIME(6) NULL",
        f"INSERT INTO {DATABASE}.nulls SELECT * FROM {DATABASE}.{TABLE}",
        f"UPDATE {DATABASE}.nulls SET updated_at = NULL WHERE MOD(id, 7) = 0",
    )
    yield "nulls"
    execute(conn, f"DROP TABLE IF EXISTS {DATABASE}.nulls")


def run_once(
    conn, table: str, lower, limit: int, max_chunks: int | None, load_null_cursor: bool
) -> tuple[plan.TablePlan, list[int]]:
    """Plan and extract one run; the ids in its Parquet files, in file order."""
    config = TableConfig(name=f"{DATABASE}.{table}", cursor="updated_at", primary_key=["id"])
    columns = catalog.source_columns(conn, config, None)
    table_plan = plan_table(
        conn,
        DATABASE,
        table,
        columns,
        lower=lower,
        limit=limit,
        max_chunks=max_chunks,
        load_null_cursor=load_null_cursor,
    )
    ids: list[int] = []
    for chunk, result, parquet in extract_plan(
        conn,
        table_plan,
        database=DATABASE,
        table=table,
        columns=columns,
        key_cols=KEY,
        batch_rows=50,
        include_null_cursor=load_null_cursor,
    ):
        assert result.rows == chunk.rows
        assert result.last_key == chunk.upper
        ids += parquet.column("id").to_pylist()
    return table_plan, ids


def test_null_cursor_rows_are_counted_and_skipped_by_default(conn, null_cursors) -> None:
    result, ids = run_once(conn, null_cursors, None, 300, None, False)
    assert result.null_cursor_rows == ROWS // 7
    assert result.as_dict()["null_cursor_rows"] == ROWS // 7
    assert sorted(ids) == [i for i in range(1, ROWS + 1) if i % 7]


def test_load_null_cursor_loads_each_row_once(conn, null_cursors) -> None:
    seen: list[int] = []
    lower = None
    for _ in range(20):
        result, ids = run_once(conn, null_cursors, lower, 64, 3, True)
        assert len(ids) <= 64 * 3
        seen += ids
        lower = result.upper_key
        if not ids:
            break
    assert sorted(seen) == list(range(1, ROWS + 1))  # every row, none twice
    nulls = [i for i in range(7, ROWS + 1, 7)]
    assert seen[: len(nulls)] == nulls  # NULL cursors first, by key
    assert lower is not None and lower[0] is not None
    # A NULL-cursor row written after the watermark has passed them is counted, not loaded.
    execute(conn, f"UPDATE {DATABASE}.nulls SET updated_at = NULL WHERE id = 1")
    result, ids = run_once(conn, null_cursors, lower, 64, None, True)
    assert ids == [] and result.null_cursor_rows == len(nulls) + 1


def test_null_cursor_chunks_use_the_cursor_index(conn, null_cursors) -> None:
    config = TableConfig(name=f"{DATABASE}.nulls", cursor="updated_at", primary_key=["id"])
    columns = catalog.source_columns(conn, config, None)
    # A chunk of NULL cursors, and the one from the last NULL cursors into the values.
    for lower, upper in (([None, 7], [None, 350]), ([None, 980], ordered_keys(conn)[60])):
        sql, params = extract.chunk_query(
            DATABASE, "nulls", columns, KEY, lower, upper, "text", include_null_cursor=True
        )
        assert_uses_cursor_index(conn, sql, params)


# --- a late commit ---------------------------------------------------------------------


def test_a_row_committed_after_the_plan_froze_its_bound_is_in_the_next_run(conn) -> None:
    all_keys = ordered_keys(conn)
    writer = connect(utc=True)
    try:
        execute(writer, "SET time_zone = @@global.time_zone")
        # A transaction starts, then writes a row stamped NOW(): it commits only later.
        execute(writer, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
        time.sleep(0.01)
        execute(
            writer,
            f"INSERT INTO {DATABASE}.{TABLE} SELECT 900001, order_no, merchant_id, amount, fee, "
            f"currency, status, note, created_at, NOW(6) FROM {DATABASE}.{TABLE} WHERE id = 1",
        )
        with writer.cursor() as cursor:
            cursor.execute(f"SELECT updated_at FROM {DATABASE}.{TABLE} WHERE id = 900001")
            stamped: dt.datetime = cursor.fetchone()[0]
        # InnoDB refreshes information_schema.innodb_trx at most every 0.1 s.
        time.sleep(0.15)
        first, ids = run_once(conn, TABLE, all_keys[-1], 100, None, False)
        assert first.bound is not None and first.bound < stamped.strftime("%Y-%m-%d %H:%M:%S.%f")
        assert ids == []  # the row is not committed yet, and nothing else is new
        execute(writer, "COMMIT")
        # The next run starts from the first one's watermark. (A transaction of another
        # session on this server holds every bound back while it is open: wait for it.)
        deadline = time.monotonic() + 60
        while True:
            second, ids = run_once(conn, TABLE, first.upper_key, 100, None, False)
            if ids or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT trx_mysql_thread_id, trx_started FROM information_schema.innodb_trx"
            )
            open_transactions = cursor.fetchall()
        assert ids == [900001], (second.bound, stamped, open_transactions)
    finally:
        execute(writer, "ROLLBACK")
        execute(conn, f"DELETE FROM {DATABASE}.{TABLE} WHERE id = 900001")
        writer.close()
