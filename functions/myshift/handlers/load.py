"""Lambda: submit Redshift statements and follow them (the identity that submits a
statement is the only one the Data API lets describe it)."""

import time
from typing import Any

from myshift import doctor, reconcile, runtime, state, steps
from myshift.errors import InputError
from myshift.handlers.observability import instrumented, tag
from myshift.payloads import AlterItem, Follow, LoadRequest, Run, TableRun, parse
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
    if action in ("follow", "raise_failure"):
        follow = parse(Follow, event, f"Load {action} event")
        tag(run_id=follow.run_id)
        if action == "raise_failure":
            steps.raise_failure(runtime.redshift_data(), follow.statement)
        return steps.follow_statement(
            runtime.redshift_data(), follow.statement, raise_on_failure=follow.raise_on_failure
        ).dump()
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
        run = parse(Run, event.get("run"), "Load prepare event run")
        tag(run_id=run.run_id)
        return steps.prepare_warehouse(
            runtime.redshift_data(), runtime.pipeline(run.pipeline), run
        ).dump()
    if action in RECONCILE_ACTIONS:
        return _reconcile(action, event["table"])
    if action == "execute":
        alter = parse(AlterItem, event.get("table"), "Load execute event table")
        tag(run_id=alter.run_id, table=alter.table)
        return steps.submit_statement(
            runtime.redshift_data(),
            runtime.pipeline(alter.pipeline),
            alter.sqls,
            f"myshift-alter-{alter.run_id}",
            alter.poll_seconds,
        ).dump()
    if action not in ("submit", "alters", *VERIFY_ACTIONS):
        raise InputError(f"unknown load action {action!r}")
    what = f"Load {action} event table"
    if action == "submit":
        request = parse(LoadRequest, event.get("table"), what)
        tag(run_id=request.run_id, table=request.table)
        settings = current_settings()
        return steps.start_load(
            runtime.state_table(),
            runtime.s3(),
            runtime.redshift_data(),
            bucket=settings.bucket,
            data_prefix=settings.data_prefix,
            pipeline=runtime.pipeline(request.pipeline),
            item=request,
            now=state.utc_now(),
            copy_role_arn=settings.copy_role_arn or None,
        ).dump()
    item = parse(TableRun, event.get("table"), what)
    tag(run_id=item.run_id, table=item.table)
    if action == "alters":
        pipeline = runtime.pipeline(item.pipeline)
        return steps.column_alters(runtime.state_table(), pipeline, item).dump()
    return VERIFY_ACTIONS[action](
        runtime.s3(),
        runtime.redshift_data(),
        bucket=current_settings().bucket,
        data_prefix=current_settings().data_prefix,
        pipeline=runtime.pipeline(item.pipeline),
        item=item,
    ).dump()


def _reconcile(action: str, item: dict[str, Any]) -> dict[str, Any]:
    """A reconciliation's warehouse side (its payloads are plain dicts)."""
    tag(run_id=item["run_id"], table=item["table"])
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
