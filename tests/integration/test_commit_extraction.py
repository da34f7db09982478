"""Committing a run's extraction against moto's DynamoDB: all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from myshift import state, steps
from myshift.errors import CountMismatchError, SchemaError, StateConflictError
from myshift.payloads import Chunk, ChunkTask, TableRun

from tests.support.aws import create_state_table

PIPELINE, TABLE, RUN = "shop", "db.orders", "run-1"
LAYOUT = [{"source": n, "target": n} for n in ("id", "updated_at", "amount")]


@pytest.fixture()
def state_table() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        yield create_state_table(dynamodb, "state")


def record(state_table: Any, chunk: int, columns: int) -> None:
    task = ChunkTask(
        pipeline=PIPELINE,
        table=TABLE,
        run_id=RUN,
        chunk=Chunk(index=chunk),
        column_count=columns,
        order_index=None,
    )
    result = {
        "index": chunk,
        "s3_key": f"data/{RUN}/chunk-{chunk}.parquet",
        "rows": 10,
        "bytes": 100,
        "last_key": ["2025-01-01 00:00:00", chunk],
        "columns": columns,
    }
    steps.record_chunk(state_table, task, result, "2025-01-01T00:00:00+00:00")


def item(state_table: Any, chunks: int, run_id: str = RUN) -> TableRun:
    """The run's payload after its plan, which recorded the schema (never in the payload)."""
    schema = {"layout": LAYOUT, "name_map": {}, "primary_key": ["id"], "cursor": "x"}
    state.put_plan(state_table, PIPELINE, TABLE, RUN, {"schema": schema}, 1_735_689_600)
    return TableRun(
        pipeline=PIPELINE,
        table=TABLE,
        run_id=run_id,
        mode="full",
        limit=10,
        max_chunks=None,
        poll_seconds=1,
        max_concurrent_chunks=2,
        strategy="sequential",
        write_mode="merge",
        lock_lease_seconds=60,
        chunk_count=chunks,
        upper_key=["2025-01-01 00:00:00", chunks - 1],
        chunks=[],
    )


def test_files_of_the_plans_layout_commit(state_table: Any) -> None:
    for chunk in range(2):
        record(state_table, chunk, len(LAYOUT))
    summary = steps.commit_extraction(
        state_table, item(state_table, 2), "2025-01-01T00:00:01+00:00"
    )
    assert summary.rows_extracted == 20
    mark = state.get_watermark(state_table, PIPELINE, TABLE)
    assert mark["last_run_id"] == RUN and mark["mysql_status"] == "success"
    assert {f["status"] for f in state.list_files(state_table, PIPELINE, TABLE)} == {"extracted"}
    assert state.get_schema(state_table, PIPELINE, TABLE)["layout"] == LAYOUT
    # The payload stays small: the plan item holds the schema; the chunks are done with.
    assert "schema" not in summary.dump() and "chunks" not in summary.dump()


def test_a_run_without_its_plan_commits_nothing(state_table: Any) -> None:
    for chunk in range(2):
        record(state_table, chunk, len(LAYOUT))
    payload = item(state_table, 2).model_copy(update={"run_id": "run-never-planned"})
    with pytest.raises(StateConflictError, match="recorded no plan"):
        steps.commit_extraction(state_table, payload, "2025-01-01T00:00:01+00:00")


@pytest.mark.parametrize(
    ("columns", "error", "message"),
    [
        ([3, 4], SchemaError, r"columns changed while this run read it \(chunks \[1\]"),
        ([3], CountMismatchError, r"chunks \[1\] recorded no file"),
    ],
)
def test_a_run_with_a_missing_or_foreign_file_commits_nothing(
    state_table: Any, columns: list[int], error: type, message: str
) -> None:
    for chunk, count in enumerate(columns):
        record(state_table, chunk, count)
    before = state.get_watermark(state_table, PIPELINE, TABLE)
    with pytest.raises(error, match=message):
        steps.commit_extraction(state_table, item(state_table, 2), "2025-01-01T00:00:01+00:00")
    assert state.get_watermark(state_table, PIPELINE, TABLE) == before
    assert state.get_schema(state_table, PIPELINE, TABLE) is None
    assert {f["status"] for f in state.list_files(state_table, PIPELINE, TABLE)} == {"written"}
