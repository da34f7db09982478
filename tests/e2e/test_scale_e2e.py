"""A plan of 10,000 chunks stays inside Step Functions' limits.

The plan is real (10,000 one-row chunks cut by MariaDB); the chunk extractions are
stubbed (they record a file item, they read no rows), because what is proven here is
the workflow's bookkeeping: no state payload near 256 KB and no execution history
near 25,000 events. Large plans go to S3 and a Distributed Map reads them.
"""

from __future__ import annotations

import json

import pymysql
import pytest
from myshift import state, steps
from myshift.local import sample
from myshift.local.engine import Fault, LocalEngine
from myshift.payloads import ChunkTask

from tests.conftest import MYSQL
from tests.e2e.conftest import DATABASE, pipeline_yaml, run

PIPELINE = "e2e_scale"
TABLE = f"{DATABASE}.scale_orders"
CHUNKS = 10_000
PAYLOAD_LIMIT = 256 * 1024
HISTORY_LIMIT = 25_000


@pytest.mark.slow
def test_ten_thousand_chunks_stay_within_payload_and_history_limits(
    engine: LocalEngine, pipelines_dir
) -> None:
    (pipelines_dir / f"{PIPELINE}.yml").write_text(
        pipeline_yaml(
            PIPELINE, [TABLE], schema="scale_dw", extra="max_concurrent_chunks: 40\n"
        ).replace("max_concurrent_chunks: 2\n", "")
    )
    conn = pymysql.connect(**MYSQL, password="", autocommit=True)
    sample.seed(conn, DATABASE, "scale_orders", CHUNKS)
    conn.close()
    table_state = engine.client_table()

    def stub_extract(event: dict) -> dict:
        index = event["chunk"]["index"]
        result = {
            "index": index,
            "s3_key": f"data/{PIPELINE}/stub/chunk-{index:05d}.parquet",
            "rows": 1,
            "bytes": 100,
            "last_key": event["chunk"]["upper"],
            "report": {},
        }
        task = ChunkTask.model_validate(event)
        return steps.record_chunk(table_state, task, result, state.utc_now()).dump()

    stub = engine.inject_fault(Fault("myshift-extract", None, times=CHUNKS, result=stub_extract))
    try:
        description = run(
            engine, {"pipeline": PIPELINE, "limit": 1, "mode": "backup_only"}, timeout=1_500
        )
    finally:
        engine.clear_faults()
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert stub.fired == CHUNKS
    result = description["output_json"]["results"][0]
    assert result["rows_extracted"] == CHUNKS and result["files_extracted"] == CHUNKS
    assert result["distributed"] is True and "chunks" not in result

    sfn = engine.client("stepfunctions")
    events: list[dict] = []
    kwargs = {"executionArn": description["executionArn"], "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    largest = max(len(json.dumps(event, default=str)) for event in events)
    print(f"\n10,000 chunks: {len(events)} history events, largest event {largest:,} bytes")
    assert len(events) < HISTORY_LIMIT // 10
    assert largest < PAYLOAD_LIMIT // 8
