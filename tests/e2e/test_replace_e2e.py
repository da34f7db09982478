"""Write modes through the real state machine: `replace` (a full refresh every run) and
`merge` of several runs' files at once (the newest version of a key wins, a NULL cursor
loses). Every check compares rows value by value between MariaDB and the warehouse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from myshift import state, verify
from myshift.config import load_pipeline
from myshift.local import sample
from myshift.local.engine import Fault, LocalEngine

from tests.e2e.conftest import normalized_row, pipeline_yaml, result_of, run

DATABASE = "myshift_e2e_modes"
PIPELINE = "e2e_modes"
SCHEMA = "modes_dw"
REPLACED = f"{DATABASE}.full_refresh"
MERGED = f"{DATABASE}.null_cursor"
COLUMNS = sample.INSERT_SQL.split("(", 1)[1].split(")", 1)[0].replace(" ", "").split(",")


@pytest.fixture(scope="module")
def pipeline(pipelines_dir: Path) -> str:
    tables = (
        f"  - {{name: {REPLACED}, cursor: updated_at, primary_key: [id], write_mode: replace}}\n"
        f"  - {{name: {MERGED}, cursor: updated_at, primary_key: [id], load_null_cursor: true}}\n"
    )
    (pipelines_dir / f"{PIPELINE}.yml").write_text(
        pipeline_yaml(PIPELINE, [], schema=SCHEMA, chunk_rows=150, extra=tables)
    )
    return PIPELINE


@pytest.fixture()
def fresh(
    pipeline: str, engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection
) -> Iterator[None]:
    """Both tables re-seeded (600 rows); their state items and warehouse schema gone."""
    sample.seed(mysql, DATABASE, REPLACED.split(".")[1], 600)
    sample.seed(mysql, DATABASE, MERGED.split(".")[1], 600)
    table = engine.client_table()
    for item in table.scan()["Items"]:
        if item["pk"].split("#")[1] in (REPLACED, MERGED):
            table.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    with psycopg.connect(warehouse_dsn, autocommit=True) as pg:
        pg.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    yield
    engine.clear_faults()


def source_rows(mysql: pymysql.Connection, table: str) -> list[tuple]:
    with mysql.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY id")
        return [normalized_row(r) for r in cursor.fetchall()]


def warehouse_rows(dsn: str, table: str) -> list[tuple]:
    name = f"{SCHEMA}.{table.split('.')[1]}"
    with psycopg.connect(dsn) as pg:
        if pg.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is None:
            return []
        rows = pg.execute(f"SELECT {', '.join(COLUMNS)} FROM {name} ORDER BY id").fetchall()
        return [normalized_row(r) for r in rows]


def recent() -> dt.datetime:
    """A cursor value safely before the next run's frozen bound (safety lag 0 here)."""
    return dt.datetime.now().replace(microsecond=250_000) - dt.timedelta(seconds=5)


def test_replace_reloads_the_whole_table_every_run(
    engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection, fresh: None
) -> None:
    first = run(engine, {"pipeline": PIPELINE, "tables": [REPLACED]})
    assert first["status"] == "SUCCEEDED", first.get("cause")
    assert result_of(first, REPLACED)["rows_extracted"] == 600
    assert warehouse_rows(warehouse_dsn, REPLACED) == source_rows(mysql, REPLACED)

    with mysql.cursor() as cursor:
        # Deleted rows must disappear from the warehouse: merge never could.
        deleted = cursor.execute(f"DELETE FROM {REPLACED} WHERE MOD(id, 9) = 0")
        # Updated with a new cursor, and updated without touching the cursor: a full
        # refresh reads every row whatever its cursor.
        cursor.execute(
            f"UPDATE {REPLACED} SET note = 'stamped', updated_at = %s WHERE MOD(id, 7) = 0",
            (recent(),),
        )
        cursor.execute(f"UPDATE {REPLACED} SET amount = amount + 3 WHERE MOD(id, 11) = 0")
    # Inserted with cursors before the watermark: an incremental run would skip them.
    sample.insert_rows(mysql, DATABASE, REPLACED.split(".")[1], 10_001, 40)
    remaining = 600 - deleted + 40

    second = run(engine, {"pipeline": PIPELINE, "tables": [REPLACED]})
    assert second["status"] == "SUCCEEDED", second.get("cause")
    result = result_of(second, REPLACED)
    assert result["rows_extracted"] == remaining  # from the first key, not the watermark
    assert result["rows_replaced"] == 600  # every row of the first load deleted
    assert result["rows_inserted"] == remaining
    assert warehouse_rows(warehouse_dsn, REPLACED) == source_rows(mysql, REPLACED)

    # Nothing changed: a third run still reads and reloads the whole table, same rows.
    third = run(engine, {"pipeline": PIPELINE, "tables": [REPLACED], "limit": 100})
    assert third["status"] == "SUCCEEDED", third.get("cause")
    assert result_of(third, REPLACED)["rows_extracted"] == remaining
    assert result_of(third, REPLACED)["files_extracted"] == -(-remaining // 100)
    assert warehouse_rows(warehouse_dsn, REPLACED) == source_rows(mysql, REPLACED)


def test_replace_backup_only_then_redshift_only_loads_the_last_full_extraction(
    engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection, fresh: None
) -> None:
    first = run(engine, {"pipeline": PIPELINE, "tables": [REPLACED]})
    assert first["status"] == "SUCCEEDED", first.get("cause")
    with mysql.cursor() as cursor:
        cursor.execute(f"DELETE FROM {REPLACED} WHERE MOD(id, 5) = 0")
    backups = []
    for _ in range(2):  # two full extractions wait; only the newest is the table
        backup = run(engine, {"pipeline": PIPELINE, "tables": [REPLACED], "mode": "backup_only"})
        assert backup["status"] == "SUCCEEDED", backup.get("cause")
        backups.append(result_of(backup, REPLACED)["rows_extracted"])
        if len(backups) == 1:
            with mysql.cursor() as cursor:
                cursor.execute(f"DELETE FROM {REPLACED} WHERE MOD(id, 7) = 0 AND id < 300")
    assert backups[0] == 480 and backups[1] < backups[0]
    assert warehouse_rows(warehouse_dsn, REPLACED) != source_rows(mysql, REPLACED)
    loaded = run(engine, {"pipeline": PIPELINE, "tables": [REPLACED], "mode": "redshift_only"})
    assert loaded["status"] == "SUCCEEDED", loaded.get("cause")
    result = result_of(loaded, REPLACED)
    assert result["rows_loaded"] == backups[1] == result["rows_inserted"]
    assert warehouse_rows(warehouse_dsn, REPLACED) == source_rows(mysql, REPLACED)


def test_a_full_refresh_reads_rows_past_the_frozen_bound(
    engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection, fresh: None
) -> None:
    """An incremental table leaves rows newer than NOW() - safety lag for the next run;
    a full refresh deletes every row it does not stage, so it must read them now."""
    future = dt.datetime.now() + dt.timedelta(hours=1)
    with mysql.cursor() as cursor:
        cursor.execute(
            f"UPDATE {REPLACED} SET note = 'ahead', updated_at = %s WHERE MOD(id, 10) = 0",
            (future,),
        )
    description = run(engine, {"pipeline": PIPELINE, "tables": [REPLACED]})
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert result_of(description, REPLACED)["rows_extracted"] == 600
    assert warehouse_rows(warehouse_dsn, REPLACED) == source_rows(mysql, REPLACED)


def test_a_full_refresh_reads_rows_written_after_its_plan(
    engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection, fresh: None
) -> None:
    """The last chunk is open-ended: a row written after the plan, past its last key, is
    read too, and the watermark (and so the verified count) lands on what was read."""
    later = dt.datetime.now() + dt.timedelta(hours=2)

    def insert_before_the_last_chunk(event: dict) -> bool:
        if event["chunk"]["index"] == 3 and not inserted:  # 600 rows, 150 a chunk
            with mysql.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {REPLACED} SELECT 30001, order_no, merchant_id, amount, fee, "
                    f"currency, status, 'late', created_at, %s FROM {REPLACED} WHERE id = 1",
                    (later,),
                )
            inserted.append(True)
        return False  # only changes MySQL first

    inserted: list[bool] = []
    engine.inject_fault(Fault("myshift-extract", None, times=1, when=insert_before_the_last_chunk))
    description = run(engine, {"pipeline": PIPELINE, "tables": [REPLACED]})
    assert inserted and description["status"] == "SUCCEEDED", description.get("cause")
    assert result_of(description, REPLACED)["rows_extracted"] == 601
    assert warehouse_rows(warehouse_dsn, REPLACED) == source_rows(mysql, REPLACED)
    mark = state.get_watermark(engine.client_table(), PIPELINE, REPLACED)
    assert mark["last_key"][1] == 30001 and mark["mysql_rows_extracted"] == 601
    table = load_pipeline(engine.pipelines_dir, PIPELINE).table(REPLACED)
    assert verify.source_rows_up_to(mysql, table, mark["last_key"]) == 601


@pytest.mark.parametrize("tables", [[REPLACED], None])
def test_max_chunks_is_refused_for_a_replace_table_before_anything_runs(
    engine: LocalEngine,
    warehouse_dsn: str,
    mysql: pymysql.Connection,
    fresh: None,
    tables: list[str] | None,
) -> None:
    first = run(engine, {"pipeline": PIPELINE, "tables": [REPLACED]})
    assert first["status"] == "SUCCEEDED", first.get("cause")
    with mysql.cursor() as cursor:
        cursor.execute(f"DELETE FROM {REPLACED} WHERE id > 100")
    items_before = engine.client_table().scan()["Items"]
    rows_before = warehouse_rows(warehouse_dsn, REPLACED)

    request: dict[str, Any] = {"pipeline": PIPELINE, "limit": 50, "max_chunks": 1}
    if tables:
        request["tables"] = tables
    refused = run(engine, request)
    assert refused["status"] == "FAILED"
    cause = refused.get("cause", "")
    assert "max_chunks cannot be used with write_mode replace tables" in cause
    assert REPLACED in cause and "\n" not in cause
    assert engine.client_table().scan()["Items"] == items_before
    # The 500 rows deleted in MySQL are still in the warehouse: nothing was loaded.
    assert len(rows_before) == 600
    assert warehouse_rows(warehouse_dsn, REPLACED) == rows_before


def test_merged_runs_keep_the_newest_version_and_a_null_cursor_loses(
    engine: LocalEngine, warehouse_dsn: str, mysql: pymysql.Connection, fresh: None
) -> None:
    """A key in two runs' files loaded together: first as a NULL-cursor row, then with a
    cursor. The version with the cursor is the newer one and must win."""
    name = MERGED.split(".")[1]
    with mysql.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {MERGED} MODIFY updated_at DATETIME(6) NULL")
        nulls = cursor.execute(f"UPDATE {MERGED} SET updated_at = NULL WHERE MOD(id, 5) = 0")
    first = run(engine, {"pipeline": PIPELINE, "tables": [MERGED], "mode": "backup_only"})
    assert first["status"] == "SUCCEEDED", first.get("cause")
    assert result_of(first, MERGED)["rows_extracted"] == 600  # NULL cursors included

    with mysql.cursor() as cursor:
        stamped = cursor.execute(
            f"UPDATE {MERGED} SET note = 'cursor set', fee = 1.5, updated_at = %s "
            "WHERE updated_at IS NULL AND MOD(id, 10) = 0",
            (recent(),),
        )
    second = run(engine, {"pipeline": PIPELINE, "tables": [MERGED], "mode": "backup_only"})
    assert second["status"] == "SUCCEEDED", second.get("cause")
    assert result_of(second, MERGED)["rows_extracted"] == stamped

    files = state.list_files(engine.client_table(), PIPELINE, MERGED, status="extracted")
    assert len({f["run_id"] for f in files}) == 2  # both runs wait to be loaded together
    loaded = run(engine, {"pipeline": PIPELINE, "tables": [MERGED], "mode": "redshift_only"})
    assert loaded["status"] == "SUCCEEDED", loaded.get("cause")
    result = result_of(loaded, MERGED)
    assert result["rows_loaded"] == 600 + stamped
    assert result["rows_inserted"] == 600  # one version of each key
    target = warehouse_rows(warehouse_dsn, MERGED)
    assert target == source_rows(mysql, MERGED)
    with psycopg.connect(warehouse_dsn) as pg:
        counted = pg.execute(
            f"SELECT COUNT(*) FILTER (WHERE note = 'cursor set'), "
            f"COUNT(*) FILTER (WHERE updated_at IS NULL) FROM {SCHEMA}.{name}"
        ).fetchone()
    assert counted == (stamped, nulls - stamped)
