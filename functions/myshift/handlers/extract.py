"""Lambda: extract one chunk to a Parquet file on S3."""

import time
from typing import Any

from myshift import catalog, doctor, extract, plan, runtime, state, steps
from myshift.handlers.observability import instrumented, logger, record_chunk_metrics, tag
from myshift.payloads import ChunkTask, parse
from myshift.settings import current_settings


@instrumented
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = current_settings()
    pipeline = runtime.pipeline(event["pipeline"])
    if event.get("action") == "doctor":
        tag(run_id=event["run_id"], action="doctor")
        return doctor.extract_checks(runtime.doctor_context(event))
    task = parse(ChunkTask, event, "Extract event")
    table = pipeline.table(task.table)
    chunk = task.chunk
    tag(run_id=task.run_id, table=table.name, chunk=chunk.index)
    conn = runtime.mysql(pipeline.source)
    started = time.monotonic()
    columns, _ = catalog.table_columns(
        conn, runtime.state_table(), pipeline.name, table, planned_count=task.column_count
    )
    result = extract.extract_chunk(
        conn,
        runtime.s3(),
        bucket=settings.bucket,
        s3_key=extract.chunk_object_key(
            settings.data_prefix, pipeline.name, table.name, task.run_id, chunk.index
        ),
        index=chunk.index,
        database=table.database,
        table=table.table,
        columns=columns,
        key_cols=plan.key_columns(columns, table.cursor, table.primary_key),
        lower=chunk.lower,
        upper=chunk.upper,
        reader=table.reader,
        include_null_cursor=table.load_null_cursor,
        order_index=task.order_index,
        # A reconciliation's fix names the rows to read again by their primary key.
        named=(table.primary_key, chunk.keys) if chunk.keys is not None else None,
    )
    logger.info("extracted", extra={"rows": result.rows, "bytes": result.bytes})
    record_chunk_metrics(
        pipeline.name,
        table.name,
        rows=result.rows,
        bytes_written=result.bytes,
        seconds=time.monotonic() - started,
    )
    # The file's column count: files of an older layout load with FILLRECORD.
    written = {**result.as_dict(), "columns": len(columns)}
    return steps.record_chunk(runtime.state_table(), task, written, state.utc_now()).dump()
