"""`myshift runs list|show`: recent runs, their status, rows and errors."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from botocore.exceptions import ClientError
from rich.table import Table

from myshift import state
from myshift.cli import sync as sync_run
from myshift.cli.common import CliContext, console
from myshift.errors import InputError
from myshift.workflow import RUN_ID


@click.group()
def runs() -> None:
    """Recent runs: status, rows and errors per table."""


@runs.command("list")
@click.option("-p", "--pipeline", "pipeline_name", required=True, help="Pipeline name.")
@click.option("-t", "--table", "tables", multiple=True, help="database.table (default: all).")
@click.option("--limit", type=click.IntRange(1, 200), default=10, show_default=True)
@click.pass_obj
def runs_list(ctx: CliContext, pipeline_name: str, tables: tuple[str, ...], limit: int) -> None:
    """The newest runs of each table of a pipeline."""
    pipeline = ctx.pipeline(pipeline_name)
    names = list(tables) or [t.name for t in pipeline.tables]
    for name in names:
        pipeline.table(name)
    table_state = ctx.resources().table()
    records: list[dict[str, Any]] = []
    for name in names:
        for record in state.list_runs(table_state, pipeline.name, name, limit=200):
            records.append({**record, "table": name})
    records.sort(key=lambda r: str(r.get("finished_at") or r.get("started_at") or ""), reverse=True)
    records = records[: limit * len(names)]
    if ctx.as_json:
        click.echo(json.dumps(records, indent=2, default=str))
        return
    view = Table(title=f"runs of {pipeline.name}")
    for column in ("run", "table", "status", "extracted", "loaded", "finished", "error"):
        view.add_column(column, justify="right" if column in ("extracted", "loaded") else "left")
    for r in records:
        view.add_row(
            str(r["run_id"]),
            r["table"],
            str(r.get("status", "?")),
            f"{int(r.get('rows_extracted', 0)):,}",
            f"{int(r.get('rows_loaded', 0)):,}",
            str(r.get("finished_at") or "-"),
            str(r.get("cause") or "")[:80],
        )
    console.print(view)


@runs.command("show")
@click.argument("execution")
@click.pass_obj
def runs_show(ctx: CliContext, execution: str) -> None:
    """One run (execution name): status, cause, and each table's record or progress."""
    if not RUN_ID.match(execution):
        raise InputError(f"execution name {execution!r} must be 1-80 of [A-Za-z0-9_-]")
    resources = ctx.resources()
    arn = resources.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{execution}"
    try:
        description = resources.client("stepfunctions").describe_execution(executionArn=arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            raise InputError(f"no run named {execution!r}") from None
        raise
    run_input = json.loads(description.get("input") or "{}")
    pipeline = ctx.pipeline(str(run_input.get("pipeline", "")))
    names = run_input.get("tables") or [t.name for t in pipeline.tables]
    table_state = resources.table()
    tables: dict[str, Any] = {}
    for name in names:
        records = [r for r in state.list_runs(table_state, pipeline.name, name, 200)]
        tables[name] = next((r for r in records if r["run_id"] == execution), None)
    running = description["status"] == "RUNNING"
    progress = sync_run.progress(resources, pipeline.name, names, execution) if running else {}
    report = {
        "execution": execution,
        "status": description["status"],
        "started": str(description.get("startDate", "")),
        "stopped": str(description.get("stopDate", "") or ""),
        "input": run_input,
        "error": description.get("error"),
        "cause": description.get("cause"),
        "tables": tables,
        "progress": {k: v.__dict__ for k, v in progress.items()},
    }
    if ctx.as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        view = Table(title=f"run {execution}: {description['status']}", show_header=False)
        for key in ("started", "stopped", "error", "cause"):
            if report[key]:
                view.add_row(key, str(report[key]))
        for name, record in tables.items():
            entry = progress.get(name)
            if record:
                view.add_row(
                    name,
                    f"{record.get('status')}: {int(record.get('rows_extracted', 0)):,} extracted, "
                    f"{int(record.get('rows_loaded', 0)):,} loaded"
                    + (f" ({record.get('cause')})" if record.get("cause") else ""),
                )
            elif entry:
                view.add_row(
                    name, f"{entry.phase}: {entry.chunks_done} chunks, {entry.rows:,} rows"
                )
            else:
                view.add_row(name, "no record yet")
        console.print(view)
    sys.exit(1 if description["status"] in ("FAILED", "TIMED_OUT", "ABORTED") else 0)
