"""COPY reads the bucket as a role: the stack's own, or one the pipeline or stage names.

- Without `copy_role_arn` the stack creates the COPY role (trusted by Redshift; read on
  the data prefix only), prints its ARN and gives it to the Load function, whose COPY
  names it (`IAM_ROLE '<arn>'`, never `IAM_ROLE default`, which nothing grants).
- With `copy_role_arn` no role is created and the bucket policy admits that role by an
  `aws:PrincipalArn` condition: a Principal naming a role that does not exist yet is
  refused by S3 ("Invalid principal in policy") and would fail the deploy.
"""

from __future__ import annotations

import json
from typing import Any

from myshift.config import load_pipeline_file
from myshift.load import load_batch

from tests.support.load_target import TARGET
from tests.support.synth import Synth

EXTERNAL = "arn:aws:iam::111122223333:role/redshift-copy"


def _copy_roles(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        logical_id: role
        for logical_id, role in synth.resources("AWS::IAM::Role").items()
        if "redshift.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    }


def _policy_of(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_without_copy_role_arn_the_stack_creates_the_copy_role(variant: Synth) -> None:
    # `lake` names no copy_role_arn (`warehouse` does).
    ((role_id, role),) = _copy_roles(variant).items()
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "redshift.amazonaws.com"}]
    statements = _policy_of(variant, role_id)
    actions = sorted(a for s in statements for a in [s["Action"]] if isinstance(a, str))
    assert actions == ["s3:GetObject", "s3:ListBucket"]
    (get,) = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert get["Resource"]["Fn::Join"][1][-1] == "/data/*"  # the data prefix only
    (listing,) = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["data/*"]}}
    output = variant.template_json["Outputs"]["CopyRoleArn"]["Value"]
    assert output == {"Fn::GetAtt": [role_id, "Arn"]}
    # The Load function COPYs as it.
    (load,) = [
        f
        for f in variant.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "myshift.handlers.load.handler"
    ]
    assert load["Properties"]["Environment"]["Variables"]["MYSHIFT_COPY_ROLE_ARN"] == output


def test_copy_names_the_role_it_is_given() -> None:
    def copy_sql(arn: str | None) -> str:
        batch = load_batch(
            TARGET,
            manifest_url="s3://b/data/m.json",
            copy_role_arn=arn,
            expected_rows=1,
            load_key="k",
            run_id="r",
            file_count=1,
        )
        return next(s.sql for s in batch if s.name == "copy")

    assert f"IAM_ROLE '{EXTERNAL}'" in copy_sql(EXTERNAL)
    assert "IAM_ROLE default" in copy_sql(None)


def test_with_copy_role_arn_no_role_is_created_and_no_principal_must_exist(synth: Synth) -> None:
    # The deploy guide's example names copy_role_arn.
    pipeline = load_pipeline_file(synth.pipelines_dir / "settlement.yml")
    external = pipeline.target.copy_role_arn
    assert external
    assert not _copy_roles(synth)
    assert "CopyRoleArn" not in synth.template_json["Outputs"]
    (policy,) = [
        p
        for p in synth.resources("AWS::S3::BucketPolicy").values()
        if "LoggingConfiguration"
        in synth.template_json["Resources"][p["Properties"]["Bucket"]["Ref"]]["Properties"]
    ]
    reads = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
    ]
    assert sorted(s["Action"] for s in reads) == ["s3:GetObject", "s3:ListBucket"]
    account = external.split(":")[4]
    for statement in reads:
        principal = json.dumps(statement["Principal"])
        assert "role/" not in principal and f":iam::{account}:root" in principal
        assert statement["Condition"]["ArnEquals"] == {"aws:PrincipalArn": [external]}
