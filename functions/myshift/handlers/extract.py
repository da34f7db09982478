"""Lambda: extract one chunk to a Parquet file on S3."""

from typing import Any

from myshift import catalog, extract, plan, runtime, state
from myshift.handlers.observability import logger, tag
from myshift.settings import current_settings


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = current_settings()
    pipeline = runtime.pipeline(event["pipeline"])
    table = pipeline.table(event["table"])
    chunk = event["chunk"]
    tag(run_id=event["run_id"], table=table.name, chunk=chunk["index"])
    conn = runtime.mysql(pipeline.source)
    stored = state.get_schema(runtime.state_table(), pipeline.name, table.name)
    columns = catalog.source_columns(conn, table, stored["name_map"] if stored else None)
    result = extract.extract_chunk(
        conn,
        runtime.s3(),
        bucket=settings.bucket,
        s3_key=extract.chunk_object_key(
            settings.data_prefix, pipeline.name, table.name, event["run_id"], chunk["index"]
        ),
        index=chunk["index"],
        database=table.database,
        table=table.table,
        columns=columns,
        key_cols=plan.key_columns(columns, table.cursor, table.primary_key),
        lower=chunk["lower"],
        upper=chunk["upper"],
    )
    logger.info("extracted", extra={"rows": result.rows, "bytes": result.bytes})
    return result.as_dict()
