"""moto stand-ins: the state table, and a CLI group whose context points at moto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from myshift import state
from myshift.cli.main import Context
from myshift.cli.resources import Resources
from myshift.errors import MyshiftError


def create_state_table(dynamodb: Any, name: str) -> Any:
    """The pipeline's DynamoDB state table, created in moto (a boto3 resource)."""
    return dynamodb.create_table(**state.table_definition(name))


class StandInContext(Context):
    """main's Context, pointing at moto and at `pipelines_dir`."""

    def __init__(self, pipelines_dir: Path, as_json: bool, resources: Resources) -> None:
        super().__init__(local=True, stage="dev", as_json=as_json)
        self._pipelines_dir = pipelines_dir
        self._resources = resources

    def resources(self) -> Resources:
        return self._resources

    def pipelines_dir(self) -> Path:
        return self._pipelines_dir


class _Group(click.Group):
    """As main's group: a myshift error is one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MyshiftError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


def stand_in_cli(
    pipelines_dir: Path, resources: Resources, *commands: click.Command
) -> click.Group:
    """A group like main's (`--json`, errors as exit code 2) holding `commands`."""

    @click.group(cls=_Group)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def group(ctx: click.Context, as_json: bool) -> None:
        ctx.obj = StandInContext(pipelines_dir, as_json, resources)

    for command in commands:
        group.add_command(command)
    return group
