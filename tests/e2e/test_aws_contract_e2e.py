"""The local twin refuses what AWS refuses (the engine's side of the AWS contract)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from myshift.local.engine import LocalEngine

from infra.definition import sync_definition


def test_the_engine_refuses_a_definition_step_functions_refuses(engine: LocalEngine) -> None:
    # A state name used in two nested Maps: moto's interpreter would run it, AWS refuses
    # it at CreateStateMachine (and so would `cdk deploy`).
    text = json.dumps(sync_definition()).replace('"ExtractChunkDistributed"', '"ExtractChunk"')
    sfn = engine.client("stepfunctions")
    assert engine.resources is not None
    role = sfn.describe_state_machine(stateMachineArn=engine.resources.state_machine_arn)[
        "roleArn"
    ]
    with pytest.raises(ClientError) as refused:
        sfn.create_state_machine(name="duplicate-names", definition=text, roleArn=role)
    assert refused.value.response["Error"]["Code"] == "InvalidDefinition", refused.value.response
    assert "DUPLICATE_STATE_NAMES" in refused.value.response["Error"]["Message"]
    names = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    assert "duplicate-names" not in names
