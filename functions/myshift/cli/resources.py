"""Finding the resources the CLI talks to: the local engine or the deployed stack."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from myshift.clients import RedshiftDataClient, S3Client, SFNClient, StateTable
from myshift.errors import ConfigError


def state_dir() -> Path:
    """Where `myshift local up` keeps its state file and log (`MYSHIFT_STATE_DIR`)."""
    return Path(os.environ.get("MYSHIFT_STATE_DIR", ".myshift")).resolve()


def local_state_file() -> Path:
    return state_dir() / "local.json"


@dataclass(frozen=True)
class Resources:
    """The bucket, state table and state machine of one deployment."""

    bucket: str
    state_table: str
    state_machine_arn: str
    region: str
    # `myshift doctor`'s state machine (empty for a stack deployed before it existed).
    doctor_state_machine_arn: str = ""
    # `myshift reconcile`'s state machine (empty for a stack deployed before it existed).
    reconcile_state_machine_arn: str = ""
    endpoint_url: str | None = None
    # The local engine's operator key (its IAM checks every request); in AWS the
    # operator's own credentials (boto3's usual chain).
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def _session_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"region_name": self.region}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.access_key_id:
            kwargs["aws_access_key_id"] = self.access_key_id
            kwargs["aws_secret_access_key"] = self.secret_access_key
            kwargs["aws_session_token"] = None
        return kwargs

    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["redshift-data"]) -> RedshiftDataClient: ...
    @overload
    def client(self, service: Literal["stepfunctions"]) -> SFNClient: ...

    def client(self, service: str) -> Any:
        """A boto3 client for this deployment (the overloads: the services the CLI uses)."""
        # boto3-stubs type a client per service name literal; the name here is a variable.
        make: Callable[..., Any] = boto3.client
        return make(service, **self._session_kwargs())

    def table(self) -> StateTable:
        """The DynamoDB state table."""
        return boto3.resource("dynamodb", **self._session_kwargs()).Table(self.state_table)


def local_record() -> dict[str, Any] | None:
    """What `myshift local up` recorded of the running engine (None: not started)."""
    path = local_state_file()
    if not path.exists():
        return None
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def local_pipelines_dir(configured: str | None) -> Path | None:
    """The pipelines directory of the running local engine, which its functions read: the
    CLI must validate the very files the engine will run. None when no engine runs (or
    one started before engines recorded it). A ConfigError, saying how to restart the
    engine, when `configured` ($MYSHIFT_PIPELINES_DIR) names another directory."""
    record = local_record()
    if not record or not record.get("pipelines_dir"):
        return None
    engine_dir = Path(record["pipelines_dir"])
    if configured and Path(configured).resolve() != engine_dir:
        raise ConfigError(
            f"the local engine runs the pipelines in {engine_dir}, not "
            f"MYSHIFT_PIPELINES_DIR={configured}; restart it on that directory: "
            f"myshift local down && MYSHIFT_PIPELINES_DIR={configured} myshift local up"
        )
    return engine_dir


def local_resources() -> Resources:
    """The running local engine's resources, or a ConfigError saying how to start it."""
    record = local_record()
    if record is None:
        raise ConfigError(
            f"the local engine is not running (no {local_state_file()}); start it: myshift local up"
        )
    return Resources(
        bucket=record["bucket"],
        state_table=record["state_table"],
        state_machine_arn=record["state_machine_arn"],
        doctor_state_machine_arn=record.get("doctor_state_machine_arn", ""),
        reconcile_state_machine_arn=record.get("reconcile_state_machine_arn", ""),
        region=record["region"],
        endpoint_url=record["endpoint_url"],
        access_key_id=record.get("access_key_id"),
        secret_access_key=record.get("secret_access_key"),
    )


def stack_resources(stage: str, region: str | None = None) -> Resources:
    """The deployed stack's resources, from its CloudFormation outputs."""
    stack = f"Myshift-{stage}"
    try:
        cloudformation = boto3.client("cloudformation", region_name=region)
        description = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except (ClientError, BotoCoreError) as exc:
        raise ConfigError(f"cannot read stack {stack}: {exc}".splitlines()[0]) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    missing = {"BucketName", "StateTableName", "StateMachineArn"} - set(outputs)
    if missing:
        raise ConfigError(f"stack {stack} lacks outputs: {', '.join(sorted(missing))}")
    return Resources(
        bucket=outputs["BucketName"],
        state_table=outputs["StateTableName"],
        state_machine_arn=outputs["StateMachineArn"],
        doctor_state_machine_arn=outputs.get("DoctorStateMachineArn", ""),
        reconcile_state_machine_arn=outputs.get("ReconcileStateMachineArn", ""),
        region=cloudformation.meta.region_name,
    )
