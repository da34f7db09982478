"""Secrets stay secret: a distinctive MySQL password (from an environment variable and
from Secrets Manager) and a distinctive Redshift secret ARN are used by real runs, and
then searched for in everything the runs left behind or showed anyone:

every log line (file descriptors 1 and 2, and every logging record), CLI output, each
execution's input, output, cause and full history, exception texts (a run and a CLI
call with a wrong password, a pipeline file with an inline password), DynamoDB items,
S3 keys and manifests. None of them may hold a secret.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from boto3.dynamodb.conditions import Key
from click.testing import CliRunner
from myshift import state
from myshift.cli.main import cli
from myshift.config import SourceConfig
from myshift.errors import MyshiftError
from myshift.local import sample
from myshift.local.engine import LocalEngine
from myshift.source import connect

from tests.conftest import MYSQL
from tests.e2e.conftest import DATABASE, compare_table, drop_source_table, isolated_warehouse, run

SECRET_PASSWORD = "Zq9-SECRET-pw-7731"
WRONG_PASSWORD = "Zq9-WRONG-pw-9902"
SECRET_ARN_MARK = "Zq9-REDSHIFT-SECRET-4417"
SECRETS = (SECRET_PASSWORD, WRONG_PASSWORD, SECRET_ARN_MARK)
USER = "myshift_secret_user"
HOSTS = ("127.0.0.1", "%", "localhost")
PIPELINE = "e2e_secrets"
WRONG = "e2e_secrets_wrong"
MANAGED = "e2e_secrets_managed"
INLINE = "e2e_secrets_inline"
SCHEMA = "secrets_dw"
TABLE_NAME = f"secrets_orders_{os.getpid()}"  # test sessions run side by side
TABLE = f"{DATABASE}.{TABLE_NAME}"
PASSWORD_ENV = "MYSHIFT_SECRETS_PASSWORD"
WRONG_ENV = "MYSHIFT_SECRETS_WRONG"


def root_sql(*statements: str) -> None:
    conn = pymysql.connect(**MYSQL, password="", autocommit=True)
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        conn.close()


def pipeline_text(name: str, source: dict[str, Any], redshift_secret: str) -> str:
    lines = [
        f"name: {name}",
        "source:",
        *[f"  {k}: {json.dumps(v)}" for k, v in source.items()],
        "target:",
        "  database: dev",
        f"  schema: {SCHEMA}",
        "  workgroup: local",
        f"  secret_arn: {redshift_secret}",
        "chunk_rows: 150",
        "safety_lag_seconds: 0",
        "tables:",
        f"  - {{name: {TABLE}, cursor: updated_at, primary_key: [id]}}",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def warehouse(engine: LocalEngine) -> Iterator[str]:
    with isolated_warehouse(engine, "myshift_warehouse_secrets") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def secret_user() -> Iterator[str]:
    for host in HOSTS:
        root_sql(
            f"DROP USER IF EXISTS '{USER}'@'{host}'",
            f"CREATE USER '{USER}'@'{host}' IDENTIFIED BY '{SECRET_PASSWORD}'",
            f"GRANT SELECT ON `{DATABASE}`.* TO '{USER}'@'{host}'",
            f"GRANT PROCESS ON *.* TO '{USER}'@'{host}'",
        )
    yield USER
    for host in HOSTS:
        root_sql(f"DROP USER IF EXISTS '{USER}'@'{host}'")


@pytest.fixture(scope="module")
def pipelines(
    engine: LocalEngine, pipelines_dir: Path, secret_user: str, warehouse: str
) -> Iterator[Path]:
    conn = pymysql.connect(**MYSQL, password="", autocommit=True)
    sample.seed(conn, DATABASE, TABLE_NAME, 450)
    conn.close()
    managed_arn = engine.client("secretsmanager").create_secret(
        Name=f"myshift/{MANAGED}",
        SecretString=json.dumps({"username": USER, "password": SECRET_PASSWORD}),
    )["ARN"]
    # The warehouse secret: the Data API runs the loads as its user (its password is
    # Secrets Manager's business, never ours); its ARN is a secret too.
    redshift_secret = engine.client("secretsmanager").create_secret(
        Name=f"{SECRET_ARN_MARK}-{os.getpid()}",
        SecretString=json.dumps({"username": "myshift_loader", "password": WRONG_PASSWORD}),
    )["ARN"]
    base = {"host": MYSQL["host"], "port": MYSQL["port"], "user": USER}
    files = {
        PIPELINE: pipeline_text(PIPELINE, {**base, "password_env": PASSWORD_ENV}, redshift_secret),
        WRONG: pipeline_text(WRONG, {**base, "password_env": WRONG_ENV}, redshift_secret),
        # Another host name for the same server: a connection of its own (not reused).
        MANAGED: pipeline_text(
            MANAGED, {**base, "host": "localhost", "secret_arn": managed_arn}, redshift_secret
        ),
    }
    for name, text in files.items():
        (pipelines_dir / f"{name}.yml").write_text(text)
    yield pipelines_dir
    for name in (*files, INLINE):
        (pipelines_dir / f"{name}.yml").unlink(missing_ok=True)
    engine.client("secretsmanager").delete_secret(
        SecretId=redshift_secret, ForceDeleteWithoutRecovery=True
    )
    drop_source_table(TABLE_NAME)


class Records(logging.Handler):
    """Every logging record that reaches the root logger, formatted with its traceback,
    and every line any stream handler of any logger writes (the Lambdas' JSON lines:
    their handler keeps the stdout of the moment it was made, which may be another
    test's capture, so the handlers' streams are redirected here for the test)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self.stream = io.StringIO()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(json.dumps(record.__dict__, default=str))


def stream_handlers() -> list[logging.StreamHandler]:
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if type(handler) is logging.StreamHandler
    ]


@pytest.fixture()
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    level = root.level
    redirected = [(h, h.setStream(handler.stream)) for h in stream_handlers()]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)
    for h, stream in redirected:
        h.setStream(stream)


def history(engine: LocalEngine, arn: str) -> list[dict]:
    sfn = engine.client("stepfunctions")
    events: list[dict] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if "nextToken" not in page:
            return events
        kwargs["nextToken"] = page["nextToken"]


def cli_env(engine: LocalEngine, directory: Path, state_dir: Path) -> dict[str, str]:
    assert engine.resources is not None
    (state_dir / "local.json").write_text(
        json.dumps({**engine.resources.as_dict(), "pid": os.getpid()})
    )
    return {
        "MYSHIFT_STATE_DIR": str(state_dir),
        "MYSHIFT_PIPELINES_DIR": str(directory),
        PASSWORD_ENV: SECRET_PASSWORD,
        WRONG_ENV: WRONG_PASSWORD,
    }


def test_no_secret_appears_in_logs_output_history_errors_or_state(
    engine: LocalEngine,
    warehouse: str,
    pipelines: Path,
    records: Records,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, SECRET_PASSWORD)
    monkeypatch.setenv(WRONG_ENV, WRONG_PASSWORD)
    seen: list[str] = []  # everything anyone could read
    executions: list[str] = []

    def execution(name: str) -> dict:
        description = run(engine, {"pipeline": name, "tables": [TABLE]})
        executions.append(description["executionArn"])
        return description

    # 1. A run with the wrong password fails, naming the login but not the password.
    wrong = execution(WRONG)
    assert wrong["status"] == "FAILED"
    assert f"{USER}@{MYSQL['host']}:{MYSQL['port']}" in wrong["cause"]
    assert "Access denied" in wrong["cause"]

    # 2. Runs with the right password from the environment and from Secrets Manager.
    good = execution(PIPELINE)
    assert good["status"] == "SUCCEEDED", good.get("cause")
    comparison = compare_table(engine, warehouse, PIPELINE, TABLE, SCHEMA)
    assert comparison.equal and comparison.target_rows == 450, comparison
    managed = execution(MANAGED)
    assert managed["status"] == "SUCCEEDED", managed.get("cause")

    # 3. The CLI: a sync, its reports, and a sync whose verification logs in wrongly.
    env = cli_env(engine, pipelines, tmp_path)
    runner = CliRunner()
    commands = [
        ["--json", "sync", "pipeline", "-p", PIPELINE],
        ["sync", "pipeline", "-p", PIPELINE],
        ["--json", "watermark", "get", "-p", PIPELINE, "-t", TABLE, "--show-files"],
        ["--json", "watermark-count", "validate-counts", "-p", PIPELINE, "-t", TABLE],
        ["--json", "runs", "list", "-p", PIPELINE],
        ["--json", "runs", "show", good["name"]],
        ["--json", "runs", "show", wrong["name"]],
        ["runs", "show", wrong["name"]],
        ["--json", "sync", "pipeline", "-p", WRONG],
        ["--json", "watermark-count", "validate-counts", "-p", WRONG, "-t", TABLE],
    ]
    codes = []
    for args in commands:
        result = runner.invoke(cli, ["--local", *args], env=env, catch_exceptions=False)
        codes.append(result.exit_code)
        seen += [result.stdout, result.stderr, repr(result.exception)]
    assert codes[:6] == [0, 0, 0, 0, 0, 0], list(zip(commands, codes, strict=True))
    # The wrong password: the run fails (1); the count command cannot log in (2).
    assert codes[-2:] == [1, 2], list(zip(commands, codes, strict=True))
    assert "Access denied" in seen[-6] and "Access denied" in seen[-2]  # the run's cause; the count

    # 4. Exception texts raised in this process.
    source = SourceConfig(host=MYSQL["host"], port=MYSQL["port"], user=USER, password_env=WRONG_ENV)
    with pytest.raises(MyshiftError) as raised:
        connect(source, WRONG_PASSWORD)
    seen += [str(raised.value), repr(raised.value), *traceback.format_exception(raised.value)]

    # 5. A pipeline file with the password written inline (not allowed) is refused
    #    without repeating it.
    (pipelines / f"{INLINE}.yml").write_text(
        pipeline_text(
            INLINE,
            {"host": MYSQL["host"], "user": USER, "password": SECRET_PASSWORD},
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:unused-AbCdEf",
        )
    )
    try:
        inline = run(engine, {"pipeline": INLINE})
        executions.append(inline["executionArn"])
        assert inline["status"] == "FAILED" and "ConfigError" in inline["error"]
        assert "source.password" in inline["cause"]
        result = runner.invoke(
            cli, ["--local", "watermark", "get", "-p", INLINE, "-t", TABLE], env=env
        )
        assert result.exit_code == 2
        seen += [result.stdout, result.stderr]
    finally:
        (pipelines / f"{INLINE}.yml").unlink()

    # Everything the runs left: execution input/output/cause/history, state and files.
    sfn = engine.client("stepfunctions")
    for arn in executions:
        seen.append(json.dumps(sfn.describe_execution(executionArn=arn), default=str))
        seen.append(json.dumps(history(engine, arn), default=str))
    assert engine.resources is not None
    listed = sfn.list_executions(stateMachineArn=engine.resources.state_machine_arn)
    seen.append(json.dumps(listed, default=str))
    table = engine.client_table()
    for name in (PIPELINE, WRONG, MANAGED, INLINE):
        pk = state.partition_key(name, TABLE)
        items = table.query(KeyConditionExpression=Key("pk").eq(pk))["Items"]
        seen.append(json.dumps(items, default=str))
    s3 = engine.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=engine.bucket, Prefix="data/e2e_secrets"
    ):
        for obj in page.get("Contents", []):
            seen.append(obj["Key"])
            if obj["Key"].endswith(".json"):
                seen.append(
                    s3.get_object(Bucket=engine.bucket, Key=obj["Key"])["Body"].read().decode()
                )
    captured = capfd.readouterr()
    seen += [captured.out, captured.err, records.stream.getvalue(), *records.lines]

    everything = "\n".join(seen)
    # The capture is real: it holds the runs' log lines, their errors and their names.
    assert re.search(r'"message": ?"extracted"', everything)
    lambda_lines = captured.out + captured.err + records.stream.getvalue()
    assert '"function_name":"myshift-extract"' in lambda_lines, "no Lambda log line captured"
    assert f"Access denied for user '{USER}'" in everything
    assert good["name"] in everything and wrong["name"] in everything
    for secret in SECRETS:
        where = [i for i, text in enumerate(seen) if secret in text]
        assert where == [], f"{secret!r} leaked into: {[seen[i][:300] for i in where[:3]]}"
