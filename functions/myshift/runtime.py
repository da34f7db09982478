"""What a warm Lambda keeps between invocations: clients, connections, pipelines.

Handlers call these; domain modules receive the objects as arguments. In the local
engine boto3 reaches moto through `AWS_ENDPOINT_URL`, set by the engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
import boto3.session
import pymysql

from myshift.clients import RedshiftDataClient, S3Client, StateTable
from myshift.config import PipelineConfig, SourceConfig, load_pipeline
from myshift.errors import ConfigError
from myshift.settings import current_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from myshift import doctor
from myshift.source import connect

# One connection per thread: a Lambda runs one invocation at a time, while the local
# engine runs concurrent invocations on threads of one process.
_local = threading.local()


_clients: dict[tuple[str, ...], Any] = {}
_clients_lock = threading.Lock()

_Client = TypeVar("_Client")


def _cached(kind: str, build: Callable[[boto3.session.Session], _Client], *extra: str) -> _Client:
    """One client per kind and credentials, each from a session of its own.

    Lambda sets the role's credentials in the function's environment, fixed for the
    execution environment; the local engine's warm workers serve several functions,
    each with its own role, so a client is kept per access key (and boto3's default
    session, which keeps the first credentials it read, is not used).
    """
    key = (kind, os.environ.get("AWS_ACCESS_KEY_ID", ""), *extra)
    with _clients_lock:
        client = _clients.get(key)
    if client is None:
        client = build(boto3.session.Session())
        with _clients_lock:
            client = _clients.setdefault(key, client)
    # One kind, one type: `key` starts with `kind`, which one `build` serves.
    return cast(_Client, client)


def clear_clients() -> None:
    """Forget every kept client (tests that point the functions somewhere else)."""
    with _clients_lock:
        _clients.clear()


def s3() -> S3Client:
    """The S3 client."""
    return _cached("s3", lambda session: session.client("s3"))


def state_table() -> StateTable:
    """The DynamoDB state table."""
    name = current_settings().state_table
    return _cached("state_table", lambda session: session.resource("dynamodb").Table(name), name)


def redshift_data() -> RedshiftDataClient:
    """The Redshift Data API client."""
    return _cached("redshift-data", lambda session: session.client("redshift-data"))


def secrets() -> SecretsProvider:
    """Powertools' Secrets Manager provider (it caches values for `max_age`)."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return _cached(
        "secrets",
        lambda session: SecretsProvider(boto3_client=session.client("secretsmanager")),
    )


def pipeline(name: str) -> PipelineConfig:
    """The named pipeline from the deployed pipeline files."""
    return load_pipeline(current_settings().pipelines_dir, name)


def source_password(source: SourceConfig) -> str:
    """The MySQL password: Secrets Manager in AWS (cached), else the named variable."""
    if source.secret_arn:
        secret = secrets().get(source.secret_arn, max_age=300)
        problem = "source secret must be a string or JSON with 'password'"
        if not isinstance(secret, str):  # SecretBinary: str() of bytes is no password
            raise ConfigError(problem)
        try:
            value = json.loads(secret)["password"] if secret.startswith("{") else secret
        except (ValueError, KeyError):
            raise ConfigError(problem) from None
        return str(value)
    return source.password()


def mysql(source: SourceConfig, slot: int = 0) -> pymysql.Connection:
    """A MySQL connection, reused while it answers a ping (`slot`: a second one, etc.).

    Kept per login *and password*: a pipeline whose password is wrong (or rotated away)
    must fail, not ride on a connection another pipeline of the same user opened.
    """
    password = source_password(source)
    digest = hashlib.sha256(password.encode("utf-8")).hexdigest()
    key = (source.host, source.port, source.user, digest, slot)
    if not hasattr(_local, "connections"):
        _local.connections = {}
    connections: dict[tuple[str, int, str, str, int], pymysql.Connection] = _local.connections
    conn = connections.get(key)
    if conn is not None:
        try:
            conn.ping(reconnect=False)
            return conn
        except pymysql.MySQLError:
            connections.pop(key, None)
    conn = connect(source, password)
    connections[key] = conn
    return conn


def doctor_context(event: dict[str, Any]) -> doctor.Context:
    """What a function's `myshift doctor` checks reach (`myshift.doctor.Context`)."""
    import time

    from myshift.doctor import Context  # the doctor's modules only when it runs

    pipeline_config = pipeline(event["pipeline"])
    settings = current_settings()
    return Context(
        connect=lambda: mysql(pipeline_config.source),
        state_table=state_table(),
        s3=s3(),
        pipeline=pipeline_config,
        bucket=settings.bucket,
        data_prefix=settings.data_prefix,
        run_id=str(event["run_id"]),
        now_epoch=int(time.time()),
    )
