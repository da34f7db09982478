"""The steps of a table's run that tie state, storage and warehouse together.

Each step is called by one thin handler: commit the extraction, start the load,
commit the load, record an empty run or a failure.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

from myshift import evolve, keys, load, state, verification
from myshift.clients import RedshiftDataClient, S3Client, StateTable
from myshift.config import PipelineConfig
from myshift.errors import (
    CountMismatchError,
    InputError,
    LoadError,
    RunFailedError,
    SchemaError,
    StateConflictError,
    StorageUnavailableError,
    TableLockedError,
    WarehouseUnavailableError,
)
from myshift.extract import table_prefix
from myshift.payloads import (
    AltersPlan,
    ChunkResult,
    ChunkTask,
    CollectedKeys,
    FailedTable,
    LoadCounts,
    LoadRequest,
    Run,
    RunOutcome,
    Statement,
    TableItem,
    TableRun,
    TableSummary,
    Verified,
    VerifyDecision,
)
from myshift.workflow import table_item

if TYPE_CHECKING:
    import pymysql


def _cursor_value(key: keys.Key | None) -> keys.KeyValue | None:
    return key[0] if key else None


# An inline chunk list travels in the table's payload (256 KiB per state in Step
# Functions); above this size, or above `inline_max_chunks` chunks, it goes to S3 and a
# Distributed Map reads it.
INLINE_CHUNKS_MAX_BYTES = 64 * 1024


# What the run record keeps of the plan (why a run read what it read).
PLAN_FACTS = (
    "mode",
    "write_mode",
    "chunk_count",
    "chunk_rows",
    "chunk_rows_from",
    "planned_rows",
    "read_from_start",
    "added_columns",
    "bound",
    "upper_key",
    "distributed",
)


def publish_plan(
    s3: S3Client,
    state_table: StateTable,
    item: TableRun,
    *,
    schema: dict[str, Any],
    bucket: str,
    data_prefix: str,
    inline_max_chunks: int,
    now: str,
    now_epoch: int,
) -> TableRun:
    """Record the plan and keep the payload small.

    The schema (about 190 bytes a column) goes to the run's PLAN item, never into the
    payload; a chunk list over `inline_max_chunks` chunks or INLINE_CHUNKS_MAX_BYTES
    goes to S3 for the Distributed Map. The run record says the table is extracting.
    """
    pipeline, table, run_id = item.pipeline, item.table, item.run_id
    state.put_plan(state_table, pipeline, table, run_id, {"schema": schema}, now_epoch)
    chunks = json.dumps([chunk.dump() for chunk in item.chunks or []]).encode()
    count = int(item.chunk_count or 0)
    distributed = count > inline_max_chunks or len(chunks) > INLINE_CHUNKS_MAX_BYTES
    changes: dict[str, Any] = {"distributed": distributed}
    if distributed:
        key = f"{table_prefix(data_prefix, pipeline, table)}run={run_id}/plan.json"
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=chunks)
        except Exception as exc:
            raise StorageUnavailableError(f"S3 put of {key}: {exc}".splitlines()[0]) from None
        changes.update(chunks=[], plan_key=key)
    published = item.after("plan", **changes)
    facts = published.model_dump(mode="json", include=set(PLAN_FACTS), exclude_none=True)
    state.put_run(
        state_table,
        pipeline,
        table,
        run_id,
        {
            "status": "running",
            "phase": "extracting",
            "started_at": now,
            **facts,
            # Counts are the run's own: none until its extraction commits.
            "rows_extracted": 0,
            "files_extracted": 0,
            "bytes_extracted": 0,
        },
    )
    return published


def planned_schema(state_table: StateTable, item: TableRun) -> dict[str, Any]:
    """The schema the run's plan recorded (the files' layout, the name map, the key)."""
    plan = state.get_plan(state_table, item.pipeline, item.table, item.run_id)
    if plan is None or "schema" not in plan:
        raise StateConflictError(f"{item.table}: run {item.run_id} recorded no plan")
    return dict(plan["schema"])


def record_chunk(
    state_table: StateTable, task: ChunkTask, result: dict[str, Any], now: str
) -> ChunkResult:
    """Record one extracted chunk's file as `written` (one item per file, idempotent).

    The run's commit turns its files into `extracted` once every chunk is in, so the
    chunk results never travel through the state machine's payload.
    """
    last_key = result.get("last_key")
    state.put_files(
        state_table,
        task.pipeline,
        task.table,
        [
            {
                "sk": state.file_sort_key(task.run_id, int(result["index"])),
                "s3_key": result["s3_key"],
                "rows": int(result["rows"]),
                "bytes": int(result["bytes"]),
                "run_id": task.run_id,
                "chunk": int(result["index"]),
                "status": "written",
                "extracted_at": now,
                "max_cursor": _cursor_value(last_key),
                "last_key": last_key,
                "report": result.get("report", {}),
                **({"columns": int(result["columns"])} if "columns" in result else {}),
            }
        ],
    )
    return ChunkResult(index=result["index"], rows=result["rows"], bytes=result["bytes"])


def recorded_files(
    state_table: StateTable, pipeline: str, table: str, run_id: str, chunk_count: int
) -> list[dict[str, Any]]:
    """The files of the run's chunks: every planned chunk must have recorded its file."""
    files = state.list_files(state_table, pipeline, table, run_id=run_id)
    missing = sorted(set(range(chunk_count)) - {int(f["chunk"]) for f in files})
    if missing:
        raise CountMismatchError(f"{table}: chunks {missing[:20]} recorded no file")
    return files


def commit_extraction(state_table: StateTable, item: TableRun, now: str) -> TableRun:
    """Mark the run's files extracted and advance the MySQL side of the watermark.

    Every planned chunk must have recorded its file. Counts are absolute for this
    run. The watermark lands on the plan's upper key: the last chunk's upper key.
    """
    pipeline, table, run_id = item.pipeline, item.table, item.run_id
    planned_layout = planned_schema(state_table, item)
    files = recorded_files(state_table, pipeline, table, run_id, int(item.chunk_count or 0))
    planned = len(planned_layout["layout"])
    changed = sorted(int(f["chunk"]) for f in files if int(f.get("columns", planned)) != planned)
    if changed:  # a column was added in MySQL after the plan: files of two layouts
        raise SchemaError(
            f"{table}: the source table's columns changed while this run read it (chunks "
            f"{changed[:20]} were written with other columns than the plan's {planned}); "
            "nothing was committed: the next run reads the new layout"
        )
    state.mark_files(state_table, files, "extracted", extracted_at=now)
    schema = state.get_schema(state_table, pipeline, table) or {}
    schema.update(planned_layout)  # the files' layout, the name map, the key
    state.put_schema(state_table, pipeline, table, schema)
    rows = sum(int(f["rows"]) for f in files)
    upper = item.upper_key
    if item.write_mode == "replace":
        # A full refresh's last chunk is open-ended: it may have read past the planned
        # key (rows written during the run); the watermark is what was really read.
        last = max(files, key=lambda f: int(f["chunk"]), default={}).get("last_key")
        upper = last if last is not None else upper
    watermark = state.get_watermark(state_table, pipeline, table)
    state.put_watermark(
        state_table,
        pipeline,
        table,
        watermark["version"],
        {
            "last_key": upper,
            "last_mysql_data_timestamp": _cursor_value(upper),
            "last_mysql_extraction_time": now,
            "mysql_status": "success",
            "mysql_rows_extracted": rows,
            "backup_strategy": item.strategy,
            "last_run_id": run_id,
        },
    )
    report: dict[str, dict[str, int]] = {}
    for file in files:
        for kind, by_column in (file.get("report") or {}).items():
            for column, count in by_column.items():
                report.setdefault(kind, {})
                report[kind][column] = report[kind].get(column, 0) + int(count)
    summary = {
        "rows_extracted": rows,
        "files_extracted": len(files),
        "bytes_extracted": sum(int(f["bytes"]) for f in files),
        "conversion_report": report,
        # Rows skipped (or, with load_null_cursor, included) for a NULL cursor: reported.
        "null_cursor_rows": int(item.null_cursor_rows or 0),
    }
    state.update_run(
        state_table, pipeline, table, run_id, {"status": "extracted", "phase": "loading", **summary}
    )
    return item.after("commit_extraction", **summary)


def prepare_warehouse(
    redshift_data: RedshiftDataClient, pipeline: PipelineConfig, run: Run
) -> Statement:
    """Submit the schema/ledger DDL of a run (none for backup-only runs).

    `attempt` counts submissions: the workflow submits a failed prepare again (a
    concurrent execution creating the same schema fails ours once) a few times.
    """
    attempt = int((run.prepare.attempt if run.prepare else None) or 0) + 1
    if run.mode == "backup_only":
        return submitted(None, attempt=attempt, poll_seconds=run.poll_seconds)
    sqls = load.prepare_statements(pipeline.target.schema_name)
    statement_id = load.submit(
        redshift_data, pipeline.target, sqls, f"myshift-prepare-{run.run_id}-{attempt}"
    )
    return submitted(statement_id, attempt=attempt, poll_seconds=run.poll_seconds)


# Polls of a statement: `poll_seconds` apart for the first FAST_POLLS, then twice as
# far apart every SLOWER_EVERY polls, up to MAX_POLL_SECONDS: a load of hours costs a
# few hundred polls (history events, transitions), one of seconds is seen at once.
FAST_POLLS = 12
SLOWER_EVERY = 6
MAX_POLL_SECONDS = 60


def next_wait(polls: int, poll_seconds: int) -> int:
    """Seconds to wait before poll number `polls + 1` of a statement."""
    if polls < FAST_POLLS:
        return poll_seconds
    cap = max(MAX_POLL_SECONDS, poll_seconds)
    return int(min(cap, poll_seconds * 2 ** ((polls - FAST_POLLS) // SLOWER_EVERY + 1)))


def submitted(
    statement_id: str | None,
    *,
    poll_seconds: int,
    expected_rows: int | None = None,
    manifest_key: str | None = None,
    attempt: int | None = None,
    names: list[str] | None = None,
) -> Statement:
    """A submitted statement, as the workflow carries and follows it (one shape).

    `expected_rows` is set for a load: the follow step checks the staged count with it,
    reading its statements' results by their `names`.
    """
    return Statement(
        statement_id=statement_id,
        expected_rows=expected_rows,
        manifest_key=manifest_key,
        attempt=attempt,
        names=names,
        status="SUBMITTED",
        counts=None,
        polls=0,
        poll_seconds=poll_seconds,
        wait_seconds=poll_seconds,
    )


def follow_statement(
    redshift_data: RedshiftDataClient, statement: Statement, *, raise_on_failure: bool = True
) -> Statement:
    """The statement with its status now (and the wait before the next poll).

    Called by the identity that submitted it (the Data API allows nobody else). A
    finished load's counts are checked here (staged = extracted, else
    CountMismatchError); a failed or aborted statement raises the database's error
    unless `raise_on_failure` is off (the warehouse preparation submits again).
    """
    description = load.describe(redshift_data, _statement_id(statement))
    status = str(description.get("Status"))
    counts = None
    if status in ("FAILED", "ABORTED") and raise_on_failure:
        raise load.failure_of(description)
    if status == "FINISHED" and statement.expected_rows is not None:
        verified = load.verified_counts(description, statement.expected_rows, statement.names or [])
        counts = LoadCounts(**verified.as_dict())
    polls = statement.polls + 1
    return statement.model_copy(
        update={
            "status": status,
            "counts": counts,
            "polls": polls,
            "wait_seconds": next_wait(polls, statement.poll_seconds),
        }
    )


def _statement_id(statement: Statement | None) -> str:
    """The Data API id of a submitted statement (InputError when there is none)."""
    if statement is None or statement.statement_id is None:
        raise InputError("the payload names no submitted statement")
    return statement.statement_id


def manifest_key(data_prefix: str, pipeline: str, table: str, run_id: str) -> str:
    """S3 key of the manifest of one run's load."""
    return f"{table_prefix(data_prefix, pipeline, table)}manifests/run={run_id}.json"


def start_load(
    state_table: StateTable,
    s3: S3Client,
    redshift_data: RedshiftDataClient,
    *,
    bucket: str,
    data_prefix: str,
    pipeline: PipelineConfig,
    item: LoadRequest,
    now: str,
    copy_role_arn: str | None = None,
) -> Statement:
    """Submit the load of every extracted, not yet loaded file of the table.

    COPY reads S3 as the pipeline's `target.copy_role_arn`, else as `copy_role_arn`
    (the stack's), else as the warehouse's default IAM role.

    Files left by an earlier run whose load failed are loaded with this run's, in
    extraction order; the merge keeps the newest version of each key. A load an
    earlier run submitted and never committed is settled first (`settle_earlier_load`).
    """
    table = pipeline.table(item.table)
    own = state.get_load(state_table, pipeline.name, table.name)
    if own is not None and own["run_id"] == item.run_id:
        # This run submitted already and lost the reply (a retried step): follow that
        # statement rather than submitting the same files twice.
        return submitted(
            own["statement_id"],
            expected_rows=int(own["expected_rows"]),
            manifest_key=own["manifest_key"],
            names=list(own["names"]),
            poll_seconds=item.poll_seconds,
        )
    settle_earlier_load(state_table, s3, redshift_data, bucket, pipeline.name, table.name, now)
    pending = pending_files(state_table, pipeline.name, table.name, item)
    if not pending:
        return submitted(None, poll_seconds=item.poll_seconds)
    schema = state.get_schema(state_table, pipeline.name, table.name)
    if schema is None or not schema.get("layout"):
        raise LoadError(f"{table.name}: no stored schema; plan the table first")
    target = target_table(schema, pipeline.target.schema_name, table.table)
    adds, widens = evolve.pending_changes(schema["layout"], schema.get("table"))
    if widens or len(adds) > load.MAX_ADDED_COLUMNS_IN_LOAD:
        # The AlterColumns step runs these first; a retry after a failure gets here.
        raise LoadError(f"{table.name}: columns still to alter before loading")
    key = manifest_key(data_prefix, pipeline.name, table.name, item.run_id)
    load.put_manifest(s3, bucket, key, pending)
    expected = sum(int(f["rows"]) for f in pending)
    load_key = load.load_id([f["s3_key"] for f in pending])
    statements = load.load_batch(
        target,
        manifest_url=f"s3://{bucket}/{key}",
        copy_role_arn=load.copy_role(pipeline.target, copy_role_arn),
        expected_rows=expected,
        load_key=load_key,
        run_id=item.run_id,
        file_count=len(pending),
        write_mode=table.write_mode,
        add_columns=adds,
        filled_columns=filled_columns(schema["layout"], pending),
    )
    names = [s.name for s in statements]
    statement_id = load.submit(
        redshift_data, pipeline.target, [s.sql for s in statements], f"myshift-{item.run_id}"
    )
    state.put_load(
        state_table,
        pipeline.name,
        table.name,
        {
            "statement_id": statement_id,
            "load_id": load_key,
            "run_id": item.run_id,
            "manifest_key": key,
            "expected_rows": expected,
            "names": names,
            "columns": len(schema["layout"]),
            "submitted_at": now,
        },
    )
    return submitted(
        statement_id,
        expected_rows=expected,
        manifest_key=key,
        names=names,
        poll_seconds=item.poll_seconds,
    )


def settle_earlier_load(
    state_table: StateTable,
    s3: S3Client,
    redshift_data: RedshiftDataClient,
    bucket: str,
    pipeline: str,
    table: str,
    now: str,
) -> None:
    """Commit (or forget) a load that an earlier run submitted and never committed.

    A run can lose track of its load (stopped, timed out, its commit lost): the load
    may still have committed in Redshift. Its statement tells (the Data API keeps it 24
    hours): finished, its files are marked loaded now, so they are not loaded again;
    failed or aborted, they load with this run's; still running, this run waits for it
    (a transient error, retried). Loading the same set of files again would change
    nothing either (the ledger is keyed by the file set).
    """
    earlier = state.get_load(state_table, pipeline, table)
    if earlier is None:
        return
    description = load.describe(redshift_data, earlier["statement_id"])
    status = description.get("Status")
    if status in ("FAILED", "ABORTED"):
        state.delete_load(state_table, pipeline, table)
        return
    if status != "FINISHED":
        raise WarehouseUnavailableError(
            f"{table}: the load run {earlier['run_id']} submitted is still {status}; "
            "this run loads after it"
        )
    counts = load.verified_counts(description, int(earlier["expected_rows"]), earlier["names"])
    files = files_in_manifest(state_table, s3, bucket, pipeline, table, earlier["manifest_key"])
    record_loaded(
        state_table, pipeline, table, files, counts, now, earlier["run_id"], earlier["columns"]
    )
    state.update_run(
        state_table,
        pipeline,
        table,
        earlier["run_id"],
        {"load_committed": True, "rows_loaded": counts.rows_staged, "files_loaded": len(files)},
    )


def filled_columns(layout: list[dict[str, Any]], files: list[dict[str, Any]]) -> list[str]:
    """Target columns that some of the files lack: written before the columns existed.

    Files record their column count (older files do not: taken as the whole layout).
    The load fills those columns with NULL (FILLRECORD), as COPY maps by position.
    """
    narrowest = min((int(f.get("columns", len(layout))) for f in files), default=len(layout))
    return [c["target"] for c in layout[narrowest:]]


def target_table(schema: dict[str, Any], target_schema: str, mysql_table: str) -> load.TargetTable:
    """The Redshift table `<target schema>.<mysql table name>` as the files lay it out."""
    layout = schema["layout"]
    return load.TargetTable(
        schema=target_schema,
        name=mysql_table.lower(),
        columns_ddl=evolve.table_ddl(layout),
        column_names=[c["target"] for c in layout],
        primary_key=list(schema["primary_key"]),
        cursor=schema["cursor"],
    )


def column_alters(state_table: StateTable, pipeline: PipelineConfig, item: TableRun) -> AltersPlan:
    """What runs before the load's transaction, each entry one submission.

    - VARCHAR widenings, one statement each (Redshift runs ALTER COLUMN TYPE only
      outside a transaction block), preceded by dropping the PRIMARY KEY constraint of
      a table created by an earlier version when a key column widens (Redshift refuses
      to alter a column of a declared key);
    - new columns, when more are new than fit the load's batch: batches of at most 40
      ADD COLUMN statements (the Data API's limit), each one transaction.
    """
    schema = state.get_schema(state_table, pipeline.name, item.table) or {}
    if not schema.get("layout"):
        return AltersPlan(alter_statements=[])
    target = target_table(schema, pipeline.target.schema_name, item.table.split(".")[1])
    adds, widens = evolve.pending_changes(schema["layout"], schema.get("table"))
    batches: list[list[str]] = []
    keys = set(target.primary_key)
    if any(c["target"] in keys for c in widens) and schema.get("key_declared", True):
        batches.append([load.drop_primary_key_sql(target.qualified, target.name)])
    batches += [[load.widen_sql(target.qualified, c)] for c in widens]
    if len(adds) > load.MAX_ADDED_COLUMNS_IN_LOAD:
        sqls = [load.add_column_sql(target.qualified, c) for c in adds]
        step = load.MAX_BATCH_STATEMENTS
        batches += [sqls[i : i + step] for i in range(0, len(sqls), step)]
    return AltersPlan(alter_statements=batches)


def commit_alters(state_table: StateTable, item: TableRun) -> TableRun:
    """After the alters ran: the Redshift table has the layout's VARCHAR sizes, no
    declared key if it had to go, and the columns added before the load."""
    schema = state.get_schema(state_table, item.pipeline, item.table) or {}
    if schema.get("table"):
        layout = {c["target"]: c for c in schema["layout"]}
        adds, widens = evolve.pending_changes(schema["layout"], schema["table"])
        table = [
            layout.get(c["target"], c)
            if evolve.VARCHAR.match(c["redshift_type"])
            and evolve.VARCHAR.match(layout.get(c["target"], c)["redshift_type"])
            else c
            for c in schema["table"]
        ]
        if len(adds) > load.MAX_ADDED_COLUMNS_IN_LOAD:
            table += adds
        keys = set(schema.get("primary_key") or [])
        if any(c["target"] in keys for c in widens):
            schema["key_declared"] = False
        schema["table"] = table
        state.put_schema(state_table, item.pipeline, item.table, schema)
    return item.after("commit_alters")


def submit_statement(
    redshift_data: RedshiftDataClient,
    pipeline: PipelineConfig,
    sqls: list[str],
    name: str,
    poll_seconds: int,
) -> Statement:
    """An alter: one statement on its own (not in a transaction block: ALTER COLUMN
    TYPE), or a batch (one transaction: ADD COLUMNs)."""
    if len(sqls) == 1:
        statement_id = load.submit_single(redshift_data, pipeline.target, sqls[0], name)
    else:
        statement_id = load.submit(redshift_data, pipeline.target, sqls, name)
    return submitted(statement_id, poll_seconds=poll_seconds)


def pending_files(
    state_table: StateTable, pipeline: str, table: str, item: LoadRequest
) -> list[dict[str, Any]]:
    """Files to load: extracted and not yet loaded, in extraction order.

    A full refresh (`replace`) loads only this run's files; `redshift_only` runs honour
    the Redshift-side start set with `watermark set --timestamp` (files whose newest
    cursor is after it).
    """
    files = state.list_files(state_table, pipeline, table, status="extracted")
    if item.write_mode == "replace":
        # The newest full extraction: this run's, or for a redshift_only run the last
        # run that extracted (its files are the table as a whole).
        run_id: str | None = item.run_id
        if item.mode == "redshift_only":
            run_id = state.get_watermark(state_table, pipeline, table).get("last_run_id")
        return [f for f in files if f["run_id"] == run_id]
    if item.mode == "redshift_only":
        start = state.get_watermark(state_table, pipeline, table).get("redshift_from_timestamp")
        if start:
            files = [f for f in files if str(f.get("max_cursor") or "") > str(start)]
    return files


def files_in_manifest(
    state_table: StateTable, s3: S3Client, bucket: str, pipeline: str, table: str, key: str
) -> list[dict[str, Any]]:
    """The file items a load's manifest names."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        raise StorageUnavailableError(f"S3 get of manifest {key}: {exc}".splitlines()[0]) from None
    urls = {entry["url"] for entry in json.loads(body)["entries"]}
    files = state.list_files(state_table, pipeline, table)
    return [f for f in files if f"s3://{bucket}/{f['s3_key']}" in urls]


def record_loaded(
    state_table: StateTable,
    pipeline: str,
    table: str,
    files: list[dict[str, Any]],
    counts: load.LoadCounts,
    now: str,
    run_id: str,
    columns: int,
) -> None:
    """What a committed load changed: its files loaded, the Redshift table's columns
    (the layout's first `columns`), the Redshift side of the watermark; the in-flight
    record gone."""
    state.mark_files(state_table, files, "loaded", loaded_at=now, loaded_by=run_id)
    schema = state.get_schema(state_table, pipeline, table) or {}
    if schema.get("layout"):
        # A table this version created declares no key (see load.load_batch); one
        # created before has a PRIMARY KEY constraint, dropped if a key column widens.
        declared = schema.get("key_declared", bool(schema.get("table")))
        layout = schema["layout"][:columns]
        state.put_schema(
            state_table, pipeline, table, {**schema, "table": layout, "key_declared": declared}
        )
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
    state.delete_load(state_table, pipeline, table)


def commit_load(
    state_table: StateTable, s3: S3Client, *, bucket: str, item: TableRun, now: str
) -> TableRun:
    """After the load finished: mark its files loaded, advance the watermark.

    The counts come from the follow step, which checked them (staged = extracted).
    The item passes on the load's outcome as the run record has it, not the load.
    """
    pipeline, table, run_id = item.pipeline, item.table, item.run_id
    statement_id = _statement_id(item.load)
    if item.load is None or item.load.counts is None or item.load.manifest_key is None:
        raise InputError(f"{table}: the load of run {run_id} has no checked counts")
    counts = load.LoadCounts(**item.load.counts.model_dump())
    files = files_in_manifest(state_table, s3, bucket, pipeline, table, item.load.manifest_key)
    columns = len((state.get_schema(state_table, pipeline, table) or {}).get("layout") or [])
    record_loaded(state_table, pipeline, table, files, counts, now, run_id, columns)
    outcome = {
        "status": "succeeded",
        "phase": "committed",  # "done" once the lock is released
        "statement_id": statement_id,
        "files_loaded": len(files),
        "rows_loaded": counts.rows_staged,
        "rows_inserted": counts.rows_inserted,
        "rows_replaced": counts.rows_replaced,
        "already_loaded": counts.already_loaded,
        "finished_at": now,
    }
    state.update_run(state_table, pipeline, table, run_id, outcome)
    return item.after("commit_load", **outcome)


def raise_failure(redshift_data: RedshiftDataClient, statement: Statement) -> NoReturn:
    """Raise the database's error of a failed statement (this identity submitted it)."""
    raise load.failure_of(load.describe(redshift_data, _statement_id(statement)))


def record_empty_run(state_table: StateTable, item: TableRun, now: str) -> TableRun:
    """A run that found nothing new: recorded, watermark unchanged."""
    run = state.get_run(state_table, item.pipeline, item.table, item.run_id) or {}
    record = item.after(
        "record_empty_run",
        started_at=run.get("started_at", now),
        status="succeeded",
        phase="committed",  # "done" once the lock is released
        rows_extracted=0,
        files_extracted=0,
        files_loaded=0,
        rows_loaded=0,
        finished_at=now,
    )
    state.put_run(state_table, item.pipeline, item.table, item.run_id, record.dump())
    return record


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


def failed_side(item: TableItem, run: dict[str, Any], watermark: dict[str, Any]) -> str | None:
    """The watermark status a failed table run turns to "failed", or None.

    None when the run had committed all its work before the failure (a lost lock
    release after a committed load, or after a backup-only run's extraction): the
    watermark already tells the truth. A `redshift_only` run never extracts, so its
    failure is always the load's; otherwise the extraction's commit decides.
    """
    mode = item.mode
    if run.get("status") == "succeeded":
        return None
    if mode == "redshift_only":
        return "redshift_status"
    extracted = (
        watermark.get("last_run_id") == item.run_id and watermark["mysql_status"] == "success"
    )
    if not extracted:
        return "mysql_status"
    return None if mode == "backup_only" else "redshift_status"


def record_failure(state_table: StateTable, item: FailedTable, now: str) -> TableSummary:
    """Record a failed run of a table: run history and the watermark's status."""
    pipeline, table, run_id = item.pipeline, item.table, item.run_id
    error_type, message = failure_message(item.error.dump())
    run = state.get_run(state_table, pipeline, table, run_id) or {}
    watermark = state.get_watermark(state_table, pipeline, table)
    side = failed_side(item, run, watermark)
    if side:
        state.put_watermark(state_table, pipeline, table, watermark["version"], {side: "failed"})
    # What the run did before failing (rows extracted, loaded) stays in its record.
    record = state.update_run(
        state_table,
        pipeline,
        table,
        run_id,
        {
            "status": "failed",
            "phase": "done",
            "error": error_type,
            "cause": message,
            "finished_at": now,
        },
    )
    state.release_lock(state_table, pipeline, table, run_id)
    return TableSummary.of({"pipeline": pipeline, "table": table, "run_id": run_id, **record})


def acquire_lock(
    state_table: StateTable, pipeline: PipelineConfig, item: TableItem, now_epoch: int
) -> TableRun:
    """Take the table's lock for this execution (at once, never waiting).

    Returns the table's item completed from the pipeline file (write mode, lease...).
    When another run holds the lock (its lease has not run out: a run still going, as
    when a schedule comes round before the last run ended), the item carries `skipped`,
    why: this run leaves the table alone and ends it as skipped (`record_skipped`), not
    as a failure, so the failure alarms stay quiet.
    """
    locked = TableRun.model_validate(table_item(pipeline, item.dump()))
    try:
        state.acquire_lock(
            state_table,
            locked.pipeline,
            locked.table,
            locked.run_id,
            now_epoch,
            locked.lock_lease_seconds,
        )
    except TableLockedError as exc:
        return locked.after("acquire_lock", skipped=str(exc))
    return locked


def record_skipped(state_table: StateTable, item: TableRun, now: str) -> TableSummary:
    """A table whose lock another run holds: recorded as skipped; its watermark and its
    lock are the other run's and stay as they are."""
    pipeline, table, run_id = item.pipeline, item.table, item.run_id
    record = state.update_run(
        state_table,
        pipeline,
        table,
        run_id,
        {"status": "skipped", "phase": "done", "cause": item.skipped, "finished_at": now},
    )
    return TableSummary.of({"pipeline": pipeline, "table": table, "run_id": run_id, **record})


def release_lock(state_table: StateTable, item: TableRun, now: str) -> TableSummary:
    """End a table's successful run: its record says succeeded, the lock is released.

    Returns the table's small summary (the child execution's output).
    """
    pipeline, table, run_id = item.pipeline, item.table, item.run_id
    released = state.release_lock(state_table, pipeline, table, run_id)
    changes: dict[str, Any] = {"phase": "done", "lock_released": released}
    run = state.get_run(state_table, pipeline, table, run_id) or {}
    if run.get("status") != "succeeded":  # a backup-only run ends after its extraction
        changes.update(status="succeeded", finished_at=now)
    return TableSummary.of(
        {**item.dump(), **state.update_run(state_table, pipeline, table, run_id, changes)}
    )


# At most this many failed tables are named in a failed run's cause (Step Functions
# keeps 32,768 characters of it); the run records hold every one.
MAX_FAILURES_NAMED = 20


def summarize_run(state_table: StateTable, run: Run) -> RunOutcome:
    """The run's outcome from every table's run record.

    RunFailedError names the failed tables and their causes. A table whose record did
    not reach its last phase ("done": lock released, or failure recorded) failed outside
    its own Catch: its child execution failed (see the Map Run), its lock may be held
    until the lease ends.
    """
    names = run.tables
    records = state.get_runs(state_table, run.pipeline, names, run.run_id)
    failed: list[tuple[str, str]] = []
    skipped: list[str] = []
    totals = {"rows_extracted": 0, "rows_loaded": 0}
    for name in names:
        record = records.get(name) or {}
        status, phase = record.get("status"), record.get("phase")
        if status == "succeeded" and phase == "done":
            for field in totals:
                totals[field] += int(record.get(field) or 0)
            continue
        if status == "skipped" and phase == "done":
            skipped.append(name)
            continue
        if status == "failed":
            failed.append((name, f"{record.get('error')}: {record.get('cause')}"))
        else:
            failed.append(
                (
                    name,
                    f"did not finish (status {status or 'none'}, phase {phase or 'none'}): its "
                    "child execution failed outside the table's Catch (see the SyncTables "
                    "Map Run); its lock is held until the lease ends",
                )
            )
    if failed:
        named = "; ".join(f"{name}: {cause}" for name, cause in failed[:MAX_FAILURES_NAMED])
        more = len(failed) - MAX_FAILURES_NAMED
        tail = f"; and {more} more (see `myshift runs show`)" if more > 0 else ""
        raise RunFailedError(f"{len(failed)} of {len(names)} tables failed: {named}{tail}")
    return RunOutcome(
        # Skipped: every table was another run's (an overlapping schedule), nothing failed.
        status="skipped" if names and len(skipped) == len(names) else "succeeded",
        run_id=run.run_id,
        tables=len(names),
        tables_skipped=len(skipped),
        **totals,
    )


# --- verification (see myshift.verification) ---------------------------------------------


def _document(data_prefix: str, item: TableRun, name: str) -> str:
    return verification.document_key(data_prefix, item.pipeline, item.table, item.run_id, name)


def _record_verification(state_table: StateTable, item: TableRun, record: dict[str, Any]) -> None:
    state.update_run(state_table, item.pipeline, item.table, item.run_id, {"verification": record})


def verify_source(
    conn: pymysql.Connection,
    s3: S3Client,
    state_table: StateTable,
    *,
    bucket: str,
    data_prefix: str,
    pipeline: PipelineConfig,
    item: TableRun,
) -> VerifyDecision:
    """The source's side of the verification, to S3; `{"verify": False}` when there is
    nothing to verify (recorded as skipped, with the reason)."""
    table = pipeline.table(item.table)
    schema = state.get_schema(state_table, pipeline.name, table.name) or {}
    watermark = state.get_watermark(state_table, pipeline.name, table.name)
    reason = None
    if item.mode == "backup_only":
        reason = "backup only: nothing was loaded"
    elif table.write_mode == "append":
        reason = "append keeps every version of a row"
    elif not schema.get("table"):
        reason = "the warehouse table does not exist yet"
    elif watermark["last_key"] is None:
        reason = "no watermark: no row is due yet"
    if reason is not None:
        _record_verification(
            state_table, item, verification.skipped(reason, table.deletes).as_dict()
        )
        return VerifyDecision(verify=False)
    document = verification.source_document(
        conn,
        table,
        schema=schema,
        target_schema=pipeline.target.schema_name,
        watermark_key=watermark["last_key"],
        soft_column=bool(schema.get("soft_delete_column")),
    )
    document["watermark"] = watermark["last_key"]
    verification.put_document(s3, bucket, _document(data_prefix, item, "source"), document)
    return VerifyDecision(verify=True)


def submit_verification(
    s3: S3Client,
    redshift_data: RedshiftDataClient,
    *,
    bucket: str,
    data_prefix: str,
    pipeline: PipelineConfig,
    item: TableRun,
) -> Statement:
    """Submit the warehouse's figures per range (a batch of SELECTs)."""
    key = _document(data_prefix, item, "source")
    return _submit_document(s3, redshift_data, bucket, key, "target_sqls", pipeline, item, "verify")


def compare_verification(
    s3: S3Client,
    redshift_data: RedshiftDataClient,
    *,
    bucket: str,
    data_prefix: str,
    pipeline: PipelineConfig,
    item: TableRun,
) -> Statement:
    """Compare the ranges' figures; submit the listing of the keys of those that differ."""
    document = verification.get_document(s3, bucket, _document(data_prefix, item, "source"))
    results = load.batch_rows(redshift_data, _statement_id(item.verify_statement))
    ranges = verification.compare_ranges(document, results)
    statements, ranges["covered"] = verification.narrowing_statements(document, ranges["narrow"])
    verification.put_document(s3, bucket, _document(data_prefix, item, "ranges"), ranges)
    if not statements:
        return submitted(None, poll_seconds=item.poll_seconds)
    statement_id = load.submit(
        redshift_data, pipeline.target, statements, f"myshift-narrow-{item.run_id}"
    )
    return submitted(statement_id, poll_seconds=item.poll_seconds)


def collect_narrowed(
    s3: S3Client,
    redshift_data: RedshiftDataClient,
    *,
    bucket: str,
    data_prefix: str,
    pipeline: PipelineConfig,
    item: TableRun,
) -> CollectedKeys:
    """The warehouse's keys of the differing ranges, to S3 (only this identity reads them)."""
    parts = load.batch_rows(redshift_data, _statement_id(item.keys_statement))
    rows = [row for part in parts for row in part]
    verification.put_document(s3, bucket, _document(data_prefix, item, "target-keys"), rows)
    return CollectedKeys(rows=len(rows))


def finish_verification(
    conn: pymysql.Connection,
    s3: S3Client,
    state_table: StateTable,
    *,
    bucket: str,
    data_prefix: str,
    pipeline: PipelineConfig,
    item: TableRun,
) -> tuple[verification.Verification, Verified]:
    """Narrow the differing ranges against the source, record the outcome; the deletes
    statements to S3 when the table's policy removes or marks deleted rows."""
    table = pipeline.table(item.table)
    schema = state.get_schema(state_table, pipeline.name, table.name) or {}
    document = verification.get_document(s3, bucket, _document(data_prefix, item, "source"))
    ranges = verification.get_document(s3, bucket, _document(data_prefix, item, "ranges"))
    counts: dict[str, int] | None = None
    deleted: list[list[Any]] = []
    documents = [_document(data_prefix, item, "source"), _document(data_prefix, item, "ranges")]
    if ranges["covered"]:
        documents.append(_document(data_prefix, item, "target-keys"))
        target = verification.get_document(s3, bucket, documents[-1])
        source = verification.source_rows(
            conn,
            table,
            schema=schema,
            document=document,
            ranges=ranges["covered"],
            watermark_key=document["watermark"],
        )
        counts, deleted = verification.classify(source, target)
    result = verification.outcome(document, ranges, counts, deletes=table.deletes)
    answer = Verified(deletes=0)
    if deleted and table.deletes != "keep":
        key = _document(data_prefix, item, "deletes")
        columns = verification.compared_columns(conn, table, schema["name_map"])
        sqls, covered = verification.delete_statements(
            columns,
            table=table,
            target_schema=pipeline.target.schema_name,
            keys_=deleted,
            load_key=load.load_id([key]),
            run_id=item.run_id,
            add_soft_column=not schema.get("soft_delete_column"),
        )
        verification.put_document(s3, bucket, key, {"sqls": sqls, "keys": covered})
        answer = Verified(deletes=covered)
    _record_verification(state_table, item, result.as_dict())
    verification.delete_documents(s3, bucket, documents)
    return result, answer


def submit_deletes(
    s3: S3Client,
    redshift_data: RedshiftDataClient,
    *,
    bucket: str,
    data_prefix: str,
    pipeline: PipelineConfig,
    item: TableRun,
) -> Statement:
    """Submit the removal (or marking) of the keys deleted in the source: one transaction."""
    key = _document(data_prefix, item, "deletes")
    return _submit_document(s3, redshift_data, bucket, key, "sqls", pipeline, item, "deletes")


def _submit_document(
    s3: S3Client,
    redshift_data: RedshiftDataClient,
    bucket: str,
    key: str,
    field: str,
    pipeline: PipelineConfig,
    item: TableRun,
    what: str,
) -> Statement:
    """Submit, as one batch, the statements a run's document holds under `field`."""
    document = verification.get_document(s3, bucket, key)
    name = f"myshift-{what}-{item.run_id}"
    statement_id = load.submit(redshift_data, pipeline.target, document[field], name)
    return submitted(statement_id, poll_seconds=item.poll_seconds)


def commit_deletes(
    state_table: StateTable,
    s3: S3Client,
    *,
    bucket: str,
    data_prefix: str,
    pipeline: PipelineConfig,
    item: TableRun,
) -> TableRun:
    """The deletes committed: counted in the run's verification; a soft table has its
    `_myshift_deleted_at` column from now on."""
    table = pipeline.table(item.table)
    run = state.get_run(state_table, pipeline.name, table.name, item.run_id) or {}
    applied = item.verified.deletes if item.verified else 0
    record = {**(run.get("verification") or {}), "deletes_applied": applied}
    _record_verification(state_table, item, record)
    if table.deletes == "soft":
        schema = state.get_schema(state_table, pipeline.name, table.name) or {}
        if not schema.get("soft_delete_column"):
            state.put_schema(
                state_table, pipeline.name, table.name, {**schema, "soft_delete_column": True}
            )
    verification.delete_documents(s3, bucket, [_document(data_prefix, item, "deletes")])
    return item.after("commit_deletes")
