"""Step Functions' limits hold for a pipeline of 1,000 tables of 1,000 chunks each.

Measured on the local engine, which counts every history (the run's, and each child
execution's of a Distributed Map) and its largest input/output as AWS bounds them
(`myshift.local.limits`): the real workflow at small sizes, then projected.

- The run's own history does not grow with tables (each table is a child execution).
- A table's history grows with its chunks only up to `inline_map_max_chunks` (200):
  beyond, the chunks run as child executions of their own.
- The run's largest payload grows with the table names it lists (names only), projected
  with the longest names MySQL allows; a table's holds at most an inline chunk list,
  which the plan caps at 64 KiB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest
from myshift.local import limits, sample
from myshift.local.engine import LocalEngine
from myshift.steps import INLINE_CHUNKS_MAX_BYTES

from tests.conftest import MYSQL
from tests.e2e.conftest import DATABASE, compare_table, pipeline_yaml, run
from tests.support.mariadb import execute_alone

PIPELINE = "e2e_limits"
SCHEMA = "limits_dw"
ROWS = 12
INLINE_MAX = 4  # chunks per table above which the chunks go distributed (200 deployed)
TABLES = [f"{DATABASE}.limits_{i:02d}" for i in range(8)]
TARGET_TABLES = 1_000
TARGET_CHUNKS = 1_000
DEPLOYED_INLINE_MAX = 200
LONGEST_TABLE_NAME = 64 + 1 + 64  # MySQL identifiers: database.table, 64 characters each


@dataclass(frozen=True)
class Measured:
    """One run: events and the largest input/output of each kind of history."""

    tables: int
    chunks: int
    run_events: int
    run_payload: int
    table_events: int
    table_payload: int
    chunk_children: int
    chunk_events: int


@pytest.fixture(scope="module")
def limits_pipeline(pipelines_dir: Path) -> None:
    (pipelines_dir / f"{PIPELINE}.yml").write_text(
        pipeline_yaml(PIPELINE, TABLES, schema=SCHEMA, strategy="inter-table")
    )
    conn = pymysql.connect(**MYSQL, password="", autocommit=True)
    for name in TABLES:
        sample.seed(conn, DATABASE, name.split(".")[1], ROWS)
    conn.close()


def measure(engine: LocalEngine, tables: list[str], limit: int) -> Measured:
    """Sync `tables` (their first backfill) in chunks of `limit` rows; count histories."""
    limits.reset_stats()
    description = run(engine, {"pipeline": PIPELINE, "tables": tables, "limit": limit})
    assert description["status"] == "SUCCEEDED", description.get("cause")
    results = description["output_json"]["results"]
    assert [r["rows_loaded"] for r in results] == [ROWS] * len(tables)
    histories = limits.stats()
    (run_history,) = [h for h in histories if h.first_state == "ValidateInput"]
    table_histories = [h for h in histories if h.first_state == "SyncTable"]
    chunk_histories = [h for h in histories if h.first_state == "ExtractChunkDistributed"]
    assert len(table_histories) == len(tables)
    return Measured(
        tables=len(tables),
        chunks=-(-ROWS // limit),
        run_events=run_history.events,
        run_payload=run_history.largest_payload,
        table_events=max(h.events for h in table_histories),
        table_payload=max(h.largest_payload for h in table_histories),
        chunk_children=len(chunk_histories),
        chunk_events=max((h.events for h in chunk_histories), default=0),
    )


@contextmanager
def inline_chunks_at_most(engine: LocalEngine, chunks: int) -> Iterator[None]:
    """The plan function configured to go distributed above `chunks` chunks."""
    lambda_client = engine.client("lambda")
    name = "myshift-plan"
    before = lambda_client.get_function_configuration(FunctionName=name)["Environment"]
    variables = {**before["Variables"], "MYSHIFT_INLINE_MAP_MAX_CHUNKS": str(chunks)}
    lambda_client.update_function_configuration(
        FunctionName=name, Environment={"Variables": variables}
    )
    try:
        yield
    finally:
        lambda_client.update_function_configuration(FunctionName=name, Environment=before)


def test_a_pipeline_of_1000_tables_of_1000_chunks_stays_within_every_limit(
    engine: LocalEngine, limits_pipeline: None
) -> None:
    with inline_chunks_at_most(engine, INLINE_MAX):
        two_inline = measure(engine, TABLES[0:2], limit=ROWS // 2)  # 2 tables x 2 chunks
        four_inline = measure(engine, TABLES[2:4], limit=ROWS // 4)  # 2 tables x 4 chunks
        distributed = measure(engine, TABLES[4:8], limit=1)  # 4 tables x 12 chunks

    # The run's history: the same for 2 and 4 tables (one poll of the warehouse more or
    # less: 3 events), because every table is a child execution with its own history.
    assert abs(distributed.run_events - two_inline.run_events) <= 3, (two_inline, distributed)
    run_events_at_target = max(two_inline.run_events, distributed.run_events) + 3
    # Its largest payload grows with the table names it lists, and nothing else.
    per_name = max(1, (distributed.run_payload - two_inline.run_payload) // 2)
    run_payload_at_target = two_inline.run_payload + (TARGET_TABLES - 2) * max(
        per_name, LONGEST_TABLE_NAME + 3
    )

    # A table's history: inline chunks add events per chunk up to the inline maximum...
    per_inline_chunk = (four_inline.table_events - two_inline.table_events) / 2
    assert per_inline_chunk > 0
    inline_at_max = four_inline.table_events + per_inline_chunk * (DEPLOYED_INLINE_MAX - 4)
    # ...and above it the chunks are child executions: 12 chunks cost a table no more
    # than 2 (a poll of the load more or less).
    assert distributed.chunk_children == 4 * ROWS
    assert distributed.table_events <= two_inline.table_events + 3, (two_inline, distributed)
    table_events_at_target = max(inline_at_max, distributed.table_events + 3)
    # A table's payload: what was measured, plus an inline chunk list at its cap (the
    # plan sends a larger one to S3), whatever else the largest payload held.
    assert distributed.table_payload < two_inline.table_payload + 1024  # no chunk list
    table_payload_at_target = INLINE_CHUNKS_MAX_BYTES + max(
        two_inline.table_payload, four_inline.table_payload, distributed.table_payload
    )

    report = {
        "measured": [m.__dict__ for m in (two_inline, four_inline, distributed)],
        "projected_1000_tables_x_1000_chunks": {
            "run_history_events": run_events_at_target,
            "run_largest_payload_bytes": run_payload_at_target,
            "run_largest_payload_bytes_names_as_measured": two_inline.run_payload
            + (TARGET_TABLES - 2) * per_name,
            "table_history_events_max": table_events_at_target,
            "table_largest_payload_bytes": table_payload_at_target,
            "chunk_history_events": distributed.chunk_events,
            "histories": 1 + TARGET_TABLES + TARGET_TABLES * TARGET_CHUNKS,
        },
    }
    print("\n" + json.dumps(report, indent=2))
    for events in (run_events_at_target, table_events_at_target, distributed.chunk_events):
        assert events < limits.MAX_HISTORY_EVENTS / 4
    for payload in (run_payload_at_target, table_payload_at_target):
        assert payload < limits.MAX_PAYLOAD_BYTES * 0.75


# --- 100 tables of 150 columns, through the real workflow ---------------------------------

WIDE_DATABASE = "myshift_wide"
WIDE_PIPELINE = "e2e_wide"
WIDE_SCHEMA = "wide_dw"
WIDE_TABLES = 100
WIDE_COLUMNS = 150  # id and updated_at included
WIDE_ROWS = 20
# (MySQL type, a value of row i, column j): every type family the extractor maps.
WIDE_TYPES: list[tuple[str, Any]] = [
    ("INT", lambda i, j: i * 1000 + j),
    ("BIGINT", lambda i, j: (i + 1) * 10**15 + j),
    ("VARCHAR(32)", lambda i, j: f"r{i}c{j}-é"),
    ("DECIMAL(12,3)", lambda i, j: f"{i}.{j:03d}"),
    ("DOUBLE", lambda i, j: i / 7 + j),
    ("DATETIME(6)", lambda i, j: f"2025-01-{1 + i % 28:02d} 10:{j % 60:02d}:00.{i:06d}"),
    ("DATE", lambda i, j: f"2024-{1 + j % 12:02d}-{1 + i % 28:02d}"),
    ("TEXT", lambda i, j: f"text {i} {j} " * 3),
    ("TINYINT", lambda i, j: (i + j) % 100),
    ("SMALLINT UNSIGNED", lambda i, j: 60000 + i),
]


def _wide_tables() -> list[str]:
    return [f"{WIDE_DATABASE}.wide_{n:03d}" for n in range(WIDE_TABLES)]


@pytest.fixture(scope="module")
def wide_pipeline(pipelines_dir: Path, warehouse_dsn: str) -> Iterator[list[str]]:
    names = _wide_tables()
    (pipelines_dir / f"{WIDE_PIPELINE}.yml").write_text(
        pipeline_yaml(
            WIDE_PIPELINE,
            names,
            schema=WIDE_SCHEMA,
            strategy="inter-table",
            chunk_rows=WIDE_ROWS,
            extra="max_parallel_tables: 8\n",
        )
    )
    others = [f"c{j:03d} {WIDE_TYPES[j % len(WIDE_TYPES)][0]} NULL" for j in range(2, WIDE_COLUMNS)]
    conn = pymysql.connect(**MYSQL, password="", autocommit=True)
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {WIDE_DATABASE}")
        cursor.execute(f"CREATE DATABASE {WIDE_DATABASE}")
        for name in names:
            table = name.split(".")[1]
            cursor.execute(
                f"CREATE TABLE {WIDE_DATABASE}.{table} (id INT PRIMARY KEY, "
                f"updated_at DATETIME(6) NOT NULL, {', '.join(others)}, "
                "INDEX idx_updated_at_id (updated_at, id))"
            )
            rows = []
            for i in range(WIDE_ROWS):
                values = [
                    # every 11th value NULL: each column holds NULLs and values
                    None if (i + j) % 11 == 0 else WIDE_TYPES[j % len(WIDE_TYPES)][1](i, j)
                    for j in range(2, WIDE_COLUMNS)
                ]
                rows.append([i + 1, f"2025-06-01 00:00:{i:02d}", *values])
            marks = ", ".join(["%s"] * WIDE_COLUMNS)
            cursor.executemany(f"INSERT INTO {WIDE_DATABASE}.{table} VALUES ({marks})", rows)
    conn.close()
    yield names
    execute_alone(f"DROP DATABASE IF EXISTS {WIDE_DATABASE}")


@pytest.mark.slow
def test_a_hundred_tables_of_150_columns_sync_then_run_quiet(
    engine: LocalEngine, warehouse_dsn: str, wide_pipeline: list[str]
) -> None:
    first = run(engine, {"pipeline": WIDE_PIPELINE}, timeout=1_800)
    assert first["status"] == "SUCCEEDED", first.get("cause")
    results = first["output_json"]["results"]
    assert len(results) == WIDE_TABLES
    assert {r["rows_loaded"] for r in results} == {WIDE_ROWS}
    for name in wide_pipeline:  # every value of every row, MySQL against the warehouse
        comparison = compare_table(engine, warehouse_dsn, WIDE_PIPELINE, name, WIDE_SCHEMA)
        assert comparison.equal and comparison.target_rows == WIDE_ROWS, (name, comparison)
    quiet = run(engine, {"pipeline": WIDE_PIPELINE}, timeout=1_800)
    assert quiet["status"] == "SUCCEEDED", quiet.get("cause")
    assert {r["rows_extracted"] for r in quiet["output_json"]["results"]} == {0}
    for name in wide_pipeline[:: WIDE_TABLES // 10]:
        comparison = compare_table(engine, warehouse_dsn, WIDE_PIPELINE, name, WIDE_SCHEMA)
        assert comparison.equal and comparison.target_rows == WIDE_ROWS, (name, comparison)
