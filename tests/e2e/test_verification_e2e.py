"""Verification as a step of every run (issue 14 a, b), through the real state machine.

Each run compares the warehouse with MySQL per key range up to the watermark: rows
changed after the run's bound are "newer", not a mismatch; rows deleted in MySQL are
reported, or removed, or marked, per the table's `deletes` policy; a row really missing
or duplicated in the warehouse is a mismatch in the run record, the CLI's exit code and
the VerificationMismatch metric. Rows are checked in both databases, value by value.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from myshift import state
from myshift.cli.main import cli
from myshift.local import sample
from myshift.local.engine import LocalEngine

from tests.conftest import MYSQL
from tests.e2e.conftest import (
    DATABASE,
    clear_partition,
    compare_table,
    connect_as_pipeline_user,
    local_cli_env,
    run_fast,
    run_id_of,
)
from tests.support.mariadb import connect

PIPELINE = "e2e_verify"
SCHEMA = "verify_dw"
LIVE = f"{DATABASE}.verify_live"
KEEP = f"{DATABASE}.verify_keep"
REMOVE = f"{DATABASE}.verify_remove"
SOFT = f"{DATABASE}.verify_soft"
BROKEN = f"{DATABASE}.verify_broken"
POLICIES = {KEEP: "keep", REMOVE: "remove", SOFT: "soft"}


def pipeline_file() -> str:
    tables = [
        f"  - {{name: {LIVE}, cursor: updated_at, primary_key: [id], verify_range_rows: 500}}",
        *(
            f"  - {{name: {name}, cursor: updated_at, primary_key: [id], deletes: {policy}, "
            "verify_range_rows: 100}"
            for name, policy in POLICIES.items()
        ),
        f"  - {{name: {BROKEN}, cursor: updated_at, primary_key: [id], verify_range_rows: 100}}",
    ]
    return "\n".join(
        [
            f"name: {PIPELINE}",
            "source:",
            f"  host: {MYSQL['host']}",
            f"  port: {MYSQL['port']}",
            f"  user: {MYSQL['user']}",
            "  password_env: MYSQL_PASSWORD",
            f"target: {{database: dev, schema: {SCHEMA}, workgroup: local}}",
            "chunk_rows: 1000",
            "safety_lag_seconds: 0",
            "tables:",
            *tables,
            "",
        ]
    )


@pytest.fixture(scope="module")
def cli_env(
    engine: LocalEngine, pipelines_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    (pipelines_dir / f"{PIPELINE}.yml").write_text(pipeline_file())
    yield local_cli_env(engine, pipelines_dir, tmp_path_factory.mktemp("state"))


def fresh(engine: LocalEngine, warehouse_dsn: str, qualified: str, rows: int) -> None:
    """The source table seeded anew; its state and its warehouse table gone."""
    conn = connect()
    sample.seed(conn, DATABASE, qualified.split(".")[1], rows)
    conn.close()
    clear_partition(engine, PIPELINE, qualified)
    with psycopg.connect(warehouse_dsn, autocommit=True) as pg:
        name = qualified.split(".")[1]
        pg.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{name}")
        pg.execute(f"DROP TABLE IF EXISTS {SCHEMA}.myshift_ledger_{name}")


def cli_json(stdout: str) -> dict:
    """The CLI's JSON report among the engine's log lines (one JSON object per line)."""
    start = stdout.index('{\n  "execution"')
    return json.loads(stdout[start : stdout.index("\n}", start) + 2])


def invoke_sync(env: dict[str, str], qualified: str) -> tuple[int, dict, str]:
    """`myshift --local --json sync pipeline` of one table: exit code, the table's
    summary, and everything printed meanwhile (the engine's functions log there too)."""
    result = CliRunner().invoke(
        cli,
        ["--local", "--json", "sync", "pipeline", "-p", PIPELINE, "-t", qualified],
        env=env,
        catch_exceptions=False,
    )
    report = cli_json(result.stdout)
    return result.exit_code, report["tables"][0], result.stdout


def checked(engine: LocalEngine, qualified: str, description: dict) -> dict:
    record = state.get_run(engine.client_table(), PIPELINE, qualified, run_id_of(description))
    assert record is not None and description["status"] == "SUCCEEDED", description.get("cause")
    return record["verification"]


def synced(engine: LocalEngine, qualified: str) -> dict:
    """A run started as EventBridge starts one (no CLI): its verification record."""
    description = run_fast(engine, {"pipeline": PIPELINE, "tables": [qualified]})
    return checked(engine, qualified, description)


def warehouse(dsn: str, qualified: str, columns: str = "id") -> list[tuple]:
    with psycopg.connect(dsn) as pg:
        return pg.execute(
            f"SELECT {columns} FROM {SCHEMA}.{qualified.split('.')[1]} ORDER BY id"
        ).fetchall()


def test_a_scheduled_run_records_its_verification(
    engine: LocalEngine, warehouse_dsn: str, cli_env: dict[str, str]
) -> None:
    fresh(engine, warehouse_dsn, KEEP, 1_000)
    first = synced(engine, KEEP)
    assert first["status"] == "verified", first
    assert first["verified_rows"] == first["source_rows"] == first["target_rows"] == 1_000
    assert first["ranges"] == 11 and first["ranges_narrowed"] == 0
    assert first["missing_rows"] == first["duplicated_rows"] == first["differing_rows"] == 0
    again = synced(engine, KEEP)  # nothing new: verified all the same
    assert again["status"] == "verified" and again["verified_rows"] == 1_000, again
    assert compare_table(engine, warehouse_dsn, PIPELINE, KEEP, SCHEMA).equal


def test_a_live_table_verifies_with_rows_newer_than_the_watermark(
    engine: LocalEngine, warehouse_dsn: str, cli_env: dict[str, str]
) -> None:
    fresh(engine, warehouse_dsn, LIVE, 5_000)
    code, first, _ = invoke_sync(cli_env, LIVE)
    assert code == 0 and first["verification"]["verified_rows"] == 5_000, first
    stop = threading.Event()
    written = {"updates": 0, "inserts": 0}

    def writer() -> None:
        conn = connect()
        rng = random.Random(14)
        next_id = 5_001
        with conn.cursor() as cursor:
            while not stop.is_set():
                ids = [rng.randint(1, 5_000) for _ in range(9)]
                cursor.execute(
                    f"UPDATE {LIVE} SET amount = amount + 1, updated_at = NOW(6) "
                    f"WHERE id IN ({', '.join(map(str, ids))})"
                )
                written["updates"] += 9
                if rng.random() < 0.2:  # a new row, stamped when it commits as a writer does
                    cursor.execute(
                        f"INSERT INTO {LIVE} (id, order_no, merchant_id, amount, currency, "
                        "status, created_at, updated_at) "
                        "VALUES (%s, %s, 1, 1.5, 'EUR', 1, NOW(6), NOW(6))",
                        (next_id, f"LIVE-{next_id}"),
                    )
                    next_id += 1
                    written["inserts"] += 1
                conn.commit()
                stop.wait(0.1)
        conn.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        outcomes = [invoke_sync(cli_env, LIVE)[:2] for _ in range(2)]
    finally:
        stop.set()
        thread.join()
    assert written["updates"] > 0
    newer = 0
    for code, table in outcomes:
        verification = table["verification"]
        assert code == 0 and table["match"], verification
        assert verification["status"] == "verified", verification
        assert verification["missing_rows"] == 0 and verification["duplicated_rows"] == 0
        assert verification["differing_rows"] == 0
        newer += verification["newer_rows"]
    assert newer > 0, outcomes  # rows updated after the bound, counted, not a mismatch
    # The writer stopped: one more run leaves the warehouse equal to MySQL.
    code, last, _ = invoke_sync(cli_env, LIVE)
    assert code == 0 and last["verification"]["newer_rows"] == 0, last
    comparison = compare_table(engine, warehouse_dsn, PIPELINE, LIVE, SCHEMA)
    assert comparison.equal and comparison.target_rows == 5_000 + written["inserts"], comparison
    assert last["verification"]["verified_rows"] == comparison.source_rows


@pytest.mark.parametrize("qualified", [KEEP, REMOVE, SOFT], ids=POLICIES.values())
def test_hard_deletes_by_policy(
    engine: LocalEngine, warehouse_dsn: str, cli_env: dict[str, str], qualified: str
) -> None:
    fresh(engine, warehouse_dsn, qualified, 1_000)
    assert synced(engine, qualified)["verified_rows"] == 1_000
    conn = connect()
    with conn.cursor() as cursor:
        cursor.execute(f"DELETE FROM {qualified} WHERE id % 50 = 0")
    conn.commit()
    conn.close()
    deleted = [(i,) for i in range(50, 1_001, 50)]
    code, table, _ = invoke_sync(cli_env, qualified)
    verification = table["verification"]
    assert code == 0 and verification["status"] == "verified", verification
    assert verification["deleted_in_source"] == 20 and verification["verified_rows"] == 980
    policy = POLICIES[qualified]
    assert verification["deletes"] == policy
    comparison = compare_table(engine, warehouse_dsn, PIPELINE, qualified, SCHEMA)
    if policy == "keep":
        assert verification["deletes_applied"] == 0
        assert len(warehouse(warehouse_dsn, qualified)) == 1_000  # the rows stay
        assert comparison.extra == 20 and comparison.missing == comparison.differing == 0
    elif policy == "remove":
        assert verification["deletes_applied"] == 20
        assert comparison.equal and comparison.target_rows == comparison.source_rows == 980
    else:
        assert verification["deletes_applied"] == 20
        marked = warehouse(warehouse_dsn, qualified, "id, _myshift_deleted_at IS NOT NULL")
        assert [(i,) for i, is_marked in marked if is_marked] == deleted
        assert len(marked) == 1_000
    # The next run: no endless mismatch; a removed or marked row is not found again.
    after = synced(engine, qualified)
    assert after["status"] == "verified" and after["verified_rows"] == 980, after
    assert after["deleted_in_source"] == (20 if policy == "keep" else 0)
    assert after["deletes_applied"] == 0
    # A row changed after being marked loads as a new version, no longer marked.
    if policy == "soft":
        conn = connect()
        sample.insert_rows(conn, DATABASE, qualified.split(".")[1], 50, 1)
        with conn.cursor() as cursor:  # back, stamped now
            cursor.execute(f"UPDATE {qualified} SET updated_at = NOW(6) WHERE id = 50")
        conn.commit()
        conn.close()
        back = synced(engine, qualified)
        assert back["verified_rows"] == 981 and back["deleted_in_source"] == 0, back
        marked = warehouse(warehouse_dsn, qualified, "id, _myshift_deleted_at IS NOT NULL")
        assert (50, False) in marked and (50, True) not in marked


def test_a_real_mismatch_fails_the_cli_and_emits_the_metric(
    engine: LocalEngine,
    warehouse_dsn: str,
    cli_env: dict[str, str],
) -> None:
    fresh(engine, warehouse_dsn, BROKEN, 1_000)
    assert synced(engine, BROKEN)["status"] == "verified"
    name = BROKEN.split(".")[1]
    with connect_as_pipeline_user(engine, warehouse_dsn, PIPELINE) as pg:
        pg.execute(f"DELETE FROM {SCHEMA}.{name} WHERE id = 17")
        pg.execute(f"INSERT INTO {SCHEMA}.{name} SELECT * FROM {SCHEMA}.{name} WHERE id = 401")
        pg.execute(
            f"UPDATE {SCHEMA}.{name} SET updated_at = updated_at - INTERVAL '1 day' WHERE id = 733"
        )
    code, table, printed = invoke_sync(cli_env, BROKEN)
    verification = table["verification"]
    assert code == 1 and not table["match"], verification
    assert verification["status"] == "mismatch"
    assert verification["missing_rows"] == 1
    assert verification["duplicated_rows"] == 1
    assert verification["differing_rows"] == 1
    assert verification["verified_rows"] == 998  # 401 matches (and is duplicated)
    metrics = [
        json.loads(line)
        for line in printed.splitlines()
        if line.startswith('{"_aws"') and '"VerificationMismatch"' in line
    ]
    mine = [m for m in metrics if m.get("table") == BROKEN]
    assert mine and mine[-1]["VerificationMismatch"] == [1.0] and mine[-1]["MissingRows"] == [1.0]
    assert mine[-1]["pipeline"] == PIPELINE
    overall = [m for m in metrics if "table" not in m]
    assert overall and overall[-1]["VerificationMismatch"] == [1.0]
    record = state.list_runs(engine.client_table(), PIPELINE, BROKEN, limit=1)[0]
    assert record["verification"]["status"] == "mismatch"
