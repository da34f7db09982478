"""The `myshift` operator CLI.

Exit codes: 0 success; 1 the run failed or its verification found rows missing,
duplicated or differing in the warehouse; 2 bad input,
configuration or environment (one line on stderr says what).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from myshift.cli import sync as sync_run
from myshift.cli.common import console
from myshift.cli.resources import (
    Resources,
    local_pipelines_dir,
    local_record,
    local_resources,
    local_state_file,
    stack_resources,
    state_dir,
)
from myshift.config import PipelineConfig, load_pipeline, stage_pipelines_dir
from myshift.errors import MyshiftError
from myshift.workflow import parse_execution_input, refuse_partial_refresh

EXIT_FAILED = 1
EXIT_USAGE = 2


class Context:
    """Options shared by every command."""

    def __init__(self, local: bool, stage: str, as_json: bool) -> None:
        self.local = local
        self.stage = stage
        self.as_json = as_json

    def resources(self) -> Resources:
        return local_resources() if self.local else stack_resources(self.stage)

    def pipelines_dir(self) -> Path:
        """./pipelines (or $MYSHIFT_PIPELINES_DIR); for a deployed stage its own
        `<dir>/<stage>/` when that exists, as app.py deploys it; for the local engine the
        directory it runs (refused when $MYSHIFT_PIPELINES_DIR names another)."""
        configured = os.environ.get("MYSHIFT_PIPELINES_DIR")
        base = Path(configured or "pipelines")
        if not self.local:
            return stage_pipelines_dir(base, self.stage)
        return local_pipelines_dir(configured) or base

    def pipeline(self, name: str) -> PipelineConfig:
        return load_pipeline(self.pipelines_dir(), name)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print one line on stderr and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# Commands imported when used (`module:attribute`): `sync pipeline` does not pay for
# pyarrow (reconcile), paramiko (watermark's SSH tunnel) and the rest at each start.
LAZY_COMMANDS = {
    "doctor": "myshift.cli.doctor:doctor",
    "reconcile": "myshift.cli.reconcile:reconcile",
    "runs": "myshift.cli.runs:runs",
    "s3clean": "myshift.cli.s3clean:s3clean",
    "watermark": "myshift.cli.watermark:watermark",
    "watermark-count": "myshift.cli.watermark:watermark_count",
}


class _Group(click.Group):
    """Turns myshift errors into one line and exit code 2; imports LAZY_COMMANDS when
    one of them is called (or listed by --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, attribute = LAZY_COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MyshiftError as exc:
            fail(str(exc))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--local/--aws",
    "local",
    default=lambda: os.environ.get("MYSHIFT_LOCAL", "") == "1",
    help="Talk to the local engine (myshift local up) instead of the deployed stack. "
    "Default: $MYSHIFT_LOCAL=1 means local.",
)
@click.option("--stage", default="dev", show_default=True, help="Deployed stack: Myshift-<stage>.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.pass_context
def cli(ctx: click.Context, local: bool, stage: str, as_json: bool) -> None:
    """myshift: incremental MySQL -> S3 (Parquet) -> Redshift sync.

    Pipelines are read from ./pipelines (or $MYSHIFT_PIPELINES_DIR); with --aws, from
    its <stage>/ subdirectory when that exists (the files that stage deploys).
    """
    ctx.obj = Context(local, stage, as_json)


# --- local engine ---------------------------------------------------------------


@cli.group()
def local() -> None:
    """Run the local engine (moto + MariaDB + PostgreSQL warehouse stand-in)."""


@local.command("up")
@click.option("--port", type=click.IntRange(1024, 65535), default=4599, show_default=True)
@click.option("--timeout", type=click.IntRange(5, 600), default=90, show_default=True)
def local_up(port: int, timeout: int) -> None:
    """Start the local engine in the background (no-op when it is running).

    The engine runs the pipelines in $MYSHIFT_PIPELINES_DIR (default: the repository's
    pipelines/) as it finds them there at each run; another directory needs a restart."""
    path = local_state_file()
    record = local_record()
    if record is not None and _pid_alive(record.get("pid")):
        local_pipelines_dir(os.environ.get("MYSHIFT_PIPELINES_DIR"))  # another: refused
        console.print(f"local engine already running: {local_resources().endpoint_url}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    log = (state_dir() / "local.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "myshift.local.server",
            "--port",
            str(port),
            "--state-file",
            str(path),
        ],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            fail(f"local engine exited with code {process.returncode}; see {log.name}")
        if time.monotonic() > deadline:
            process.terminate()
            fail(f"local engine did not start in {timeout}s; see {log.name}")
        time.sleep(0.2)
    console.print(f"local engine running at {local_resources().endpoint_url} (pid {process.pid})")


@local.command("status")
def local_status() -> None:
    """Say whether the local engine runs and where."""
    path = local_state_file()
    if not path.exists() or not _pid_alive(json.loads(path.read_text()).get("pid")):
        console.print("local engine: not running")
        sys.exit(EXIT_FAILED)
    record = json.loads(path.read_text())
    console.print(
        f"local engine: running at {record['endpoint_url']} (pid {record['pid']}), "
        f"pipelines in {record.get('pipelines_dir') or '?'}"
    )


@local.command("down")
def local_down() -> None:
    """Stop the local engine (its in-memory AWS state is gone; MySQL/PostgreSQL stay)."""
    path = local_state_file()
    if not path.exists():
        console.print("local engine: not running")
        return
    pid = json.loads(path.read_text()).get("pid")
    if _pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    path.unlink(missing_ok=True)
    console.print("local engine: stopped")


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


# --- sync -----------------------------------------------------------------------


@cli.group()
def sync() -> None:
    """Start syncs."""


@sync.command("pipeline")
@click.option("-p", "--pipeline", "pipeline_name", required=True, help="Pipeline name.")
@click.option(
    "-t", "--table", "tables", multiple=True, help="database.table (repeatable; default: all)."
)
@click.option("--limit", type=int, help="Rows per chunk (default: the pipeline's chunk_rows).")
@click.option(
    "--max-chunks",
    type=int,
    help="Stop after this many chunks (default: all). Refused for write_mode replace tables: "
    "a full refresh cut short would delete the rows it did not reach.",
)
@click.option("--backup-only", is_flag=True, help="MySQL -> S3 only; do not load Redshift.")
@click.option(
    "--redshift-only", is_flag=True, help="Load extracted, not yet loaded files; read no MySQL."
)
@click.option("--no-wait", is_flag=True, help="Start the run and return its name at once.")
@click.pass_obj
def sync_pipeline(
    ctx: Context,
    pipeline_name: str,
    tables: tuple[str, ...],
    limit: int | None,
    max_chunks: int | None,
    backup_only: bool,
    redshift_only: bool,
    no_wait: bool,
) -> None:
    """Sync tables of a pipeline, follow the run, verify counts in both databases.

    Ctrl-C detaches: the run goes on; `myshift runs show NAME` shows it later.
    """
    if backup_only and redshift_only:
        raise click.UsageError("--backup-only and --redshift-only exclude each other")
    mode = "backup_only" if backup_only else "redshift_only" if redshift_only else "full"
    request = parse_execution_input(
        {
            "pipeline": pipeline_name,
            "tables": list(tables) or None,
            "limit": limit,
            "max_chunks": max_chunks,
            "mode": mode,
        }
    )
    pipeline = ctx.pipeline(pipeline_name)
    names = request.tables or [t.name for t in pipeline.tables]
    tables_of_run = [pipeline.table(name) for name in names]  # ConfigError if unknown
    refuse_partial_refresh(tables_of_run, request.max_chunks, request.mode)
    resources = ctx.resources()
    execution_input = request.model_dump(exclude_none=True, exclude_defaults=True)
    execution_input["pipeline"] = pipeline_name
    name = sync_run.execution_name(pipeline_name)
    arn = sync_run.start(resources, execution_input, name)
    if no_wait:
        click.echo(json.dumps({"execution": name}) if ctx.as_json else f"started {name}")
        return
    started = time.monotonic()
    try:
        if ctx.as_json:
            description = sync_run.wait(resources, arn)
        else:
            description = _follow(resources, pipeline_name, names, name, arn, started)
    except KeyboardInterrupt:
        click.echo(
            f"\ndetached: run {name} goes on; see it with: myshift runs show {name}", err=True
        )
        sys.exit(130)
    _finish(ctx, resources, pipeline, names, name, description, started, mode)


def _follow(
    resources: Resources, pipeline: str, tables: list[str], name: str, arn: str, started: float
) -> dict[str, Any]:
    """Wait for the execution with a live per-table progress display."""
    from rich.live import Live

    def render(description: dict[str, Any]) -> Table:
        elapsed = time.monotonic() - started
        view = Table(title=f"run {name}: {description['status'].lower()} ({elapsed:.0f}s)")
        for column in ("table", "phase", "chunks", "rows", "bytes"):
            view.add_column(column, justify="left" if column in ("table", "phase") else "right")
        for table_name, entry in sorted(
            sync_run.progress(resources, pipeline, tables, name).items()
        ):
            planned = "?" if entry.chunks_planned is None else f"{entry.chunks_planned:,}"
            view.add_row(
                table_name,
                entry.phase,
                f"{entry.chunks_done:,}/{planned}",
                f"{entry.rows:,}",
                f"{entry.bytes:,}",
            )
        return view

    if not console.is_terminal:  # a log file gets the summary, not redraws
        return sync_run.wait(resources, arn)
    with Live(console=console, refresh_per_second=2, transient=True) as live:
        return sync_run.wait(resources, arn, on_poll=lambda d: live.update(render(d)))


def _finish(
    ctx: Context,
    resources: Resources,
    pipeline: PipelineConfig,
    names: list[str],
    name: str,
    description: dict[str, Any],
    started: float,
    mode: str,
) -> None:
    """Print each table's outcome and the verification its run recorded; exit with the
    verdict (1 for a failed table or rows missing, duplicated or differing)."""
    summaries = sync_run.verified_summaries(resources, pipeline, names, name)
    succeeded = description["status"] == "SUCCEEDED"
    if not succeeded:
        for summary in summaries:
            summary.status = "failed" if summary.status == "unknown" else summary.status
    verified = succeeded and all(
        s.match or (mode == "backup_only" and s.status == "succeeded") for s in summaries
    )
    if ctx.as_json:
        click.echo(
            json.dumps(
                {
                    "execution": name,
                    "status": description["status"],
                    "error": description.get("error"),
                    "cause": sync_run.readable_cause(description),
                    "elapsed_seconds": round(time.monotonic() - started, 1),
                    "tables": [s.as_dict() for s in summaries],
                    "verified": verified,
                },
                indent=2,
            )
        )
    else:
        _print_summary(name, description, summaries, time.monotonic() - started)
    sys.exit(0 if verified else EXIT_FAILED)


def _print_summary(
    name: str, description: dict[str, Any], summaries: list[sync_run.TableSummary], elapsed: float
) -> None:
    """One row per table, totals last (`sync_run.summary_table`)."""
    title = f"run {name}: {description['status']} in {elapsed:.1f}s"
    console.print(sync_run.summary_table(title, summaries), crop=False)
    if description["status"] != "SUCCEEDED":
        error = description.get("error", "")
        click.echo(f"run failed: {error}: {sync_run.readable_cause(description)}", err=True)


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="myshift")


if __name__ == "__main__":
    main()
