"""`myshift reconcile`: start the reconcile workflow, follow it, print each table's outcome."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from rich.table import Table

from myshift import reconcile as domain
from myshift import state
from myshift.cli import sync as sync_run
from myshift.cli.common import CliContext, console
from myshift.cli.resources import Resources
from myshift.errors import ConfigError

EXIT_DIFFERS = 1
# Statuses after which nothing is left to do: the table equals MySQL, was fixed, or is
# not reconciled by design (append/replace tables, nothing loaded yet: see `reason`).
_DONE = ("equal", "fixed", "skipped")
_STYLE = {"equal": "green", "fixed": "green", "skipped": "yellow"}


def start(resources: Resources, request: domain.ReconcileInput, name: str) -> str:
    """Start the reconciliation; returns its execution ARN."""
    if not resources.reconcile_state_machine_arn:
        raise ConfigError(
            "this deployment has no reconcile state machine (output ReconcileStateMachineArn): "
            "deploy the current stack"
        )
    response = resources.client("stepfunctions").start_execution(
        stateMachineArn=resources.reconcile_state_machine_arn,
        name=name,
        input=json.dumps(request.model_dump(exclude_none=True)),
    )
    return str(response["executionArn"])


def outcomes(
    resources: Resources, pipeline: str, tables: list[str], run_id: str, description: dict[str, Any]
) -> list[dict[str, Any]]:
    """Each table's record (DynamoDB); a table without one failed with the execution."""
    records = state.get_runs(
        resources.table(), pipeline, tables, run_id, prefix=state.RECONCILE_PREFIX
    )
    found = []
    for name in tables:
        record = dict(records.get(name) or {"status": "failed"})
        if record.get("status") == "running" or (
            description["status"] != "SUCCEEDED" and record.get("phase") != "done"
        ):
            record["status"] = "failed"
            record.setdefault(
                "cause", sync_run.readable_cause(description) or description["status"]
            )
        found.append({"table": name, **{k: v for k, v in record.items() if k not in ("pk", "sk")}})
    return found


# (column, record field): what each table's row shows, after its name and status.
FIGURES = (
    ("ranges", "ranges"),
    ("equal", "verified_rows"),
    ("newer", "newer_rows"),
    ("missing", "missing_rows"),
    ("differing", "differing_rows"),
    ("dup", "duplicated_rows"),
    ("deleted", "deleted_in_source"),
    ("unnamed", "ranges_left"),
    ("fixed", "rows_fixed"),
    ("deletes", "deletes_applied"),
)


def outcome_table(title: str, records: list[dict[str, Any]]) -> Table:
    """One row per table, totals last: rows equal, newer than the watermark (not a
    difference), missing / differing / duplicated in the warehouse, deleted in source,
    ranges left unnamed, rows fixed and deletes applied by `--fix`."""
    numbers: list[list[int | None]] = [
        [None if r.get(field) is None else int(r[field]) for _, field in FIGURES] for r in records
    ]
    cells = [
        [
            r["table"],
            f"[{_STYLE.get(r['status'], 'bold red')}]{r['status']}[/]",
            *["-" if v is None else f"{v:,}" for v in figures],
            "[green]yes[/green]" if r["status"] in _DONE else "[red]no[/red]",
        ]
        for r, figures in zip(records, numbers, strict=True)
    ]
    footer = (
        f"total ({len(records)})",
        f"{sum(r['status'] in ('equal', 'fixed') for r in records)} equal",
        f"{sum(r['status'] in _DONE for r in records)} of {len(records)}",
    )
    columns = ("table", "status", *(column for column, _ in FIGURES), "done")
    return sync_run.per_table_view(title, columns, cells, numbers, footer)


def print_outcomes(name: str, records: list[dict[str, Any]], elapsed: float) -> None:
    """The outcome table (`outcome_table`); the first named keys of each table below."""
    console.print(outcome_table(f"reconcile {name} in {elapsed:.1f}s", records), crop=False)
    for record in records:
        reason = record.get("reason") or record.get("cause")
        if reason:
            console.print(f"{record['table']}: {reason}")
        for kind, keys in (record.get("named") or {}).items():
            if keys:
                shown = ", ".join(json.dumps(k[0] if len(k) == 1 else k) for k in keys[:10])
                more = f" (first {min(10, len(keys))})" if len(keys) > 10 else ""
                console.print(f"{record['table']}: {kind} keys{more}: {shown}")


@click.command()
@click.option("-p", "--pipeline", "pipeline_name", required=True, help="Pipeline name.")
@click.option(
    "-t", "--table", "tables", multiple=True, help="database.table (repeatable; default: all)."
)
@click.option(
    "--fix",
    is_flag=True,
    help="Extract the rows that differ again and load them as a sync does; remove or mark "
    "rows deleted in the source per the table's deletes policy.",
)
@click.option(
    "--timeout",
    type=click.IntRange(30, 86_400),
    default=12 * 3600,
    show_default=True,
    help="Seconds to wait for the workflow (it goes on after that).",
)
@click.pass_obj
def reconcile(
    ctx: CliContext, pipeline_name: str, tables: tuple[str, ...], fix: bool, timeout: int
) -> None:
    """Compare every column of every row of the tables, MySQL against Redshift.

    Runs the reconcile workflow: per key range a checksum of every column on both sides,
    differing ranges split until the rows are named (missing, differing, duplicated in
    the warehouse, deleted in the source). Rows changed after the table's watermark are
    newer, not a difference. Exit 1 when rows differ (and --fix was not given or did not
    fix them all), a table failed, or a sync held a table (try again).
    """
    pipeline = ctx.pipeline(pipeline_name)  # a pipeline that does not load stops here
    names = list(tables) or [t.name for t in pipeline.tables]
    for name in names:
        pipeline.table(name)  # ConfigError (exit 2) before anything starts
    request = domain.parse_input({"pipeline": pipeline_name, "tables": names, "fix": fix})
    resources = ctx.resources()
    name = sync_run.execution_name(f"reconcile-{pipeline_name}")
    started = time.monotonic()
    arn = start(resources, request, name)
    try:
        description = sync_run.wait(resources, arn, timeout_seconds=timeout)
    except KeyboardInterrupt:
        click.echo(f"\ndetached: reconciliation {name} goes on", err=True)
        sys.exit(130)
    records = outcomes(resources, pipeline_name, names, name, description)
    settled = description["status"] == "SUCCEEDED" and all(r["status"] in _DONE for r in records)
    if ctx.as_json:
        click.echo(
            json.dumps(
                {
                    "execution": name,
                    "status": description["status"],
                    "fix": fix,
                    "elapsed_seconds": round(time.monotonic() - started, 1),
                    "tables": records,
                    "reconciled": settled,
                },
                indent=2,
                default=str,
            )
        )
    else:
        print_outcomes(name, records, time.monotonic() - started)
    sys.exit(0 if settled else EXIT_DIFFERS)
