"""Each function's role has exactly the actions its code calls, on exactly its resources.

The declared table is `infra.functions.FUNCTIONS` (state_actions, data_actions); these
tests hold the synthesized template to it. The local engine holds the table to the
code: it runs every function with its role from this template and IAM enforcement on,
so a call the table leaves out fails the e2e suite with AccessDenied.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.functions import FUNCTIONS, FunctionSpec
from tests.support.synth import Synth


def _statements(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    """Every Allow statement reaching the role: inline policies and managed policies."""
    found: list[dict[str, Any]] = []
    role = synth.resources("AWS::IAM::Role")[role_id]
    managed = {
        arn["Ref"] for arn in role["Properties"].get("ManagedPolicyArns", []) if "Ref" in arn
    }
    for logical_id, policy in {
        **synth.resources("AWS::IAM::Policy"),
        **synth.resources("AWS::IAM::ManagedPolicy"),
    }.items():
        roles = policy["Properties"].get("Roles", [])
        if {"Ref": role_id} in roles or logical_id in managed:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return [s for s in found if s["Effect"] == "Allow"]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def _role_of(synth: Synth, spec: FunctionSpec) -> str:
    for function in synth.resources("AWS::Lambda::Function").values():
        if function["Properties"]["Handler"] == spec.handler:
            return str(function["Properties"]["Role"]["Fn::GetAtt"][0])
    raise AssertionError(f"no function for {spec.handler}")


def _by_service(synth: Synth, spec: FunctionSpec, service: str) -> dict[str, list[Any]]:
    """Action -> resources it is granted on, for one service's actions."""
    granted: dict[str, list[Any]] = {}
    for statement in _statements(synth, _role_of(synth, spec)):
        for action in _actions(statement):
            if action.split(":")[0] == service:
                granted.setdefault(action, []).extend(_resources(statement))
    return granted


def _is_table(resource: Any, synth: Synth) -> bool:
    table = next(iter(synth.resources("AWS::DynamoDB::Table")))
    return resource == {"Fn::GetAtt": [table, "Arn"]}


def _object_suffix(resource: Any, bucket: str) -> str | None:
    """`/data/*` of `<bucket arn>/data/*`; None for any other resource."""
    if isinstance(resource, dict) and "Fn::Join" in resource:
        parts = resource["Fn::Join"][1]
        if parts[0] == {"Fn::GetAtt": [bucket, "Arn"]}:
            return "".join(p for p in parts[1:] if isinstance(p, str))
    return None


def _data_bucket(synth: Synth) -> str:
    (bucket,) = {
        m["Properties"]["DefinitionSubstitutions"]["DataBucketName"]["Ref"]
        for m in synth.resources("AWS::StepFunctions::StateMachine").values()
        if "DataBucketName" in m["Properties"]["DefinitionSubstitutions"]
    }
    return str(bucket)


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_state_table_actions_are_exactly_the_declared_ones(synth: Synth, spec: FunctionSpec):
    granted = _by_service(synth, spec, "dynamodb")
    assert set(granted) == set(spec.state_actions)
    for action, resources in granted.items():
        assert all(_is_table(r, synth) for r in resources), (action, resources)


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_bucket_actions_are_the_declared_ones_under_the_data_prefix(
    synth: Synth, spec: FunctionSpec
):
    bucket = _data_bucket(synth)
    granted = _by_service(synth, spec, "s3")
    documents = {"s3:DeleteObject", "s3:ListBucket"} if spec.removes_run_documents else set()
    assert set(granted) == set(spec.data_actions) | documents
    for action, resources in granted.items():
        if action == "s3:ListBucket":
            assert set(map(json.dumps, resources)) == {json.dumps({"Fn::GetAtt": [bucket, "Arn"]})}
            continue
        suffixes = {_object_suffix(r, bucket) for r in resources}
        if action == "s3:DeleteObject" and spec.name != "s3clean":
            # a run's own documents only, never a data file
            assert suffixes == {"/data/_verify/*", "/data/_reconcile/*"}, (spec.name, suffixes)
        else:
            assert suffixes == {"/data/*"}, (spec.name, action, suffixes)


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_listing_is_confined_to_the_data_prefix_or_the_run_documents(
    synth: Synth, spec: FunctionSpec
):
    for statement in _statements(synth, _role_of(synth, spec)):
        if "s3:ListBucket" not in _actions(statement):
            continue
        prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
        if spec.name == "s3clean":
            assert prefixes in (["data/*"], "data/*") or "data/*" in prefixes
        else:
            assert sorted(prefixes) == ["data/_reconcile/*", "data/_verify/*"], prefixes


def test_only_s3clean_deletes_data_files_and_lists_the_bucket() -> None:
    deleting = {s.name for s in FUNCTIONS if "s3:DeleteObject" in s.data_actions}
    listing = {s.name for s in FUNCTIONS if "s3:ListBucket" in s.data_actions}
    assert deleting == listing == {"s3clean"}


def test_validate_input_makes_no_aws_call(synth: Synth) -> None:
    (spec,) = [s for s in FUNCTIONS if s.name == "validate_input"]
    services = {
        action.split(":")[0]
        for statement in _statements(synth, _role_of(synth, spec))
        for action in _actions(statement)
    }
    assert services <= {"logs", "xray"}, services


def test_only_the_load_role_reaches_the_warehouse_and_source_readers_the_secret(
    variant: Synth,
) -> None:
    synth = variant  # pipelines with a MySQL secret and a Redshift secret
    for spec in FUNCTIONS:
        data_api = _by_service(synth, spec, "redshift-data")
        assert bool(data_api) == spec.uses_warehouse, spec.name
        secrets = _by_service(synth, spec, "secretsmanager")
        assert bool(secrets) == (spec.reads_source or spec.uses_warehouse), spec.name
        # A secret under a customer managed key: decrypted through Secrets Manager only.
        decrypt = 0
        for statement in _statements(synth, _role_of(synth, spec)):
            if "kms:Decrypt" in _actions(statement):
                condition = statement["Condition"]["StringLike"]
                assert condition["kms:ViaService"] == "secretsmanager.*.amazonaws.com"
                assert condition["kms:EncryptionContext:SecretARN"]
                decrypt += 1
        assert bool(decrypt) == bool(secrets), spec.name
