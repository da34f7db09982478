"""The local twin refuses what AWS refuses (the engine's side of the AWS contract)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql
import pytest
from botocore.exceptions import ClientError
from myshift.errors import ConfigError
from myshift.local import limits, sample
from myshift.local.engine import LocalEngine, role_credentials

from infra.definition import sync_definition
from tests.conftest import MYSQL
from tests.e2e.conftest import DATABASE, client_as, pipeline_yaml, run
from tests.support.mariadb import execute_alone

# A pipeline and table of this module's own: its runs leave state other modules'
# first runs must not find.
PIPELINE = "e2e_contract"
TABLE = f"{DATABASE}.contract_orders"


@pytest.fixture(scope="module")
def contract_pipeline(engine: LocalEngine, pipelines_dir: Path) -> Iterator[str]:
    (pipelines_dir / f"{PIPELINE}.yml").write_text(
        pipeline_yaml(PIPELINE, [TABLE], schema="contract_dw")
    )
    engine.redeploy_if_changed()  # now, not at the next run: the tests edit the policies
    conn = pymysql.connect(**MYSQL, password="", autocommit=True)
    sample.seed(conn, DATABASE, TABLE.split(".")[1], 300)
    conn.close()
    yield PIPELINE
    execute_alone(f"DROP TABLE IF EXISTS {TABLE}")
    (pipelines_dir / f"{PIPELINE}.yml").unlink()


def test_the_engine_refuses_a_definition_step_functions_refuses(engine: LocalEngine) -> None:
    # A state name used in two nested Maps: moto's interpreter would run it, AWS refuses
    # it at CreateStateMachine (and so would `cdk deploy`).
    text = json.dumps(sync_definition()).replace('"ExtractChunkDistributed"', '"ExtractChunk"')
    sfn = engine.client("stepfunctions")
    assert engine.resources is not None
    role = sfn.describe_state_machine(stateMachineArn=engine.resources.state_machine_arn)["roleArn"]
    with pytest.raises(ClientError) as refused:
        sfn.create_state_machine(name="duplicate-names", definition=text, roleArn=role)
    assert refused.value.response["Error"]["Code"] == "InvalidDefinition", refused.value.response
    assert "DUPLICATE_STATE_NAMES" in refused.value.response["Error"]["Message"]
    names = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    assert "duplicate-names" not in names


def _create_and_run(engine: LocalEngine, name: str, definition: dict) -> dict:
    sfn = engine.client("stepfunctions")
    assert engine.resources is not None
    role = sfn.describe_state_machine(stateMachineArn=engine.resources.state_machine_arn)["roleArn"]
    arn = sfn.create_state_machine(
        name=f"{name}-{time.time_ns()}", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    deadline = time.monotonic() + 120
    while (description := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return description


def test_states_all_does_not_catch_a_payload_over_256_kib(engine: LocalEngine) -> None:
    # AWS: "States.ALL ... can't catch the States.DataLimitExceeded terminal error": the
    # execution fails, however the state is wrapped. moto caught it.
    definition = {
        "StartAt": "Wrapped",
        "States": {
            "Wrapped": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Big",
                        "States": {"Big": {"Type": "Pass", "Result": "x" * 300_000, "End": True}},
                    }
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    description = _create_and_run(engine, "data-limit", definition)
    assert description["status"] == "FAILED"
    assert description["error"] == "States.DataLimitExceeded"


def test_an_execution_over_the_history_limit_fails(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert limits.MAX_HISTORY_EVENTS == 25_000  # Step Functions' quota per execution
    monkeypatch.setattr(limits, "MAX_HISTORY_EVENTS", 200)  # the same rule, reached sooner
    definition = {
        "StartAt": "Many",
        "States": {
            "Many": {
                "Type": "Map",
                "ItemsPath": "$.items",
                # One at a time: moto's inline Map can wait forever on its other workers
                # when one fails on a runtime error (its behaviour, not the limit's).
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "One",
                    "States": {"One": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
    definition["States"] = {
        "Items": {
            "Type": "Pass",
            "Result": list(range(100)),
            "ResultPath": "$.items",
            "Next": "Many",
        },
        **definition["States"],
    }
    definition["StartAt"] = "Items"
    description = _create_and_run(engine, "history-limit", definition)
    assert description["status"] == "FAILED"
    assert description["error"] == "States.Runtime"
    assert "maximum number of history events" in description["cause"]


# --- identities ----------------------------------------------------------------------


@contextmanager
def without_permission(engine: LocalEngine, handler_module: str, action: str) -> Iterator[None]:
    """The function's role, with `action` removed from every policy it has inline."""
    assert engine.stack is not None
    role = engine.stack.functions[handler_module].role_arn.rsplit("/", 1)[1]
    iam_client = engine.client("iam")
    originals = {
        name: iam_client.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam_client.list_role_policies(RoleName=role)["PolicyNames"]
    }
    removed = False
    for name, document in originals.items():
        changed = json.loads(json.dumps(document))
        for statement in changed["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            if action in actions:
                statement["Action"] = [a for a in actions if a != action]
                removed = True
        changed["Statement"] = [s for s in changed["Statement"] if s["Action"]]
        iam_client.put_role_policy(
            RoleName=role, PolicyName=name, PolicyDocument=json.dumps(changed)
        )
    assert removed, f"{handler_module}'s role has no {action} to remove"
    try:
        yield
    finally:
        for name, document in originals.items():
            iam_client.put_role_policy(
                RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document)
            )


def test_a_permission_missing_from_the_stack_fails_the_run_with_access_denied(
    engine: LocalEngine, contract_pipeline: str
) -> None:
    # The state function lists a run's outcomes with BatchGetItem; without it the
    # summary fails as it would in AWS, naming the role, the action and the table.
    with without_permission(engine, "state", "dynamodb:BatchGetItem"):
        failed = run(engine, {"pipeline": PIPELINE, "mode": "backup_only"})
    assert failed["status"] == "FAILED"
    cause = failed["cause"]
    assert "AccessDeniedException" in cause and "dynamodb:BatchGetItem" in cause, cause
    assert "assumed-role/myshift-local-FunctionsStateRole" in cause
    assert f"table/{engine.state_table}" in cause
    again = run(engine, {"pipeline": PIPELINE, "mode": "backup_only"})
    assert again["status"] == "SUCCEEDED", again.get("cause")


def test_a_role_lambda_cannot_assume_is_refused(engine: LocalEngine) -> None:
    iam_client = engine.client("iam")
    arn = iam_client.create_role(
        RoleName=f"not-for-lambda-{time.time_ns()}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "states.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    with pytest.raises(ConfigError, match=r"cannot be assumed by lambda\.amazonaws\.com"):
        role_credentials(arn, "lambda.amazonaws.com")


def test_only_the_identity_that_ran_a_statement_may_follow_it(engine: LocalEngine) -> None:
    # "To act on the same SQL statement from another user, the user must be able to
    # assume the IAM role of the user who ran the SQL statement" (Data API guide).
    load = client_as(engine, "load", "redshift-data")
    statement = load.execute_statement(
        WorkgroupName="local", Database="dev", Sql="SELECT 1 AS one"
    )["Id"]
    deadline = time.monotonic() + 30
    while load.describe_statement(Id=statement)["Status"] != "FINISHED":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert load.get_statement_result(Id=statement)["Records"] == [[{"longValue": 1}]]
    # The state function's role may not call the Data API at all (IAM refuses it)...
    state_role = client_as(engine, "state", "redshift-data")
    with pytest.raises(ClientError) as refused:
        state_role.describe_statement(Id=statement)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "redshift-data:DescribeStatement" in refused.value.response["Error"]["Message"]
    # ...and an identity IAM allows everything may still not act on another's statement.
    operator = engine.client("redshift-data")
    for call in (operator.describe_statement, operator.get_statement_result):
        with pytest.raises(ClientError) as refused:
            call(Id=statement)
        error = refused.value.response["Error"]
        assert error["Code"] == "ResourceNotFoundException"
        assert "run by another identity" in error["Message"]
    assert statement not in [s["Id"] for s in operator.list_statements()["Statements"]]
