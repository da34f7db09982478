"""Lambda: plan one table's run (watermark, frozen bound, chunks)."""

from typing import Any

from myshift import catalog, plan, runtime, state, steps
from myshift.handlers.observability import instrumented, logger, tag
from myshift.settings import current_settings


@instrumented
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    pipeline = runtime.pipeline(event["pipeline"])
    table = pipeline.table(event["table"])
    tag(run_id=event["run_id"], table=table.name)
    conn = runtime.mysql(pipeline.source)
    # Reads only: a missing table, a change Redshift cannot follow or a key that is not
    # unique fails here, before anything is written.
    columns, schema = catalog.table_columns(conn, runtime.state_table(), pipeline.name, table)
    indexes = plan.table_indexes(conn, table.database, table.table)
    plan.check_key(indexes, table.name, table.primary_key, table.key_source)
    watermark = state.get_watermark(runtime.state_table(), pipeline.name, table.name)
    table_plan = plan.plan_table(
        conn,
        database=table.database,
        table=table.table,
        columns=columns,
        cursor=table.cursor,
        primary_key=table.primary_key,
        lower=watermark["last_key"],
        limit=event["limit"],
        max_chunks=event.get("max_chunks"),
        safety_lag_seconds=pipeline.safety_lag_for(table),
        load_null_cursor=table.load_null_cursor,
    )
    logger.info(
        "planned", extra={"chunks": len(table_plan.chunks), "rows": table_plan.planned_rows}
    )
    settings = current_settings()
    return steps.publish_plan(
        runtime.s3(),
        {**event, **table_plan.as_dict(), "schema": schema},
        bucket=settings.bucket,
        data_prefix=settings.data_prefix,
        inline_max_chunks=settings.inline_map_max_chunks,
    )
