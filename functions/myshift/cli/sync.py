"""`myshift sync pipeline`: start an execution, follow it, report its verification."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from myshift import state
from myshift.cli.resources import Resources
from myshift.config import PipelineConfig


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


# The CLI's polls of a run: soon after the start, then less and less often up to
# `poll_seconds`. A run that moves nothing ends in a fraction of a second on the local
# engine; a fixed 1-second poll made its user wait the rest of that second.
FIRST_POLL_SECONDS = 0.1
POLL_GROWTH = 1.5


def poll_intervals(poll_seconds: float) -> Iterator[float]:
    """The sleeps between polls: FIRST_POLL_SECONDS growing by POLL_GROWTH to
    `poll_seconds`, then `poll_seconds` (6 polls in the first 2 s at the default 1 s)."""
    interval = min(FIRST_POLL_SECONDS, poll_seconds)
    while True:
        yield interval
        interval = min(poll_seconds, interval * POLL_GROWTH)


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
    for interval in poll_intervals(poll_seconds):
        # The CLI reads the answer as a plain dict (readable_cause, the summaries).
        description = cast(dict[str, Any], sfn.describe_execution(executionArn=execution_arn))
        if on_poll:
            on_poll(description)
        if description["status"] != "RUNNING":
            return description
        if deadline is not None and time.monotonic() > deadline:
            return description
        time.sleep(interval)
    raise AssertionError("unreachable: poll_intervals never ends")


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
    """One table's outcome, with the verification the run recorded (both databases)."""

    table: str
    status: str
    rows_extracted: int = 0
    files: int = 0
    rows_loaded: int = 0
    source_rows: int | None = None
    target_rows: int | None = None
    duplicate_keys: int | None = None
    verification: dict[str, Any] | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Rows per chunk of this run, and whether a setting or the table's size chose it.
    chunk_rows: int | None = None
    chunk_rows_from: str | None = None

    @property
    def match(self) -> bool:
        """Succeeded, and verified: no row missing, duplicated or differing (rows newer
        than the watermark or deleted in the source are not a mismatch)."""
        return self.status == "succeeded" and (self.verification or {}).get("status") in (
            "verified",
            "skipped",
        )

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "match": self.match}


def verified_summaries(
    resources: Resources, pipeline: PipelineConfig, tables: list[str], run_id: str
) -> list[TableSummary]:
    """Per-table summaries from each table's run record, with the verification the
    workflow recorded after the table's load (the same for a scheduled run)."""
    results = state.get_runs(resources.table(), pipeline.name, tables, run_id)
    summaries: list[TableSummary] = []
    for name in tables:
        result = results.get(name, {})
        checked = result.get("verification")
        summary = TableSummary(
            table=name,
            status=result.get("status", "unknown"),
            rows_extracted=int(result.get("rows_extracted", 0)),
            files=int(result.get("files_extracted", 0)),
            rows_loaded=int(result.get("rows_loaded", 0)),
            verification=checked,
            chunk_rows=None if result.get("chunk_rows") is None else int(result["chunk_rows"]),
            chunk_rows_from=result.get("chunk_rows_from"),
        )
        if checked and checked.get("status") != "skipped":
            summary.source_rows = int(checked.get("source_rows", 0))
            summary.target_rows = int(checked.get("target_rows", 0))
            summary.duplicate_keys = int(checked.get("duplicated_rows", 0))
        summaries.append(summary)
    return summaries


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _wrong(summary: TableSummary) -> str:
    """What the verification found wrong (rows missing, duplicated, differing)."""
    checked = summary.verification or {}
    return ", ".join(
        f"{checked[field]:,} {label}"
        for field, label in (
            ("missing_rows", "missing"),
            ("duplicated_rows", "duplicated"),
            ("differing_rows", "differing"),
        )
        if checked.get(field)
    )


def _notes(summary: TableSummary) -> str:
    """A table's line under the summary: what is wrong, and what is not a mismatch but
    worth a look (rows changed after the run's bound, keys deleted in the source and the
    deletes the table's policy applied, a verification that did not run)."""
    checked = summary.verification or {}
    notes = [_wrong(summary)] if _wrong(summary) else []
    if checked.get("status") == "skipped":
        notes.append("not verified (" + str(checked.get("reason") or "skipped") + ")")
    if checked.get("newer_rows"):
        notes.append(f"{checked['newer_rows']:,} newer than the watermark")
    if checked.get("deleted_in_source"):
        applied = checked.get("deletes_applied")
        notes.append(
            f"{checked['deleted_in_source']:,} deleted in source"
            + (f" ({applied:,} applied)" if applied else "")
        )
    return "; ".join(notes)


SUMMARY_COLUMNS = (
    "table",
    "status",
    "extracted",
    "files",
    "loaded",
    "source",
    "target",
    "dup keys",
    "match",
)


def per_table_view(
    title: str,
    columns: tuple[str, ...],
    cells: list[list[str]],
    numbers: list[list[int | None]],
    footer: tuple[str, str, str],
) -> Table:
    """One row per table (30 tables are 30 lines), totals last when there are several.

    `columns` are the table's name, its status, one column per figure of `numbers`, then
    a verdict; `footer` is (table, status, verdict) of the totals row, whose figures are
    the column sums.
    """
    view = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        show_footer=len(cells) > 1,
    )
    figures = len(columns) - 3
    totals = [
        _number(sum(v for v in column if v is not None))
        if any(v is not None for v in column)
        else "-"
        for column in zip(*numbers, strict=True)
    ] or ["-"] * figures
    footer_cells = [footer[0], footer[1], *totals, footer[2]]
    for index, column in enumerate(columns):
        # Every name and figure whole, on one line (a narrow terminal wraps the line).
        widest = max(
            len(column), *(Text.from_markup(row[index]).cell_len for row in [*cells, footer_cells])
        )
        view.add_column(
            column,
            footer=footer_cells[index],
            justify="left" if index < 2 or index == len(columns) - 1 else "right",
            no_wrap=True,
            min_width=widest,
        )
    for row in cells:
        view.add_row(*row)
    return view


def summary_table(title: str, summaries: list[TableSummary]) -> Group:
    """A run's outcome, one row per table, totals last (`per_table_view`), then a line
    for each table with something to say (`_notes`).

    `extracted`, `files`, `loaded`: what this run moved; `source` / `target`: MySQL's rows
    up to the watermark and Redshift's, as the run's verification counted them; `dup
    keys`: keys held more than once in Redshift; `match`: verified (or nothing to verify)."""
    numbers = [
        [s.rows_extracted, s.files, s.rows_loaded, s.source_rows, s.target_rows, s.duplicate_keys]
        for s in summaries
    ]
    cells = [
        [
            s.table,
            s.status,
            *[_number(v) for v in figures],
            "[green]yes[/green]" if s.match else "[red]no[/red]",
        ]
        for s, figures in zip(summaries, numbers, strict=True)
    ]
    footer = (
        f"total ({len(summaries)})",
        f"{sum(s.status == 'succeeded' for s in summaries)} succeeded",
        f"{sum(s.match for s in summaries)} of {len(summaries)}",
    )
    view = per_table_view(title, SUMMARY_COLUMNS, cells, numbers, footer)
    notes = [f"{s.table}: {_notes(s)}" for s in summaries if _notes(s)]
    return Group(view, *notes)
