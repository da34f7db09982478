"""The local AWS: moto in server mode, running the real state machine definition.

- Step Functions: moto executes the ASL from `statemachines/` (the file CDK deploys,
  with the same substitutions).
- Lambda: moto's Lambda backend wants Docker; `_invoke_lambda` is replaced so that
  each function's handler runs in this process. Errors come back in Lambda's shape
  (`errorType` = the exception class name) so Retry/Catch match on it.
- S3, DynamoDB: moto. Redshift Data API: the PostgreSQL stand-in.
Everything, including the handlers, talks to the engine over HTTP
(`AWS_ENDPOINT_URL`), in tests exactly as with `myshift local up`.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import socket
import threading
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from myshift.settings import ENVIRONMENT_VARIABLES

REGION = "us-east-1"
ACCOUNT = "123456789012"
STATE_MACHINE_NAME = "myshift-sync"
DEFAULT_WAREHOUSE_DSN = "postgresql://postgres@127.0.0.1:5432/myshift_warehouse"
FUNCTIONS = {
    "ValidateInputFunctionArn": (
        "myshift-validate-input",
        "myshift.handlers.validate_input.handler",
    ),
    "PlanFunctionArn": ("myshift-plan", "myshift.handlers.plan.handler"),
    "ExtractFunctionArn": ("myshift-extract", "myshift.handlers.extract.handler"),
    "LoadFunctionArn": ("myshift-load", "myshift.handlers.load.handler"),
    "StateFunctionArn": ("myshift-state", "myshift.handlers.state.handler"),
}
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def repository_root() -> Path:
    """The checkout holding `statemachines/` and `pipelines/`."""
    return Path(__file__).resolve().parents[3]


def definition_file() -> Path:
    """The one workflow definition."""
    return repository_root() / "statemachines" / "sync.asl.json"


def render_definition(substitutions: dict[str, str]) -> str:
    """The ASL with `${Name}` replaced, as CloudFormation's DefinitionSubstitutions do."""
    text = definition_file().read_text(encoding="utf-8")
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise ValueError("state machine definition has unsubstituted ${...} left")
    return text


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _LambdaContext:
    """The few attributes of a Lambda context that Powertools reads."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.aws_request_id = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


@dataclass
class Fault:
    """An error the engine raises instead of running a function (tests of failures).

    With `result` instead of `error`, the function is replaced by that callable (a stub
    for scale tests that must not do the real work).
    """

    function: str
    error: Exception | None
    times: int = 1
    when: Callable[[dict[str, Any]], bool] | None = None
    after: bool = False  # raise after the handler ran (its side effects happened)
    result: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    fired: int = 0


_faults: list[Fault] = []
_faults_lock = threading.Lock()


def _take_fault(function_name: str, event: dict[str, Any], after: bool) -> Fault | None:
    with _faults_lock:
        candidates = [f for f in _faults if f.function == function_name and f.after == after]
    for fault in candidates:
        # `when` runs outside the lock: tests use it to observe concurrent invocations.
        if fault.when is not None and not fault.when(event):
            continue
        with _faults_lock:
            if fault.fired < fault.times:
                fault.fired += 1
                return fault
    return None


def _invoke_in_process(self: Any, event: Any = None) -> tuple[str, bool, str]:
    """Replacement of moto's `LambdaFunction._invoke_lambda`: run the handler here."""
    module_name, _, attribute = self.handler.rpartition(".")
    if isinstance(event, str):
        event = json.loads(event or "{}")
    try:
        fault = _take_fault(self.function_name, event, after=False)
        if fault and fault.result is not None:
            return json.dumps(fault.result(event)), False, ""
        if fault and fault.error is not None:
            raise fault.error
        handler = getattr(importlib.import_module(module_name), attribute)
        result = handler(event, _LambdaContext(self.function_name))
        fault = _take_fault(self.function_name, event, after=True)
        if fault and fault.error is not None:
            raise fault.error
        return json.dumps(result), False, ""
    except Exception as exc:
        payload = {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc)[-5:],
        }
        return json.dumps(payload), True, ""


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "# runs in-process in the local engine\n")
    return buffer.getvalue()


@dataclass
class LocalResources:
    """What the engine created; the CLI finds them through this record."""

    endpoint_url: str
    bucket: str
    state_table: str
    state_machine_arn: str
    region: str = REGION

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


class LocalEngine:
    """moto server + in-process Lambdas + the Redshift stand-in, provisioned."""

    def __init__(
        self,
        *,
        port: int = 0,
        warehouse_dsn: str | None = None,
        pipelines_dir: Path | None = None,
        bucket: str = "myshift-local-data",
        state_table: str = "myshift-local-state",
        poll_seconds: int = 1,
        inline_map_max_chunks: int = 200,
    ) -> None:
        self.port = port or free_port()
        self.warehouse_dsn = warehouse_dsn or os.environ.get(
            "MYSHIFT_LOCAL_WAREHOUSE_DSN", DEFAULT_WAREHOUSE_DSN
        )
        self.pipelines_dir = pipelines_dir or Path(
            os.environ.get("MYSHIFT_PIPELINES_DIR", repository_root() / "pipelines")
        )
        self.bucket = bucket
        self.state_table = state_table
        self.poll_seconds = poll_seconds
        self.inline_map_max_chunks = inline_map_max_chunks
        self._server: Any = None
        self._standin: Any = None
        self.resources: LocalResources | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def function_environment(self) -> dict[str, str]:
        """The environment every function sees (the same variables as in AWS)."""
        values = {
            "bucket": self.bucket,
            "state_table": self.state_table,
            "pipelines_dir": str(self.pipelines_dir),
            "poll_seconds": str(self.poll_seconds),
            "data_prefix": "data",
            "inline_map_max_chunks": str(self.inline_map_max_chunks),
        }
        return {ENVIRONMENT_VARIABLES[k]: v for k, v in values.items()}

    def start(self) -> LocalResources:
        """Start the server, install the hooks, create the resources."""
        from moto.awslambda.models import LambdaFunction
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service,
        )

        from myshift.local.redshift_moto import install
        from myshift.local.redshift_standin import RedshiftDataStandIn

        os.environ.update(FAKE_CREDENTIALS)
        os.environ["MOTO_PORT"] = str(self.port)  # moto's Step Functions calls back here
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint_url
        os.environ.update(self.function_environment())
        from myshift.settings import current_settings

        current_settings.cache_clear()

        # moto logs every failed state with a repr of the whole program; the execution's
        # error and cause are what matter, and describe_execution returns them.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        LambdaFunction._invoke_lambda = _invoke_in_process  # type: ignore[method-assign]
        overrides = state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
        overrides["redshiftdata"] = "redshift-data"  # type: ignore[index]

        self._standin = RedshiftDataStandIn(self.warehouse_dsn, self.client_factory("s3"))
        install(self._standin)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.resources = self._provision()
        return self.resources

    def stop(self) -> None:
        """Stop the server and the stand-in's workers."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._standin is not None:
            self._standin.shutdown()
            self._standin = None

    def client(self, service: str) -> Any:
        """A boto3 client of the engine."""
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION)

    @staticmethod
    def inject_fault(fault: Fault) -> Fault:
        """Make a function fail (see `Fault`); returns it, `fired` counts the failures."""
        with _faults_lock:
            _faults.append(fault)
        return fault

    @staticmethod
    def clear_faults() -> None:
        """Remove every injected fault."""
        with _faults_lock:
            _faults.clear()

    def client_table(self) -> Any:
        """The DynamoDB state table of the engine."""
        resource = boto3.resource("dynamodb", endpoint_url=self.endpoint_url, region_name=REGION)
        return resource.Table(self.state_table)

    def client_factory(self, service: str) -> Any:
        return lambda: self.client(service)

    def _provision(self) -> LocalResources:
        self.client("s3").create_bucket(Bucket=self.bucket)
        self.client("dynamodb").create_table(
            TableName=self.state_table,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        iam = self.client("iam")
        role_arn = iam.create_role(
            RoleName="myshift-local",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        lambda_client = self.client("lambda")
        substitutions: dict[str, str] = {
            "DataBucketName": self.bucket,
            "MapResultsPrefix": "data/_map-results",
        }
        for placeholder, (name, handler) in FUNCTIONS.items():
            function = lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=role_arn,
                Handler=handler,
                Code={"ZipFile": _dummy_zip()},
                Environment={"Variables": self.function_environment()},
                Timeout=900,
            )
            substitutions[placeholder] = function["FunctionArn"]
        state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=STATE_MACHINE_NAME,
            definition=render_definition(substitutions),
            roleArn=role_arn,
        )["stateMachineArn"]
        return LocalResources(self.endpoint_url, self.bucket, self.state_table, state_machine_arn)
