"""What the CLI's command modules share: the context protocol and common options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click
from rich.console import Console

from myshift.cli.resources import Resources
from myshift.config import PipelineConfig

F = TypeVar("F", bound=Callable[..., Any])

# A log file or a pipe gets 120 columns rather than rich's 80.
console = Console(width=None if Console().is_terminal else 120)


class CliContext(Protocol):
    """What the commands need of main's `Context` (not imported: main imports them)."""

    as_json: bool

    def resources(self) -> Resources: ...

    def pipeline(self, name: str) -> PipelineConfig: ...

    def pipelines_dir(self) -> Path: ...


def table_options(command: F) -> F:
    """`-p/--pipeline` and `-t/--table`, both required."""
    command = click.option("-t", "--table", "table_name", required=True, help="database.table")(
        command
    )
    return click.option("-p", "--pipeline", "pipeline_name", required=True, help="Pipeline name.")(
        command
    )
