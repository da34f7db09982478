"""`myshift doctor` in local mode: it passes on a working pipeline and names each thing
that is broken, one at a time (a warehouse grant, an IAM permission, MySQL, the
source account's grants)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from myshift.canary import canary_types
from myshift.cli.doctor import run_doctor
from myshift.cli.resources import Resources
from myshift.local import sample
from myshift.local.engine import LocalEngine
from myshift.local.redshift_users import role_name

from tests.conftest import MYSQL
from tests.e2e.conftest import DATABASE, isolated_warehouse, local_cli_env, pipeline_yaml
from tests.support.mariadb import execute_alone

PIPELINE = "e2e_doctor"
TABLE = f"{DATABASE}.doctor_orders"
SCHEMA = "doctor_dw"
SOURCE_USER = "myshift_doctor_ro"


@pytest.fixture(scope="module")
def warehouse(engine: LocalEngine) -> Iterator[str]:
    with isolated_warehouse(engine, "myshift_doctor") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def doctor_pipeline(engine: LocalEngine, pipelines_dir: Path, warehouse: str) -> Iterator[str]:
    (pipelines_dir / f"{PIPELINE}.yml").write_text(pipeline_yaml(PIPELINE, [TABLE], schema=SCHEMA))
    engine.redeploy_if_changed()
    conn = pymysql.connect(**MYSQL, password="", autocommit=True)
    sample.seed(conn, DATABASE, TABLE.split(".")[1], 50)
    conn.close()
    yield PIPELINE
    execute_alone(f"DROP TABLE IF EXISTS {TABLE}")
    (pipelines_dir / f"{PIPELINE}.yml").unlink()


def _resources(engine: LocalEngine) -> Resources:
    assert engine.resources is not None
    record = engine.resources.as_dict()
    return Resources(
        bucket=record["bucket"],
        state_table=record["state_table"],
        state_machine_arn=record["state_machine_arn"],
        doctor_state_machine_arn=record["doctor_state_machine_arn"],
        region=record["region"],
        endpoint_url=record["endpoint_url"],
        access_key_id=record["access_key_id"],
        secret_access_key=record["secret_access_key"],
    )


def doctor(engine: LocalEngine, pipeline: str = PIPELINE) -> dict[str, Any]:
    return run_doctor(_resources(engine), pipeline, timeout_seconds=300)


def rows(report: dict[str, Any], status: str) -> dict[str, dict[str, str]]:
    return {r["check"]: r for r in report["checks"] if r["status"] == status}


def test_doctor_passes_on_a_working_pipeline(engine: LocalEngine, doctor_pipeline: str) -> None:
    report = doctor(engine)
    assert report["failed"] == 0, json.dumps(rows(report, "fail"), indent=1)
    checks = {r["check"]: r for r in report["checks"]}
    # Every function answered for itself, and the canary compared every value.
    for function in ("Plan", "Extract", "Load", "State"):
        assert any(r["by"] == function for r in report["checks"]), function
    canary = checks["Load: canary COPY read back value by value"]
    assert canary["status"] == "pass"
    assert f"values of {len(canary_types())} types equal" in canary["detail"]
    assert checks["Plan: SELECT on the pipeline's tables"]["detail"].startswith("1/1")
    assert checks["Plan: MySQL connection"]["status"] == "pass"
    # The schema does not exist yet: the user may create it (the DBA's grant).
    assert checks[f"Load: may create schema {SCHEMA}"]["status"] == "pass"


def test_doctor_cli_prints_a_row_per_check_and_exits_by_the_result(
    engine: LocalEngine, doctor_pipeline: str, pipelines_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, **local_cli_env(engine, pipelines_dir, tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "myshift", "--local", "doctor", "-p", PIPELINE],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "canary COPY read back value by value" in done.stdout
    assert "0 failed" in done.stdout
    unknown = subprocess.run(
        [sys.executable, "-m", "myshift", "--local", "doctor", "-p", "no_such_pipeline"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: ") and "no_such_pipeline" in unknown.stderr


def _dba(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def _database_role(engine: LocalEngine, pipeline: str = PIPELINE) -> str:
    from myshift.config import load_pipeline

    return role_name(engine.database_user(load_pipeline(engine.pipelines_dir, pipeline)))


def test_doctor_names_a_missing_database_grant(
    engine: LocalEngine, doctor_pipeline: str, warehouse: str
) -> None:
    database = warehouse.rsplit("/", 1)[1]
    role = _database_role(engine)
    _dba(warehouse, f'REVOKE CREATE ON DATABASE {database} FROM "{role}"')
    try:
        report = doctor(engine)
    finally:
        _dba(warehouse, f'GRANT CREATE ON DATABASE {database} TO "{role}"')
    failed = rows(report, "fail")
    assert set(failed) == {f"Load: may create schema {SCHEMA}"}, failed
    row = failed[f"Load: may create schema {SCHEMA}"]
    assert "may not create it" in row["detail"]
    assert row["remedy"].startswith("GRANT CREATE ON DATABASE")
    assert doctor(engine)["failed"] == 0  # the grant back: healthy again


def test_doctor_names_a_schema_and_table_the_user_does_not_own(
    engine: LocalEngine, doctor_pipeline: str, warehouse: str
) -> None:
    # Created by somebody else (a DBA, another tool) with no grants to the pipeline's user.
    _dba(warehouse, f"CREATE SCHEMA {SCHEMA}", f"CREATE TABLE {SCHEMA}.doctor_orders (id int)")
    try:
        report = doctor(engine)
    finally:
        _dba(warehouse, f"DROP SCHEMA {SCHEMA} CASCADE")
    failed = rows(report, "fail")
    assert set(failed) == {
        f"Load: CREATE and USAGE on schema {SCHEMA}",
        "Load: owns and writes the existing target tables",
    }, failed
    assert "CREATE no, USAGE no" in failed[f"Load: CREATE and USAGE on schema {SCHEMA}"]["detail"]
    tables = failed["Load: owns and writes the existing target tables"]
    assert "doctor_orders" in tables["detail"] and "lacks owner (ALTER), INSERT" in tables["detail"]


@contextmanager
def denied(
    engine: LocalEngine, role_arn: str, actions: list[str], resource: str = "*"
) -> Iterator[None]:
    """An explicit Deny on the role, as if the stack had not granted `actions`."""
    # A redeploy (the pipeline files changed) rewrites every role's policies: now, not
    # when the doctor starts.
    engine.redeploy_if_changed()
    iam = engine.client("iam")
    role = role_arn.rsplit("/", 1)[1]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": actions, "Resource": resource}],
    }
    iam.put_role_policy(
        RoleName=role, PolicyName="doctor-test-deny", PolicyDocument=json.dumps(policy)
    )
    try:
        yield
    finally:
        iam.delete_role_policy(RoleName=role, PolicyName="doctor-test-deny")


def test_doctor_names_a_permission_the_function_role_lacks(
    engine: LocalEngine, doctor_pipeline: str
) -> None:
    assert engine.stack is not None
    with denied(engine, engine.stack.functions["extract"].role_arn, ["s3:PutObject"]):
        report = doctor(engine)
    failed = rows(report, "fail")
    assert set(failed) == {"Extract: canary Parquet file written"}, failed
    assert "AccessDenied" in failed["Extract: canary Parquet file written"]["detail"]
    # The Load function's own write is its own role's: still allowed.
    assert rows(report, "pass")["Load: S3 write to the data bucket"]


def test_doctor_names_a_function_the_state_machine_cannot_invoke(
    engine: LocalEngine, doctor_pipeline: str
) -> None:
    assert engine.stack is not None
    machine = engine.stack.state_machines["doctor"]
    plan = engine.stack.functions["plan"].name
    with denied(
        engine,
        machine.role_arn,
        ["lambda:InvokeFunction"],
        f"arn:aws:lambda:us-east-1:123456789012:function:{plan}*",
    ):
        report = doctor(engine)
    failed = rows(report, "fail")
    assert set(failed) == {"Plan: function ran its checks"}, failed
    assert "AccessDenied" in failed["Plan: function ran its checks"]["detail"]


def test_doctor_names_an_unreachable_mysql(
    engine: LocalEngine, doctor_pipeline: str, pipelines_dir: Path
) -> None:
    from myshift.local.engine import free_port

    name = "e2e_doctor_down"
    text = pipeline_yaml(name, [TABLE], schema=SCHEMA).replace(
        f"port: {MYSQL['port']}", f"port: {free_port()}"
    )
    (pipelines_dir / f"{name}.yml").write_text(text)
    try:
        engine.redeploy_if_changed()
        report = doctor(engine, name)
    finally:
        (pipelines_dir / f"{name}.yml").unlink()
    failed = rows(report, "fail")
    assert set(failed) == {"Plan: MySQL connection", "Extract: MySQL connection"}, failed
    assert "Connection refused" in failed["Plan: MySQL connection"]["detail"]
    # Everything that does not need MySQL still ran and passed.
    assert rows(report, "pass")["Load: canary COPY read back value by value"]


def test_doctor_names_missing_source_grants(
    engine: LocalEngine, doctor_pipeline: str, pipelines_dir: Path
) -> None:
    name = "e2e_doctor_grants"
    for host in ("localhost", "127.0.0.1", "%"):
        execute_alone(f"DROP USER IF EXISTS '{SOURCE_USER}'@'{host}'")
        execute_alone(f"CREATE USER '{SOURCE_USER}'@'{host}'")
    text = pipeline_yaml(name, [TABLE], schema=SCHEMA).replace(
        f"user: {MYSQL['user']}", f"user: {SOURCE_USER}"
    )
    (pipelines_dir / f"{name}.yml").write_text(text)
    try:
        engine.redeploy_if_changed()
        report = doctor(engine, name)
    finally:
        (pipelines_dir / f"{name}.yml").unlink()
        for host in ("localhost", "127.0.0.1", "%"):
            execute_alone(f"DROP USER IF EXISTS '{SOURCE_USER}'@'{host}'")
    failed = rows(report, "fail")
    assert set(failed) == {"Plan: SELECT on the pipeline's tables"}, failed
    row = failed["Plan: SELECT on the pipeline's tables"]
    assert row["detail"].startswith("0/1 readable; cannot read " + TABLE)
    assert row["remedy"] == f"GRANT SELECT ON <database>.* TO '{SOURCE_USER}'@'%'"
    warned = rows(report, "warn")
    assert "GRANT PROCESS" in warned["Plan: information_schema.innodb_trx readable"]["remedy"]


def test_doctor_names_a_copy_role_that_cannot_read_the_bucket(
    engine: LocalEngine, doctor_pipeline: str
) -> None:
    # The stand-in reads S3 as the COPY's IAM role (assumed as Redshift assumes it).
    assert engine.stack is not None
    copy_role = engine.stack.functions["load"].environment["MYSHIFT_COPY_ROLE_ARN"]
    with denied(engine, copy_role, ["s3:GetObject"]):
        report = doctor(engine)
    failed = rows(report, "fail")
    assert set(failed) == {"Load: canary COPY read back value by value"}, failed
    row = failed["Load: canary COPY read back value by value"]
    assert "Problem reading manifest file" in row["detail"] and "AccessDenied" in row["detail"]
    assert copy_role in row["remedy"]
