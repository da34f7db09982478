"""What a warm Lambda keeps between invocations: clients, connections, pipelines.

Handlers call these; domain modules receive the objects as arguments. In the local
engine boto3 reaches moto through `AWS_ENDPOINT_URL`, set by the engine.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from typing import Any

import boto3
import pymysql

from myshift.config import PipelineConfig, SourceConfig, load_pipeline
from myshift.errors import ConfigError
from myshift.settings import current_settings
from myshift.source import connect

# One connection per thread: a Lambda runs one invocation at a time, while the local
# engine runs concurrent invocations on threads of one process.
_local = threading.local()


@lru_cache(maxsize=1)
def s3() -> Any:
    """The S3 client."""
    return boto3.client("s3")


@lru_cache(maxsize=1)
def state_table() -> Any:
    """The DynamoDB state table."""
    return boto3.resource("dynamodb").Table(current_settings().state_table)


@lru_cache(maxsize=1)
def redshift_data() -> Any:
    """The Redshift Data API client."""
    return boto3.client("redshift-data")


def pipeline(name: str) -> PipelineConfig:
    """The named pipeline from the deployed pipeline files."""
    return load_pipeline(current_settings().pipelines_dir, name)


def source_password(source: SourceConfig) -> str:
    """The MySQL password: Secrets Manager in AWS (cached), else the named variable."""
    if source.secret_arn:
        from aws_lambda_powertools.utilities import parameters

        secret = parameters.get_secret(source.secret_arn, max_age=300)
        try:
            value = json.loads(secret)["password"] if str(secret).startswith("{") else secret
        except (ValueError, KeyError):
            raise ConfigError("source secret must be a string or JSON with 'password'") from None
        return str(value)
    return source.password()


def mysql(source: SourceConfig, slot: int = 0) -> pymysql.Connection:
    """A MySQL connection, reused while it answers a ping (`slot`: a second one, etc.)."""
    key = (source.host, source.port, source.user, slot)
    if not hasattr(_local, "connections"):
        _local.connections = {}
    connections: dict[tuple[str, int, str, int], pymysql.Connection] = _local.connections
    conn = connections.get(key)
    if conn is not None:
        try:
            conn.ping(reconnect=False)
            return conn
        except pymysql.MySQLError:
            connections.pop(key, None)
    conn = connect(source, source_password(source))
    connections[key] = conn
    return conn
