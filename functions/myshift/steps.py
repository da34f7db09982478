"""The steps of a table's run that tie state, storage and warehouse together.

Each step is called by one thin handler: commit the extraction, start the load,
commit the load, record an empty run or a failure.
"""

from __future__ import annotations

import json
from typing import Any

from myshift import catalog, keys, load, state
from myshift.config import PipelineConfig
from myshift.errors import CountMismatchError, LoadError, RunFailedError
from myshift.extract import table_prefix


def _cursor_value(key: keys.Key | None) -> keys.KeyValue | None:
    return key[0] if key else None


def commit_extraction(
    state_table: Any, item: dict[str, Any], extracted: list[dict[str, Any]], now: str
) -> dict[str, Any]:
    """Record the run's files as extracted and advance the MySQL side of the watermark.

    Counts are absolute for this run. The watermark lands on the plan's upper key,
    which is the last chunk's upper key (the last extracted key, or beyond it when the
    newest rows were deleted meanwhile).
    """
    pipeline, table, run_id = item["pipeline"], item["table"], item["run_id"]
    planned = {chunk["index"] for chunk in item["chunks"]}
    done = {result["index"] for result in extracted}
    if planned != done:
        raise CountMismatchError(f"{table}: chunks {sorted(planned - done)} were not extracted")
    rows = sum(int(r["rows"]) for r in extracted)
    files = [
        {
            "sk": state.file_sort_key(run_id, int(r["index"])),
            "s3_key": r["s3_key"],
            "rows": int(r["rows"]),
            "bytes": int(r["bytes"]),
            "run_id": run_id,
            "chunk": int(r["index"]),
            "status": "extracted",
            "extracted_at": now,
            "max_cursor": _cursor_value(r.get("last_key")),
        }
        for r in sorted(extracted, key=lambda r: r["index"])
    ]
    state.put_files(state_table, pipeline, table, files)
    watermark = state.get_watermark(state_table, pipeline, table)
    state.put_watermark(
        state_table,
        pipeline,
        table,
        watermark["version"],
        {
            "last_key": item["upper_key"],
            "last_mysql_data_timestamp": _cursor_value(item["upper_key"]),
            "last_mysql_extraction_time": now,
            "mysql_status": "success",
            "mysql_rows_extracted": rows,
            "backup_strategy": item.get("strategy", "sequential"),
            "last_run_id": run_id,
        },
    )
    report: dict[str, dict[str, int]] = {}
    for result in extracted:
        for kind, by_column in result.get("report", {}).items():
            for column, count in by_column.items():
                report.setdefault(kind, {})
                report[kind][column] = report[kind].get(column, 0) + int(count)
    summary = {
        "rows_extracted": rows,
        "files_extracted": len(files),
        "bytes_extracted": sum(f["bytes"] for f in files),
        "conversion_report": report,
    }
    state.put_run(
        state_table, pipeline, table, run_id, {"status": "extracted", "started_at": now, **summary}
    )
    keep = {k: v for k, v in item.items() if k not in ("chunks", "extracted")}
    return {**keep, **summary}


def prepare_warehouse(redshift_data: Any, pipeline: PipelineConfig, run: dict[str, Any]) -> dict:
    """Submit the schema/ledger DDL of a run (none for backup-only runs)."""
    if run["mode"] == "backup_only":
        return {"statement_id": None}
    sqls = load.prepare_statements(pipeline.target.schema_name)
    statement_id = load.submit(
        redshift_data, pipeline.target, sqls, f"myshift-prepare-{run['run_id']}"
    )
    return {"statement_id": statement_id}


def manifest_key(data_prefix: str, pipeline: str, table: str, run_id: str) -> str:
    """S3 key of the manifest of one run's load."""
    return f"{table_prefix(data_prefix, pipeline, table)}manifests/run={run_id}.json"


def start_load(
    state_table: Any,
    s3: Any,
    redshift_data: Any,
    *,
    bucket: str,
    data_prefix: str,
    pipeline: PipelineConfig,
    item: dict[str, Any],
    now: str,
) -> dict[str, Any]:
    """Submit the load of every extracted, not yet loaded file of the table.

    Files left by an earlier run whose load failed are loaded with this run's, in
    extraction order; the merge keeps the newest version of each key.
    """
    table = pipeline.table(item["table"])
    pending = pending_files(state_table, pipeline.name, table.name, item)
    if not pending:
        return {"statement_id": None, "expected_rows": 0, "manifest_key": None}
    schema = state.get_schema(state_table, pipeline.name, table.name)
    if schema is None:
        raise LoadError(f"{table.name}: no stored schema; plan the table first")
    target = catalog.target_table(schema, pipeline.target.schema_name, table)
    key = manifest_key(data_prefix, pipeline.name, table.name, item["run_id"])
    load.put_manifest(s3, bucket, key, pending)
    expected = sum(int(f["rows"]) for f in pending)
    sqls = load.load_statements(
        target,
        manifest_url=f"s3://{bucket}/{key}",
        copy_role_arn=pipeline.target.copy_role_arn,
        expected_rows=expected,
        run_id=item["run_id"],
        source_table=table.name,
        file_count=len(pending),
        loaded_at=now,
        write_mode=table.write_mode,
    )
    statement_id = load.submit(redshift_data, pipeline.target, sqls, f"myshift-{item['run_id']}")
    return {"statement_id": statement_id, "expected_rows": expected, "manifest_key": key}


def pending_files(
    state_table: Any, pipeline: str, table: str, item: dict[str, Any]
) -> list[dict[str, Any]]:
    """Files to load: extracted and not yet loaded, in extraction order.

    A full refresh (`replace`) loads only this run's files; `redshift_only` runs honour
    the Redshift-side start set with `watermark set --timestamp` (files whose newest
    cursor is after it).
    """
    files = state.list_files(state_table, pipeline, table, status="extracted")
    if item.get("write_mode") == "replace":
        return [f for f in files if f["run_id"] == item["run_id"]]
    if item.get("mode") == "redshift_only":
        start = state.get_watermark(state_table, pipeline, table).get("redshift_from_timestamp")
        if start:
            files = [f for f in files if str(f.get("max_cursor") or "") > str(start)]
    return files


def loaded_files(
    state_table: Any, s3: Any, bucket: str, item: dict[str, Any]
) -> list[dict[str, Any]]:
    """The file items named in the run's manifest."""
    body = s3.get_object(Bucket=bucket, Key=item["load"]["manifest_key"])["Body"].read()
    urls = {entry["url"] for entry in json.loads(body)["entries"]}
    files = state.list_files(state_table, item["pipeline"], item["table"])
    return [f for f in files if f"s3://{bucket}/{f['s3_key']}" in urls]


def commit_load(
    state_table: Any,
    s3: Any,
    redshift_data: Any,
    *,
    bucket: str,
    item: dict[str, Any],
    now: str,
) -> dict[str, Any]:
    """Verify the finished load's counts, mark its files loaded, advance the watermark."""
    pipeline, table, run_id = item["pipeline"], item["table"], item["run_id"]
    description = load.describe(redshift_data, item["load"]["statement_id"])
    counts = load.verified_counts(description, int(item["load"]["expected_rows"]))
    files = loaded_files(state_table, s3, bucket, item)
    state.mark_files(state_table, files, "loaded", loaded_at=now, loaded_by=run_id)
    watermark = state.get_watermark(state_table, pipeline, table)
    state.put_watermark(
        state_table,
        pipeline,
        table,
        watermark["version"],
        {
            "redshift_status": "success",
            "redshift_rows_loaded": counts.rows_staged,
            "last_redshift_load_time": now,
        },
    )
    summary = {
        **{k: v for k, v in item.items() if k not in ("load", "load_status")},
        "statement_id": item["load"]["statement_id"],
        "status": "succeeded",
        "files_loaded": len(files),
        "rows_loaded": counts.rows_staged,
        "rows_inserted": counts.rows_inserted,
        "rows_replaced": counts.rows_replaced,
        "already_loaded": counts.already_loaded,
    }
    state.put_run(state_table, pipeline, table, run_id, {**summary, "finished_at": now})
    return summary


def raise_load_failure(redshift_data: Any, item: dict[str, Any]) -> None:
    """Raise the database's error of the run's failed load statement."""
    raise load.failure_of(load.describe(redshift_data, item["load"]["statement_id"]))


def record_empty_run(state_table: Any, item: dict[str, Any], now: str) -> dict[str, Any]:
    """A run that found nothing new: recorded, watermark unchanged."""
    summary = {
        **{k: v for k, v in item.items() if k != "chunks"},
        "status": "succeeded",
        "rows_extracted": 0,
        "files_extracted": 0,
        "files_loaded": 0,
        "rows_loaded": 0,
    }
    state.put_run(state_table, item["pipeline"], item["table"], item["run_id"], summary)
    return summary


def failure_message(error: dict[str, Any]) -> tuple[str, str]:
    """(error type, one-line message) from a Catch's `{"Error", "Cause"}`."""
    error_type = str(error.get("Error", "Unknown"))
    cause = str(error.get("Cause", ""))
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict) and "errorMessage" in parsed:
            cause = str(parsed["errorMessage"])
    except ValueError:
        pass
    return error_type, cause.replace("\n", " ")[:2000]


def record_failure(state_table: Any, item: dict[str, Any], now: str) -> dict[str, Any]:
    """Record a failed run of a table: run history and the watermark's status."""
    pipeline, table, run_id = item["pipeline"], item["table"], item["run_id"]
    error_type, message = failure_message(item.get("error", {}))
    locked_out = error_type == "TableLockedError"
    if not locked_out:  # a locked-out run touched nothing; the table is another run's
        watermark = state.get_watermark(state_table, pipeline, table)
        extracted = (
            watermark.get("last_run_id") == run_id and watermark["mysql_status"] == "success"
        )
        side = "redshift_status" if extracted else "mysql_status"
        state.put_watermark(state_table, pipeline, table, watermark["version"], {side: "failed"})
    record = {"status": "failed", "error": error_type, "cause": message, "finished_at": now}
    state.put_run(state_table, pipeline, table, run_id, record)
    if not locked_out:
        state.release_lock(state_table, pipeline, table, run_id)
    return {"pipeline": pipeline, "table": table, "run_id": run_id, **record}


def acquire_lock(state_table: Any, item: dict[str, Any], now_epoch: int) -> dict[str, Any]:
    """Take the table's lock for this execution (fails fast when another holds it)."""
    state.acquire_lock(
        state_table,
        item["pipeline"],
        item["table"],
        item["run_id"],
        now_epoch,
        int(item.get("lock_lease_seconds", 3 * 3600)),
    )
    return item


def release_lock(state_table: Any, item: dict[str, Any]) -> dict[str, Any]:
    """Release the table's lock at the end of a successful table run."""
    released = state.release_lock(state_table, item["pipeline"], item["table"], item["run_id"])
    return {"status": "succeeded", **item, "lock_released": released}


def summarize_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's outcome; RunFailedError names every failed table and its cause."""
    failed = [r for r in results if r.get("status") == "failed"]
    if failed:
        causes = "; ".join(f"{r['table']}: {r.get('error')}: {r.get('cause')}" for r in failed)
        raise RunFailedError(f"{len(failed)} of {len(results)} tables failed: {causes}")
    return {"status": "succeeded", "results": results}
