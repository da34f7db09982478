"""The local engine, a pipeline of its own and a sample table, for end-to-end tests."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import psycopg.sql
import pymysql
import pytest
from boto3.dynamodb.conditions import Key
from myshift import state
from myshift.config import load_pipeline
from myshift.errors import ConfigError
from myshift.identifiers import quote_mysql_table, quote_redshift, quote_redshift_table
from myshift.local import sample
from myshift.local.engine import LocalEngine
from myshift.local.redshift_users import role_name

from tests.conftest import MYSQL, POSTGRES_ADMIN_DSN
from tests.support.mariadb import connect, execute_alone

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
    chunk_rows: int | None = 500,
    extra: str = "",
    table_options: str = "",
) -> str:
    """A pipeline file for the test MariaDB and the stand-in warehouse (`table_options`:
    more settings of every table, e.g. `verify_range_rows: 200`; `chunk_rows` None: no
    chunk_rows line, the plan sizes the chunks from the table)."""
    lines = [
        f"name: {name}",
        "source:",
        f"  host: {MYSQL['host']}",
        f"  port: {MYSQL['port']}",
        f"  user: {MYSQL['user']}",
        "  password_env: MYSQL_PASSWORD",
        f"target: {{database: dev, schema: {schema}, workgroup: local}}",
        f"strategy: {strategy}",
        *([] if chunk_rows is None else [f"chunk_rows: {chunk_rows}"]),
        "max_concurrent_chunks: 2",
        "safety_lag_seconds: 0",
        "tables:",
        *[
            f"  - {{name: {t}, cursor: updated_at, primary_key: [id]"
            + (f", {table_options}" if table_options else "")
            + "}"
            for t in tables
        ],
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


def client_as(engine: LocalEngine, handler_module: str, service: str) -> Any:
    """A client signed with the role the function of `handler_module` runs with."""
    keys = engine.role_credentials(handler_module)
    return boto3.client(
        service,
        endpoint_url=engine.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=keys["AWS_SESSION_TOKEN"],
    )


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
            return with_outcomes(engine, description)
        assert time.monotonic() < deadline, f"execution {name} still running after {timeout}s"
        time.sleep(0.5)


def with_outcomes(engine: LocalEngine, description: dict) -> dict:
    """The finished execution, `output_json` its parsed output with `results`: the run's
    record of each table (DynamoDB), in the order of the run's tables.

    Each table runs in its own child execution and the run's output stays small (1,000
    tables), so a table's outcome is its run record, as for the CLI.
    """
    output = json.loads(description.get("output") or "null") or {}
    output["results"] = []
    description["output_json"] = output
    try:  # hostile-input tests start runs that name no pipeline at all
        request = json.loads(description["input"])
        pipeline = load_pipeline(engine.pipelines_dir, request["pipeline"])
        names = request.get("tables") or [t.name for t in pipeline.tables]
        names = [str(name) for name in names]
    except (ConfigError, KeyError, TypeError, ValueError):
        return description
    records = state.get_runs(engine.client_table(), pipeline.name, names, run_id_of(description))
    output["results"] = [records[name] for name in names if name in records]
    return description


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
    return with_outcomes(engine, description)


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


# --- comparing the warehouse with the source ---------------------------------------------


@contextmanager
def isolated_warehouse(engine: LocalEngine, name: str) -> Iterator[str]:
    """A warehouse database of this module's own (per process), for the engine's stand-in.

    Every test session drops and re-creates the shared e2e warehouse database when it
    starts; with sessions running side by side (several engineers, CI jobs) that would
    drop our tables mid-run. The stand-in opens a session per statement on its DSN, so
    pointing it at a database of our own for the module's duration isolates us.
    """
    from myshift.local.redshift_standin import ensure_database

    name = f"{name}_{os.getpid()}"
    dsn = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name

    def drop() -> None:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    drop()
    ensure_database(dsn)
    saved = engine.use_warehouse(dsn)
    try:
        yield dsn
    finally:
        engine.use_warehouse(saved)
        drop()


def connect_as_pipeline_user(
    engine: LocalEngine, dsn: str, pipeline: str, *, autocommit: bool = True
) -> psycopg.Connection:
    """A warehouse session as the pipeline's database user (as another execution of it
    would be): what it creates, that user owns, as in Redshift."""
    engine.redeploy_if_changed()  # the pipeline deployed: its user exists, with its grants
    user = role_name(engine.database_user(load_pipeline(engine.pipelines_dir, pipeline)))
    conn = psycopg.connect(dsn, autocommit=autocommit)
    conn.execute(
        psycopg.sql.SQL("SET SESSION AUTHORIZATION {}").format(psycopg.sql.Identifier(user))
    )
    if not autocommit:
        conn.commit()
    return conn


def drop_source_table(name: str) -> None:
    execute_alone(f"DROP TABLE IF EXISTS {quote_mysql_table(DATABASE, name)}")


@dataclass
class Comparison:
    source_rows: int
    target_rows: int
    missing: int
    duplicate: int
    extra: int
    differing: int

    @property
    def equal(self) -> bool:
        return self.missing == self.duplicate == self.extra == self.differing == 0


def compare_table(
    engine: LocalEngine, dsn: str, pipeline: str, qualified: str, schema: str, key: str = "id"
) -> Comparison:
    """Every column of every row: MySQL against the warehouse, by primary key.

    Target columns are found through the stored source -> target name map.
    """
    database, name = qualified.split(".")
    conn = connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {quote_mysql_table(database, name)}")
            columns = [d[0] for d in cursor.description]
            position = columns.index(key)
            source = {row[position]: tuple(normalized(v) for v in row) for row in cursor.fetchall()}
    finally:
        conn.close()
    stored = state.get_schema(engine.client_table(), pipeline, qualified)
    target: list[tuple] = []
    if stored is not None:
        names = ", ".join(quote_redshift(stored["name_map"][c]) for c in columns)
        with psycopg.connect(dsn) as pg:
            exists = pg.execute("SELECT to_regclass(%s)", (f'"{schema}"."{name.lower()}"',))
            if exists.fetchone()[0] is not None:
                target = [
                    tuple(normalized(v) for v in row)
                    for row in pg.execute(
                        f"SELECT {names} FROM {quote_redshift_table(schema, name.lower())}"
                    ).fetchall()
                ]
    target_ids = [row[position] for row in target]
    by_id = {row[position]: row for row in target}
    return Comparison(
        source_rows=len(source),
        target_rows=len(target),
        missing=len(set(source) - set(by_id)),
        duplicate=len(target_ids) - len(set(target_ids)),
        extra=len(set(by_id) - set(source)),
        differing=sum(1 for k, row in by_id.items() if k in source and source[k] != row),
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With MYSHIFT_IAM_CALLS_FILE set: write every call the engine allowed, by role
    (what `infra.functions` least-privilege policies are checked against)."""
    path = os.environ.get("MYSHIFT_IAM_CALLS_FILE")
    if not path:
        return
    from myshift.local.enforcement import allowed_calls

    Path(path).write_text(json.dumps(sorted(allowed_calls()), indent=0))
