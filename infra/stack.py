"""MyshiftStack: storage, state, functions, workflow, schedules and monitoring."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, Fn, RemovalPolicy, Stack, Tags
from aws_cdk import aws_logs as logs
from constructs import Construct, Node
from myshift.config import PipelineConfig

from infra import LOCAL_STAGE, REPO_ROOT
from infra.functions import ARCHITECTURES, RUNTIMES, Functions, FunctionSettings
from infra.monitoring import Monitoring
from infra.schedules import Schedules
from infra.state import StateTable
from infra.storage import Storage
from infra.warehouse_access import pipeline_copy_roles, warehouse_database_user
from infra.workflow import Workflow

DEFINITION_FILE = REPO_ROOT / "statemachines" / "sync.asl.json"
DOCTOR_FILE = REPO_ROOT / "statemachines" / "doctor.asl.json"
RECONCILE_FILE = REPO_ROOT / "statemachines" / "reconcile.asl.json"
# The functions `myshift doctor` asks to check what a run needs of them.
DOCTOR_FUNCTIONS = ("Plan", "Extract", "Load", "State")


@dataclass(frozen=True)
class StackSettings:
    """Deployment choices, from the CDK context (cdk.json, `-c key=value`)."""

    stage: str = "dev"
    lambda_architecture: str = "arm64"
    lambda_python_version: str = "3.12"
    removal_policy: str = "retain"  # retain | destroy
    bucket_versioning: bool = False
    access_logs: bool = True
    log_retention_days: int = 30
    poll_seconds: int = 5
    inline_map_max_chunks: int = 200
    data_prefix: str = "data"
    log_level: str = "INFO"
    alarm_email: str = ""  # subscribed to the stack's alarm topic
    alarm_topic_arn: str = ""  # or an existing topic the alarms notify instead
    alarms: str = ""  # "none": a deployed stage without alarm notifications, knowingly
    copy_role_arn: str = ""  # COPY's role for pipelines without one; empty: the stack's
    state_machine_timeout_hours: int = 12
    s3clean_schedule: str = "cron(0 3 * * ? *)"  # 03:00 UTC

    @classmethod
    def from_context(cls, node: Node) -> StackSettings:
        """Read every field from the context; strings from `-c` are converted."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = node.try_get_context(field.name)
            if raw is None:
                continue
            values[field.name] = _convert(field.name, raw, field.type)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse values the stack cannot honour, naming the context key."""
        if self.lambda_architecture not in ARCHITECTURES:
            raise ValueError(f"context lambda_architecture must be one of {sorted(ARCHITECTURES)}")
        if self.lambda_python_version not in RUNTIMES:
            raise ValueError(f"context lambda_python_version must be one of {sorted(RUNTIMES)}")
        if self.removal_policy not in ("retain", "destroy"):
            raise ValueError("context removal_policy must be 'retain' or 'destroy'")
        if not self.stage.replace("-", "").isalnum():
            raise ValueError("context stage must be letters, digits and '-'")
        self._validate_alarms()

    def _validate_alarms(self) -> None:
        """A deployed stage names where its alarms go, or says that they go nowhere."""
        if self.alarms not in ("", "none"):
            raise ValueError(f"context alarms must be 'none' or empty, got {self.alarms!r}")
        given = [k for k in ("alarm_email", "alarm_topic_arn") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError("context alarm_email and alarm_topic_arn: give one of them")
        if given and self.alarms == "none":
            raise ValueError(f"context alarms=none contradicts {given[0]}: drop one of them")
        if self.alarm_email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", self.alarm_email):
            raise ValueError(f"context alarm_email {self.alarm_email!r} is not an email address")
        if self.alarm_topic_arn and not re.fullmatch(
            r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}", self.alarm_topic_arn
        ):
            raise ValueError(
                f"context alarm_topic_arn {self.alarm_topic_arn!r} is no SNS topic ARN"
            )
        if self.stage != LOCAL_STAGE and not given and self.alarms != "none":
            raise ValueError(
                f"stage {self.stage}: its alarms would notify nobody: set context alarm_email "
                "(cdk.json or -c alarm_email=you@example.com), alarm_topic_arn (an existing "
                "topic), or alarms=none to deploy without notifications"
            )

    @property
    def removal(self) -> RemovalPolicy:
        """`retain`: kept on stack deletion and replacement, but deleted when their own
        create fails (CloudFormation's RetainExceptOnCreate), so a failed first deploy
        leaves nothing behind that the retry would collide with."""
        if self.removal_policy == "destroy":
            return RemovalPolicy.DESTROY
        return RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _retention(self.log_retention_days)


def _convert(name: str, raw: Any, kind: Any) -> Any:
    kind = str(kind)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "1", "yes", "on"):
            return True
        if str(raw).lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"context {name} must be true or false, got {raw!r}")
    if kind == "int":
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"context {name} must be an integer, got {raw!r}") from None
    return str(raw)


_RETENTION_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    """The CloudWatch retention of `days` days (CloudWatch only has fixed periods)."""
    if days not in _RETENTION_DAYS:
        raise ValueError(f"context log_retention_days={days}: use one of {sorted(_RETENTION_DAYS)}")
    return _RETENTION_DAYS[days]


def state_machine_log_group_name(stack: Stack, stack_name: str, name: str = "sync") -> str:
    """`/aws/vendedlogs/states/<stack>-<name>-<first part of the stack id's UUID>`.

    /aws/vendedlogs/ keeps Step Functions clear of the CloudWatch Logs resource policy
    size limit. The stack id's part makes the name differ for each creation of the
    stack: a log group retained after the stack was deleted never collides with the
    next creation of the same stage (a fixed name would: "already exists").
    """
    uuid = Fn.select(2, Fn.split("/", stack.stack_id))
    return Fn.join(
        "", [f"/aws/vendedlogs/states/{stack_name}-{name}-", Fn.select(0, Fn.split("-", uuid))]
    )


class MyshiftStack(Stack):
    """Everything myshift needs in one account and region."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipelines: Mapping[str, PipelineConfig],
        code_dir: Path,
        layer_dir: Path,
        settings: StackSettings,
        definition_file: Path = DEFINITION_FILE,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"myshift ({settings.stage}): MySQL -> S3 Parquet -> Redshift sync",
            **kwargs,
        )
        Tags.of(self).add("project", "myshift")
        Tags.of(self).add("stage", settings.stage)

        storage = Storage(
            self,
            "Storage",
            removal_policy=settings.removal,
            versioned=settings.bucket_versioning,
            access_logs=settings.access_logs,
            data_prefix=settings.data_prefix,
        )
        # COPY reads the files as the pipeline's copy_role_arn, else the stage's, else a
        # role this stack creates (only when some pipeline needs it).
        storage.grant_copy_read(
            [*pipeline_copy_roles(pipelines.values()), *filter(None, [settings.copy_role_arn])],
            settings.data_prefix,
        )
        default_copy_role = settings.copy_role_arn or None
        if not default_copy_role and any(not p.target.copy_role_arn for p in pipelines.values()):
            default_copy_role = storage.copy_role(settings.data_prefix).role_arn
        state = StateTable(self, "State", removal_policy=settings.removal)
        functions = Functions(
            self,
            "Functions",
            code_dir=code_dir,
            layer_dir=layer_dir,
            bucket=storage.bucket,
            table=state.table,
            pipelines=pipelines,
            settings=FunctionSettings(
                python_version=settings.lambda_python_version,
                architecture=settings.lambda_architecture,
                poll_seconds=settings.poll_seconds,
                inline_map_max_chunks=settings.inline_map_max_chunks,
                data_prefix=settings.data_prefix,
                log_level=settings.log_level,
                log_retention=settings.log_retention,
                removal_policy=settings.removal,
                copy_role_arn=default_copy_role or "",
            ),
        )

        def state_machine(construct: str, name: str, definition: Path, **options: Any) -> Workflow:
            return Workflow(
                self,
                construct,
                definition_file=definition,
                bucket=storage.bucket,
                data_prefix=settings.data_prefix,
                log_retention=settings.log_retention,
                removal_policy=settings.removal,
                log_group_name=state_machine_log_group_name(self, construct_id, name),
                name=name,
                **{
                    "functions": functions.workflow_functions(),
                    "timeout": Duration.hours(settings.state_machine_timeout_hours),
                    **options,
                },
            )

        workflow = state_machine("Workflow", "sync", definition_file)
        doctor = state_machine(
            "Doctor",
            "doctor",
            DOCTOR_FILE,
            functions={
                prefix: function
                for prefix, function in functions.workflow_functions().items()
                if prefix in DOCTOR_FUNCTIONS
            },
            timeout=Duration.minutes(30),
            distributed_map=False,
        )
        reconcile = state_machine("Reconcile", "reconcile", RECONCILE_FILE)
        Schedules(
            self,
            "Schedules",
            pipelines=pipelines,
            state_machine=workflow.state_machine,
            s3clean=functions.functions["s3clean"],
            s3clean_schedule=settings.s3clean_schedule,
            reconcile_state_machine=reconcile.state_machine,
        )
        monitoring = Monitoring(
            self,
            "Monitoring",
            stage=settings.stage,
            state_machine=workflow.state_machine,
            functions=functions.functions,
            alarm_email=settings.alarm_email or None,
            alarm_topic_arn=settings.alarm_topic_arn or None,
        )

        # The CLI finds the deployed stack through these outputs: keep the names.
        CfnOutput(self, "BucketName", value=storage.bucket.bucket_name)
        CfnOutput(self, "StateTableName", value=state.table.table_name)
        CfnOutput(self, "StateMachineArn", value=workflow.state_machine.state_machine_arn)
        CfnOutput(self, "DoctorStateMachineArn", value=doctor.state_machine.state_machine_arn)
        CfnOutput(self, "ReconcileStateMachineArn", value=reconcile.state_machine.state_machine_arn)
        CfnOutput(self, "AlarmTopicArn", value=monitoring.topic.topic_arn)
        # Its name holds part of the stack id (see state_machine_log_group_name).
        CfnOutput(self, "StateMachineLogGroup", value=workflow.log_group.log_group_name)
        if default_copy_role:
            CfnOutput(
                self,
                "CopyRoleArn",
                value=default_copy_role,
                description="Associate it with the workgroup or cluster (README, Deploy)",
            )
        # Whom the DBA grants to, for pipelines that reach Redshift with the functions'
        # IAM identity (no secret_arn, no db_user): see the README's grants.
        CfnOutput(
            self,
            "WarehouseDatabaseUser",
            value=warehouse_database_user(construct_id),
            description="Database user of the load role (temporary credentials)",
        )

        self.storage = storage
        self.state = state
        self.functions = functions
        self.workflow = workflow
        self.doctor = doctor
        self.reconcile = reconcile
        self.monitoring = monitoring
