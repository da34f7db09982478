"""Pipeline files (`pipelines/*.yml`): the pydantic model and its loader.

A pipeline names one MySQL source, one Redshift target and the tables to sync.
Loading validates everything up front; a bad file is one clear line naming the file
and the field.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from myshift.errors import ConfigError
from myshift.identifiers import validate_identifier

PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# Defaults measured with `make bench` (bench/cli_sync.py, bench/extract.py: 1,000,000 rows
# of a 12-column settlement table, 2 CPUs shared). Rows per chunk: none set here; unless
# the file says `chunk_rows` (or a run `limit`), each run's plan sizes the chunks from the
# table's size and row width (`plan.choose_chunk_rows`).
# Two chunks at a time: `myshift --local sync` as a user runs it took 7.4-8.6 s with 2 and
# 10.4-15.2 s with 4 (the engine keeps as many warm workers as CPUs: a third and fourth
# chunk wait for cold ones), and each chunk is one more connection to the source.
DEFAULT_MAX_CONCURRENT_CHUNKS = 2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# OpenSSH's fingerprint form, as `ssh-keygen -lf KEY.pub` and `ssh` print it.
SSH_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")


class SshConfig(_Strict):
    """An SSH bastion the operator's CLI tunnels through to reach MySQL.

    Only the CLI on the operator's machine uses it (validate-counts, the counts after
    `sync pipeline`); the Lambda functions sit in the VPC and connect to `source.host`
    directly. `source.host`/`port` are as the bastion sees them. The bastion's host key
    is checked: against `known_hosts` (default ~/.ssh/known_hosts), or against a pinned
    `host_key_fingerprint`; `strict_host_key_checking: false` accepts any key.
    """

    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(min_length=1)
    # An unencrypted private key; `~` is expanded; checked when the tunnel opens (the
    # Lambdas load the same file and have no key).
    key_file: Path
    known_hosts: Path | None = None
    strict_host_key_checking: bool = True
    host_key_fingerprint: str | None = None

    @field_validator("host_key_fingerprint")
    @classmethod
    def _valid_fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not SSH_FINGERPRINT.match(value):
            raise ValueError(
                "host_key_fingerprint must look like SHA256:<43 base64 characters> "
                "(as `ssh-keygen -lf` prints it)"
            )
        return value

    @model_validator(mode="after")
    def _one_host_key_check(self) -> SshConfig:
        if self.host_key_fingerprint and self.known_hosts:
            raise ValueError("give known_hosts or host_key_fingerprint, not both")
        if not self.strict_host_key_checking and (self.host_key_fingerprint or self.known_hosts):
            raise ValueError(
                "strict_host_key_checking: false ignores known_hosts/host_key_fingerprint; "
                "drop one of them"
            )
        return self

    @property
    def where(self) -> str:
        """`user@host:port` of the bastion, for messages."""
        return f"{self.user}@{self.host}:{self.port}"

    def key_path(self) -> Path:
        """The private key's path, or a ConfigError naming the field (never its content)."""
        path = self.key_file.expanduser()
        if not path.is_file():
            raise ConfigError(
                f"source.ssh.key_file: {path} does not exist "
                f"(the private key for SSH bastion {self.where})"
            )
        return path


# The validation context key that carries the pipeline file's directory: relative paths
# in the file (tls.ca_bundle) are relative to it, not to the working directory.
PIPELINE_DIR = "pipeline_dir"

TlsMode = Literal["disabled", "required", "verify_ca", "verify_identity"]
VERIFYING_MODES = ("verify_ca", "verify_identity")
# Amazon RDS/Aurora server certificates chain to Amazon's own CAs, not to a public one.
RDS_CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine: `localhost`, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_ca_bundle(path: Path) -> Path:
    """`path` if it is a readable file of PEM CA certificates, else a ValueError saying so."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist") from None
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    problem = _ca_bundle_problem(str(path), stat.st_mtime_ns, stat.st_size)
    if problem:
        raise ValueError(f"{path} {problem}")
    return path


# Parsing a bundle of ~100 certificates (RDS's) takes tens of ms, and a function loads
# its pipeline on every invocation: parsed once per file version.
@functools.lru_cache(maxsize=16)
def _ca_bundle_problem(path: str, mtime_ns: int, size: int) -> str | None:
    """What is wrong with the bundle at `path` (this version of it), or None."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    if _PEM_CERTIFICATE not in data:
        return f"holds no PEM certificate ({_PEM_CERTIFICATE.decode()} ...)"
    try:
        # What connect() will do with it: a bundle OpenSSL cannot parse fails here, once.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        return f"is not a PEM CA bundle OpenSSL can read ({getattr(exc, 'reason', None) or exc})"
    return None


def _resolved(path: Path, info: ValidationInfo) -> Path:
    """`path` (`~` expanded) relative to the pipeline file's directory, when known."""
    path = path.expanduser()
    base = (info.context or {}).get(PIPELINE_DIR)
    return path if path.is_absolute() or base is None else Path(base) / path


class TlsConfig(_Strict):
    """How the connection to MySQL is encrypted and the server checked.

    `mode` means what MySQL's `--ssl-mode` means: `disabled` (plain TCP), `required`
    (encrypted, the certificate not checked), `verify_ca` (the certificate must chain to
    `ca_bundle`), `verify_identity` (that, and it must name `source.host`). The checking
    modes need `ca_bundle`: a PEM file, relative to the pipeline file's directory (or
    absolute). `SourceConfig` fills in the mode when the file leaves it out.
    """

    mode: TlsMode
    # As written in the file; `ca_path` is where it is (relative paths resolved).
    ca_bundle: Path | None = None
    _ca_path: Path | None = PrivateAttr(default=None)

    @field_validator("ca_bundle")
    @classmethod
    def _readable_bundle(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None:
            check_ca_bundle(_resolved(value, info))
        return value

    @model_validator(mode="after")
    def _locate_bundle(self, info: ValidationInfo) -> TlsConfig:
        if self.ca_bundle is not None:
            self._ca_path = _resolved(self.ca_bundle, info)
        return self

    @property
    def ca_path(self) -> Path | None:
        """The CA bundle file: `ca_bundle`, relative to the pipeline file's directory."""
        return self._ca_path

    @model_validator(mode="after")
    def _bundle_fits_mode(self) -> TlsConfig:
        if self.mode in VERIFYING_MODES and self.ca_bundle is None:
            raise ValueError(
                f"mode {self.mode} checks the server's certificate against ca_bundle: give "
                f"ca_bundle (for Amazon RDS/Aurora: {RDS_CA_BUNDLE_URL}, saved next to the "
                "pipeline file)"
            )
        if self.mode not in VERIFYING_MODES and self.ca_bundle is not None:
            raise ValueError(
                f"mode {self.mode} does not check the certificate, so ca_bundle would be "
                "ignored: use mode verify_identity (or verify_ca), or drop ca_bundle"
            )
        return self


class SourceConfig(_Strict):
    """Where the MySQL server is and how to authenticate.

    `tls` defaults by host: a loopback host (`127.0.0.1`, `::1`, `localhost`: the local
    engine and the demo) gets `disabled`; any other host `verify_identity`, which needs
    `tls.ca_bundle`. A file for a remote host that gives neither `tls.ca_bundle` nor
    `tls.mode` is refused when loaded: the password and every row cross the network, and
    RDS/Aurora certificates do not chain to a public CA, so nothing else could check them.
    `tls.mode: required` encrypts without checking, for whoever chooses it knowingly.
    """

    host: str = Field(min_length=1)
    port: int = Field(default=3306, ge=1, le=65535)
    user: str = Field(min_length=1)
    password_env: str | None = None
    secret_arn: str | None = None
    connect_timeout_seconds: int = Field(default=10, ge=1, le=300)
    read_timeout_seconds: int = Field(default=600, ge=1, le=3600)
    # The operator's CLI reaches MySQL through this bastion (see myshift.tunnel).
    ssh: SshConfig | None = None
    # Always set once validated (the default depends on `host`, see the class docstring).
    tls: TlsConfig = Field(default=None, validate_default=True)

    @field_validator("tls", mode="before")
    @classmethod
    def _tls_mode_by_host(cls, value: Any, info: ValidationInfo) -> Any:
        """Fill in `tls.mode` when the file leaves it out (after `host`, which comes first)."""
        if value is None:
            value = {}
        if not isinstance(value, dict) or "mode" in value:
            return value
        host = info.data.get("host")
        if value.get("ca_bundle") is not None:
            return {**value, "mode": "verify_identity"}
        if host is None or is_loopback(host):  # a bad host is reported on its own
            return {**value, "mode": "disabled"}
        raise ValueError(
            f"MySQL host {host} is not loopback, so TLS defaults to mode verify_identity, "
            "which needs tls.ca_bundle: for Amazon RDS/Aurora save "
            f"{RDS_CA_BUNDLE_URL} next to this pipeline file and set "
            "`tls: {ca_bundle: global-bundle.pem}`; or set `tls: {mode: required}` to "
            "encrypt without checking the server's certificate (knowingly)"
        )

    @model_validator(mode="after")
    def _one_password_source(self) -> SourceConfig:
        if bool(self.password_env) == bool(self.secret_arn):
            raise ValueError("give exactly one of password_env or secret_arn")
        return self

    def password(self) -> str:
        """The MySQL password from the environment variable (local runs).

        An empty variable is an empty password; an unset one is an error. In AWS the
        handler reads `secret_arn` instead (see `myshift.secrets`).
        """
        if not self.password_env:
            raise ConfigError("source.password_env is not set for this pipeline")
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(
                f"environment variable {self.password_env} (source.password_env) is not set"
            )
        return value


class TargetConfig(_Strict):
    """The Redshift database and schema that receive the tables."""

    database: str = Field(min_length=1)
    schema_name: str = Field(alias="schema")
    workgroup: str | None = None
    cluster_identifier: str | None = None
    secret_arn: str | None = None
    db_user: str | None = None
    copy_role_arn: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("schema_name")
    @classmethod
    def _valid_schema(cls, value: str) -> str:
        # Redshift folds names to lower case (quoted ones too, unless the session turns
        # on enable_case_sensitive_identifier): `Sales_DW` is the schema `sales_dw`, and
        # every lookup by name (information_schema) must use the folded name.
        return validate_identifier(value, what="target.schema").lower()

    @model_validator(mode="after")
    def _one_endpoint(self) -> TargetConfig:
        if bool(self.workgroup) == bool(self.cluster_identifier):
            raise ValueError("give exactly one of workgroup (Serverless) or cluster_identifier")
        if self.db_user and not self.cluster_identifier:
            # The Data API takes DbUser for a provisioned cluster only; a workgroup's
            # database user is the IAM identity's (IAMR:<role>) or the secret's.
            raise ValueError("db_user is for a provisioned cluster (cluster_identifier) only")
        return self


# Subnet and security group ids: the prefix and 8 or 17 hex digits.
SUBNET_ID = re.compile(r"^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
SECURITY_GROUP_ID = re.compile(r"^sg-(?:[0-9a-f]{8}|[0-9a-f]{17})$")


def _ids(values: list[str], pattern: re.Pattern[str], what: str) -> list[str]:
    for value in values:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a {what} id ({pattern.pattern})")
    if len(set(values)) != len(values):
        raise ValueError(f"{what} ids repeat")
    return values


VPC_ID = re.compile(r"^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
ROUTE_TABLE_ID = re.compile(r"^rtb-(?:[0-9a-f]{8}|[0-9a-f]{17})$")


class VpcConfig(_Strict):
    """Where the functions that read MySQL run: subnets (private, with a route to
    MySQL and to S3/DynamoDB/Secrets Manager) and the security groups MySQL admits.

    That route is a NAT gateway, or VPC endpoints: `create_endpoints: true` has the
    stack create the S3 and DynamoDB gateway endpoints (on `route_table_ids`, the
    subnets' route tables) and a Secrets Manager interface endpoint (in the subnets, at
    most one per Availability Zone) in `vpc_id`.
    """

    subnet_ids: list[str] = Field(min_length=1)
    security_group_ids: list[str] = Field(min_length=1)
    create_endpoints: bool = False
    vpc_id: str | None = None
    route_table_ids: list[str] = Field(default_factory=list)

    @field_validator("vpc_id")
    @classmethod
    def _valid_vpc(cls, value: str | None) -> str | None:
        if value is not None and not VPC_ID.match(value):
            raise ValueError(f"{value!r} is not a VPC id ({VPC_ID.pattern})")
        return value

    @field_validator("route_table_ids")
    @classmethod
    def _valid_route_tables(cls, value: list[str]) -> list[str]:
        return _ids(value, ROUTE_TABLE_ID, "route table")

    @model_validator(mode="after")
    def _endpoints_need_the_vpc(self) -> VpcConfig:
        if self.create_endpoints and not self.vpc_id:
            raise ValueError("create_endpoints needs vpc_id (the subnets' VPC)")
        if self.create_endpoints and not self.route_table_ids:
            raise ValueError(
                "create_endpoints needs route_table_ids (the subnets' route tables, for the "
                "S3 and DynamoDB gateway endpoints)"
            )
        if not self.create_endpoints and (self.vpc_id or self.route_table_ids):
            raise ValueError("vpc_id and route_table_ids are for create_endpoints: true only")
        return self

    @field_validator("subnet_ids")
    @classmethod
    def _valid_subnets(cls, value: list[str]) -> list[str]:
        return _ids(value, SUBNET_ID, "subnet")

    @field_validator("security_group_ids")
    @classmethod
    def _valid_security_groups(cls, value: list[str]) -> list[str]:
        return _ids(value, SECURITY_GROUP_ID, "security group")


class TableConfig(_Strict):
    """One table to sync: `database.table`, its cursor column and its key.

    The key identifies a row: `primary_key` (the table's PRIMARY KEY), or for a table
    without one `unique_key` (the columns of a UNIQUE index of NOT NULL columns). Given
    `unique_key`, `primary_key` holds the same columns, so everything keyed on
    `primary_key` (merge, counts) uses it. The plan checks the key against the table's
    indexes before anything runs.
    """

    name: str
    cursor: str
    primary_key: list[str] = Field(min_length=1)
    unique_key: list[str] | None = Field(default=None, min_length=1)
    safety_lag_seconds: int | None = Field(default=None, ge=0, le=86_400)
    # Rows whose cursor is NULL are counted and reported every run; with this option
    # they are loaded too: ordered before every other row, by the key alone, so the
    # first run(s) after a reset load them once (see plan.py).
    load_null_cursor: bool = False
    # How chunks are read: "text" (the server builds CSV lines, parsed by Arrow) or
    # "rows" (pymysql's rows, converted a column at a time; slower, the reference).
    reader: Literal["text", "rows"] = "text"
    # merge: upsert by key, newest version wins; append: insert every extracted row;
    # replace: a full refresh, every run extracts the whole table (not from the
    # watermark) and the load swaps the target's rows for this run's in one transaction.
    # A replace table refuses max_chunks (a refresh cut short would delete the rest);
    # limit still sizes its chunks.
    write_mode: Literal["merge", "append", "replace"] = "merge"
    # A column added in MySQL: a merge table reads the whole table once, so that rows
    # that did not change since get the column's value (its DEFAULT, a backfill). On a
    # very large table an operator may prefer false: only rows extracted from then on
    # carry the value; older rows keep NULL in the warehouse until they change.
    backfill_added_columns: bool = True
    # A row deleted in MySQL (found by the verification after each run, see verify.py):
    # keep: it stays in the warehouse and is reported as "deleted in source" (the
    # default: a backup keeps history, and a key missing from the source may as well be
    # a source-side accident as a deletion; removing it cannot be undone);
    # remove: deleted from the warehouse too (a mirror); soft: kept, and its
    # `_myshift_deleted_at` column set to when the run found it gone. Merge tables only.
    deletes: Literal["keep", "remove", "soft"] = "keep"
    # Rows per key range of the verification (ranges compared by count and hash; only
    # those that differ are compared key by key).
    verify_range_rows: int = Field(default=10_000, ge=10, le=10_000_000)

    @model_validator(mode="after")
    def _deletes_need_merge(self) -> TableConfig:
        if self.deletes != "keep" and self.write_mode != "merge":
            raise ValueError(
                f"deletes: {self.deletes} needs write_mode merge (append keeps every "
                "version; replace loads the whole table, deleted rows included)"
            )
        return self

    @field_validator("name")
    @classmethod
    def _qualified(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) != 2:
            raise ValueError(f"must be 'database.table', got {value!r}")
        for part in parts:
            validate_identifier(part, what="table name")
        return value

    @field_validator("cursor")
    @classmethod
    def _valid_cursor(cls, value: str) -> str:
        return validate_identifier(value, what="cursor column")

    @field_validator("primary_key")
    @classmethod
    def _valid_key(cls, value: list[str]) -> list[str]:
        for column in value:
            validate_identifier(column, what="primary key column")
        if len(set(value)) != len(value):
            raise ValueError("primary key columns repeat")
        return value

    @field_validator("unique_key")
    @classmethod
    def _valid_unique_key(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        for column in value:
            validate_identifier(column, what="unique key column")
        if len(set(value)) != len(value):
            raise ValueError("unique key columns repeat")
        return value

    @model_validator(mode="before")
    @classmethod
    def _key_from_unique_key(cls, data: object) -> object:
        """`unique_key` alone stands for the key; with `primary_key` it must not differ."""
        if isinstance(data, dict) and data.get("unique_key") is not None:
            if "primary_key" not in data:
                return {**data, "primary_key": data["unique_key"]}
            if data["primary_key"] != data["unique_key"]:
                raise ValueError(
                    "give primary_key (the table's PRIMARY KEY) or unique_key (for a table "
                    "without one), not both"
                )
        return data

    @property
    def key_source(self) -> str:
        """`unique_key` or `primary_key`: which setting named the key (for messages)."""
        return "unique_key" if self.unique_key is not None else "primary_key"

    @property
    def database(self) -> str:
        return self.name.split(".")[0]

    @property
    def table(self) -> str:
        return self.name.split(".")[1]


class PipelineConfig(_Strict):
    """A whole pipeline file."""

    name: str
    # Only for the local engine (the demo: a loopback MySQL, a password in an
    # environment variable): a deployed stage leaves the file out.
    local_only: bool = False
    source: SourceConfig
    target: TargetConfig
    # The deployed plan/extract functions run in these subnets (MySQL is private).
    vpc: VpcConfig | None = None
    strategy: Literal["sequential", "inter-table"] = "sequential"
    schedule: str | None = None
    # EventBridge schedule of a content reconciliation of every table (`myshift
    # reconcile`, report only, no fix); none by default: it reads every row of the source.
    reconcile_schedule: str | None = None
    # None: sized from the table at each run's plan (plan.choose_chunk_rows).
    chunk_rows: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    max_concurrent_chunks: Annotated[int, Field(ge=1, le=40)] = DEFAULT_MAX_CONCURRENT_CHUNKS
    safety_lag_seconds: Annotated[int, Field(ge=0, le=86_400)] = 5
    lock_lease_seconds: Annotated[int, Field(ge=10, le=86_400)] = 3 * 3600
    max_parallel_tables: Annotated[int, Field(ge=1, le=40)] = 4
    tables: list[TableConfig] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not PIPELINE_NAME.match(value):
            raise ValueError("must be lower case letters, digits, '-' or '_' (at most 63)")
        return value

    @model_validator(mode="after")
    def _unique_tables(self) -> PipelineConfig:
        names = [t.name for t in self.tables]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tables listed twice: {', '.join(duplicates)}")
        return self

    def table(self, name: str) -> TableConfig:
        """The table called `name` (`database.table`), or a ConfigError."""
        for table in self.tables:
            if table.name == name:
                return table
        known = ", ".join(t.name for t in self.tables)
        raise ConfigError(f"pipeline {self.name!r} has no table {name!r} (it has: {known})")

    def safety_lag_for(self, table: TableConfig) -> int:
        """Seconds kept back from the source's NOW() when freezing the upper bound."""
        if table.safety_lag_seconds is not None:
            return table.safety_lag_seconds
        return self.safety_lag_seconds


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "(file)"
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"


def load_pipeline_file(path: Path) -> PipelineConfig:
    """Parse and validate one pipeline file; ConfigError names the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read pipeline file: {exc}".splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a pipeline file must be a mapping")
    try:
        pipeline = PipelineConfig.model_validate(raw, context={PIPELINE_DIR: path.parent})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if pipeline.name != path.stem:
        raise ConfigError(f"{path}: name {pipeline.name!r} must match the file name {path.stem!r}")
    return pipeline


def pipeline_files(directory: Path) -> dict[str, Path]:
    """`<name>.yml`/`<name>.yaml` files by name; one pipeline in two files is an error."""
    if not directory.is_dir():
        raise ConfigError(f"pipelines directory {directory} does not exist")
    files: dict[str, Path] = {}
    for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]):
        if path.stem in files:
            raise ConfigError(f"pipeline {path.stem!r} is in two files: {files[path.stem]}, {path}")
        files[path.stem] = path
    return files


def stage_pipelines_dir(pipelines_dir: Path, stage: str) -> Path:
    """`<pipelines_dir>/<stage>/` when it exists, else `pipelines_dir` itself.

    Stages deployed to one account then sync different pipelines (a dev stack must not
    schedule the production pipelines a second time); the CLI reads the same files.
    """
    stage_dir = pipelines_dir / stage
    return stage_dir if stage_dir.is_dir() else pipelines_dir


def load_pipelines(directory: Path) -> dict[str, PipelineConfig]:
    """Every pipeline in `directory` (`*.yml` and `*.yaml`), by name."""
    return {name: load_pipeline_file(path) for name, path in pipeline_files(directory).items()}


def lambda_problem(pipeline: PipelineConfig) -> str | None:
    """Why a deployed function could never run `pipeline` (`field: reason`), or None."""
    source = pipeline.source
    if source.password_env:
        return (
            f"source.password_env: a deployed function has no environment variable "
            f"{source.password_env}; give source.secret_arn (Secrets Manager), or mark the "
            "file `local_only: true`"
        )
    if is_loopback(source.host):
        return (
            f"source.host: {source.host} is loopback, the function's own machine, not a MySQL "
            "server; name the server, or mark the file `local_only: true`"
        )
    return None


def load_deployed_pipelines(directory: Path) -> dict[str, PipelineConfig]:
    """The pipelines a deployed stage takes from `directory`: every file but the
    `local_only` ones. A file that could never run in Lambda (`lambda_problem`) is a
    ConfigError naming the file and the field."""
    pipelines: dict[str, PipelineConfig] = {}
    for name, path in pipeline_files(directory).items():
        pipeline = load_pipeline_file(path)
        if pipeline.local_only:
            continue
        problem = lambda_problem(pipeline)
        if problem:
            raise ConfigError(f"{path}: {problem}")
        pipelines[name] = pipeline
    return pipelines


def load_pipeline(directory: Path, name: str) -> PipelineConfig:
    """The pipeline called `name` (only its file is read: another file's error is not
    this pipeline's), or a ConfigError listing the ones that exist."""
    files = pipeline_files(directory)
    if name not in files:
        known = ", ".join(sorted(files)) or "none"
        raise ConfigError(f"unknown pipeline {name!r} (known: {known}) in {directory}")
    return load_pipeline_file(files[name])
