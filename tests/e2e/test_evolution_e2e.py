"""Schema evolution through the real state machine: MySQL changes a table between two
runs, and the warehouse follows where Redshift can (a new column appended at the end, a
wider VARCHAR) or the run fails before anything is loaded, naming the column and what
to do. Every check is on rows (value by value), column types or state items.

A column added to a `merge` table is filled for every row: the run that first sees it
reads the whole table again (MySQL gave the existing rows the column's DEFAULT; the
warehouse can only learn it by reading them), so the warehouse equals the source.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from myshift import state
from myshift.local import sample
from myshift.local.engine import Fault, LocalEngine

from tests.e2e.conftest import normalized_row, pipeline_yaml, result_of, run

DATABASE = "myshift_e2e_evolve"
PIPELINE = "e2e_evolve"
SCHEMA = "evolve_dw"
ADDED = f"{DATABASE}.added"
WIDENED = f"{DATABASE}.widened"
REFUSED = f"{DATABASE}.refused"
NO_BACKFILL = f"{DATABASE}.no_backfill"
TABLES = [ADDED, WIDENED, REFUSED, NO_BACKFILL]
SAMPLE_COLUMNS = sample.INSERT_SQL.split("(", 1)[1].split(")", 1)[0].replace(" ", "").split(",")


@pytest.fixture(scope="module")
def pipeline(pipelines_dir: Path) -> str:
    (pipelines_dir / f"{PIPELINE}.yml").write_text(
        pipeline_yaml(
            PIPELINE,
            [ADDED, WIDENED, REFUSED],
            schema=SCHEMA,
            chunk_rows=200,
            extra=f"  - {{name: {NO_BACKFILL}, cursor: updated_at, primary_key: [id], "
            "backfill_added_columns: false}\n",
        )
    )
    return PIPELINE


@pytest.fixture()
def fresh(pipeline: str, engine: LocalEngine, warehouse_dsn: str) -> Iterator[None]:
    """No state items and no warehouse schema for this module's tables."""
    table = engine.client_table()
    for item in table.scan()["Items"]:
        if item["pk"].split("#")[1] in TABLES:
            table.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    with psycopg.connect(warehouse_dsn, autocommit=True) as pg:
        pg.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    yield
    engine.clear_faults()


def source_rows(mysql: pymysql.Connection, table: str, columns: list[str]) -> list[tuple]:
    with mysql.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY id")
        return [normalized_row(r) for r in cursor.fetchall()]


def warehouse_rows(dsn: str, table: str, columns: list[str]) -> list[tuple]:
    with psycopg.connect(dsn) as pg:
        rows = pg.execute(
            f"SELECT {', '.join(columns)} FROM {SCHEMA}.{table.split('.')[1]} ORDER BY id"
        ).fetchall()
        return [normalized_row(r) for r in rows]


def warehouse_columns(dsn: str, table: str) -> list[tuple[str, str]]:
    """(name, type) of the warehouse table's columns, in their order."""
    with psycopg.connect(dsn) as pg:
        return [
            (str(name), str(kind))
            for name, kind in pg.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
                "ORDER BY attnum",
                (f"{SCHEMA}.{table.split('.')[1]}",),
            ).fetchall()
        ]


def recent() -> dt.datetime:
    """A cursor value safely before the next run's frozen bound (safety lag 0 here)."""
    return dt.datetime.now().replace(microsecond=500_000) - dt.timedelta(seconds=5)


def sync(engine: LocalEngine, table: str, **extra: Any) -> dict:
    description = run(engine, {"pipeline": PIPELINE, "tables": [table], **extra})
    assert description["status"] == "SUCCEEDED", description.get("cause")
    return result_of(description, table)


# --- a new column ------------------------------------------------------------------------


def test_a_new_column_is_appended_and_filled_for_every_row(
    engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection, fresh: None
) -> None:
    sample.seed(mysql, DATABASE, ADDED.split(".")[1], 500)
    assert sync(engine, ADDED)["rows_extracted"] == 500
    before = warehouse_columns(warehouse_dsn, ADDED)
    assert [name for name, _ in before] == SAMPLE_COLUMNS

    with mysql.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE {ADDED} ADD COLUMN region VARCHAR(8) NOT NULL DEFAULT 'EU' "
            "AFTER merchant_id"
        )
        updated = cursor.execute(
            f"UPDATE {ADDED} SET region = 'KR', note = 'moved', updated_at = %s "
            "WHERE MOD(id, 13) = 0",
            (recent(),),
        )
    sample.insert_rows(
        mysql, DATABASE, ADDED.split(".")[1], 5_001, 30, start=recent() - dt.timedelta(seconds=20)
    )
    with mysql.cursor() as cursor:
        cursor.execute(f"UPDATE {ADDED} SET region = 'US' WHERE id > 5000")

    second = sync(engine, ADDED)
    # The run that first sees the column reads every row once (the merge replaces them).
    assert second["rows_extracted"] == 530
    assert second["rows_replaced"] == 500
    after = warehouse_columns(warehouse_dsn, ADDED)
    assert after == [*before, ("region", "character varying(32)")]  # appended, 8 x 4 bytes
    columns = [*SAMPLE_COLUMNS, "region"]
    target = warehouse_rows(warehouse_dsn, ADDED, columns)
    assert target == source_rows(mysql, ADDED, columns)
    regions = {row[-1] for row in target}
    assert regions == {"EU", "KR", "US"}  # the DEFAULT of old rows arrived too
    assert updated > 0

    # Only once: the next run is incremental again.
    with mysql.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ADDED} SET region = 'JP', updated_at = %s WHERE id = 7", (recent(),)
        )
    third = sync(engine, ADDED)
    assert third["rows_extracted"] == 1
    assert warehouse_rows(warehouse_dsn, ADDED, columns) == source_rows(mysql, ADDED, columns)


def test_a_new_column_with_files_of_the_old_layout_still_waiting(
    engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection, fresh: None
) -> None:
    """Files extracted before the column existed (a backup-only run) are loaded with the
    newer ones: they lack the column (COPY ... FILLRECORD gives NULL), and where both
    hold a row with the same cursor, the version read since (with the column) wins."""
    sample.seed(mysql, DATABASE, ADDED.split(".")[1], 300)
    assert sync(engine, ADDED)["rows_extracted"] == 300
    changed = sample.update_rows(mysql, DATABASE, ADDED.split(".")[1], 10, recent())
    assert sync(engine, ADDED, mode="backup_only")["rows_extracted"] == changed == 30
    with mysql.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {ADDED} ADD COLUMN region VARCHAR(8) DEFAULT 'EU'")
        cursor.execute(f"UPDATE {ADDED} SET region = NULL WHERE MOD(id, 4) = 0")
        cursor.execute(
            f"UPDATE {ADDED} SET region = 'KR', updated_at = %s WHERE MOD(id, 15) = 0",
            (recent() + dt.timedelta(seconds=1),),
        )
    third = sync(engine, ADDED)
    assert third["rows_extracted"] == 300
    assert third["rows_loaded"] == 330  # both runs' files in one load
    assert third["rows_inserted"] == 300 and third["rows_replaced"] == 300
    columns = [*SAMPLE_COLUMNS, "region"]
    target = warehouse_rows(warehouse_dsn, ADDED, columns)
    assert target == source_rows(mysql, ADDED, columns)
    assert {row[-1] for row in target} == {"EU", "KR", None}


def test_a_column_added_before_the_first_load_with_older_files_waiting(
    engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection, fresh: None
) -> None:
    """The table was never loaded: a backup-only run left files of the old layout, then
    a column came, then a full run creates the warehouse table with the new layout (no
    ADD COLUMN in that load). The older files lack the column: they are filled (NULL)
    and the newer version of each row wins."""
    sample.seed(mysql, DATABASE, ADDED.split(".")[1], 200)
    assert sync(engine, ADDED, mode="backup_only")["rows_extracted"] == 200
    files = state.list_files(engine.client_table(), PIPELINE, ADDED)
    assert {int(f["columns"]) for f in files} == {len(SAMPLE_COLUMNS)}
    with mysql.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {ADDED} ADD COLUMN region VARCHAR(8) DEFAULT 'EU'")
        cursor.execute(
            f"UPDATE {ADDED} SET region = 'KR', updated_at = %s WHERE MOD(id, 9) = 0",
            (recent(),),
        )
    second = sync(engine, ADDED)
    assert second["rows_extracted"] == 200  # the new column: the whole table again
    assert second["rows_loaded"] == 400  # with the backup-only run's 200
    columns = [*SAMPLE_COLUMNS, "region"]
    assert [n for n, _ in warehouse_columns(warehouse_dsn, ADDED)] == columns
    target = warehouse_rows(warehouse_dsn, ADDED, columns)
    assert target == source_rows(mysql, ADDED, columns)
    assert {row[-1] for row in target} == {"EU", "KR"}


def test_without_backfill_only_rows_that_change_get_the_new_column(
    engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection, fresh: None
) -> None:
    name = NO_BACKFILL.split(".")[1]
    sample.seed(mysql, DATABASE, name, 300)
    assert sync(engine, NO_BACKFILL)["rows_extracted"] == 300
    with mysql.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {NO_BACKFILL} ADD COLUMN region VARCHAR(8) DEFAULT 'EU'")
        changed = cursor.execute(
            f"UPDATE {NO_BACKFILL} SET region = 'KR', updated_at = %s WHERE MOD(id, 6) = 0",
            (recent(),),
        )
    second = sync(engine, NO_BACKFILL)
    assert second["rows_extracted"] == changed == 50  # no full re-read
    assert second["added_columns"] == ["region"] and second["read_from_start"] is False
    columns = [*SAMPLE_COLUMNS, "region"]
    target = warehouse_rows(warehouse_dsn, NO_BACKFILL, columns)
    source = source_rows(mysql, NO_BACKFILL, columns)
    # Every column but the new one equals the source; the new one is there only for
    # the rows that changed (the others keep NULL, as the option says).
    assert [row[:-1] for row in target] == [row[:-1] for row in source]
    assert [row[-1] for row in target] == [row[-1] if row[0] % 6 == 0 else None for row in source]


def test_a_column_added_while_a_run_reads_the_table_joins_with_the_next_run(
    engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection, fresh: None
) -> None:
    """Chunks extracted after the ALTER still write the plan's columns (one layout per
    run); the next run sees the new column, adds it and fills it for every row."""
    name = ADDED.split(".")[1]
    sample.seed(mysql, DATABASE, name, 1_000)  # 5 chunks of 200

    def alter_before_chunk_3(event: dict) -> bool:
        if event["chunk"]["index"] == 3 and not altered:
            with mysql.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {ADDED} ADD COLUMN region VARCHAR(8) DEFAULT 'EU'")
            altered.append(True)
        return False  # never fails the invocation: it only changes MySQL first

    altered: list[bool] = []
    engine.inject_fault(Fault("myshift-extract", None, times=1, when=alter_before_chunk_3))
    first = sync(engine, ADDED)
    assert altered and first["rows_extracted"] == first["rows_loaded"] == 1_000
    files = state.list_files(engine.client_table(), PIPELINE, ADDED)
    assert {int(f["columns"]) for f in files} == {len(SAMPLE_COLUMNS)}
    assert [n for n, _ in warehouse_columns(warehouse_dsn, ADDED)] == SAMPLE_COLUMNS
    assert warehouse_rows(warehouse_dsn, ADDED, SAMPLE_COLUMNS) == source_rows(
        mysql, ADDED, SAMPLE_COLUMNS
    )

    engine.clear_faults()
    second = sync(engine, ADDED)
    assert second["added_columns"] == ["region"] and second["rows_extracted"] == 1_000
    columns = [*SAMPLE_COLUMNS, "region"]
    assert warehouse_rows(warehouse_dsn, ADDED, columns) == source_rows(mysql, ADDED, columns)


# --- a wider VARCHAR -----------------------------------------------------------------------


def test_a_wider_varchar_is_widened_and_the_long_value_loaded(
    engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection, fresh: None
) -> None:
    with mysql.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        cursor.execute(f"DROP TABLE IF EXISTS {WIDENED}")
        cursor.execute(
            f"CREATE TABLE {WIDENED} (id BIGINT NOT NULL PRIMARY KEY, code VARCHAR(10), "
            "updated_at DATETIME(6) NOT NULL, KEY k (updated_at, id)) DEFAULT CHARSET=utf8mb4"
        )
        cursor.executemany(
            f"INSERT INTO {WIDENED} VALUES (%s, %s, %s)",
            [(i, "가" * (i % 11), sample.BASE_TIME + dt.timedelta(seconds=i)) for i in range(40)],
        )
    sync(engine, WIDENED)
    assert ("code", "character varying(40)") in warehouse_columns(warehouse_dsn, WIDENED)

    long_value = "가나다라마" * 40  # 200 characters, 600 bytes
    with mysql.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {WIDENED} MODIFY code VARCHAR(200)")
        cursor.execute(f"INSERT INTO {WIDENED} VALUES (100, %s, %s)", (long_value, recent()))
        cursor.execute(
            f"UPDATE {WIDENED} SET code = %s, updated_at = %s WHERE id = 3",
            ("x" * 200, recent()),
        )
    second = sync(engine, WIDENED)
    assert second["rows_extracted"] == 2  # a wider column needs no re-read
    assert warehouse_columns(warehouse_dsn, WIDENED) == [
        ("id", "bigint"),
        ("code", "character varying(800)"),
        ("updated_at", "timestamp without time zone"),
    ]
    columns = ["id", "code", "updated_at"]
    target = warehouse_rows(warehouse_dsn, WIDENED, columns)
    assert target == source_rows(mysql, WIDENED, columns)
    assert (100, long_value) in {(row[0], row[1]) for row in target}


# --- a change Redshift cannot follow ----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "column", "what"),
    [
        ("MODIFY qty VARCHAR(20) NULL", "qty", "changed type"),
        ("MODIFY big INT NULL", "big", "changed type"),  # narrowing: BIGINT -> INTEGER
        ("MODIFY price DECIMAL(14,2) NULL", "price", "gained precision"),
        ("DROP COLUMN qty", "qty", "was dropped in MySQL"),
    ],
)
def test_a_change_redshift_cannot_follow_fails_before_anything_is_loaded(
    engine: LocalEngine,
    warehouse_dsn: str,
    mysql: pymysql.Connection,
    fresh: None,
    change: str,
    column: str,
    what: str,
) -> None:
    with mysql.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        cursor.execute(f"DROP TABLE IF EXISTS {REFUSED}")
        cursor.execute(
            f"CREATE TABLE {REFUSED} (id BIGINT NOT NULL PRIMARY KEY, qty INT NULL, "
            "big BIGINT NULL, price DECIMAL(10,2) NULL, updated_at DATETIME(6) NOT NULL, "
            "KEY k (updated_at, id))"
        )
        cursor.executemany(
            f"INSERT INTO {REFUSED} VALUES (%s, %s, %s, %s, %s)",
            [(i, i * 3, i * 1000, decimal.Decimal(i) / 4, sample.BASE_TIME) for i in range(1, 61)],
        )
    sync(engine, REFUSED)
    table = engine.client_table()
    mark_before = state.get_watermark(table, PIPELINE, REFUSED)
    schema_before = state.get_schema(table, PIPELINE, REFUSED)
    files_before = state.list_files(table, PIPELINE, REFUSED)
    types_before = warehouse_columns(warehouse_dsn, REFUSED)
    rows_before = warehouse_rows(warehouse_dsn, REFUSED, ["id", "updated_at"])

    with mysql.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {REFUSED} {change}")
        cursor.execute(
            f"INSERT INTO {REFUSED} (id, updated_at) VALUES (%s, %s), (%s, %s)",
            (500, recent(), 501, recent()),
        )
    failed = run(engine, {"pipeline": PIPELINE, "tables": [REFUSED]})
    assert failed["status"] == "FAILED"
    cause = failed.get("cause", "")
    assert "SchemaError" in cause and f"column '{column}' {what}" in cause
    assert "drop it" in cause or "rebuild the Redshift table" in cause  # what to do

    # Nothing extracted, nothing loaded; the watermark only records the failure.
    assert state.list_files(table, PIPELINE, REFUSED) == files_before
    assert state.get_schema(table, PIPELINE, REFUSED) == schema_before
    assert warehouse_columns(warehouse_dsn, REFUSED) == types_before
    assert warehouse_rows(warehouse_dsn, REFUSED, ["id", "updated_at"]) == rows_before
    mark = state.get_watermark(table, PIPELINE, REFUSED)
    assert mark["mysql_status"] == "failed"
    unchanged = {k: v for k, v in mark_before.items() if k not in ("mysql_status", "version")}
    assert {k: mark.get(k) for k in unchanged} == unchanged
