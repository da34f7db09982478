"""The execution input and the per-table items the state machine maps over."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from myshift.config import PipelineConfig, TableConfig
from myshift.errors import InputError
from myshift.payloads import Run, validation_message

RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


class ExecutionInput(BaseModel):
    """`{"pipeline", "tables", "limit", "max_chunks", "mode"}` as a run is started."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: str = Field(min_length=1, max_length=63)
    tables: list[str] | None = None
    limit: StrictInt | None = Field(default=None, gt=0, le=10_000_000)
    max_chunks: StrictInt | None = Field(default=None, gt=0, le=100_000)
    mode: Literal["full", "backup_only", "redshift_only"] = "full"
    backup_only: bool = False
    redshift_only: bool = False

    @model_validator(mode="after")
    def _one_mode(self) -> ExecutionInput:
        if self.tables and len(set(self.tables)) != len(self.tables):
            raise ValueError("a table is listed twice in tables")
        if self.backup_only and self.redshift_only:
            raise ValueError("backup_only and redshift_only exclude each other")
        flagged = (
            "backup_only" if self.backup_only else "redshift_only" if self.redshift_only else None
        )
        if flagged and self.mode not in ("full", flagged):
            raise ValueError(f"{flagged} contradicts mode {self.mode!r}")
        if flagged:
            object.__setattr__(self, "mode", flagged)
        return self


def parse_execution_input(raw: Any) -> ExecutionInput:
    """Validate the raw execution input; InputError names the field."""
    if not isinstance(raw, dict):
        raise InputError("execution input must be a JSON object")
    try:
        return ExecutionInput.model_validate(raw)
    except ValidationError as exc:
        raise InputError(validation_message(exc, "execution input")) from None


def refuse_partial_refresh(tables: list[TableConfig], max_chunks: int | None, mode: str) -> None:
    """InputError when `max_chunks` would cut short the full refresh of a `replace` table.

    A `replace` load deletes every target row and inserts only this run's rows: a run
    capped at M chunks would delete the rest of the table. (`limit` only sizes the
    chunks, and a `redshift_only` run plans nothing, so both are fine.)
    """
    if max_chunks is None or mode == "redshift_only":
        return
    replaced = [t.name for t in tables if t.write_mode == "replace"]
    if replaced:
        raise InputError(
            f"max_chunks cannot be used with write_mode replace tables ({', '.join(replaced)}): "
            "a full refresh cut short would delete the rows it did not reach; "
            "run them without max_chunks, or leave them out of tables"
        )


def check_run_id(run_id: str) -> None:
    """The execution name is the run id: InputError unless 1-80 of [A-Za-z0-9_-]."""
    if not RUN_ID.match(run_id):
        raise InputError(f"execution name {run_id!r} must be 1-80 of [A-Za-z0-9_-]")


def tables_at_once(pipeline: PipelineConfig, tables: int) -> int:
    """How many tables a run handles at once: 1 (sequential) or up to max_parallel_tables."""
    if pipeline.strategy == "sequential":
        return 1
    return min(pipeline.max_parallel_tables, tables)


def run_items(
    request: ExecutionInput, pipeline: PipelineConfig, run_id: str, poll_seconds: int
) -> Run:
    """The run as the state machine maps over it: run-wide values and the table names.

    Each table's item is built by the Distributed Map's ItemSelector from these values
    and completed from the pipeline file when its child execution takes the table's lock
    (`table_item`): the list holds names only, so 1,000 tables stay a small payload.
    """
    check_run_id(run_id)
    names = request.tables or [t.name for t in pipeline.tables]
    tables = [pipeline.table(name) for name in names]  # ConfigError for an unknown table
    refuse_partial_refresh(tables, request.max_chunks, request.mode)
    return Run(
        pipeline=pipeline.name,
        run_id=run_id,
        mode=request.mode,
        limit=request.limit or pipeline.chunk_rows,
        max_chunks=request.max_chunks,
        poll_seconds=poll_seconds,
        max_concurrent_tables=tables_at_once(pipeline, len(names)),
        tables=names,
    )


def table_item(pipeline: PipelineConfig, item: dict[str, Any]) -> dict[str, Any]:
    """A table's item completed from the pipeline file (write mode, lease, concurrency)."""
    table = pipeline.table(item["table"])
    return {
        **item,
        "max_concurrent_chunks": pipeline.max_concurrent_chunks,
        "strategy": pipeline.strategy,
        "write_mode": table.write_mode,
        "lock_lease_seconds": pipeline.lock_lease_seconds,
    }


TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
)


def parse_cursor_timestamp(text: str) -> str:
    """A cursor timestamp as given by an operator, normalized to MySQL's form.

    The cursor column holds the source's own (time zone-less) values, so a value with
    a zone or an offset is refused rather than silently shifted.
    """
    value = text.strip()
    if value.endswith("Z") or re.search(r"[+-]\d{2}:?\d{2}$", value.split(" ")[-1].split("T")[-1]):
        raise InputError(
            f"timestamp {text!r} has a time zone; give the source's local time, "
            "e.g. '2025-08-09 20:00:01'"
        )
    for fmt in TIMESTAMP_FORMATS:
        try:
            parsed = dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
        return parsed.strftime("%Y-%m-%d %H:%M:%S.%f")
    raise InputError(f"timestamp {text!r} is not 'YYYY-MM-DD HH:MM:SS[.ffffff]'")
