"""`myshift watermark ...` and `myshift watermark-count ...`: see and fix sync state.

Every change is a conditional write on the watermark's version, so a concurrent run
is never overwritten silently; counts are absolute per run (a reset zeroes them).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from rich.table import Table

from myshift import runtime, state, verify
from myshift.cli.common import CliContext, console, table_options
from myshift.config import PipelineConfig
from myshift.tunnel import open_source
from myshift.workflow import parse_cursor_timestamp

EXIT_FAILED = 1


def _show(ctx: CliContext, title: str, values: dict[str, Any]) -> None:
    if ctx.as_json:
        click.echo(json.dumps(values, indent=2, default=str))
        return
    table = Table(title=title, show_header=False)
    for key, value in values.items():
        table.add_row(key, "-" if value is None else str(value))
    console.print(table)


def _configured(ctx: CliContext, pipeline_name: str, table_name: str) -> PipelineConfig:
    """The pipeline, once it is known to sync the table (ConfigError otherwise)."""
    pipeline = ctx.pipeline(pipeline_name)
    pipeline.table(table_name)
    return pipeline


def _sides(side: str) -> tuple[bool, bool]:
    """Whether `--side` names the MySQL side, the Redshift side (`both`: each)."""
    return side in ("both", "mysql"), side in ("both", "redshift")


def _change(
    ctx: CliContext, pipeline: PipelineConfig, table_name: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Write `changes` to the watermark, conditional on the version just read."""
    table_state = ctx.resources().table()
    current = state.get_watermark(table_state, pipeline.name, table_name)
    return state.put_watermark(table_state, pipeline.name, table_name, current["version"], changes)


@click.group()
def watermark() -> None:
    """Inspect and change watermarks (where the next run starts)."""


@watermark.command("get")
@table_options
@click.option("--show-files", is_flag=True, help="Also list the table's files and their status.")
@click.pass_obj
def watermark_get(ctx: CliContext, pipeline_name: str, table_name: str, show_files: bool) -> None:
    """Show a table's watermark: both sides and the last run's counts."""
    pipeline = _configured(ctx, pipeline_name, table_name)
    table_state = ctx.resources().table()
    mark = state.get_watermark(table_state, pipeline.name, table_name)
    if not show_files:
        _show(ctx, f"watermark {pipeline.name} {table_name}", mark)
        return
    files = state.list_files(table_state, pipeline.name, table_name)
    if ctx.as_json:
        click.echo(json.dumps({**mark, "files": files}, indent=2, default=str))
        return
    _show(ctx, f"watermark {pipeline.name} {table_name}", mark)
    listing = Table(title=f"{len(files)} files")
    for column in ("file", "status", "rows", "bytes"):
        listing.add_column(column, justify="right" if column in ("rows", "bytes") else "left")
    for file in files:
        listing.add_row(file["s3_key"], file["status"], f"{file['rows']:,}", f"{file['bytes']:,}")
    console.print(listing)


@watermark.command("set")
@table_options
@click.option(
    "--timestamp",
    required=True,
    help="Cursor value: the next run reads rows whose cursor is after it, in the "
    "source's own time ('2025-08-09 20:00:01').",
)
@click.option(
    "--side",
    type=click.Choice(["both", "mysql", "redshift"]),
    default="both",
    show_default=True,
    help="mysql: where extraction resumes; redshift: which extracted files "
    "--redshift-only loads (those with newer rows).",
)
@click.pass_obj
def watermark_set(
    ctx: CliContext, pipeline_name: str, table_name: str, timestamp: str, side: str
) -> None:
    """Move a table's watermark to a timestamp (e.g. a fresh sync from a date)."""
    value = parse_cursor_timestamp(timestamp)
    pipeline = _configured(ctx, pipeline_name, table_name)
    mysql_side, redshift_side = _sides(side)
    changes: dict[str, Any] = {}
    if mysql_side:
        # A key of the cursor alone: the next run starts strictly after this value.
        changes.update(last_key=[value], last_mysql_data_timestamp=value, mysql_status="pending")
    if redshift_side:
        changes.update(redshift_from_timestamp=value)
    updated = _change(ctx, pipeline, table_name, changes)
    _show(ctx, f"watermark {pipeline.name} {table_name} set", updated)


@watermark.command("reset")
@table_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def watermark_reset(ctx: CliContext, pipeline_name: str, table_name: str, yes: bool) -> None:
    """Start the table over: no key, every count zero (the next run reads everything).

    Extracted files not loaded yet are superseded (never loaded; s3clean deletes them).
    Refused while a run holds the table's lock.
    """
    pipeline = _configured(ctx, pipeline_name, table_name)
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("no terminal to confirm on: pass --yes to reset")
        click.confirm(f"Reset the watermark of {pipeline.name} {table_name}?", abort=True)
    updated, superseded = state.reset_table(
        ctx.resources().table(), pipeline.name, table_name, int(time.time())
    )
    _show(
        ctx,
        f"watermark {pipeline.name} {table_name} reset",
        {**updated, "files_superseded": superseded},
    )


@watermark.command("list")
@click.option("-p", "--pipeline", "pipeline_name", required=True, help="Pipeline name.")
@click.pass_obj
def watermark_list(ctx: CliContext, pipeline_name: str) -> None:
    """Every table's watermark in one view."""
    pipeline = ctx.pipeline(pipeline_name)
    table_state = ctx.resources().table()
    marks = {
        t.name: state.get_watermark(table_state, pipeline.name, t.name) for t in pipeline.tables
    }
    if ctx.as_json:
        click.echo(json.dumps(marks, indent=2, default=str))
        return
    listing = Table(title=f"watermarks of {pipeline.name}")
    columns = ["table", "last cursor", "mysql", "extracted", "redshift", "loaded", "last run"]
    for column in columns:
        listing.add_column(column)
    for name, mark in marks.items():
        listing.add_row(
            name,
            str(mark["last_mysql_data_timestamp"] or "-"),
            mark["mysql_status"],
            f"{mark['mysql_rows_extracted']:,}",
            mark["redshift_status"],
            f"{mark['redshift_rows_loaded']:,}",
            str(mark["last_run_id"] or "-"),
        )
    console.print(listing)


@click.group("watermark-count")
def watermark_count() -> None:
    """Check and set the row counts kept with the watermark."""


@watermark_count.command("set-count")
@table_options
@click.option("--count", type=click.IntRange(min=0), required=True, help="Rows (absolute).")
@click.option(
    "--mode",
    type=click.Choice(["absolute"]),
    default="absolute",
    show_default=True,
    help="Counts are absolute per run; there is no incremental mode.",
)
@click.option(
    "--side", type=click.Choice(["both", "mysql", "redshift"]), default="both", show_default=True
)
@click.pass_obj
def set_count(
    ctx: CliContext, pipeline_name: str, table_name: str, count: int, mode: str, side: str
) -> None:
    """Set the last run's extracted and/or loaded count."""
    pipeline = _configured(ctx, pipeline_name, table_name)
    mysql_side, redshift_side = _sides(side)
    changes: dict[str, Any] = {}
    if mysql_side:
        changes["mysql_rows_extracted"] = count
    if redshift_side:
        changes["redshift_rows_loaded"] = count
    updated = _change(ctx, pipeline, table_name, changes)
    _show(ctx, f"counts of {pipeline.name} {table_name} set ({mode})", updated)


@watermark_count.command("validate-counts")
@table_options
@click.pass_obj
def validate_counts(ctx: CliContext, pipeline_name: str, table_name: str) -> None:
    """Compare MySQL (rows up to the watermark), Redshift and the watermark's counts."""
    pipeline = ctx.pipeline(pipeline_name)
    table = pipeline.table(table_name)
    password = runtime.source_password(pipeline.source)
    resources = ctx.resources()
    table_state = resources.table()
    mark = state.get_watermark(table_state, pipeline.name, table_name)
    schema = state.get_schema(table_state, pipeline.name, table_name)
    # Through the pipeline's SSH bastion when it has one (source.ssh).
    with open_source(pipeline.source, password) as conn:
        source_rows = verify.source_rows_up_to(conn, table, mark["last_key"])
    redshift_data = resources.client("redshift-data")
    target_rows, duplicates = 0, 0
    if schema and verify.table_exists(redshift_data, pipeline, table):
        target_rows, duplicates = verify.target_counts(
            redshift_data, pipeline, table, schema["primary_key"]
        )
    checks = {
        "mysql rows up to watermark = redshift rows": source_rows == target_rows,
        "no duplicate keys in redshift": duplicates == 0,
        "last run: extracted = loaded": mark["mysql_rows_extracted"]
        == mark["redshift_rows_loaded"],
    }
    report = {
        "mysql_rows_up_to_watermark": source_rows,
        "redshift_rows": target_rows,
        "redshift_duplicate_keys": duplicates,
        "watermark_mysql_rows_extracted": mark["mysql_rows_extracted"],
        "watermark_redshift_rows_loaded": mark["redshift_rows_loaded"],
        "differ": [name for name, ok in checks.items() if not ok],
    }
    if ctx.as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _show(
            ctx,
            f"counts of {pipeline.name} {table_name}",
            {k: v for k, v in report.items() if k != "differ"},
        )
        for name, ok in checks.items():
            console.print(f"{'[green]ok[/green]' if ok else '[red]DIFFERS[/red]'}  {name}")
    sys.exit(0 if not report["differ"] else EXIT_FAILED)
