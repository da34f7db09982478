"""`myshift s3clean list|clean|clean-all`: see and delete a table's files on S3.

Only loaded files are deleted unless `--include-unloaded` is given; every command
says what it deletes (or would): files and bytes per table. Registered in `main.py`
with `cli.add_command(s3clean)`; the commands get main's `Context` as their object.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from myshift import clean
from myshift.cli.common import CliContext, console, table_options
from myshift.cli.resources import Resources
from myshift.config import load_pipelines
from myshift.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])
EXIT_FAILED = 1


def _stdin_is_terminal() -> bool:
    """Whether someone can answer a confirmation (a function, so tests can stand in)."""
    return sys.stdin.isatty()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _data_prefix(command: F) -> F:
    return click.option(
        "--data-prefix",
        envvar="MYSHIFT_DATA_PREFIX",
        default="data",
        show_default=True,
        help="S3 prefix of the data files (the functions' MYSHIFT_DATA_PREFIX).",
    )(command)


def _table_scope(
    ctx: CliContext, pipeline_name: str, table_name: str, data_prefix: str
) -> tuple[Resources, dict[str, Any]]:
    """Check the table is configured; the resources and the arguments `clean` takes for it."""
    pipeline = ctx.pipeline(pipeline_name)
    pipeline.table(table_name)
    resources = ctx.resources()
    scope = {
        "s3": resources.client("s3"),
        "state_table": resources.table(),
        "bucket": resources.bucket,
        "data_prefix": data_prefix,
        "pipeline": pipeline,
        "table": table_name,
    }
    return resources, scope


def _number(value: int) -> str:
    return f"{value:,}"


def _age(seconds: float) -> str:
    """Compact age: `3d 4h`, `5h 2m`, `12m`."""
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, (minutes % 1440) // 60, minutes % 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins}m"
    return f"{mins}m"


@click.group("s3clean")
def s3clean() -> None:
    """List and delete a table's files on S3 (only loaded or abandoned ones, unless told
    otherwise; abandoned: written by a run that failed before committing them)."""


# --- list -----------------------------------------------------------------------


@s3clean.command("list")
@table_options
@_data_prefix
@click.pass_obj
def list_files(ctx: CliContext, pipeline_name: str, table_name: str, data_prefix: str) -> None:
    """List a table's files on S3: status (loaded, abandoned, extracted, untracked,
    manifest), size, age."""
    resources, scope = _table_scope(ctx, pipeline_name, table_name, data_prefix)
    found = clean.inventory(**scope)
    now = _now()
    by_status: dict[str, dict[str, int]] = {}
    for file in found.files:
        entry = by_status.setdefault(file.status, {"files": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += file.size
    total_bytes = sum(f.size for f in found.files)
    if ctx.as_json:
        record = {
            "pipeline": found.pipeline,
            "table": found.table,
            "bucket": resources.bucket,
            "prefix": found.prefix,
            "files": [f.as_dict(now) for f in found.files],
            "by_status": by_status,
            "total": {"files": len(found.files), "bytes": total_bytes},
            "missing_objects": [str(i.get("s3_key")) for i in found.missing],
        }
        click.echo(json.dumps(record, indent=2))
        return
    table = Table(title=f"s3://{resources.bucket}/{found.prefix}")
    table.add_column("file", overflow="fold")
    table.add_column("status")
    table.add_column("size", justify="right")
    table.add_column("bytes", justify="right")
    table.add_column("age", justify="right")
    for file in found.files:
        table.add_row(
            file.name,
            file.status,
            clean.human_bytes(file.size),
            _number(file.size),
            _age(file.age(now).total_seconds()),
        )
    console.print(table)
    for status, entry in sorted(by_status.items()):
        console.print(
            f"{status}: {_number(entry['files'])} files, {clean.human_bytes(entry['bytes'])} "
            f"({_number(entry['bytes'])} bytes)"
        )
    console.print(
        f"total: {_number(len(found.files))} files, {clean.human_bytes(total_bytes)} "
        f"({_number(total_bytes)} bytes)"
    )
    if found.missing:
        console.print(
            f"[yellow]{len(found.missing)} state item(s) name files that are gone from S3[/yellow]"
        )


# --- clean ----------------------------------------------------------------------


def _report(
    cleanups: list[clean.TableCleanup],
    as_json: bool,
    options: dict[str, Any],
    out: Console | None = None,
) -> None:
    """Print what was (or would be) deleted, per table and in total; errors on stderr."""
    out = out or console
    dry_run = all(c.dry_run for c in cleanups)
    if as_json:
        record = {
            **options,
            "dry_run": dry_run,
            "tables": [c.as_dict() for c in cleanups],
            "total": clean.totals(cleanups),
        }
        click.echo(json.dumps(record, indent=2))
    else:
        title = "would delete (dry run)" if dry_run else "deleted"
        table = Table(title=title)
        for column in ("pipeline", "table", "files", "size", "bytes", "kept"):
            table.add_column(column, justify="left" if column in ("pipeline", "table") else "right")

        def counts(c: clean.TableCleanup) -> tuple[int, int]:
            return (c.files, c.bytes) if c.dry_run else (c.deleted_files, c.deleted_bytes)

        for c in cleanups:
            files, size = counts(c)
            table.add_row(
                c.pipeline,
                c.table,
                _number(files),
                clean.human_bytes(size),
                _number(size),
                _number(len(c.kept)),
            )
        if len(cleanups) > 1:
            files = sum(counts(c)[0] for c in cleanups)
            size = sum(counts(c)[1] for c in cleanups)
            kept = sum(len(c.kept) for c in cleanups)
            table.add_row(
                "total",
                f"{len(cleanups)} tables",
                _number(files),
                clean.human_bytes(size),
                _number(size),
                _number(kept),
                style="bold",
            )
        out.print(table)
        stale = sum(len(c.stale_items) for c in cleanups)
        if stale:
            verb = "would remove" if dry_run else "removed"
            out.print(f"{verb} {stale} state item(s) of files already gone from S3")
        if any(c.kept for c in cleanups):
            out.print(
                "kept: files not loaded yet (extracted, or untracked: a run may be writing "
                "them) and each table's newest manifest; --include-unloaded deletes them too"
            )
    errors = [e for c in cleanups for e in c.errors]
    for error in errors[:10]:
        click.echo(f"error: not deleted: {error}", err=True)
    if errors:
        click.echo(f"error: S3 did not delete {len(errors)} object(s)", err=True)
        sys.exit(EXIT_FAILED)


_INCLUDE_UNLOADED_HELP = (
    "Also delete files not loaded into Redshift yet (extracted or untracked) and the "
    "newest manifest. Their rows are lost to the warehouse, and a run in progress may fail."
)


def _deletion_options(command: F) -> F:
    """`--dry-run`, `--include-unloaded` and `--data-prefix` (clean and clean-all)."""
    command = _data_prefix(command)
    command = click.option("--include-unloaded", is_flag=True, help=_INCLUDE_UNLOADED_HELP)(command)
    return click.option(
        "--dry-run", is_flag=True, help="Show what would be deleted; change nothing."
    )(command)


@s3clean.command("clean")
@table_options
@click.option("--older-than", help="Only files older than this: 7d, 12h or 30m (default: any).")
@click.option(
    "--pattern",
    help="Glob on the file name under the table prefix, e.g. 'run=demo-2024*' or "
    "'manifests/*' ('*' also matches '/').",
)
@_deletion_options
@click.pass_obj
def clean_table(
    ctx: CliContext,
    pipeline_name: str,
    table_name: str,
    older_than: str | None,
    pattern: str | None,
    dry_run: bool,
    include_unloaded: bool,
    data_prefix: str,
) -> None:
    """Delete one table's loaded and abandoned files (and old manifests) from S3 and state."""
    age = clean.parse_age(older_than) if older_than is not None else None
    if pattern is not None and not pattern.strip():
        raise InputError("--pattern must not be empty")
    _, scope = _table_scope(ctx, pipeline_name, table_name, data_prefix)
    result = clean.clean_table(
        **scope,
        now=_now(),
        older_than=age,
        pattern=pattern,
        include_unloaded=include_unloaded,
        dry_run=dry_run,
    )
    options = {
        "older_than": older_than,
        "pattern": pattern,
        "include_unloaded": include_unloaded,
    }
    _report([result], ctx.as_json, options)


@s3clean.command("clean-all")
@click.option("--older-than", required=True, help="Only files older than this: 7d, 12h or 30m.")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@_deletion_options
@click.pass_obj
def clean_all(
    ctx: CliContext,
    older_than: str,
    force: bool,
    dry_run: bool,
    include_unloaded: bool,
    data_prefix: str,
) -> None:
    """Delete old loaded and abandoned files of every table of every pipeline (asks first)."""
    age = clean.parse_age(older_than)
    # Refuse before looking at anything: the same answer whatever S3 holds today.
    if not (force or dry_run) and not _stdin_is_terminal():
        raise InputError(
            "clean-all asks for confirmation and there is no terminal; "
            "pass --force (or --dry-run to see what it would delete)"
        )
    pipelines = list(load_pipelines(ctx.pipelines_dir()).values())
    resources = ctx.resources()
    s3, state_table = resources.client("s3"), resources.table()
    plans = clean.plan_pipelines(
        s3,
        state_table,
        bucket=resources.bucket,
        data_prefix=data_prefix,
        pipelines=pipelines,
        now=_now(),
        older_than=age,
        include_unloaded=include_unloaded,
    )
    options = {"older_than": older_than, "include_unloaded": include_unloaded}
    if dry_run:
        _report(plans, ctx.as_json, options)
        return
    if not force and any(p.files or p.stale_items for p in plans):
        # The plan and the question go to stderr: stdout stays the result (or its JSON).
        _report(plans, as_json=False, options=options, out=Console(stderr=True))
        size = sum(p.bytes for p in plans)
        click.confirm(
            f"Delete {_number(sum(p.files for p in plans))} files "
            f"({clean.human_bytes(size)}) from {len(plans)} tables in s3://{resources.bucket}?",
            default=False,
            abort=True,
            err=True,
        )
    done = clean.execute_all(s3, state_table, bucket=resources.bucket, cleanups=plans)
    _report(done, ctx.as_json, options)
