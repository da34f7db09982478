"""Lambda: plan one table's run (watermark, frozen bound, chunks)."""

from typing import Any

from myshift import catalog, plan, runtime, state
from myshift.handlers.observability import logger, tag


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    pipeline = runtime.pipeline(event["pipeline"])
    table = pipeline.table(event["table"])
    tag(run_id=event["run_id"], table=table.name)
    conn = runtime.mysql(pipeline.source)
    columns = catalog.resolve_columns(conn, runtime.state_table(), pipeline.name, table)
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
    )
    logger.info(
        "planned", extra={"chunks": len(table_plan.chunks), "rows": table_plan.planned_rows}
    )
    return {**event, **table_plan.as_dict()}
