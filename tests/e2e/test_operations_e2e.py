"""Backup-only/Redshift-only, the ledger, locks, retries and per-table failures,
through the real state machine; every check is on rows or state items."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pymysql
import pytest
from myshift import load, state, steps
from myshift.config import load_pipeline
from myshift.errors import SourceQueryError, SourceUnavailableError, TableLockedError
from myshift.local import sample
from myshift.local.engine import Fault, LocalEngine
from myshift.verify import run_query

from tests.conftest import MYSQL
from tests.e2e.conftest import DATABASE, client_as, pipeline_yaml, result_of, run

PIPELINE = "e2e_ops"
SCHEMA = "ops_dw"
TABLE_A = f"{DATABASE}.ops_a"
TABLE_B = f"{DATABASE}.ops_b"
MISSING = f"{DATABASE}.ops_missing"


@pytest.fixture(scope="module")
def pipelines(pipelines_dir: Path) -> Path:
    (pipelines_dir / f"{PIPELINE}.yml").write_text(
        pipeline_yaml(PIPELINE, [TABLE_A, TABLE_B], schema=SCHEMA, chunk_rows=300)
    )
    (pipelines_dir / "e2e_par.yml").write_text(
        pipeline_yaml(
            "e2e_par",
            [TABLE_A, TABLE_B, MISSING],
            schema=SCHEMA,
            strategy="inter-table",
            chunk_rows=300,
        )
    )
    return pipelines_dir


@pytest.fixture()
def fresh(pipelines: Path, engine: LocalEngine, warehouse_dsn: str) -> Iterator[None]:
    """Both source tables re-seeded; their state items and warehouse tables gone."""
    conn = pymysql.connect(**MYSQL, password="", autocommit=True)
    sample.seed(conn, DATABASE, "ops_a", 1_000)
    sample.seed(conn, DATABASE, "ops_b", 700)
    conn.close()
    table = engine.client_table()
    for item in table.scan()["Items"]:
        if item["pk"].split("#")[1] in (TABLE_A, TABLE_B, MISSING):
            table.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    with psycopg.connect(warehouse_dsn, autocommit=True) as pg:
        pg.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    yield
    engine.clear_faults()


def source_rows(table: str) -> list[tuple]:
    conn = pymysql.connect(**MYSQL, password="")
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT id, amount, note, updated_at FROM {table} ORDER BY id")
            return [tuple(r) for r in cursor.fetchall()]
    finally:
        conn.close()


def warehouse_rows(dsn: str, table: str) -> list[tuple]:
    name = table.split(".")[1]
    with psycopg.connect(dsn) as pg:
        exists = pg.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{name}",)).fetchone()[0]
        if exists is None:
            return []
        return [
            tuple(r)
            for r in pg.execute(
                f"SELECT id, amount, note, updated_at FROM {SCHEMA}.{name} ORDER BY id"
            ).fetchall()
        ]


def test_backup_only_then_redshift_only_equals_a_full_run(
    engine: LocalEngine, warehouse_dsn: str, fresh: None
) -> None:
    backup = run(engine, {"pipeline": PIPELINE, "tables": [TABLE_A], "mode": "backup_only"})
    assert backup["status"] == "SUCCEEDED", backup.get("cause")
    assert result_of(backup, TABLE_A)["rows_extracted"] == 1_000
    assert warehouse_rows(warehouse_dsn, TABLE_A) == []
    files = state.list_files(engine.client_table(), PIPELINE, TABLE_A)
    assert files and {f["status"] for f in files} == {"extracted"}
    mark = state.get_watermark(engine.client_table(), PIPELINE, TABLE_A)
    assert mark["mysql_status"] == "success" and mark["redshift_status"] == "pending"

    load_run = run(engine, {"pipeline": PIPELINE, "tables": [TABLE_A], "redshift_only": True})
    assert load_run["status"] == "SUCCEEDED", load_run.get("cause")
    assert result_of(load_run, TABLE_A)["rows_loaded"] == 1_000
    assert warehouse_rows(warehouse_dsn, TABLE_A) == source_rows(TABLE_A)
    files = state.list_files(engine.client_table(), PIPELINE, TABLE_A)
    assert {f["status"] for f in files} == {"loaded"}

    again = run(engine, {"pipeline": PIPELINE, "tables": [TABLE_A], "mode": "redshift_only"})
    assert again["status"] == "SUCCEEDED", again.get("cause")
    assert result_of(again, TABLE_A)["rows_loaded"] == 0
    assert warehouse_rows(warehouse_dsn, TABLE_A) == source_rows(TABLE_A)


def test_a_reset_recovers_a_table_whose_pending_file_is_corrupt(
    engine: LocalEngine, warehouse_dsn: str, fresh: None
) -> None:
    """A file that can never load (corrupted on S3) fails every load of its table; a
    watermark reset supersedes the pending files and the next run reads every row."""
    backup = run(engine, {"pipeline": PIPELINE, "tables": [TABLE_A], "mode": "backup_only"})
    assert backup["status"] == "SUCCEEDED", backup.get("cause")
    table = engine.client_table()
    files = state.list_files(table, PIPELINE, TABLE_A)
    engine.client("s3").put_object(Bucket=engine.bucket, Key=files[1]["s3_key"], Body=b"junk")
    for _ in range(2):  # not once: every load of the table stumbles on it
        failed = run(engine, {"pipeline": PIPELINE, "tables": [TABLE_A]})
        assert failed["status"] == "FAILED"
    assert warehouse_rows(warehouse_dsn, TABLE_A) == []

    # Refused while a run holds the table: nothing changes.
    state.acquire_lock(table, PIPELINE, TABLE_A, "a-live-run", int(time.time()), 600)
    with pytest.raises(TableLockedError, match="a-live-run"):
        state.reset_table(table, PIPELINE, TABLE_A, int(time.time()))
    assert {f["status"] for f in state.list_files(table, PIPELINE, TABLE_A)} == {"extracted"}
    assert state.release_lock(table, PIPELINE, TABLE_A, "a-live-run")

    mark, superseded = state.reset_table(table, PIPELINE, TABLE_A, int(time.time()))
    assert mark["last_key"] is None
    assert superseded == len(files)  # the backup's; the failed runs committed none
    recovered = run(engine, {"pipeline": PIPELINE, "tables": [TABLE_A]})
    assert recovered["status"] == "SUCCEEDED", recovered.get("cause")
    assert result_of(recovered, TABLE_A)["rows_loaded"] == 1_000
    assert warehouse_rows(warehouse_dsn, TABLE_A) == source_rows(TABLE_A)
    statuses = [f["status"] for f in state.list_files(table, PIPELINE, TABLE_A)]
    assert statuses.count("superseded") == len(files) and "extracted" not in statuses


def test_rerunning_a_committed_load_changes_nothing(
    engine: LocalEngine, warehouse_dsn: str, fresh: None
) -> None:
    first = run(engine, {"pipeline": PIPELINE, "tables": [TABLE_A]})
    assert first["status"] == "SUCCEEDED", first.get("cause")
    before = warehouse_rows(warehouse_dsn, TABLE_A)
    # Load the very same files again, as another run would that lost track of the
    # first load: the ledger knows them by the set of files, whatever the run.
    table_state = engine.client_table()
    pipeline = load_pipeline(engine.pipelines_dir, PIPELINE)
    table = pipeline.table(TABLE_A)
    schema = state.get_schema(table_state, PIPELINE, TABLE_A)
    run_id = first["output_json"]["results"][0]["run_id"]
    manifest = steps.manifest_key("data", PIPELINE, TABLE_A, run_id)
    files = steps.files_in_manifest(
        table_state, engine.client("s3"), engine.bucket, PIPELINE, TABLE_A, manifest
    )
    batch = load.load_batch(
        steps.target_table(schema, SCHEMA, table.table),
        manifest_url=f"s3://{engine.bucket}/{manifest}",
        copy_role_arn=None,
        expected_rows=1_000,
        load_key=load.load_id([f["s3_key"] for f in files]),
        run_id="another-run",
        file_count=len(files),
    )
    sqls, names = [s.sql for s in batch], [s.name for s in batch]
    redshift_data = client_as(engine, "load", "redshift-data")  # the warehouse identity
    statement = load.submit(redshift_data, pipeline.target, sqls, "rerun")
    # The same submission again (a retried task whose reply was lost): the same
    # statement, not a second batch racing the first.
    assert load.submit(redshift_data, pipeline.target, sqls, "rerun") == statement
    deadline = time.monotonic() + 60
    while (description := load.describe(redshift_data, statement))["Status"] not in (
        "FINISHED",
        "FAILED",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    counts = load.verified_counts(description, 1_000, names)
    assert counts.already_loaded and counts.rows_inserted == 0 and counts.rows_replaced == 0
    assert warehouse_rows(warehouse_dsn, TABLE_A) == before
    ledger = load.ledger_name(table.table.lower())
    rows = run_query(redshift_data, pipeline, f"SELECT run_id FROM {SCHEMA}.{ledger}")
    assert rows == [[run_id]]


def test_locked_table_is_skipped_at_once_and_an_expired_lock_is_taken(
    engine: LocalEngine, warehouse_dsn: str, fresh: None
) -> None:
    table_state = engine.client_table()
    state.acquire_lock(table_state, PIPELINE, TABLE_A, "other-execution", int(time.time()), 3600)
    locked = run(engine, {"pipeline": PIPELINE, "tables": [TABLE_A]})
    assert locked["status"] == "SUCCEEDED", locked.get("cause")
    assert json.loads(locked["output"])["status"] == "skipped"
    (record,) = [
        r
        for r in state.list_runs(table_state, PIPELINE, TABLE_A)
        if r["run_id"] == locked["executionArn"].rsplit(":", 1)[1]
    ]
    assert record["status"] == "skipped" and "locked by other-execution" in record["cause"]
    assert state.get_lock(table_state, PIPELINE, TABLE_A)["owner"] == "other-execution"
    assert state.get_watermark(table_state, PIPELINE, TABLE_A)["version"] == 0
    assert warehouse_rows(warehouse_dsn, TABLE_A) == []

    # A crashed execution's lock: its lease ran out an hour ago.
    state.release_lock(table_state, PIPELINE, TABLE_A, "other-execution")
    state.acquire_lock(table_state, PIPELINE, TABLE_A, "crashed", int(time.time()) - 7200, 3600)
    taken = run(engine, {"pipeline": PIPELINE, "tables": [TABLE_A]})
    assert taken["status"] == "SUCCEEDED", taken.get("cause")
    assert state.get_lock(table_state, PIPELINE, TABLE_A) is None
    assert warehouse_rows(warehouse_dsn, TABLE_A) == source_rows(TABLE_A)


def test_a_failing_table_does_not_hide_the_others(
    engine: LocalEngine, warehouse_dsn: str, fresh: None
) -> None:
    description = run(engine, {"pipeline": "e2e_par"})
    assert description["status"] == "FAILED"
    assert "1 of 3 tables failed" in description["cause"]
    assert MISSING in description["cause"] and "does not exist" in description["cause"]
    assert warehouse_rows(warehouse_dsn, TABLE_A) == source_rows(TABLE_A)
    assert warehouse_rows(warehouse_dsn, TABLE_B) == source_rows(TABLE_B)
    table_state = engine.client_table()
    runs = state.list_runs(table_state, "e2e_par", MISSING)
    assert runs[0]["status"] == "failed" and "does not exist" in runs[0]["cause"]
    for name in (TABLE_A, TABLE_B, MISSING):
        assert state.get_lock(table_state, "e2e_par", name) is None


def test_inter_table_runs_tables_at_once_and_sequential_one_by_one(
    engine: LocalEngine, fresh: None
) -> None:
    def observe(limit_to: list[int]) -> Fault:
        active = [0]
        guard = threading.Lock()

        def when(event: dict) -> bool:
            with guard:
                active[0] += 1
                limit_to.append(active[0])
            time.sleep(0.5)
            with guard:
                active[0] -= 1
            return False  # never fails: it only watches

        return engine.inject_fault(Fault("myshift-plan", RuntimeError("unused"), when=when))

    sequential: list[int] = []
    observe(sequential)
    assert run(engine, {"pipeline": PIPELINE})["status"] == "SUCCEEDED"
    engine.clear_faults()
    parallel: list[int] = []
    observe(parallel)
    run(engine, {"pipeline": "e2e_par", "tables": [TABLE_A, TABLE_B]})
    assert max(sequential) == 1
    assert max(parallel) == 2


def test_transient_error_is_retried_then_succeeds(
    engine: LocalEngine, warehouse_dsn: str, fresh: None
) -> None:
    fault = engine.inject_fault(
        Fault("myshift-extract", SourceUnavailableError("injected: connection lost"), times=1)
    )
    description = run(engine, {"pipeline": PIPELINE, "tables": [TABLE_A]})
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert fault.fired == 1
    assert warehouse_rows(warehouse_dsn, TABLE_A) == source_rows(TABLE_A)


def test_terminal_error_is_not_retried_releases_the_lock_and_is_recorded(
    engine: LocalEngine, warehouse_dsn: str, fresh: None
) -> None:
    fault = engine.inject_fault(
        Fault(
            "myshift-extract",
            SourceQueryError("injected: access denied"),
            times=10,
            when=lambda event: event["chunk"]["index"] == 0,
        )
    )
    description = run(engine, {"pipeline": PIPELINE, "tables": [TABLE_A]})
    assert description["status"] == "FAILED"
    assert "injected: access denied" in description["cause"]
    assert fault.fired == 1  # chunk 0 was tried once: a terminal error is not retried
    table_state = engine.client_table()
    assert state.get_lock(table_state, PIPELINE, TABLE_A) is None
    record = state.list_runs(table_state, PIPELINE, TABLE_A)[0]
    assert record["status"] == "failed" and record["error"] == "SourceQueryError"
    assert state.get_watermark(table_state, PIPELINE, TABLE_A)["mysql_status"] == "failed"

    engine.clear_faults()
    retry = run(engine, {"pipeline": PIPELINE, "tables": [TABLE_A]})
    assert retry["status"] == "SUCCEEDED", retry.get("cause")
    assert warehouse_rows(warehouse_dsn, TABLE_A) == source_rows(TABLE_A)
