"""The Lambda functions (one shared code asset) and the dependency layer.

Each function has its own role and log group, and its permissions are exactly what its
code calls (`FunctionSpec.state_actions`, `data_actions`): the state table's item
actions it uses, the object actions under the data prefix it uses, the MySQL secret
for the functions that read MySQL (`infra.secrets`), the Redshift Data API for the one
that talks to Redshift (`infra.warehouse_access`); the functions that read MySQL run in
the pipelines' VPC (`infra.network`). The local engine runs every function with its
role from this template and IAM enforcement on, so a call the table below does not
grant fails the local run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import (
    Acknowledgment,
    Duration,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct
from myshift.config import PipelineConfig
from myshift.handlers.observability import DEFAULT_NAMESPACE
from myshift.settings import ENVIRONMENT_VARIABLES

from infra.nag import nag_attr
from infra.network import SourceNetwork, pipelines_vpc
from infra.secrets import acknowledge_secrets_key, secret_resources, secrets_key_statement
from infra.warehouse_access import WarehouseAccessPolicy, warehouse_role_name

# Where the code asset puts the pipeline files (LAMBDA_TASK_ROOT is /var/task).
PIPELINES_DIR_IN_LAMBDA = "/var/task/pipelines"

RUNTIMES = {
    "3.11": lambda_.Runtime.PYTHON_3_11,
    "3.12": lambda_.Runtime.PYTHON_3_12,
    "3.13": lambda_.Runtime.PYTHON_3_13,
}
ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function: its handler module, size and what it talks to."""

    name: str  # handler module under myshift.handlers
    construct_id: str  # also the ASL substitution prefix: <construct_id>FunctionArn
    description: str
    memory_mb: int = 512
    timeout_seconds: int = 300
    reads_source: bool = False  # connects to MySQL: may read the source secret
    uses_warehouse: bool = False  # calls the Redshift Data API (its role: a database user)
    in_workflow: bool = True  # invoked by the state machine
    # DynamoDB item actions on the state table, and S3 actions under the data prefix
    # (s3:ListBucket: on the bucket, for keys under the prefix), that its code calls.
    state_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    # s3:DeleteObject (and s3:ListBucket) of a run's own documents only, under
    # `<data_prefix>/_verify/` and `_reconcile/` (RUN_DOCUMENTS): data files are deleted
    # by s3clean alone.
    removes_run_documents: bool = False

    @property
    def handler(self) -> str:
        return f"myshift.handlers.{self.name}.handler"

    @property
    def timeout(self) -> Duration:
        return Duration.seconds(self.timeout_seconds)


_GET, _PUT, _DELETE = "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"
_QUERY, _UPDATE = "dynamodb:Query", "dynamodb:UpdateItem"
_BATCH_GET, _BATCH_WRITE = "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"
_READ_OBJECT, _WRITE_OBJECT = "s3:GetObject", "s3:PutObject"
_DELETE_OBJECT, _LIST = "s3:DeleteObject", "s3:ListBucket"
# upload_file uploads a large chunk in parts and aborts them when it fails (the parts
# themselves need s3:PutObject).
_ABORT_UPLOAD = "s3:AbortMultipartUpload"
# Where a verification and a reconciliation keep the documents their steps pass on.
RUN_DOCUMENTS = ("_verify", "_reconcile")

FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        "validate_input",
        "ValidateInput",
        "Validate a sync request and expand it into per-table items",
        memory_mb=256,
        timeout_seconds=30,
        # Reads the pipeline files shipped with the code: no AWS call at all.
    ),
    FunctionSpec(
        "plan",
        "Plan",
        "Read the watermark, freeze the upper bound, cut chunks",
        reads_source=True,
        # watermark, schema, lock and plan items; the run record of the verification
        state_actions=(_GET, _PUT, _UPDATE),
        # a large plan for the Distributed Map; the verification's documents (it
        # removes them when the verification ends); doctor probes
        data_actions=(_READ_OBJECT, _WRITE_OBJECT),
        removes_run_documents=True,
    ),
    FunctionSpec(
        "extract",
        "Extract",
        "Extract one chunk from MySQL to a Parquet file on S3",
        # Memory buys CPU: Arrow's casts and zstd are CPU bound.
        memory_mb=2048,
        timeout_seconds=15 * 60,
        reads_source=True,
        # the schema; each chunk's file item (a batch, with the run's records)
        state_actions=(_GET, _PUT, _BATCH_WRITE),
        data_actions=(_WRITE_OBJECT, _ABORT_UPLOAD),
    ),
    FunctionSpec(
        "load",
        "Load",
        "Submit the one-transaction Redshift load, or raise its failure",
        uses_warehouse=True,
        # pending files, the load record (put, read, settled and deleted), the schema;
        # the files of a load that committed unseen, marked loaded (a batch)
        state_actions=(_GET, _QUERY, _PUT, _UPDATE, _DELETE, _BATCH_WRITE),
        # manifests; the verification's documents
        data_actions=(_READ_OBJECT, _WRITE_OBJECT),
    ),
    FunctionSpec(
        "state",
        "State",
        "Commit extraction/load state and record run outcomes",
        timeout_seconds=120,
        state_actions=(_GET, _BATCH_GET, _QUERY, _PUT, _UPDATE, _DELETE, _BATCH_WRITE),
        # the load's manifest; a run's deletes document, removed once applied
        data_actions=(_READ_OBJECT,),
        removes_run_documents=True,
    ),
    FunctionSpec(
        "s3clean",
        "S3Clean",
        "Nightly clean-up of loaded files on S3",
        timeout_seconds=15 * 60,
        in_workflow=False,
        # file items and run records read, cleaned file items deleted
        state_actions=(_GET, _QUERY, _DELETE, _BATCH_WRITE),
        # the only function that deletes data files
        data_actions=(_LIST, _DELETE_OBJECT),
    ),
)


@dataclass(frozen=True)
class FunctionSettings:
    """Deployment choices that reach the functions (from cdk.json context)."""

    python_version: str
    architecture: str
    poll_seconds: int
    inline_map_max_chunks: int
    data_prefix: str
    log_level: str
    log_retention: logs.RetentionDays
    removal_policy: RemovalPolicy
    copy_role_arn: str = ""  # COPY's role for pipelines that name none


def lambda_environment(
    bucket_name: str, table_name: str, settings: FunctionSettings
) -> dict[str, str]:
    """Exactly `myshift.settings.ENVIRONMENT_VARIABLES`, plus Powertools' settings."""
    values = {
        "bucket": bucket_name,
        "state_table": table_name,
        "pipelines_dir": PIPELINES_DIR_IN_LAMBDA,
        "poll_seconds": str(settings.poll_seconds),
        "data_prefix": settings.data_prefix,
        "inline_map_max_chunks": str(settings.inline_map_max_chunks),
        "copy_role_arn": settings.copy_role_arn,
    }
    if set(values) != set(ENVIRONMENT_VARIABLES):
        # settings.py gained or lost a field: the stack must set it, never guess.
        raise RuntimeError(
            "infra/functions.py is out of step with myshift.settings.ENVIRONMENT_VARIABLES: "
            f"stack sets {sorted(values)}, settings want {sorted(ENVIRONMENT_VARIABLES)}"
        )
    environment = {ENVIRONMENT_VARIABLES[field]: value for field, value in values.items()}
    environment.update(
        {
            "POWERTOOLS_SERVICE_NAME": "myshift",
            "POWERTOOLS_METRICS_NAMESPACE": DEFAULT_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": settings.log_level,
        }
    )
    return environment


class Functions(Construct):
    """The six functions, their roles and log groups, and the shared layer."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        layer_dir: Path,
        bucket: s3.IBucket,
        table: dynamodb.ITable,
        pipelines: Mapping[str, PipelineConfig],
        settings: FunctionSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        runtime = RUNTIMES[settings.python_version]
        architecture = ARCHITECTURES[settings.architecture]
        _require_dir(layer_dir / "python", "run `.venv/bin/python scripts/build_layer.py` first")
        _require_dir(code_dir / "myshift", "stage it with infra.packaging.stage_code_asset()")

        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(layer_dir)),
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
            description="myshift third-party packages (layers/requirements.txt)",
        )
        code = lambda_.Code.from_asset(str(code_dir))
        environment = lambda_environment(bucket.bucket_name, table.table_name, settings)

        self.warehouse_policy = WarehouseAccessPolicy(self, "WarehouseAccess", pipelines=pipelines)
        source_secrets = secret_resources(
            p.source.secret_arn for p in pipelines.values() if p.source.secret_arn
        )
        self.source_secrets_policy: iam.ManagedPolicy | None = None
        if source_secrets:
            self.source_secrets_policy = iam.ManagedPolicy(
                self,
                "SourceSecretsAccess",
                description="Read the MySQL passwords named in the pipeline files",
                statements=[
                    iam.PolicyStatement(
                        actions=["secretsmanager:GetSecretValue"], resources=source_secrets
                    ),
                    secrets_key_statement(source_secrets),
                ],
            )
            acknowledge_secrets_key(self.source_secrets_policy)

        # MySQL is private: the functions that read it run in the pipelines' VPC.
        self.vpc_config = pipelines_vpc(pipelines)
        self.network: SourceNetwork | None = None
        if self.vpc_config is not None:
            self.network = SourceNetwork(self, "SourceNetwork", vpc=self.vpc_config)

        self.functions: dict[str, lambda_.Function] = {}
        for spec in FUNCTIONS:
            log_group = logs.LogGroup(
                self,
                f"{spec.construct_id}Logs",
                retention=settings.log_retention,
                removal_policy=settings.removal_policy,
            )
            # An own role without AWSLambdaBasicExecutionRole: that managed policy may
            # write to every log group in the account; this one only to its own.
            role = iam.Role(
                self,
                f"{spec.construct_id}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"myshift {spec.name} function",
                # The Data API makes the role a database user named after it
                # (IAMR:<role name>): a name fixed at deploy time, granted to beforehand.
                role_name=warehouse_role_name(Stack.of(self).stack_name)
                if spec.uses_warehouse
                else None,
            )
            log_group.grant_write(role)
            function = lambda_.Function(
                self,
                spec.construct_id,
                description=spec.description,
                runtime=runtime,
                architecture=architecture,
                handler=spec.handler,
                code=code,
                layers=[self.layer],
                memory_size=spec.memory_mb,
                timeout=spec.timeout,
                environment=environment,
                role=role,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
            )
            if spec.reads_source and self.network is not None:
                self.network.place(function, role)
            grant_data_access(
                role, spec, bucket=bucket, table=table, data_prefix=settings.data_prefix
            )
            if spec.reads_source and self.source_secrets_policy is not None:
                role.add_managed_policy(self.source_secrets_policy)
            if spec.uses_warehouse:
                role.add_managed_policy(self.warehouse_policy.policy)
            _acknowledge_function(function, role, bucket, settings, spec)
            self.functions[spec.name] = function

    def workflow_functions(self) -> dict[str, lambda_.Function]:
        """The functions the state machine invokes, by ASL substitution prefix."""
        return {
            spec.construct_id: self.functions[spec.name] for spec in FUNCTIONS if spec.in_workflow
        }


def grant_data_access(
    role: iam.Role,
    spec: FunctionSpec,
    *,
    bucket: s3.IBucket,
    table: dynamodb.ITable,
    data_prefix: str,
) -> None:
    """Exactly the function's state table and data prefix actions (none: no statement)."""
    if spec.state_actions:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="StateTable",
                actions=sorted(spec.state_actions),
                resources=[table.table_arn],
            )
        )
    objects = sorted(a for a in spec.data_actions if a != _LIST)
    if objects:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DataObjects",
                actions=objects,
                resources=[bucket.arn_for_objects(f"{data_prefix}/*")],
            )
        )
    if spec.removes_run_documents:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RemoveRunDocuments",
                actions=[_DELETE_OBJECT],
                resources=[bucket.arn_for_objects(f"{data_prefix}/{d}/*") for d in RUN_DOCUMENTS],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListRunDocuments",
                actions=[_LIST],
                resources=[bucket.bucket_arn],
                conditions={
                    "StringLike": {"s3:prefix": [f"{data_prefix}/{d}/*" for d in RUN_DOCUMENTS]}
                },
            )
        )
    if _LIST in spec.data_actions:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListDataPrefix",
                actions=[_LIST],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{data_prefix}/*"]}},
            )
        )


def _acknowledge_function(
    function: lambda_.Function,
    role: iam.Role,
    bucket: s3.IBucket,
    settings: FunctionSettings,
    spec: FunctionSpec,
) -> None:
    """The findings of every function, each with its reason, on its role/function."""
    stack = Stack.of(function)
    Validations.of(function).acknowledge(
        Acknowledgment(
            id="AwsSolutions-L1",
            reason=f"Pinned to python{settings.python_version}: the layer's wheels are "
            "built for it and the tests run on the same interpreter (cdk.json context "
            "lambda_python_version moves both).",
        )
    )
    grant_reason = (
        "Objects under the data prefix of the myshift data bucket only: object keys are "
        "per pipeline/table/run and not known at deploy time."
    )
    if any(action != _LIST for action in spec.data_actions):
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[{nag_attr(stack, bucket, f'/{settings.data_prefix}/*')}]",
                reason=grant_reason,
            )
        )
    if spec.removes_run_documents:
        Validations.of(role).acknowledge(
            *(
                Acknowledgment(
                    id="AwsSolutions-IAM5["
                    + nag_attr(stack, bucket, f"/{settings.data_prefix}/{documents}/*")
                    + "]",
                    reason="Deletes a run's own documents (verification, reconciliation) "
                    "once it ended; their keys are per pipeline/table/run. Data files are "
                    "not there.",
                )
                for documents in RUN_DOCUMENTS
            )
        )
    Validations.of(role).acknowledge(
        Acknowledgment(
            id="AwsSolutions-IAM5[Resource::*]",
            reason="X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no "
            "resource-level permissions.",
        ),
    )


def _require_dir(path: Path, hint: str) -> None:
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist: {hint}")
