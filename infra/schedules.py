"""EventBridge schedules: one sync rule per scheduled pipeline, one reconcile rule per
pipeline with a `reconcile_schedule`, one nightly S3 clean-up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from myshift.config import PipelineConfig

# What the nightly rule sends to the s3clean handler: a real clean-up with the
# handler's default age (`older_than` left to myshift.clean).
S3CLEAN_EVENT: dict[str, Any] = {"dry_run": False}


def scheduled_input(pipeline: PipelineConfig) -> dict[str, Any]:
    """Execution input of a scheduled run: every table, full mode.

    `limit`/`max_chunks` are left out on purpose: a scheduled run uses the pipeline's
    chunk size and goes to the frozen upper bound.
    """
    return {
        "pipeline": pipeline.name,
        "tables": [table.name for table in pipeline.tables],
        "mode": "full",
    }


def reconcile_input(pipeline: PipelineConfig) -> dict[str, Any]:
    """Execution input of a scheduled reconciliation: every table, report only (a fix
    is an operator's decision: `myshift reconcile --fix`)."""
    return {"pipeline": pipeline.name, "fix": False}


class Schedules(Construct):
    """The rules; `self.rules` maps pipeline name (or "s3clean") to its rule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipelines: Mapping[str, PipelineConfig],
        state_machine: sfn.IStateMachine,
        s3clean: lambda_.IFunction,
        s3clean_schedule: str,
        reconcile_state_machine: sfn.IStateMachine | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rules: dict[str, events.Rule] = {}
        for name, pipeline in sorted(pipelines.items()):
            if pipeline.schedule:
                self.rules[name] = self._start(
                    f"Sync-{name}",
                    f"sync pipeline {name}",
                    pipeline.schedule,
                    state_machine,
                    scheduled_input(pipeline),
                )
            if pipeline.reconcile_schedule and reconcile_state_machine is not None:
                self.rules[f"reconcile-{name}"] = self._start(
                    f"Reconcile-{name}",
                    f"reconcile pipeline {name}",
                    pipeline.reconcile_schedule,
                    reconcile_state_machine,
                    reconcile_input(pipeline),
                )
        self.rules["s3clean"] = events.Rule(
            self,
            "S3CleanNightly",
            description=f"myshift: nightly S3 clean-up ({s3clean_schedule})",
            schedule=events.Schedule.expression(s3clean_schedule),
            targets=[
                targets.LambdaFunction(
                    s3clean,
                    event=events.RuleTargetInput.from_object(S3CLEAN_EVENT),
                    max_event_age=Duration.hours(2),
                    retry_attempts=2,
                )
            ],
        )

    def _start(
        self,
        construct_id: str,
        what: str,
        schedule: str,
        state_machine: sfn.IStateMachine,
        execution_input: dict[str, Any],
    ) -> events.Rule:
        """A rule starting an execution of `state_machine` on `schedule`."""
        return events.Rule(
            self,
            construct_id,
            description=f"myshift: {what} ({schedule})",
            schedule=events.Schedule.expression(schedule),
            targets=[
                targets.SfnStateMachine(
                    state_machine,
                    input=events.RuleTargetInput.from_object(execution_input),
                    # A start that cannot happen within the interval is stale.
                    max_event_age=Duration.hours(1),
                    retry_attempts=3,
                )
            ],
        )
