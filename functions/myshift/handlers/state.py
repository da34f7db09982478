"""Lambda: the state steps of a run (locks, commits, outcomes, the run summary)."""

import time
from typing import Any

from myshift import doctor, reconcile, runtime, state, steps
from myshift.clients import StateTable
from myshift.errors import InputError
from myshift.handlers.observability import (
    freshness_lag_seconds,
    instrumented,
    record_freshness,
    record_load_metrics,
    record_skipped,
    tag,
)
from myshift.payloads import FailedTable, Run, TableItem, TableRun, parse
from myshift.settings import current_settings


@instrumented
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = event.get("action")
    table = runtime.state_table()
    if action == "doctor":
        tag(run_id=event["run_id"], action=action)
        return doctor.state_checks(table, run_id=event["run_id"], now_epoch=int(time.time()))
    if action == "doctor_report":
        return doctor.report(event["pipeline"], event["run_id"], event["results"])
    if action == "summarize_run":
        run = parse(Run, event.get("run"), "State summarize_run event run")
        outcome = steps.summarize_run(table, run)
        if outcome.tables_skipped:
            record_skipped(run.pipeline, outcome.dump())
        return outcome.dump()
    if action == "reconcile_report":
        return reconcile.report(table, event["run"])
    if isinstance(action, str) and action.startswith("reconcile_"):
        item = event["table"]
        tag(run_id=item["run_id"], table=item["table"], action=action)
        return _reconcile(action, table, item, state.utc_now())
    what = f"State {action} event table"
    now = state.utc_now()
    if action == "acquire_lock":
        locking = parse(TableItem, event.get("table"), what)
        tag(run_id=locking.run_id, table=locking.table, action=action)
        pipeline = runtime.pipeline(locking.pipeline)
        return steps.acquire_lock(table, pipeline, locking, int(time.time())).dump()
    if action == "record_failure":
        failed = parse(FailedTable, event.get("table"), what)
        tag(run_id=failed.run_id, table=failed.table, action=action)
        return steps.record_failure(table, failed, now).dump()
    item = parse(TableRun, event.get("table"), what)
    tag(run_id=item.run_id, table=item.table, action=action)
    if action == "commit_load":
        lag = freshness_lag_seconds(item.dump(), now)
        committed = steps.commit_load(
            table, runtime.s3(), bucket=current_settings().bucket, item=item, now=now
        )
        record_load_metrics(item.pipeline, item.table, rows_loaded=int(committed.rows_loaded or 0))
        record_freshness(item.pipeline, item.table, lag)
        return committed.dump()
    if action == "record_empty_run":
        record_freshness(item.pipeline, item.table, freshness_lag_seconds(item.dump(), now))
        return steps.record_empty_run(table, item, now).dump()
    if action == "commit_deletes":
        return steps.commit_deletes(
            table,
            runtime.s3(),
            bucket=current_settings().bucket,
            data_prefix=current_settings().data_prefix,
            pipeline=runtime.pipeline(item.pipeline),
            item=item,
        ).dump()
    if action == "commit_alters":
        return steps.commit_alters(table, item).dump()
    if action == "release_lock":
        return steps.release_lock(table, item, now).dump()
    if action == "commit_extraction":
        return steps.commit_extraction(table, item, now).dump()
    if action == "record_skipped":
        return steps.record_skipped(table, item, now).dump()
    raise InputError(f"unknown state action {action!r}")


def _reconcile(action: str, table: StateTable, item: dict[str, Any], now: str) -> dict[str, Any]:
    """A reconciliation's state steps (lock, commits of its fix, release, failure)."""
    settings = current_settings()
    if action == "reconcile_lock":
        pipeline = runtime.pipeline(item["pipeline"])
        return reconcile.acquire_lock(table, pipeline, item, now=now, now_epoch=int(time.time()))
    if action == "reconcile_commit_extraction":
        return reconcile.commit_fix_extraction(table, item, now)
    if action == "reconcile_commit_load":
        return reconcile.commit_fix_load(
            table, runtime.s3(), bucket=settings.bucket, item=item, now=now
        )
    if action == "reconcile_commit_deletes":
        return reconcile.commit_deletes(
            table, pipeline=runtime.pipeline(item["pipeline"]), item=item
        )
    documents = {"bucket": settings.bucket, "data_prefix": settings.data_prefix}
    if action == "reconcile_release":
        return reconcile.release(table, runtime.s3(), item=item, now=now, **documents)
    if action == "reconcile_failure":
        return reconcile.record_failure(table, runtime.s3(), item=item, now=now, **documents)
    raise InputError(f"unknown state action {action!r}")
