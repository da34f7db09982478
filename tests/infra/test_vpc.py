"""VPC placement: the functions that read MySQL run in the pipelines' subnets.

Own synth with a temporary pipelines directory whose files carry a `vpc` block.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks
from myshift.config import load_pipeline_file
from myshift.errors import ConfigError

import app as app_module
from tests.infra.conftest import ALARMS
from tests.support.synth import Synth, allow_statements, placeholder_layer, synthesize

SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-11112222"]
SECURITY_GROUPS = ["sg-0123456789abcdef0"]


def pipeline_yaml(name: str, *, vpc: str | None, table: str = "shop.orders") -> str:
    lines = [
        f"name: {name}",
        "source:",
        "  host: mysql.internal.example",
        "  user: sync",
        "  secret_arn: arn:aws:secretsmanager:eu-west-1:111122223333:secret:mysql-AbCdEf",
        "  tls: {mode: required}",
        "target:",
        "  database: analytics",
        "  schema: dw",
        "  workgroup: analytics",
        "  copy_role_arn: arn:aws:iam::111122223333:role/redshift-copy",
    ]
    if vpc is not None:
        lines.append(vpc)
    lines += ["tables:", f"  - {{name: {table}, cursor: updated_at, primary_key: [id]}}"]
    return "\n".join(lines) + "\n"


VPC_BLOCK = (
    "vpc:\n"
    f"  subnet_ids: [{', '.join(SUBNETS)}]\n"
    f"  security_group_ids: [{', '.join(SECURITY_GROUPS)}]"
)


@pytest.fixture(scope="module")
def vpc_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Two pipelines in the same VPC (one lists the ids in another order), one without."""
    tmp = tmp_path_factory.mktemp("vpc")
    pipelines = tmp / "pipelines"
    pipelines.mkdir()
    (pipelines / "orders.yml").write_text(pipeline_yaml("orders", vpc=VPC_BLOCK))
    reordered = (
        "vpc:\n"
        f"  subnet_ids: [{', '.join(reversed(SUBNETS))}]\n"
        f"  security_group_ids: [{', '.join(SECURITY_GROUPS)}]"
    )
    (pipelines / "items.yml").write_text(pipeline_yaml("items", vpc=reordered, table="shop.items"))
    (pipelines / "plain.yml").write_text(pipeline_yaml("plain", vpc=None, table="shop.plain"))
    return synthesize(tmp, {"stage": "vpc", **ALARMS}, pipelines_dir=pipelines)


def _functions_by_handler(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        resource["Properties"]["Handler"].split(".")[2]: (logical_id, resource)
        for logical_id, resource in synth.resources("AWS::Lambda::Function").items()
    }


def test_plan_and_extract_run_in_the_pipeline_subnets(vpc_synth: Synth) -> None:
    functions = _functions_by_handler(vpc_synth)
    assert set(functions) == {"validate_input", "plan", "extract", "load", "state", "s3clean"}
    for name, (_, resource) in functions.items():
        config = resource["Properties"].get("VpcConfig")
        if name in ("plan", "extract"):
            assert config is not None, f"{name} must run in the VPC"
            assert sorted(config["SubnetIds"]) == sorted(SUBNETS)
            assert config["SecurityGroupIds"] == SECURITY_GROUPS
        else:
            assert config is None, f"{name} does not read MySQL: no VPC"


def _network_policy(synth: Synth) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, policy)
        for logical_id, policy in synth.resources("AWS::IAM::ManagedPolicy").items()
        if "ec2:CreateNetworkInterface" in json.dumps(policy)
    ]
    return found


def test_only_the_vpc_functions_may_create_network_interfaces(vpc_synth: Synth) -> None:
    policy_id, policy = _network_policy(vpc_synth)
    roles = vpc_synth.resources("AWS::IAM::Role")
    users = {
        role["Properties"]["Description"]
        for role in roles.values()
        if {"Ref": policy_id} in role["Properties"].get("ManagedPolicyArns", [])
    }
    assert users == {"myshift plan function", "myshift extract function"}
    # The function waits for its role (and so for the policy): Lambda checks the ENI
    # permissions when it creates a function in a VPC.
    functions = _functions_by_handler(vpc_synth)
    for name in ("plan", "extract"):
        logical_id, resource = functions[name]
        role_id = resource["Properties"]["Role"]["Fn::GetAtt"][0]
        assert role_id in resource.get("DependsOn", []), logical_id

    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    create = json.dumps(statements["CreateInterfacesInThePipelineSubnets"]["Resource"])
    for subnet in SUBNETS:
        assert f":subnet/{subnet}" in create
    assert f":security-group/{SECURITY_GROUPS[0]}" in create
    assert ":network-interface/*" in create
    # Only the two Describe calls (no resource-level permissions) are on "*".
    star = [s for s in statements.values() if s["Resource"] == "*"]
    assert [sorted(s["Action"]) for s in star] == [
        ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
    ]


def test_no_wildcard_actions_and_no_aws_managed_policies(vpc_synth: Synth) -> None:
    wildcard = re.compile(r"^(\*|[a-z0-9-]+:\*)$")
    for logical_id, statement in allow_statements(vpc_synth):
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            assert not wildcard.match(action), f"{logical_id} allows {action}"
    for logical_id, role in vpc_synth.resources("AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            assert "iam::aws:policy" not in json.dumps(arn), f"{logical_id} uses {arn}"


def test_cdk_nag_reports_nothing_unsuppressed(vpc_synth: Synth) -> None:
    findings = [
        f"{v.rule_name} ({v.severity}) at {r.construct_path}"
        for v in vpc_synth.nag_report.violations
        for r in v.violating_resources
    ]
    assert not findings, "\n".join(findings)


def test_different_vpcs_fail_synth(tmp_path: Path) -> None:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "orders.yml").write_text(pipeline_yaml("orders", vpc=VPC_BLOCK))
    other = "vpc:\n  subnet_ids: [subnet-99998888]\n  security_group_ids: [sg-77776666]"
    (pipelines / "items.yml").write_text(pipeline_yaml("items", vpc=other, table="shop.items"))
    with pytest.raises(ValueError, match=r"different vpc settings.*items.*orders|separate"):
        synthesize(tmp_path, {"stage": "clash", **ALARMS}, pipelines_dir=pipelines)


@pytest.mark.parametrize(
    ("vpc", "message"),
    [
        ("vpc: {subnet_ids: [], security_group_ids: [sg-12345678]}", "vpc.subnet_ids"),
        ("vpc: {subnet_ids: [subnet-12345678]}", "vpc.security_group_ids"),
        ("vpc: {subnet_ids: [vpc-12345678], security_group_ids: [sg-12345678]}", "not a subnet"),
        (
            "vpc: {subnet_ids: [subnet-12345678], security_group_ids: [subnet-12345678]}",
            "not a security group",
        ),
        (
            "vpc: {subnet_ids: [subnet-12345678, subnet-12345678], "
            "security_group_ids: [sg-12345678]}",
            "repeat",
        ),
        (
            "vpc: {subnet_ids: [subnet-12345678], security_group_ids: [sg-12345678], vpc_id: x}",
            "vpc.vpc_id",
        ),
    ],
)
def test_vpc_block_is_validated(tmp_path: Path, vpc: str, message: str) -> None:
    path = tmp_path / "orders.yml"
    path.write_text(pipeline_yaml("orders", vpc=vpc))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_pipeline_file(path)


def test_vpc_block_is_optional(tmp_path: Path) -> None:
    path = tmp_path / "orders.yml"
    path.write_text(pipeline_yaml("orders", vpc=None))
    assert load_pipeline_file(path).vpc is None
    path.write_text(pipeline_yaml("orders", vpc=VPC_BLOCK))
    vpc = load_pipeline_file(path).vpc
    assert vpc is not None and vpc.subnet_ids == SUBNETS


def test_network_acknowledgments_match_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each acknowledgment on the network policy silences a finding that exists."""
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "orders.yml").write_text(pipeline_yaml("orders", vpc=VPC_BLOCK))
    context = {
        **ALARMS,
        "layer_dir": str(placeholder_layer(tmp_path / "layer")),
        "asset_dir": str(tmp_path / "asset"),
    }
    _, stack = app_module.build_app(context, outdir=str(tmp_path / "a"), pipelines_dir=pipelines)
    acknowledged = [a for a in app_module.acknowledgments(stack) if "/SourceNetwork/" in a[0]]
    monkeypatch.setattr(cdk.Validations, "acknowledge", lambda self, *rules: None)
    raw_app, _ = app_module.build_app(context, outdir=str(tmp_path / "b"), pipelines_dir=pipelines)
    raw = [
        (violation.rule_name, resource.construct_path)
        for violation in AwsSolutionsChecks().validate_scope(raw_app).violations
        for resource in violation.violating_resources
    ]
    assert len(acknowledged) == 2
    for path, rule, reason in acknowledged:
        assert len(reason) > 40
        assert any(r == rule and p.startswith(path + "/") for r, p in raw), rule


# --- vpc.create_endpoints -------------------------------------------------------------

ENDPOINTS_BLOCK = (
    VPC_BLOCK + "\n  create_endpoints: true\n  vpc_id: vpc-0a1b2c3d4e5f60718\n"
    "  route_table_ids: [rtb-0123456789abcdef0, rtb-11112222]"
)


@pytest.fixture(scope="module")
def endpoints_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    tmp = tmp_path_factory.mktemp("endpoints")
    pipelines = tmp / "pipelines"
    pipelines.mkdir()
    (pipelines / "orders.yml").write_text(pipeline_yaml("orders", vpc=ENDPOINTS_BLOCK))
    return synthesize(tmp, {"stage": "endpoints", **ALARMS}, pipelines_dir=pipelines)


def _service(endpoint: dict[str, Any]) -> str:
    name = endpoint["Properties"]["ServiceName"]
    return name if isinstance(name, str) else name["Fn::Join"][1][-1].lstrip(".")


def test_create_endpoints_makes_the_gateways_and_the_secrets_manager_endpoint(
    endpoints_synth: Synth,
) -> None:
    endpoints = {
        _service(e): e["Properties"]
        for e in endpoints_synth.resources("AWS::EC2::VPCEndpoint").values()
    }
    assert set(endpoints) == {"s3", "dynamodb", "secretsmanager"}
    for name in ("s3", "dynamodb"):
        assert endpoints[name]["VpcEndpointType"] == "Gateway"
        assert endpoints[name]["VpcId"] == "vpc-0a1b2c3d4e5f60718"
        assert endpoints[name]["RouteTableIds"] == ["rtb-0123456789abcdef0", "rtb-11112222"]
    secrets = endpoints["secretsmanager"]
    assert secrets["VpcEndpointType"] == "Interface"
    assert secrets["PrivateDnsEnabled"] is True
    assert secrets["SubnetIds"] == SUBNETS
    (group_id,) = [g["Fn::GetAtt"][0] for g in secrets["SecurityGroupIds"]]
    group = endpoints_synth.resources("AWS::EC2::SecurityGroup")[group_id]["Properties"]
    assert group["VpcId"] == "vpc-0a1b2c3d4e5f60718"
    assert [
        (r["IpProtocol"], r["FromPort"], r["ToPort"], r["SourceSecurityGroupId"])
        for r in group["SecurityGroupIngress"]
    ] == [("tcp", 443, 443, g) for g in SECURITY_GROUPS]


def test_without_create_endpoints_there_are_none(vpc_synth: Synth) -> None:
    assert not vpc_synth.resources("AWS::EC2::VPCEndpoint")


def test_cdk_nag_reports_nothing_on_the_endpoints(endpoints_synth: Synth) -> None:
    findings = [
        f"{v.rule_name} at {r.construct_path}"
        for v in endpoints_synth.nag_report.violations
        for r in v.violating_resources
    ]
    assert not findings, "\n".join(findings)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("\n  create_endpoints: true\n  route_table_ids: [rtb-11112222]", "needs vpc_id"),
        ("\n  create_endpoints: true\n  vpc_id: vpc-11112222", "needs route_table_ids"),
        ("\n  vpc_id: vpc-11112222", "for create_endpoints: true only"),
        (
            "\n  create_endpoints: true\n  vpc_id: vpc-11112222\n  route_table_ids: [x]",
            "not a route table id",
        ),
    ],
)
def test_create_endpoints_settings_are_validated(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "orders.yml"
    path.write_text(pipeline_yaml("orders", vpc=VPC_BLOCK + extra))
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        load_pipeline_file(path)
    assert str(error.value).startswith(f"{path}: vpc")
