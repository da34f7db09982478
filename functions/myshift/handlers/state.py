"""Lambda: the state steps of a run (commit extraction/load, record outcomes)."""

from typing import Any

from myshift import runtime, state, steps
from myshift.errors import InputError
from myshift.handlers.observability import logger
from myshift.settings import current_settings


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    item = event["table"]
    logger.append_keys(run_id=item["run_id"], table=item["table"])
    action = event.get("action")
    now = state.utc_now()
    table = runtime.state_table()
    if action == "commit_extraction":
        return steps.commit_extraction(table, item, item["extracted"], now)
    if action == "commit_load":
        return steps.commit_load(
            table,
            runtime.s3(),
            runtime.redshift_data(),
            bucket=current_settings().bucket,
            item=item,
            now=now,
        )
    if action == "record_empty_run":
        return steps.record_empty_run(table, item, now)
    if action == "record_failure":
        return steps.record_failure(table, item, now)
    raise InputError(f"unknown state action {action!r}")
