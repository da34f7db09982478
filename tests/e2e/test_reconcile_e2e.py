"""`myshift reconcile` (issue 14 c), through the real reconcile state machine.

Every column of every row due is compared per key range, MySQL against the warehouse; the
ranges that differ are split until the rows are named, and `--fix` extracts and loads
them again as a sync does. Each outcome is checked in both databases, value by value.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from myshift import state
from myshift.cli.main import cli
from myshift.local import sample
from myshift.local.engine import LocalEngine

from tests.e2e.conftest import (
    DATABASE,
    clear_partition,
    compare_table,
    connect_as_pipeline_user,
    local_cli_env,
    pipeline_yaml,
    run_fast,
)
from tests.support.mariadb import connect

PIPELINE = "e2e_reconcile"
SCHEMA = "reconcile_dw"
TABLE = f"{DATABASE}.reconcile_orders"
NAME = TABLE.split(".")[1]
ROWS = 2_000


def pipeline_file() -> str:
    # 200-row ranges: 11 of them in 2 items; a differing range is split once (2 parts of
    # 100 rows) before its rows are listed.
    return pipeline_yaml(
        PIPELINE, [TABLE], schema=SCHEMA, chunk_rows=1000, table_options="verify_range_rows: 200"
    )


@pytest.fixture(scope="module")
def cli_env(
    engine: LocalEngine, pipelines_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    (pipelines_dir / f"{PIPELINE}.yml").write_text(pipeline_file())
    yield local_cli_env(engine, pipelines_dir, tmp_path_factory.mktemp("state"))
    (pipelines_dir / f"{PIPELINE}.yml").unlink()


@pytest.fixture()
def synced(engine: LocalEngine, warehouse_dsn: str, cli_env: dict[str, str]) -> None:
    """The table seeded anew and synced once (verified)."""
    conn = connect()
    sample.seed(conn, DATABASE, NAME, ROWS)
    conn.close()
    clear_partition(engine, PIPELINE, TABLE)
    with psycopg.connect(warehouse_dsn, autocommit=True) as pg:
        pg.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    description = run_fast(engine, {"pipeline": PIPELINE, "tables": [TABLE]})
    assert description["status"] == "SUCCEEDED", description.get("cause")
    verification = description["output_json"]["results"][0]["verification"]
    assert verification["status"] == "verified" and verification["verified_rows"] == ROWS


def reconcile(env: dict[str, str], *args: str) -> tuple[int, dict, str]:
    """`myshift --local --json reconcile -p PIPELINE ...`: exit code, the JSON report (among
    the engine's log lines), everything printed."""
    result = CliRunner().invoke(
        cli, ["--local", "--json", "reconcile", "-p", PIPELINE, *args], env=env
    )
    output = result.stdout
    if '{\n  "execution"' not in output:
        return result.exit_code, {}, output + result.stderr
    start = output.index('{\n  "execution"')
    return result.exit_code, json.loads(output[start : output.index("\n}", start) + 2]), output


def table_of(report: dict) -> dict:
    (table,) = report["tables"]
    assert table["table"] == TABLE
    return table


def warehouse_row(dsn: str, row_id: int) -> tuple:
    with psycopg.connect(dsn) as pg:
        return pg.execute(
            f"SELECT amount, note, updated_at FROM {SCHEMA}.{NAME} WHERE id = %s", (row_id,)
        ).fetchall()


def test_a_clean_table_reconciles(
    engine: LocalEngine, warehouse_dsn: str, cli_env: dict[str, str], synced: None
) -> None:
    code, report, printed = reconcile(cli_env)
    assert code == 0, printed
    table = table_of(report)
    assert report["reconciled"] and table["status"] == "equal", table
    assert table["verified_rows"] == ROWS and table["ranges"] == 11
    for field in ("missing_rows", "differing_rows", "duplicated_rows", "deleted_in_source"):
        assert table[field] == 0, table
    assert table["ranges_left"] == 0 and table["rows_to_fix"] == 0
    # The lock was released and the documents removed.
    assert state.get_lock(engine.client_table(), PIPELINE, TABLE) is None
    s3 = engine.client("s3")
    left = s3.list_objects_v2(Bucket=engine.bucket, Prefix=f"data/_reconcile/{PIPELINE}/")
    assert left.get("KeyCount", 0) == 0


def test_a_row_changed_without_its_cursor_is_named_and_fixed(
    engine: LocalEngine, warehouse_dsn: str, cli_env: dict[str, str], synced: None
) -> None:
    conn = connect()
    with conn.cursor() as cursor:  # the cursor keeps its value: no sync reads the row again
        cursor.execute(
            f"UPDATE {TABLE} SET amount = amount + 1, note = 'restored', "
            "updated_at = updated_at WHERE id IN (123, 1777)"
        )
    conn.commit()
    conn.close()
    again = run_fast(engine, {"pipeline": PIPELINE, "tables": [TABLE]})
    assert again["output_json"]["results"][0]["verification"]["status"] == "verified"
    assert compare_table(engine, warehouse_dsn, PIPELINE, TABLE, SCHEMA).differing == 2

    code, report, printed = reconcile(cli_env, "-t", TABLE)
    table = table_of(report)
    assert code == 1 and not report["reconciled"], printed
    assert table["status"] == "differs" and table["differing_rows"] == 2, table
    assert table["named"]["differing"] == [[123], [1777]]
    assert table["verified_rows"] == ROWS - 2
    assert table["missing_rows"] == table["duplicated_rows"] == 0
    assert compare_table(engine, warehouse_dsn, PIPELINE, TABLE, SCHEMA).differing == 2

    code, report, printed = reconcile(cli_env, "-t", TABLE, "--fix")
    table = table_of(report)
    assert code == 0 and report["reconciled"], printed
    assert table["status"] == "fixed" and table["rows_fixed"] == 2, table
    comparison = compare_table(engine, warehouse_dsn, PIPELINE, TABLE, SCHEMA)
    assert comparison.equal and comparison.target_rows == ROWS, comparison
    assert warehouse_row(warehouse_dsn, 123)[0][1] == "restored"

    code, report, printed = reconcile(cli_env)
    assert code == 0 and table_of(report)["status"] == "equal", printed
    assert table_of(report)["verified_rows"] == ROWS


def test_values_corrupted_in_the_warehouse_are_named_and_fixed(
    engine: LocalEngine, warehouse_dsn: str, cli_env: dict[str, str], synced: None
) -> None:
    with connect_as_pipeline_user(engine, warehouse_dsn, PIPELINE) as pg:
        pg.execute(f"UPDATE {SCHEMA}.{NAME} SET amount = amount + 0.0001 WHERE id = 77")
        pg.execute(
            f"UPDATE {SCHEMA}.{NAME} SET note = CASE WHEN note IS NULL THEN 'x' END WHERE id = 1500"
        )
        pg.execute(f"DELETE FROM {SCHEMA}.{NAME} WHERE id = 901")
        pg.execute(f"INSERT INTO {SCHEMA}.{NAME} SELECT * FROM {SCHEMA}.{NAME} WHERE id = 42")
    code, report, printed = reconcile(cli_env)
    table = table_of(report)
    assert code == 1, printed
    assert table["named"]["differing"] == [[77], [1500]], table
    assert table["named"]["missing"] == [[901]]
    assert table["named"]["duplicated"] == [[42]]
    assert table["rows_to_fix"] == 4 and table["verified_rows"] == ROWS - 4

    code, report, printed = reconcile(cli_env, "--fix")
    table = table_of(report)
    assert code == 0 and table["status"] == "fixed", printed
    assert table["rows_fixed"] == 4
    comparison = compare_table(engine, warehouse_dsn, PIPELINE, TABLE, SCHEMA)
    assert comparison.equal and comparison.target_rows == ROWS, comparison
    # Exactly once: the fix's load is in the table's ledger once, by its file set.
    with psycopg.connect(warehouse_dsn) as pg:
        runs = pg.execute(
            f"SELECT run_id, row_count FROM {SCHEMA}.myshift_ledger_{NAME} "
            "WHERE run_id LIKE 'reconcile-%'"
        ).fetchall()
    assert runs == [(report["execution"], 4)]
    code, report, _ = reconcile(cli_env)
    assert code == 0 and table_of(report)["status"] == "equal"


def test_a_table_held_by_a_run_is_skipped(
    engine: LocalEngine, warehouse_dsn: str, cli_env: dict[str, str], synced: None
) -> None:
    holder = "e2e-sync-holding-the-table"
    state.acquire_lock(engine.client_table(), PIPELINE, TABLE, holder, int(time.time()), 600)
    try:
        code, report, printed = reconcile(cli_env, "--fix")
    finally:
        assert state.release_lock(engine.client_table(), PIPELINE, TABLE, holder)
    table = table_of(report)
    assert code == 1 and table["status"] == "locked", printed
    assert table["reason"].startswith("skipped, a run holds the table")
    assert holder in table["reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "no_such_pipeline"], "no_such_pipeline"),
        (["-p", PIPELINE, "-t", f"{DATABASE}.no_such_table"], "no_such_table"),
        (["-p", PIPELINE, "-t", "not-qualified"], "not-qualified"),
    ],
)
def test_bad_input_starts_nothing(
    engine: LocalEngine, cli_env: dict[str, str], args: list[str], message: str
) -> None:
    assert engine.resources is not None
    sfn = engine.client("stepfunctions")
    arn = engine.resources.reconcile_state_machine_arn
    before = len(sfn.list_executions(stateMachineArn=arn)["executions"])
    result = CliRunner().invoke(cli, ["--local", "reconcile", *args], env=cli_env)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == before
