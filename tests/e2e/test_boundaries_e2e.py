"""Keys and NULL cursors through the real state machine, checked on rows.

- A table without a primary key or usable unique index is refused before anything is
  written; one with `unique_key` configured syncs, and updates replace rows by that key.
- Rows with a NULL cursor are counted in every run's output; with `load_null_cursor`
  they are loaded, each exactly once, over runs capped by `--limit/--max-chunks`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pymysql
import pytest
from myshift import state
from myshift.local.engine import LocalEngine

from tests.conftest import MYSQL
from tests.e2e.conftest import run, run_id_of

PIPELINE = "e2e_bounds"
DATABASE = "myshift_e2e_bounds"
SCHEMA = "bounds_dw"
BASE = dt.datetime(2025, 8, 1)

TABLES = {
    # name: (columns and keys, table settings in the pipeline file)
    "no_key": ("code VARCHAR(20) NULL, v INT, KEY (code)", "unique_key: [code]"),
    "by_code": (
        "code VARCHAR(20) NOT NULL, v INT, UNIQUE KEY uk_code (code)",
        "unique_key: [code]",
    ),
    "nulls_counted": ("id INT NOT NULL PRIMARY KEY, v INT", "primary_key: [id]"),
    # MariaDB orders UUIDs by their time fields, Redshift by their text.
    "by_uuid": ("id UUID NOT NULL PRIMARY KEY, v INT", "primary_key: [id]"),
    "nulls_loaded": (
        "id INT NOT NULL PRIMARY KEY, v INT",
        "primary_key: [id], load_null_cursor: true",
    ),
}


def qualified(name: str) -> str:
    return f"{DATABASE}.{name}"


def uuid_of(i: int) -> str:
    """UUIDs whose text order is not MariaDB's order (it compares the last group first)."""
    return f"{(i * 2654435761) % 2**32:08x}-0000-1000-8000-{(39 - i) * 7919:012x}"


@pytest.fixture(scope="module")
def source(pipelines_dir: Path, engine: LocalEngine) -> Iterator[pymysql.Connection]:
    engine.clear_faults()  # a fault another test left armed must not hit these runs
    conn = pymysql.connect(**MYSQL, password="", charset="utf8mb4", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        cur.execute(f"CREATE DATABASE {DATABASE}")
        for name, (columns, _) in TABLES.items():
            cur.execute(
                f"CREATE TABLE {qualified(name)} ({columns}, updated_at DATETIME(6) NULL, "
                "KEY idx_updated (updated_at))"
            )
        for name in ("no_key", "by_code"):
            cur.executemany(
                f"INSERT INTO {qualified(name)} (code, v, updated_at) VALUES (%s, %s, %s)",
                [(f"c-{i:03d}", i, BASE + dt.timedelta(seconds=i // 3)) for i in range(40)],
            )
        for name in ("nulls_counted", "nulls_loaded"):
            cur.executemany(
                f"INSERT INTO {qualified(name)} (id, v, updated_at) VALUES (%s, %s, %s)",
                [
                    (i, i, None if i % 4 == 0 else BASE + dt.timedelta(seconds=i // 5))
                    for i in range(1, 51)
                ],
            )
        cur.executemany(
            f"INSERT INTO {qualified('by_uuid')} (id, v, updated_at) VALUES (%s, %s, %s)",
            [(uuid_of(i), i, BASE + dt.timedelta(seconds=i // 3)) for i in range(40)],
        )
    lines = [
        f"name: {PIPELINE}",
        f"source: {{host: {MYSQL['host']}, port: {MYSQL['port']}, user: {MYSQL['user']}, "
        "password_env: MYSQL_PASSWORD}",
        f"target: {{database: dev, schema: {SCHEMA}, workgroup: local}}",
        "chunk_rows: 7",
        "max_concurrent_chunks: 2",
        "safety_lag_seconds: 0",
        "tables:",
        *[
            f"  - {{name: {qualified(name)}, cursor: updated_at, {settings}}}"
            for name, (_, settings) in TABLES.items()
        ],
    ]
    (pipelines_dir / f"{PIPELINE}.yml").write_text("\n".join(lines) + "\n")
    yield conn
    conn.close()


def warehouse(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn) as pg:
        return pg.execute(sql).fetchall()


def sync(engine: LocalEngine, table: str, **options: int) -> dict:
    description = run(engine, {"pipeline": PIPELINE, "tables": [qualified(table)], **options})
    return description


def test_a_table_without_a_key_is_refused_before_anything_is_written(
    source: pymysql.Connection, engine: LocalEngine, warehouse_dsn: str
) -> None:
    description = sync(engine, "no_key")
    assert description["status"] == "FAILED"
    assert "SchemaError" in description.get("error", "") + description.get("cause", "")
    assert "no PRIMARY KEY and no UNIQUE index of NOT NULL columns" in description["cause"]
    items = [
        item["sk"]
        for item in engine.client_table().scan()["Items"]
        if item["pk"].endswith(qualified("no_key"))
    ]
    assert not [sk for sk in items if sk.startswith(("FILE#", "SCHEMA"))]
    tables = warehouse(
        warehouse_dsn,
        f"SELECT 1 FROM information_schema.tables WHERE table_schema = '{SCHEMA}' "
        "AND table_name = 'no_key'",
    )
    assert tables == []


def test_a_unique_key_stands_in_for_the_primary_key(
    source: pymysql.Connection, engine: LocalEngine, warehouse_dsn: str
) -> None:
    first = sync(engine, "by_code")
    assert first["status"] == "SUCCEEDED", first.get("cause")
    with source.cursor() as cur:
        cur.execute(
            f"UPDATE {qualified('by_code')} SET v = v + 1000, updated_at = %s WHERE MOD(v, 5) = 0",
            (BASE + dt.timedelta(days=1),),
        )
    second = sync(engine, "by_code")
    assert second["status"] == "SUCCEEDED", second.get("cause")
    assert second["output_json"]["results"][0]["rows_extracted"] == 8
    rows = warehouse(warehouse_dsn, f"SELECT code, v FROM {SCHEMA}.by_code ORDER BY code")
    with source.cursor() as cur:
        cur.execute(f"SELECT code, v FROM {qualified('by_code')} ORDER BY code")
        assert rows == [tuple(row) for row in cur.fetchall()]  # replaced by code, no duplicates


def test_null_cursor_rows_are_counted_and_skipped_by_default(
    source: pymysql.Connection, engine: LocalEngine, warehouse_dsn: str
) -> None:
    description = sync(engine, "nulls_counted")
    assert description["status"] == "SUCCEEDED", description.get("cause")
    result = description["output_json"]["results"][0]
    assert result["null_cursor_rows"] == 12
    assert result["rows_extracted"] == 38
    ids = [row[0] for row in warehouse(warehouse_dsn, f"SELECT id FROM {SCHEMA}.nulls_counted")]
    assert sorted(ids) == [i for i in range(1, 51) if i % 4]


def test_load_null_cursor_loads_each_row_exactly_once(
    source: pymysql.Connection, engine: LocalEngine, warehouse_dsn: str
) -> None:
    moved = []
    for _ in range(6):  # runs of at most 7 x 2 rows: NULL cursors first, then the rest
        description = sync(engine, "nulls_loaded", limit=7, max_chunks=2)
        assert description["status"] == "SUCCEEDED", description.get("cause")
        result = description["output_json"]["results"][0]
        assert result["null_cursor_rows"] == 12
        moved.append(result["rows_extracted"])
        if not result["rows_extracted"]:
            break
    assert moved == [14, 14, 14, 8, 0]
    ids = [row[0] for row in warehouse(warehouse_dsn, f"SELECT id FROM {SCHEMA}.nulls_loaded")]
    assert sorted(ids) == list(range(1, 51))  # every row once
    nulls = warehouse(
        warehouse_dsn, f"SELECT count(*) FROM {SCHEMA}.nulls_loaded WHERE updated_at IS NULL"
    )
    assert nulls == [(12,)]


def test_a_uuid_key_syncs_and_verifies(
    source: pymysql.Connection, engine: LocalEngine, warehouse_dsn: str
) -> None:
    description = sync(engine, "by_uuid")
    assert description["status"] == "SUCCEEDED", description.get("cause")
    record = state.get_run(
        engine.client_table(), PIPELINE, qualified("by_uuid"), run_id_of(description)
    )
    assert record is not None
    verification = record["verification"]
    assert verification["status"] == "verified" and verification["verified_rows"] == 40, (
        verification
    )
    rows = warehouse(warehouse_dsn, f"SELECT id, v FROM {SCHEMA}.by_uuid ORDER BY v")
    assert rows == [(uuid_of(i), i) for i in range(40)]
