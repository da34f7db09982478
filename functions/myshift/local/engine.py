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
- IAM: the roles, policies, functions and state machine come from the stack's own
  template (`local.stack`); each function runs with its role's credentials, the state
  machine's tasks with its role's, and moto checks every request against the caller's
  policies (`local.enforcement`). The engine's own calls, the tests' and the CLI's
  use an operator user allowed everything (`LocalResources` carries its keys).
Everything, including the handlers, talks to the engine over HTTP
(`AWS_ENDPOINT_URL`), in tests exactly as with `myshift local up`.
"""

from __future__ import annotations

import functools
import importlib
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
from myshift.config import PipelineConfig, load_pipeline_file
from myshift.errors import ConfigError
from myshift.load import connection_params
from myshift.local import enforcement, limits
from myshift.local.redshift_standin import CALLER, StandInAdminError
from myshift.local.stack import (
    LocalStack,
    deployable_pipelines,
    function_variable,
    provision,
    synthesized_template,
    update_policies,
)
from myshift.local.workers import LambdaWorkers, error_payload, run_handler
from myshift.settings import ENVIRONMENT_VARIABLES

REGION = "us-east-1"
ACCOUNT = "123456789012"
DEFAULT_WAREHOUSE_DSN = "postgresql://postgres@127.0.0.1:5432/myshift_warehouse"
# The engine's region for every client; credentials come from the operator user.
REGION_VARIABLES = {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
OPERATOR_USER = "myshift-local-operator"
# What the engine and the operator may do: anything (the deployer's, the operator's
# own credentials in AWS); the stack's roles are the ones that are checked.
OPERATOR_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
# The AWS services that assume the stack's roles ("Principal": {"Service": ...}).
LAMBDA_SERVICE = "lambda.amazonaws.com"
STATES_SERVICE = "states.amazonaws.com"
REDSHIFT_SERVICE = "redshift.amazonaws.com"


def repository_root() -> Path:
    """The checkout holding `statemachines/` and `pipelines/`."""
    return Path(__file__).resolve().parents[3]


def definition_file(name: str = "sync") -> Path:
    """A workflow definition: `sync`, `doctor` or `reconcile`."""
    return repository_root() / "statemachines" / f"{name}.asl.json"


def render_definition(substitutions: dict[str, str], name: str = "sync") -> str:
    """The ASL with `${Name}` replaced, as CloudFormation's DefinitionSubstitutions do."""
    text = definition_file(name).read_text(encoding="utf-8")
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


_credentials: dict[tuple[str, str], dict[str, str]] = {}
_credentials_lock = threading.Lock()


def role_credentials(role_arn: str, service: str) -> dict[str, str]:
    """Credentials of `role_arn` as the AWS `service` gets them (environment variables).

    Like AWS, refuses a role whose trust policy does not let that service assume it.
    Assumed once per role, through moto's STS (the engine plays the service).
    """
    key = (role_arn, service)
    with _credentials_lock:
        if key in _credentials:
            return _credentials[key]
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    from myshift.local import iam

    role = iam_backends[ACCOUNT]["aws"].get_role_by_arn(role_arn)
    if not iam.trust_allows(role.assume_role_policy_document, service):
        raise ConfigError(f"role {role_arn} cannot be assumed by {service} (its trust policy)")
    assumed = sts_backends[ACCOUNT]["aws"].assume_role(
        region_name=REGION,
        role_session_name=service.split(".")[0],
        role_arn=role_arn,
        policy="",
        duration=12 * 3600,
        external_id="",
    )
    variables = {
        "AWS_ACCESS_KEY_ID": assumed.access_key_id,
        "AWS_SECRET_ACCESS_KEY": assumed.secret_access_key,
        "AWS_SESSION_TOKEN": assumed.session_token,
    }
    with _credentials_lock:
        return _credentials.setdefault(key, variables)


# The workers of the running engine(s): moto's backends, and so the hook below, are
# global to the process; the last engine to stop stops the workers.
_workers: LambdaWorkers | None = None
_workers_users = 0
_workers_lock = threading.Lock()


def _run_handler(
    handler: str, function_name: str, event: Any, environment: dict[str, str]
) -> tuple[str, bool]:
    workers = _workers
    arn = _function_arn(function_name)
    if workers is None:
        return run_handler(handler, function_name, arn, event, environment)
    try:
        return workers.invoke(handler, function_name, arn, event, environment)
    except Exception as exc:  # the workers were stopped: an error of this invocation
        return error_payload(exc), True


def _function_environment(function: Any) -> dict[str, str]:
    """What Lambda gives a function's process: its variables and its role's credentials."""
    return {
        **{str(k): str(v) for k, v in (function.environment_vars or {}).items()},
        **REGION_VARIABLES,
        **(role_credentials(function.role, LAMBDA_SERVICE) if function.role else {}),
    }


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
        environment = _function_environment(self)
    except Exception as exc:
        return error_payload(exc), True, ""
    payload, errored = _run_handler(self.handler, self.function_name, event, environment)
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
_running: list[LocalEngine] = []
_redeploys_installed = False


def _redeploy_before_each_run() -> None:
    """Every StartExecution first brings the stack's policies up to the pipeline files.

    In AWS a new pipeline file takes a `cdk deploy` (its secrets, its warehouse); the
    local engine redeploys itself when the files changed, so the run the CLI validated
    is the one the functions may serve.
    """
    global _redeploys_installed
    if _redeploys_installed:
        return
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    start = StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, *args: Any, **kwargs: Any) -> Any:
        for engine in list(_running):
            engine.redeploy_if_changed()
        return start(self, *args, **kwargs)

    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]
    _redeploys_installed = True


_STATE = "component.state.exec"
_CLIENT_FACTORY_USERS = (
    "utils.boto_client",
    f"{_STATE}.state_map.result_writer.resource_eval.resource_eval_s3",
    f"{_STATE}.state_map.item_reader.eval.resource_eval_s3",
    f"{_STATE}.state_task.lambda_eval_utils",
    *(
        f"{_STATE}.state_task.service.state_task_service_{service}"
        for service in (
            "unsupported",
            "glue",
            "events",
            "ecs",
            "sqs",
            "sfn",
            "dynamodb",
            "batch",
            "sns",
            "aws_sdk",
        )
    ),
)


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
    - each task builds a new boto3 client (botocore loads the service model again, and
      opens a new connection);
    - each HTTP request lists moto's package folders (~150 `isdir` calls) to route it.
    The parse trees, parsed paths and clients are kept instead: they are only read.
    The evaluation components are still built per execution (they hold its state).
    The clients sign with the state machine's role (moto's sign with fake keys), so
    its tasks are checked against that role's policies as in AWS. Like the
    `_invoke_lambda` hook this relies on the pinned moto version.
    """
    global _moto_patched
    if _moto_patched:
        return
    from botocore.config import Config
    from moto import backends
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
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
    clients: dict[tuple[str, str, int, str], Any] = {}
    clients_lock = threading.Lock()

    def state_machine_client(region: str, service: str, state_credentials: Any = None) -> Any:
        # As moto's `boto_client_for`, signed as the execution's role (or the task's
        # Credentials.RoleArn), with room for as many concurrent calls as a Map runs.
        role = getattr(state_credentials, "role_arn", None) or ""
        key = (region, service, moto_server_port(), role)
        with clients_lock:
            if key not in clients:
                keys = role_credentials(role, STATES_SERVICE) if role else {}
                clients[key] = boto3.client(
                    service,
                    region_name=region,
                    aws_access_key_id=keys.get("AWS_ACCESS_KEY_ID", "ak"),
                    aws_secret_access_key=keys.get("AWS_SECRET_ACCESS_KEY", "sk"),
                    aws_session_token=keys.get("AWS_SESSION_TOKEN"),
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

    # Every module of the interpreter that imported moto's factory (tasks, ItemReader,
    # ResultWriter...) gets this one.
    for name in _CLIENT_FACTORY_USERS:
        module = importlib.import_module(f"moto.stepfunctions.parser.asl.{name}")
        module.boto_client_for = state_machine_client  # type: ignore[attr-defined]
    _moto_patched = True


def warehouse_grants() -> list[str]:
    """The statements of docs/warehouse-grants.sql (what the README tells a DBA to run),
    with `{database}` and `{user}` to fill in."""
    text = (repository_root() / "docs" / "warehouse-grants.sql").read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]


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
    """What the engine created; the CLI finds them through this record.

    The access key is the local operator's (a user of the engine's own IAM, allowed
    everything, as an operator's credentials are in AWS); nothing real.
    """

    endpoint_url: str
    bucket: str
    state_table: str
    state_machine_arn: str
    doctor_state_machine_arn: str = ""
    reconcile_state_machine_arn: str = ""
    region: str = REGION
    access_key_id: str = ""
    secret_access_key: str = ""
    # The directory of pipeline files the functions read (the CLI refuses another).
    pipelines_dir: str = ""

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


class LocalEngine:
    """moto server + the stack's Lambdas and roles + the Redshift stand-in, provisioned."""

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
        iam: bool = True,
    ) -> None:
        self.port = port or free_port()
        self.warehouse_dsn = warehouse_dsn or os.environ.get(
            "MYSHIFT_LOCAL_WAREHOUSE_DSN", DEFAULT_WAREHOUSE_DSN
        )
        self.pipelines_dir = (
            pipelines_dir
            or Path(os.environ.get("MYSHIFT_PIPELINES_DIR", repository_root() / "pipelines"))
        ).resolve()
        self.bucket = bucket
        self.state_table = state_table
        self.poll_seconds = poll_seconds
        self.inline_map_max_chunks = inline_map_max_chunks
        # Warm Lambda worker processes (0: run the handlers on moto's request threads)
        # and how many may run at once (more start on demand, cold).
        self.workers = default_workers() if workers is None else workers
        self.max_workers = max(self.workers, 4) if max_workers is None else max_workers
        # IAM enforcement: every request checked against its caller's policies.
        self.iam = iam
        self._uses_workers = False
        self._server: Any = None
        self._standin: Any = None
        self._enforced: Any = None
        self._environment_before: dict[str, str | None] = {}
        self.stack: LocalStack | None = None
        self.resources: LocalResources | None = None
        self._deployed: str | None = None  # digest of the pipelines the policies are for
        self._redeploy_lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def function_environment(self) -> dict[str, str]:
        """The engine's values of the variables the stack sets for every function (the
        others, the data prefix among them, are the template's)."""
        values = {
            "bucket": self.bucket,
            "state_table": self.state_table,
            "pipelines_dir": str(self.pipelines_dir),
            "poll_seconds": str(self.poll_seconds),
            "inline_map_max_chunks": str(self.inline_map_max_chunks),
        }
        return {ENVIRONMENT_VARIABLES[k]: v for k, v in values.items()}

    def _lambda_environment(self, template_variables: dict[str, str]) -> dict[str, str]:
        """A function's environment: the template's variables, with the engine's values."""
        engine_values = self.function_environment()
        missing = set(engine_values) - set(template_variables)
        if missing:
            raise ConfigError(f"the stack's functions lack the variables {sorted(missing)}")
        return {**template_variables, **engine_values}

    def _set_environment(self, values: dict[str, str | None]) -> None:
        for name, value in values.items():
            self._environment_before.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        # boto3's default session keeps the first credentials it read: start anew.
        boto3.DEFAULT_SESSION = None

    def start(self) -> LocalResources:
        """Start the server, install the hooks, create the resources from the stack."""
        from moto.awslambda.models import LambdaFunction
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service,
        )

        from myshift.local.redshift_moto import install
        from myshift.local.redshift_standin import RedshiftDataStandIn

        # Synthesized before anything starts: a stack the app refuses stops here.
        self._deployed = deployable_pipelines(self.pipelines_dir)[1]
        template = synthesized_template(self.pipelines_dir)
        # The operator's prefix is the functions': their policies are scoped to it.
        data_prefix = ENVIRONMENT_VARIABLES["data_prefix"]
        # Until the operator user exists, moto takes any key (no enforcement yet).
        self._set_environment(
            {
                **REGION_VARIABLES,
                "AWS_ACCESS_KEY_ID": "bootstrap",
                "AWS_SECRET_ACCESS_KEY": "bootstrap",
                "AWS_SESSION_TOKEN": None,
                "MOTO_PORT": str(self.port),  # moto's Step Functions calls back here
                "AWS_ENDPOINT_URL": self.endpoint_url,
                **self.function_environment(),
                data_prefix: function_variable(template, data_prefix),
            }
        )
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
        _redeploy_before_each_run()
        limits.install()
        overrides = state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
        overrides["redshiftdata"] = "redshift-data"  # type: ignore[index]

        # Redshift runs many statements at once (loads of tables in parallel).
        self._standin = RedshiftDataStandIn(
            self.warehouse_dsn, self.client_factory("s3"), workers=16, copy_role_s3=self.copy_s3
        )
        install(self._standin)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.resources = self._provision(template)
        self.grant_warehouse_access()
        # From here on every request is signed by a known identity and checked: this
        # process's clients (the tests', the stand-in's) sign as the operator.
        self._set_environment(
            {
                "AWS_ACCESS_KEY_ID": self.resources.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.resources.secret_access_key,
            }
        )
        if self.iam:
            self._enforced = enforcement.enforced()
            self._enforced.__enter__()
        self._start_workers()  # after the environment above: the workers inherit it
        _running.append(self)
        return self.resources

    def grant_warehouse_access(self) -> None:
        """As a DBA would before the first run: the README's grants (docs/
        warehouse-grants.sql) for each pipeline's database user, and read access for the
        local operator (its CLI counts rows; in AWS the operator's own grants)."""
        assert self._standin is not None and self.stack is not None
        from psycopg.conninfo import conninfo_to_dict

        from myshift.local.redshift_users import DatabaseUserError

        grants = warehouse_grants()
        database = str(conninfo_to_dict(self._standin.dsn)["dbname"])
        users = set()
        for path in deployable_pipelines(self.pipelines_dir)[0]:
            try:
                users.add(self.database_user(load_pipeline_file(path)))
            except DatabaseUserError:  # its secret is not there yet: its runs will say so
                continue
        operator = f"IAM:{OPERATOR_USER}"
        for user in sorted(users):
            for statement in grants:
                self._as_dba(statement.replace("{database}", database).replace("{user}", user))
        # The operator reads every table (a superuser's view; in AWS, its own grants).
        self._as_dba(f'CREATE USER "{operator}" PASSWORD DISABLE')
        self._as_dba(f'GRANT pg_read_all_data TO "{operator}"')

    def database_user(self, pipeline: PipelineConfig) -> str:
        """The database user the pipeline's loads run as (named as the Data API names it).

        Raises DatabaseUserError when the pipeline's secret cannot be read."""
        from myshift.local.redshift_users import database_user

        assert self.stack is not None
        load_role = self.stack.functions["load"].role_arn
        return database_user({**connection_params(pipeline.target), CALLER: load_role})

    def use_warehouse(self, dsn: str) -> str:
        """Point the stand-in at another PostgreSQL database (tests isolate themselves
        this way), with the grants a DBA would run there; returns the previous DSN."""
        assert self._standin is not None
        previous = self._standin.dsn
        self._standin.dsn = dsn
        self.grant_warehouse_access()
        return previous

    def _as_dba(self, sql: str) -> None:
        """One statement as the warehouse's superuser; a user that exists is kept."""
        assert self._standin is not None
        try:
            self._standin.run_as_admin(sql)
        except StandInAdminError as exc:
            if not sql.startswith("CREATE USER") or "already exists" not in str(exc):
                raise

    def redeploy_if_changed(self) -> None:
        """Bring the roles' policies up to the pipeline files, if what they depend on
        changed (`stack.deployable_pipelines`); keep them when the app refuses."""
        with self._redeploy_lock:
            digest = deployable_pipelines(self.pipelines_dir)[1]
            if digest == self._deployed:
                return
            try:
                template = synthesized_template(self.pipelines_dir)
            except ConfigError as exc:
                logging.getLogger(__name__).warning("kept the deployed stack: %s", exc)
            else:
                self.grant_warehouse_access()  # a new pipeline's database user
                update_policies(
                    template,
                    iam=self.client("iam"),
                    bucket=self.bucket,
                    state_table=self.state_table,
                )
            self._deployed = digest

    def stop(self) -> None:
        """Stop the server, the Lambda workers and the stand-in's workers."""
        if self in _running:
            _running.remove(self)
        self._stop_workers()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._standin is not None:
            self._standin.shutdown()
            self._standin = None
        if self._enforced is not None:
            self._enforced.__exit__(None, None, None)
            self._enforced = None
        for name, value in self._environment_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._environment_before.clear()
        boto3.DEFAULT_SESSION = None

    def _start_workers(self) -> None:
        global _workers, _workers_users
        if self.workers <= 0:
            return
        assert self.stack is not None
        with _workers_lock:
            if _workers is None:
                handlers = [f.handler for f in self.stack.functions.values()]
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
        """A boto3 client of the engine, signed by the local operator."""
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

    def copy_s3(self, role_arn: str | None) -> Any:
        """S3 as a COPY's IAM role: assumed by Redshift (its trust policy must allow
        redshift.amazonaws.com), so the role's own policies decide what COPY reads.

        `IAM_ROLE default` is the stack's COPY role, which the deploy guide associates
        with the workgroup as its default role.
        """
        assert self.stack is not None
        default = self.stack.functions["load"].environment.get(
            ENVIRONMENT_VARIABLES["copy_role_arn"]
        )
        role = role_arn or default
        if not role:
            raise ConfigError("no IAM role is set as default for the warehouse")
        keys = role_credentials(role, REDSHIFT_SERVICE)
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=keys["AWS_SESSION_TOKEN"],
        )

    def client_factory(self, service: str) -> Any:
        return lambda: self.client(service)

    def warehouse_statements(self, name_prefix: str) -> list[dict[str, Any]]:
        """The warehouse's query history: statements named so, whoever ran them."""
        assert self._standin is not None
        return list(self._standin.statements_named(name_prefix))

    def role_credentials(self, handler_module: str) -> dict[str, str]:
        """The credentials the function of `myshift.handlers.<module>` runs with."""
        assert self.stack is not None
        return role_credentials(self.stack.functions[handler_module].role_arn, LAMBDA_SERVICE)

    def _provision(self, template: dict[str, Any]) -> LocalResources:
        iam = self.client("iam")
        iam.create_user(UserName=OPERATOR_USER)
        iam.put_user_policy(
            UserName=OPERATOR_USER,
            PolicyName="everything",
            PolicyDocument=json.dumps(OPERATOR_POLICY),
        )
        key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
        self.client("s3").create_bucket(Bucket=self.bucket)
        self.client("dynamodb").create_table(**state.table_definition(self.state_table))
        self.stack = provision(
            template,
            iam=iam,
            bucket=self.bucket,
            state_table=self.state_table,
            environment=self._lambda_environment,
        )
        lambda_client = self.client("lambda")
        for function in self.stack.functions.values():
            lambda_client.create_function(
                FunctionName=function.name,
                Runtime=function.runtime,
                Role=function.role_arn,
                Handler=function.handler,
                Code={"ZipFile": _dummy_zip()},
                Environment={"Variables": function.environment},
                Timeout=function.timeout_seconds,
                MemorySize=function.memory_mb,
            )
        arns = {
            name: self.client("stepfunctions").create_state_machine(
                name=machine.name,
                definition=render_definition(machine.substitutions, name),
                roleArn=machine.role_arn,
            )["stateMachineArn"]
            for name, machine in self.stack.state_machines.items()
        }
        return LocalResources(
            self.endpoint_url,
            self.bucket,
            self.state_table,
            arns["sync"],
            doctor_state_machine_arn=arns["doctor"],
            reconcile_state_machine_arn=arns["reconcile"],
            access_key_id=key["AccessKeyId"],
            secret_access_key=key["SecretAccessKey"],
            pipelines_dir=str(self.pipelines_dir),
        )
