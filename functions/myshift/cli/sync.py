"""`myshift sync pipeline`: start an execution, follow it, verify the rows."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from myshift import state, verify
from myshift.cli.resources import Resources
from myshift.config import PipelineConfig
from myshift.tunnel import open_source


def readable_cause(description: dict[str, Any]) -> str:
    """The execution's cause: a Lambda error's message without its stack trace."""
    cause = str(description.get("cause") or "")
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return cause


def execution_name(pipeline: str) -> str:
    """A unique, sortable execution name (it is also the run id)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{pipeline}-{stamp}-{secrets.token_hex(3)}"[:80]


def start(resources: Resources, execution_input: dict[str, Any], name: str) -> str:
    """Start one execution; returns its ARN."""
    response = resources.client("stepfunctions").start_execution(
        stateMachineArn=resources.state_machine_arn, name=name, input=json.dumps(execution_input)
    )
    return str(response["executionArn"])


def wait(
    resources: Resources,
    execution_arn: str,
    on_poll: Any = None,
    poll_seconds: float = 1.0,
    timeout_seconds: float | None = None,
) -> dict[str, Any]:
    """Poll the execution until it ends (or `timeout_seconds` pass: still RUNNING);
    returns describe_execution's answer."""
    sfn = resources.client("stepfunctions")
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        if on_poll:
            on_poll(description)
        if description["status"] != "RUNNING":
            return description
        if deadline is not None and time.monotonic() > deadline:
            return description
        time.sleep(poll_seconds)


@dataclass
class TableProgress:
    """How far one table of a running execution is."""

    chunks_planned: int | None = None
    chunks_done: int = 0
    rows: int = 0
    bytes: int = 0
    phase: str = "waiting"


def progress(
    resources: Resources, pipeline: str, tables: list[str], run_id: str
) -> dict[str, TableProgress]:
    """Per-table progress from the state table: each table's run record, and the files
    its chunks have written so far (the tables run in child executions of their own)."""
    state_table = resources.table()
    records = state.get_runs(state_table, pipeline, tables, run_id)
    found: dict[str, TableProgress] = {}
    for name in tables:
        record = records.get(name)
        if record is None:
            continue
        entry = TableProgress(phase=str(record.get("phase") or record.get("status") or "?"))
        if record.get("chunk_count") is not None:
            entry.chunks_planned = int(record["chunk_count"])
        if entry.phase == "extracting":
            files = state.list_files(state_table, pipeline, name, run_id=run_id)
            entry.chunks_done = len(files)
            entry.rows = sum(int(f["rows"]) for f in files)
            entry.bytes = sum(int(f["bytes"]) for f in files)
        else:
            entry.chunks_done = int(record.get("files_extracted") or 0)
            entry.rows = int(record.get("rows_extracted") or 0)
            entry.bytes = int(record.get("bytes_extracted") or 0)
        found[name] = entry
    return found


@dataclass
class TableSummary:
    """One table's outcome, with the counts verified in both databases."""

    table: str
    status: str
    rows_extracted: int = 0
    files: int = 0
    rows_loaded: int = 0
    source_rows: int | None = None
    target_rows: int | None = None
    duplicate_keys: int | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def match(self) -> bool:
        return (
            self.status == "succeeded"
            and self.source_rows is not None
            and self.source_rows == self.target_rows
            and self.duplicate_keys == 0
        )

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "match": self.match}


def verified_summaries(
    resources: Resources,
    pipeline: PipelineConfig,
    tables: list[str],
    run_id: str,
    password: str,
) -> list[TableSummary]:
    """Per-table summaries: each table's run record, then rows counted on both sides.

    The source count is the rows up to the table's watermark; the target count is
    the warehouse table's rows; duplicate keys must be zero.
    """
    results = state.get_runs(resources.table(), pipeline.name, tables, run_id)
    redshift_data = resources.client("redshift-data")
    state_table = resources.table()
    summaries: list[TableSummary] = []
    # Through the pipeline's SSH bastion when it has one (source.ssh).
    with open_source(pipeline.source, password) as conn:
        for name in tables:
            table = pipeline.table(name)
            result = results.get(name, {})
            summary = TableSummary(
                table=name,
                status=result.get("status", "unknown"),
                rows_extracted=int(result.get("rows_extracted", 0)),
                files=int(result.get("files_extracted", 0)),
                rows_loaded=int(result.get("rows_loaded", 0)),
            )
            watermark = state.get_watermark(state_table, pipeline.name, name)
            schema = state.get_schema(state_table, pipeline.name, name)
            summary.source_rows = verify.source_rows_up_to(conn, table, watermark["last_key"])
            if schema and verify.table_exists(redshift_data, pipeline, table):
                summary.target_rows, summary.duplicate_keys = verify.target_counts(
                    redshift_data, pipeline, table, schema["primary_key"]
                )
            else:
                summary.target_rows, summary.duplicate_keys = 0, 0
            summaries.append(summary)
    return summaries
