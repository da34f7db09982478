"""The local engine, a pipeline of its own and a sample table, for end-to-end tests."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from boto3.dynamodb.conditions import Key
from myshift import state
from myshift.local import sample
from myshift.local.engine import LocalEngine

from tests.conftest import MYSQL, POSTGRES_ADMIN_DSN
from tests.support.mariadb import connect

DATABASE = "myshift_e2e"
TABLE = "settle_orders"
PIPELINE = "e2e"
# One warehouse database per test session, so two sessions never share one.
WAREHOUSE_DB = f"myshift_warehouse_e2e_{os.getpid()}"
TARGET_SCHEMA = "e2e_dw"


def pipeline_yaml(
    name: str,
    tables: list[str],
    *,
    schema: str,
    strategy: str = "sequential",
    chunk_rows: int = 500,
    extra: str = "",
) -> str:
    """A pipeline file for the test MariaDB and the stand-in warehouse."""
    lines = [
        f"name: {name}",
        "source:",
        f"  host: {MYSQL['host']}",
        f"  port: {MYSQL['port']}",
        f"  user: {MYSQL['user']}",
        "  password_env: MYSQL_PASSWORD",
        f"target: {{database: dev, schema: {schema}, workgroup: local}}",
        f"strategy: {strategy}",
        f"chunk_rows: {chunk_rows}",
        "max_concurrent_chunks: 2",
        "safety_lag_seconds: 0",
        "tables:",
        *[f"  - {{name: {t}, cursor: updated_at, primary_key: [id]}}" for t in tables],
    ]
    return "\n".join(lines) + "\n" + extra


PIPELINE_YAML = pipeline_yaml(PIPELINE, [f"{DATABASE}.{TABLE}"], schema=TARGET_SCHEMA)


@pytest.fixture(scope="session")
def warehouse_dsn() -> Iterator[str]:
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {WAREHOUSE_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {WAREHOUSE_DB}")
    yield POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + "/" + WAREHOUSE_DB
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {WAREHOUSE_DB} WITH (FORCE)")


@pytest.fixture(scope="session")
def pipelines_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pipelines")
    (directory / f"{PIPELINE}.yml").write_text(PIPELINE_YAML)
    return directory


@pytest.fixture(scope="session")
def engine(warehouse_dsn: str, pipelines_dir: Path) -> Iterator[LocalEngine]:
    local = LocalEngine(warehouse_dsn=warehouse_dsn, pipelines_dir=pipelines_dir, poll_seconds=1)
    local.start()
    yield local
    local.stop()


@pytest.fixture()
def mysql() -> Iterator[pymysql.Connection]:
    conn = pymysql.connect(**MYSQL, password="", charset="utf8mb4", autocommit=True)
    yield conn
    conn.close()


def result_of(description: dict, table: str) -> dict:
    """One table's result in a finished execution's output (`run` parses it)."""
    return next(r for r in description["output_json"]["results"] if r["table"] == table)


def normalized(value: Any) -> Any:
    """A value compared exactly across MariaDB and PostgreSQL: decimals by value,
    datetimes without a zone, binary as bytes."""
    if isinstance(value, decimal.Decimal):
        return value.normalize()
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


def normalized_row(row: tuple) -> tuple:
    """`normalized` for every value of a row."""
    return tuple(normalized(value) for value in row)


def run(engine: LocalEngine, execution_input: dict[str, Any], timeout: float = 300) -> dict:
    """Start an execution of the real state machine and wait for it to end."""
    assert engine.resources is not None
    sfn = engine.client("stepfunctions")
    name = f"e2e-{time.time_ns()}"
    arn = sfn.start_execution(
        stateMachineArn=engine.resources.state_machine_arn,
        name=name,
        input=json.dumps(execution_input),
    )["executionArn"]
    deadline = time.monotonic() + timeout
    while True:
        description = sfn.describe_execution(executionArn=arn)
        if description["status"] != "RUNNING":
            description["output_json"] = json.loads(description.get("output") or "null")
            return description
        assert time.monotonic() < deadline, f"execution {name} still running after {timeout}s"
        time.sleep(0.5)


def run_fast(engine: LocalEngine, execution_input: Any, timeout: float = 300) -> dict:
    """`run`, polling every 0.1 s (most runs of a small table take a few seconds)."""
    assert engine.resources is not None
    sfn = engine.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=engine.resources.state_machine_arn,
        name=f"e2e-{time.time_ns()}",
        input=json.dumps(execution_input),
    )["executionArn"]
    deadline = time.monotonic() + timeout
    while (description := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"execution {arn} still running after {timeout}s"
        time.sleep(0.1)
    description["output_json"] = json.loads(description.get("output") or "null")
    return description


def run_id_of(description: dict) -> str:
    """The run id of an execution: its name."""
    return description["executionArn"].rsplit(":", 1)[1]


def clear_partition(engine: LocalEngine, pipeline: str, table_name: str) -> None:
    """Delete every state item of one table (queried: the table may hold thousands)."""
    table = engine.client_table()
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(state.partition_key(pipeline, table_name))
    }
    while True:
        page = table.query(**kwargs)
        with table.batch_writer() as batch:
            for item in page["Items"]:
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def s3_keys(engine: LocalEngine, prefix: str) -> list[str]:
    """The keys under `prefix` in the engine's bucket, sorted."""
    s3 = engine.client("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=engine.bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(keys)


def reset_table(
    engine: LocalEngine, warehouse_dsn: str, *, pipeline: str, table: str, rows: int, schema: str
) -> None:
    """No fault armed; the sample `table` re-seeded with `rows` rows; the pipeline's state
    items of it, its files on S3 and its warehouse schema gone."""
    engine.clear_faults()
    database, name = table.split(".")
    conn = connect()
    sample.seed(conn, database, name, rows)
    conn.close()
    clear_partition(engine, pipeline, table)
    s3 = engine.client("s3")
    for key in s3_keys(engine, f"data/{pipeline}/"):
        s3.delete_object(Bucket=engine.bucket, Key=key)
    with psycopg.connect(warehouse_dsn, autocommit=True) as pg:
        pg.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def local_cli_env(engine: LocalEngine, pipelines_dir: Path, state_dir: Path) -> dict[str, str]:
    """The environment of `myshift --local ...` pointed at `engine` through a state file in
    `state_dir`, as `myshift local up` would leave it."""
    assert engine.resources is not None
    record = {**engine.resources.as_dict(), "pid": os.getpid()}
    (state_dir / "local.json").write_text(json.dumps(record))
    return {
        "MYSHIFT_STATE_DIR": str(state_dir),
        "MYSHIFT_PIPELINES_DIR": str(pipelines_dir),
        "MYSQL_PASSWORD": "",
    }
