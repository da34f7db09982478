"""The local AWS: moto in server mode, running the real state machine definition.

- Step Functions: moto executes the ASL from `statemachines/` (the file CDK deploys,
  with the same substitutions).
- Lambda: moto's Lambda backend wants Docker; `_invoke_lambda` is replaced so that
  each function's handler runs in a warm worker process of this engine
  (`workers.LambdaWorkers`: concurrent chunks use separate cores, as separate Lambda
  environments do), or on moto's request thread with `workers=0`. Injected faults
  (`Fault`) are decided in this process either way. Errors come back in Lambda's shape
  (`errorType` = the exception class name) so Retry/Catch match on it.
- S3, DynamoDB: moto. Redshift Data API: the PostgreSQL stand-in.
Everything, including the handlers, talks to the engine over HTTP
(`AWS_ENDPOINT_URL`), in tests exactly as with `myshift local up`.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import socket
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from myshift import state
from myshift.local.workers import LambdaWorkers, error_payload, run_handler
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


def _function_arn(function_name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"


# The workers of the running engine(s): moto's backends, and so the hook below, are
# global to the process; the last engine to stop stops the workers.
_workers: LambdaWorkers | None = None
_workers_users = 0
_workers_lock = threading.Lock()


def _run_handler(handler: str, function_name: str, event: Any) -> tuple[str, bool]:
    workers = _workers
    if workers is None:
        return run_handler(handler, function_name, _function_arn(function_name), event)
    try:
        return workers.invoke(handler, function_name, _function_arn(function_name), event)
    except Exception as exc:  # the workers were stopped: an error of this invocation
        return error_payload(exc), True


def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    """Replacement of moto's `LambdaFunction._invoke_lambda`: run the handler locally.

    In a warm worker process (`workers.LambdaWorkers`), or on this thread with
    `workers=0`. Injected faults are decided here, in the engine process, either way.
    """
    if isinstance(event, str):
        event = json.loads(event or "{}")
    try:
        fault = _take_fault(self.function_name, event, after=False)
        if fault and fault.result is not None:
            return json.dumps(fault.result(event)), False, ""
        if fault and fault.error is not None:
            raise fault.error
    except Exception as exc:
        return error_payload(exc), True, ""
    payload, errored = _run_handler(self.handler, self.function_name, event)
    if errored:
        return payload, True, ""
    try:
        fault = _take_fault(self.function_name, event, after=True)
        if fault and fault.error is not None:
            raise fault.error
    except Exception as exc:
        return error_payload(exc), True, ""
    return payload, False, ""


_moto_patched = False
_definitions_checked = False


def _check_definitions_as_aws_does() -> None:
    """CreateStateMachine/UpdateStateMachine refuse what Step Functions refuses.

    moto only parses the definition; asl-validator (see `asl_validator`) also finds
    what AWS's validation refuses, such as a state name used twice in nested scopes.
    """
    global _definitions_checked
    if _definitions_checked:
        return
    from moto.stepfunctions.exceptions import AWSError
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from myshift.local.asl_validator import InvalidDefinitionError, validate_definition

    parse_only = StepFunctionsParserBackend._validate_definition

    def validate(definition: str) -> None:
        parse_only(definition)
        try:
            validate_definition(definition)
        except InvalidDefinitionError as exc:
            # AWS's error code; moto's own InvalidDefinition reaches clients as UnknownError.
            raise AWSError(str(exc), exception_type="InvalidDefinition") from None

    StepFunctionsParserBackend._validate_definition = staticmethod(validate)  # type: ignore[method-assign]
    _definitions_checked = True


def _skip_repeated_moto_work() -> None:
    """Work moto repeats on every call although the answer is the same every time.

    Measured on a run of 70 chunks, where it was about a third of the engine's CPU:
    - each execution lexes and parses the whole ASL definition with ANTLR (in Python);
    - each JSONPath (`$.chunk`, `$.Payload`...) of each state of each Map iteration is
      parsed again by jsonpath-ng, which also rebuilds its PLY parser tables;
    - each Lambda task builds a new boto3 client (botocore loads the Lambda service
      model again, and opens a new connection);
    - each HTTP request lists moto's package folders (~150 `isdir` calls) to route it.
    The parse trees, parsed paths and clients are kept instead: they are only read.
    The evaluation components are still built per execution (they hold its state).
    Like the `_invoke_lambda` hook this relies on the pinned moto version (e.g. that
    `boto_client_for` ignores the state's credentials).
    """
    global _moto_patched
    if _moto_patched:
        return
    from botocore.config import Config
    from moto import backends
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
    from moto.stepfunctions.parser.asl.utils import json_path

    parse_definition = AmazonStateLanguageParser.parse
    trees: dict[str, Any] = {}

    def parse(definition: str) -> tuple[Any, Any]:
        tree = trees.get(definition)
        if tree is None:
            _, tree = parse_definition(definition)  # a syntax error raises: not kept
            trees[definition] = tree
        return Preprocessor().visit(tree), tree

    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]
    json_path.parse = functools.lru_cache(maxsize=4096)(json_path.parse)
    result_path.parse = functools.lru_cache(maxsize=4096)(result_path.parse)
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    clients: dict[tuple[str, str, int], Any] = {}
    clients_lock = threading.Lock()

    def lambda_client(region: str, service: str, state_credentials: Any = None) -> Any:
        # As moto's `boto_client_for`, with room for as many concurrent calls as a Map runs.
        key = (region, service, moto_server_port())
        with clients_lock:
            if key not in clients:
                clients[key] = boto3.client(
                    service,
                    region_name=region,
                    aws_access_key_id="ak",
                    aws_secret_access_key="sk",
                    endpoint_url=f"http://127.0.0.1:{key[2]}",
                    config=Config(
                        parameter_validation=False,
                        retries={"max_attempts": 0, "total_max_attempts": 1},
                        connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        max_pool_connections=100,
                    ),
                )
            return clients[key]

    lambda_eval_utils.boto_client_for = lambda_client  # type: ignore[assignment]
    _moto_patched = True


def default_workers() -> int:
    """Warm Lambda workers: MYSHIFT_LOCAL_WORKERS, else one per CPU (2 to 4)."""
    configured = os.environ.get("MYSHIFT_LOCAL_WORKERS", "").strip()
    if configured:
        return int(configured)
    return max(2, min(4, os.cpu_count() or 2))


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
        workers: int | None = None,
        max_workers: int | None = None,
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
        # Warm Lambda worker processes (0: run the handlers on moto's request threads)
        # and how many may run at once (more start on demand, cold).
        self.workers = default_workers() if workers is None else workers
        self.max_workers = max(self.workers, 4) if max_workers is None else max_workers
        self._uses_workers = False
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
        LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
        _skip_repeated_moto_work()
        _check_definitions_as_aws_does()
        overrides = state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
        overrides["redshiftdata"] = "redshift-data"  # type: ignore[index]

        self._standin = RedshiftDataStandIn(self.warehouse_dsn, self.client_factory("s3"))
        install(self._standin)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self._start_workers()  # after the environment above: the workers inherit it
        self.resources = self._provision()
        return self.resources

    def stop(self) -> None:
        """Stop the server, the Lambda workers and the stand-in's workers."""
        self._stop_workers()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._standin is not None:
            self._standin.shutdown()
            self._standin = None

    def _start_workers(self) -> None:
        global _workers, _workers_users
        if self.workers <= 0:
            return
        with _workers_lock:
            if _workers is None:
                handlers = [handler for _, handler in FUNCTIONS.values()]
                pool = LambdaWorkers(handlers, warm=self.workers, limit=self.max_workers)
                pool.start()
                _workers = pool
            _workers_users += 1
            self._uses_workers = True

    def _stop_workers(self) -> None:
        global _workers, _workers_users
        if not self._uses_workers:
            return
        self._uses_workers = False
        with _workers_lock:
            _workers_users -= 1
            if _workers_users == 0 and _workers is not None:
                _workers.stop()
                _workers = None

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
        self.client("dynamodb").create_table(**state.table_definition(self.state_table))
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
