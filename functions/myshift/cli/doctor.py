"""`myshift doctor`: run the doctor workflow and print one row per check."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from myshift.cli import sync as sync_run
from myshift.cli.common import CliContext, console
from myshift.cli.resources import Resources
from myshift.errors import ConfigError

# Long enough for a cold start of every function and a Data API COPY on a paused
# Serverless workgroup (it resumes in well under a minute).
DEFAULT_TIMEOUT_SECONDS = 900
_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def run_doctor(resources: Resources, pipeline: str, timeout_seconds: int) -> dict[str, Any]:
    """Start the doctor execution, wait for it and return its report.

    An execution that fails as a whole (the state machine cannot invoke a function,
    a step fails outside its Catch) is a report with one failing row.
    """
    if not resources.doctor_state_machine_arn:
        raise ConfigError(
            "this deployment has no doctor state machine (output DoctorStateMachineArn): "
            "deploy the current stack"
        )
    name = sync_run.execution_name(f"doctor-{pipeline}")
    arn = resources.client("stepfunctions").start_execution(
        stateMachineArn=resources.doctor_state_machine_arn,
        name=name,
        input=json.dumps({"pipeline": pipeline}),
    )["executionArn"]
    description = sync_run.wait(resources, arn, timeout_seconds=timeout_seconds)
    if description["status"] == "SUCCEEDED":
        return dict(json.loads(description["output"]))
    if description["status"] == "RUNNING":
        cause = f"still running after {timeout_seconds} s"
    else:
        cause = sync_run.readable_cause(description) or description["status"]
    row = {
        "check": "doctor workflow ran",
        "status": "fail",
        "detail": f"{description.get('error') or description['status']}: {cause}"[:500],
        "remedy": f"see the execution {name} in the Step Functions console",
        "by": "StateMachine",
    }
    return {"pipeline": pipeline, "run_id": name, "checks": [row], "failed": 1, "warnings": 0}


def print_report(report: dict[str, Any]) -> None:
    """One row per check: what, result, detail, what to do."""
    table = Table(title=f"myshift doctor: pipeline {report['pipeline']} ({report['run_id']})")
    for column in ("check", "result", "detail", "what to do"):
        table.add_column(column, overflow="fold")
    for row in report["checks"]:
        status = row["status"]
        table.add_row(
            row["check"],
            f"[{_STYLE[status]}]{status}[/]",
            row["detail"],
            row.get("remedy") or "",
        )
    console.print(table)
    failed, warnings = int(report["failed"]), int(report["warnings"])
    passed = len(report["checks"]) - failed - warnings
    console.print(f"{passed} passed, {warnings} warnings, {failed} failed")


@click.command()
@click.option("-p", "--pipeline", "pipeline_name", required=True, help="Pipeline name.")
@click.option(
    "--timeout",
    type=click.IntRange(30, 3600),
    default=DEFAULT_TIMEOUT_SECONDS,
    show_default=True,
    help="Seconds to wait for the doctor workflow.",
)
@click.pass_obj
def doctor(ctx: CliContext, pipeline_name: str, timeout: int) -> None:
    """Check a deployment end to end, from inside it; exit 1 on any failed check.

    Runs the doctor state machine: each function checks with its own role and from its
    own network what a run needs of it (MySQL and its grants, S3, DynamoDB, the Data
    API), COPYs a Parquet file holding every column type at its edges into a temporary
    table and compares every value read back, and reads the database user's privileges.
    Changes nothing in the source or the target tables.
    """
    ctx.pipeline(pipeline_name)  # a pipeline that does not load stops here
    report = run_doctor(ctx.resources(), pipeline_name, timeout)
    if ctx.as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        print_report(report)
    if report["failed"]:
        raise SystemExit(1)
