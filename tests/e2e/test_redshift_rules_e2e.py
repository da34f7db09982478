"""The product survives what Redshift refuses or does differently (the stand-in behaves
like Redshift on each point). Every check compares rows with MySQL, value by value.

1. A VARCHAR key column that widens: keys are not declared, so it can be widened; a
   table created with a declared PRIMARY KEY (an earlier version) loses the constraint.
2. Keys are informational: a duplicate key in the warehouse is stored, and counted.
3. Loads of many tables at once do not abort each other (each table its own ledger).
5. More new columns than one Data API batch holds are added before the load.
6. A target schema written with capital letters is the folded schema.
8. A load that committed while its run lost track of it is not loaded again (append).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pymysql
import pytest
from myshift import state
from myshift.local.engine import Fault, LocalEngine

from tests.conftest import MYSQL
from tests.e2e.conftest import client_as, compare_table, pipeline_yaml, run

DATABASE = "myshift_e2e_rules"
PIPELINE = "e2e_rules"
SCHEMA = "rules_dw"
KEYED = f"{DATABASE}.keyed"
WIDE = f"{DATABASE}.wide"
APPENDED = f"{DATABASE}.appended"
PARALLEL = [f"{DATABASE}.parallel_{n}" for n in range(8)]
CAPS_PIPELINE = "e2e_rules_caps"


def mysql_execute(*statements: str) -> None:
    conn = pymysql.connect(**MYSQL, password="", autocommit=True)
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        conn.close()


def create_orders(table: str, rows: int, key: str = "id INT") -> None:
    name = table.split(".")[1]
    mysql_execute(
        f"DROP TABLE IF EXISTS {table}",
        f"CREATE TABLE {table} ({key} NOT NULL, updated_at DATETIME(6) NOT NULL, "
        "note VARCHAR(20), PRIMARY KEY (id), INDEX idx_updated_at_id (updated_at, id))",
        *(
            f"INSERT INTO {table} VALUES "
            + ", ".join(
                f"({_key(key, i)}, '2025-01-01 00:00:00' + INTERVAL {i} SECOND, 'n{i}')"
                for i in range(start, min(rows, start + 500))
            )
            for start in range(0, rows, 500)
        ),
    )
    assert name


def _key(key: str, i: int) -> str:
    return f"'k{i:05d}'" if "CHAR" in key.upper() else str(i + 1)


@pytest.fixture(scope="module")
def pipeline(pipelines_dir: Path, warehouse_dsn: str) -> Iterator[str]:
    mysql_execute(f"DROP DATABASE IF EXISTS {DATABASE}", f"CREATE DATABASE {DATABASE}")
    tables = [KEYED, WIDE, *PARALLEL]
    lines = pipeline_yaml(
        PIPELINE,
        tables,
        schema=SCHEMA,
        strategy="inter-table",
        chunk_rows=100,
        extra=f"  - {{name: {APPENDED}, cursor: updated_at, primary_key: [id], "
        "write_mode: append}\nmax_parallel_tables: 8\n",
    )
    (pipelines_dir / f"{PIPELINE}.yml").write_text(lines)
    yield PIPELINE
    mysql_execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    with psycopg.connect(warehouse_dsn, autocommit=True) as pg:
        pg.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def warehouse_sql(engine: LocalEngine, sql: str) -> None:
    """Run one statement in the warehouse as the load function's identity, to its end."""
    redshift_data = client_as(engine, "load", "redshift-data")
    statement = redshift_data.execute_statement(WorkgroupName="local", Database="dev", Sql=sql)
    deadline = time.monotonic() + 60
    while (description := redshift_data.describe_statement(Id=statement["Id"]))["Status"] not in (
        "FINISHED",
        "FAILED",
        "ABORTED",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert description["Status"] == "FINISHED", description.get("Error")


def sync(engine: LocalEngine, *tables: str, pipeline: str = PIPELINE) -> dict:
    description = run(engine, {"pipeline": pipeline, "tables": list(tables)})
    assert description["status"] == "SUCCEEDED", description.get("cause")
    return description


def equal(engine: LocalEngine, dsn: str, table: str, rows: int, pipeline: str = PIPELINE) -> None:
    schema = SCHEMA if pipeline == PIPELINE else "caps_dw"
    comparison = compare_table(engine, dsn, pipeline, table, schema)
    assert comparison.equal and comparison.target_rows == rows, (table, comparison)


def test_a_varchar_key_column_that_widens_is_widened(
    engine: LocalEngine, warehouse_dsn: str, pipeline: str
) -> None:
    create_orders(KEYED, 300, key="id VARCHAR(8)")
    sync(engine, KEYED)
    equal(engine, warehouse_dsn, KEYED, 300)
    # The table as an earlier version created it: the key declared as PRIMARY KEY.
    warehouse_sql(engine, f"ALTER TABLE {SCHEMA}.keyed ADD PRIMARY KEY (id)")
    table = engine.client_table()
    schema = state.get_schema(table, PIPELINE, KEYED)
    schema.pop("key_declared", None)  # what an earlier version stored
    state.put_schema(table, PIPELINE, KEYED, schema)
    mysql_execute(
        f"ALTER TABLE {KEYED} MODIFY id VARCHAR(40) NOT NULL",
        f"INSERT INTO {KEYED} VALUES ('{'x' * 40}', '2025-02-01 00:00:00', 'long key')",
    )
    sync(engine, KEYED)
    equal(engine, warehouse_dsn, KEYED, 301)
    assert state.get_schema(table, PIPELINE, KEYED)["key_declared"] is False


def test_a_duplicate_key_in_the_warehouse_is_stored_and_counted(
    engine: LocalEngine, warehouse_dsn: str, pipeline: str
) -> None:
    from myshift.config import load_pipeline
    from myshift.verify import target_counts

    create_orders(WIDE, 50)
    sync(engine, WIDE)
    with psycopg.connect(warehouse_dsn, autocommit=True) as pg:
        # As Redshift does with an informational key: stored, no error.
        pg.execute(f"INSERT INTO {SCHEMA}.wide SELECT * FROM {SCHEMA}.wide WHERE id = 7")
    pipeline_config = load_pipeline(engine.pipelines_dir, PIPELINE)
    rows, duplicates = target_counts(
        client_as(engine, "load", "redshift-data"),
        pipeline_config,
        pipeline_config.table(WIDE),
        ["id"],
    )
    assert (rows, duplicates) == (51, 1)
    with psycopg.connect(warehouse_dsn, autocommit=True) as pg:
        pg.execute(f"DELETE FROM {SCHEMA}.wide WHERE id = 7")
        pg.execute(f"INSERT INTO {SCHEMA}.wide VALUES (7, '2025-01-01 00:00:06', 'n6')")


def test_eight_tables_load_at_once_and_none_aborts_another(
    engine: LocalEngine, warehouse_dsn: str, pipeline: str
) -> None:
    for n, table in enumerate(PARALLEL):
        create_orders(table, 200 + n)
    sync(engine, *PARALLEL)
    for n, table in enumerate(PARALLEL):
        equal(engine, warehouse_dsn, table, 200 + n)


def test_more_new_columns_than_a_batch_holds(
    engine: LocalEngine, warehouse_dsn: str, pipeline: str
) -> None:
    create_orders(WIDE, 50)
    sync(engine, WIDE)
    added = ", ".join(f"ADD COLUMN extra_{n:02d} INT NOT NULL DEFAULT {n}" for n in range(45))
    mysql_execute(f"ALTER TABLE {WIDE} {added}")
    sync(engine, WIDE)  # 45 ADD COLUMNs: two batches before the load
    equal(engine, warehouse_dsn, WIDE, 50)


def test_a_capitalised_schema_is_folded_and_verified(
    engine: LocalEngine, warehouse_dsn: str, pipeline: str, pipelines_dir: Path
) -> None:
    from myshift.config import load_pipeline
    from myshift.verify import table_exists

    (pipelines_dir / f"{CAPS_PIPELINE}.yml").write_text(
        pipeline_yaml(CAPS_PIPELINE, [WIDE], schema="Caps_DW")
    )
    create_orders(WIDE, 20)
    try:
        sync(engine, WIDE, pipeline=CAPS_PIPELINE)
        equal(engine, warehouse_dsn, WIDE, 20, pipeline=CAPS_PIPELINE)
        caps = load_pipeline(pipelines_dir, CAPS_PIPELINE)
        assert caps.target.schema_name == "caps_dw"
        assert table_exists(client_as(engine, "load", "redshift-data"), caps, caps.table(WIDE))
    finally:
        (pipelines_dir / f"{CAPS_PIPELINE}.yml").unlink()
        with psycopg.connect(warehouse_dsn, autocommit=True) as pg:
            pg.execute("DROP SCHEMA IF EXISTS caps_dw CASCADE")


def test_a_load_that_committed_unseen_is_not_loaded_again(
    engine: LocalEngine, warehouse_dsn: str, pipeline: str
) -> None:
    create_orders(APPENDED, 120)
    # The load commits in Redshift; the run loses track of it before its commit.
    lost = engine.inject_fault(
        Fault(
            "myshift-state",
            RuntimeError("injected: the run lost track of its load"),
            when=lambda event: event.get("action") == "commit_load",
        )
    )
    failed = run(engine, {"pipeline": PIPELINE, "tables": [APPENDED]})
    engine.clear_faults()
    assert failed["status"] == "FAILED" and lost.fired == 1
    mysql_execute(
        f"INSERT INTO {APPENDED} VALUES (1000, '2025-03-01 00:00:00', 'new'), "
        "(1001, '2025-03-01 00:00:01', 'new')"
    )
    again = sync(engine, APPENDED)
    # Append mode: a second load of the first run's files would duplicate 120 rows.
    equal(engine, warehouse_dsn, APPENDED, 122)
    first_record = state.get_run(
        engine.client_table(), PIPELINE, APPENDED, failed["executionArn"].rsplit(":", 1)[1]
    )
    assert first_record["load_committed"] is True and first_record["rows_loaded"] == 120
    assert json.dumps(again["output_json"]["results"][0]["rows_loaded"]) == "2"
