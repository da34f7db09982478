"""Counting source rows up to a watermark against a real MariaDB."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pymysql
import pytest
from myshift import verify
from myshift.config import TableConfig

from tests.conftest import MYSQL

DATABASE = "myshift_verify_it"
TABLE = "with_nulls"
STAMP = dt.datetime(2025, 8, 1, 12, 0, 0)


@pytest.fixture(scope="module")
def conn() -> Iterator[pymysql.Connection]:
    connection = pymysql.connect(**MYSQL, password="", charset="utf8mb4", autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        cursor.execute(f"DROP TABLE IF EXISTS {DATABASE}.{TABLE}")
        cursor.execute(
            f"CREATE TABLE {DATABASE}.{TABLE} (id INT NOT NULL PRIMARY KEY, "
            "updated_at DATETIME(6) NULL, `odd%name` INT NULL, KEY k (updated_at, id))"
        )
        # Ids 1-3 have no cursor; 4-9 one second apart.
        rows = [(i, None) for i in (1, 2, 3)]
        rows += [(i, STAMP + dt.timedelta(seconds=i)) for i in range(4, 10)]
        cursor.executemany(f"INSERT INTO {DATABASE}.{TABLE} (id, updated_at) VALUES (%s, %s)", rows)
    yield connection
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE {DATABASE}")
    connection.close()


def table_config(load_null_cursor: bool) -> TableConfig:
    return TableConfig(
        name=f"{DATABASE}.{TABLE}",
        cursor="updated_at",
        primary_key=["id"],
        load_null_cursor=load_null_cursor,
    )


def test_rows_with_a_null_cursor_are_not_counted_when_they_are_not_loaded(conn) -> None:
    upper = [STAMP + dt.timedelta(seconds=6), 6]
    assert verify.source_rows_up_to(conn, table_config(False), upper) == 3  # ids 4, 5, 6


def test_rows_with_a_null_cursor_are_counted_when_the_table_loads_them(conn) -> None:
    upper = [STAMP + dt.timedelta(seconds=6), 6]
    assert verify.source_rows_up_to(conn, table_config(True), upper) == 6  # 1-3 and 4-6
    # A watermark still inside the NULL-cursor rows counts only those before it.
    assert verify.source_rows_up_to(conn, table_config(True), [None, 2]) == 2


def test_no_watermark_counts_nothing(conn) -> None:
    assert verify.source_rows_up_to(conn, table_config(True), None) == 0
