"""Lambda: submit Redshift statements and follow them (the identity that submits a
statement is the only one the Data API lets describe it)."""

import time
from typing import Any

from myshift import doctor, reconcile, runtime, state, steps
from myshift.errors import InputError
from myshift.handlers.observability import instrumented, tag
from myshift.settings import current_settings

# Verification statements: submitted, compared and read by this identity.
VERIFY_ACTIONS = {
    "verify_submit": steps.submit_verification,
    "verify_compare": steps.compare_verification,
    "verify_collect": steps.collect_narrowed,
    "deletes_submit": steps.submit_deletes,
}

# A reconciliation's warehouse side: submitted, compared and read by this identity.
RECONCILE_ACTIONS = {
    "reconcile_submit": reconcile.submit_checksums,
    "reconcile_compare": reconcile.compare_checksums,
    "reconcile_submit_rows": reconcile.submit_listing,
    "reconcile_name": reconcile.name_rows,
    "reconcile_deletes_submit": reconcile.submit_deletes,
}


@instrumented
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = event.get("action")
    if action == "follow":
        tag(run_id=event.get("run_id"))
        return steps.follow_statement(
            runtime.redshift_data(),
            event["statement"],
            raise_on_failure=bool(event.get("raise_on_failure", True)),
        )
    if action == "raise_failure":
        tag(run_id=event.get("run_id"))
        steps.raise_failure(runtime.redshift_data(), event["statement"])
    if action in ("doctor_submit", "doctor_results"):
        tag(run_id=event["run_id"], action=action)
        pipeline = runtime.pipeline(event["pipeline"])
        settings = current_settings()
        if action == "doctor_results":
            return doctor.warehouse_results(
                runtime.redshift_data(),
                pipeline=pipeline,
                statements=event["statements"],
                copy_role_arn=settings.copy_role_arn or None,
            )
        return doctor.submit_warehouse_checks(
            runtime.redshift_data(),
            runtime.state_table(),
            runtime.s3(),
            pipeline=pipeline,
            canary_file=event.get("canary"),
            bucket=settings.bucket,
            data_prefix=settings.data_prefix,
            run_id=event["run_id"],
            poll_seconds=settings.poll_seconds,
            now_epoch=int(time.time()),
            copy_role_arn=settings.copy_role_arn or None,
        )
    if action == "prepare":
        run = event["run"]
        tag(run_id=run["run_id"])
        return steps.prepare_warehouse(
            runtime.redshift_data(), runtime.pipeline(run["pipeline"]), run
        )
    item = event["table"]
    tag(run_id=item["run_id"], table=item["table"])
    if action == "submit":
        settings = current_settings()
        return steps.start_load(
            runtime.state_table(),
            runtime.s3(),
            runtime.redshift_data(),
            bucket=settings.bucket,
            data_prefix=settings.data_prefix,
            pipeline=runtime.pipeline(item["pipeline"]),
            item=item,
            now=state.utc_now(),
            copy_role_arn=settings.copy_role_arn or None,
        )
    if action in VERIFY_ACTIONS:
        return VERIFY_ACTIONS[action](
            runtime.s3(),
            runtime.redshift_data(),
            bucket=current_settings().bucket,
            data_prefix=current_settings().data_prefix,
            pipeline=runtime.pipeline(item["pipeline"]),
            item=item,
        )
    if action in RECONCILE_ACTIONS:
        settings = current_settings()
        step = reconcile.Step(
            s3=runtime.s3(),
            bucket=settings.bucket,
            data_prefix=settings.data_prefix,
            pipeline=runtime.pipeline(item["pipeline"]),
            item=item,
            redshift_data=runtime.redshift_data(),
        )
        return RECONCILE_ACTIONS[action](step)
    if action == "alters":
        return steps.column_alters(runtime.state_table(), runtime.pipeline(item["pipeline"]), item)
    if action == "execute":
        return steps.submit_statement(
            runtime.redshift_data(),
            runtime.pipeline(item["pipeline"]),
            event["sqls"],
            f"myshift-alter-{item['run_id']}",
            int(item["poll_seconds"]),
        )
    raise InputError(f"unknown load action {action!r}")
