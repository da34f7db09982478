"""Lambda: plan one table's run (watermark, frozen bound, chunks)."""

import time
from dataclasses import asdict
from typing import Any

from myshift import catalog, doctor, evolve, plan, reconcile, runtime, state, steps
from myshift.handlers.observability import instrumented, logger, record_verification, tag
from myshift.payloads import TableRun, parse
from myshift.settings import current_settings
from myshift.workflow import refuse_partial_refresh

# A reconciliation's source side (this function reaches MySQL).
RECONCILE_ACTIONS = {
    "reconcile_plan": reconcile.plan,
    "reconcile_source": reconcile.item_source,
    "reconcile_split": reconcile.split_ranges,
    "reconcile_rows": reconcile.list_rows,
    "reconcile_summarize": reconcile.summarize,
}


@instrumented
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("action") in ("verify_source", "verify_keys"):
        item = parse(TableRun, event.get("table"), f"Plan {event['action']} event table")
        return _verify(event["action"], item)
    if event.get("action") in RECONCILE_ACTIONS:
        item = event["table"]
        tag(run_id=item["run_id"], table=item["table"], action=event["action"])
        pipeline = runtime.pipeline(item["pipeline"])
        settings = current_settings()
        step = reconcile.Step(
            s3=runtime.s3(),
            bucket=settings.bucket,
            data_prefix=settings.data_prefix,
            pipeline=pipeline,
            item=item,
            state_table=runtime.state_table(),
            conn=runtime.mysql(pipeline.source),
        )
        return RECONCILE_ACTIONS[event["action"]](step)
    pipeline = runtime.pipeline(event["pipeline"])
    if event.get("action") == "doctor":
        tag(run_id=event["run_id"], action="doctor")
        return doctor.plan_checks(runtime.doctor_context(event))
    item = parse(TableRun, event, "Plan event")
    table = pipeline.table(item.table)
    tag(run_id=item.run_id, table=table.name)
    conn = runtime.mysql(pipeline.source)
    # Reads only: a missing table, a change Redshift cannot follow or a key that is not
    # unique fails here, before anything is written.
    evolution, schema = catalog.table_evolution(conn, runtime.state_table(), pipeline.name, table)
    indexes = plan.table_indexes(conn, table.database, table.table)
    plan.check_key(indexes, table.name, table.primary_key, table.key_source)
    # Validation refuses this too; a partial full refresh would delete the rest.
    refuse_partial_refresh([table], item.max_chunks, item.mode)
    watermark = state.get_watermark(runtime.state_table(), pipeline.name, table.name)
    from_start = evolve.reads_from_start(table.write_mode, evolution, table.backfill_added_columns)
    if from_start:
        logger.info("reading the whole table", extra={"added": evolution.added_names})
    # In the run's output: why a merge table's run reads every row.
    added: dict[str, Any] = {"added_columns": evolution.added_names} if evolution.added else {}
    sizing = plan.chunk_sizing(
        conn, table.database, table.table, item.limit, pipeline.max_concurrent_chunks
    )
    if sizing.size is not None:
        logger.info("sized the chunks from the table", extra=asdict(sizing))
    table_plan = plan.plan_table(
        conn,
        database=table.database,
        table=table.table,
        columns=evolution.columns,
        cursor=table.cursor,
        primary_key=table.primary_key,
        lower=None if from_start else watermark["last_key"],
        limit=sizing.chunk_rows,
        max_chunks=item.max_chunks,
        safety_lag_seconds=pipeline.safety_lag_for(table),
        load_null_cursor=table.load_null_cursor,
        full_refresh=table.write_mode == "replace",
        indexes=indexes,
        # A second warm connection: the chunk boundaries are walked from both ends.
        second_connection=lambda: runtime.mysql(pipeline.source, slot=1),
    )
    logger.info(
        "planned", extra={"chunks": len(table_plan.chunks), "rows": table_plan.planned_rows}
    )
    settings = current_settings()
    planned = item.after(
        "plan",
        **table_plan.as_dict(),
        **added,
        chunk_rows=sizing.chunk_rows,
        chunk_rows_from=sizing.chunk_rows_from,
        read_from_start=from_start,
        # Every chunk writes this many columns, whatever MySQL gains meanwhile.
        column_count=len(schema["layout"]),
    )
    return steps.publish_plan(
        runtime.s3(),
        runtime.state_table(),
        planned,
        schema=schema,
        bucket=settings.bucket,
        data_prefix=settings.data_prefix,
        inline_max_chunks=settings.inline_map_max_chunks,
        now=state.utc_now(),
        now_epoch=int(time.time()),
    ).dump()


def _verify(action: str, item: TableRun) -> dict[str, Any]:
    """The source's side of the run's verification (this function reaches MySQL)."""
    tag(run_id=item.run_id, table=item.table, action=action)
    pipeline = runtime.pipeline(item.pipeline)
    context: dict[str, Any] = {
        "bucket": current_settings().bucket,
        "data_prefix": current_settings().data_prefix,
        "pipeline": pipeline,
        "item": item,
    }
    conn = runtime.mysql(pipeline.source)
    if action == "verify_source":
        return steps.verify_source(conn, runtime.s3(), runtime.state_table(), **context).dump()
    result, answer = steps.finish_verification(conn, runtime.s3(), runtime.state_table(), **context)
    record_verification(pipeline.name, item.table, result)
    logger.info("verified", extra=result.as_dict())
    return answer.dump()
