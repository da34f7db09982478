"""Synth assertions on the CDK stack, and cdk-nag (AwsSolutions) with zero findings.

The stack is synthesized once per module with a placeholder layer (building the real
one needs pip downloads) and the repository's pipeline files. A second, small variant
exercises the context switches and the secret/cluster scoping.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match
from cdk_nag import AwsSolutionsChecks
from myshift.config import load_pipelines
from myshift.errors import transient_error_names
from myshift.settings import ENVIRONMENT_VARIABLES, Settings

import app as app_module
from infra.functions import FUNCTIONS
from infra.packaging import check_layer, layer_build_file, layer_build_info
from infra.schedules import S3CLEAN_EVENT
from infra.secrets import secret_resources
from infra.workflow import definition_placeholders
from tests.infra.conftest import ALARMS
from tests.support.synth import (
    REPO_ROOT,
    Synth,
    allow_statements,
    placeholder_layer,
    readme_pipelines,
)

DEFINITION_FILE = REPO_ROOT / "statemachines" / "sync.asl.json"


@pytest.fixture(scope="module")
def raw_findings(tmp_path_factory: pytest.TempPathFactory, synth: Synth) -> list[tuple[str, str]]:
    """cdk-nag findings with every acknowledgment switched off: (rule id, path)."""
    tmp = tmp_path_factory.mktemp("raw")
    patch = pytest.MonkeyPatch()
    patch.setattr(cdk.Validations, "acknowledge", lambda self, *rules: None)
    try:
        app, _ = app_module.build_app(
            {
                **ALARMS,
                "layer_dir": str(placeholder_layer(tmp / "layer")),
                "asset_dir": str(tmp / "asset"),
            },
            outdir=str(tmp / "cdk.out"),
            pipelines_dir=synth.pipelines_dir,
        )
        report = AwsSolutionsChecks().validate_scope(app)
    finally:
        patch.undo()
    return [
        (violation.rule_name, resource.construct_path)
        for violation in report.violations
        for resource in violation.violating_resources
    ]


# --- shape -----------------------------------------------------------------------


def test_a_verification_mismatch_raises_an_alarm(synth: Synth) -> None:
    """The metric the Plan function emits (EMF, by service) after a run's verification."""
    synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "Myshift",
            "MetricName": "VerificationMismatch",
            "Dimensions": [{"Name": "service", "Value": "myshift"}],
            "Statistic": "Sum",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    )


def test_resource_counts(synth: Synth) -> None:
    pipelines = load_pipelines(synth.pipelines_dir)
    scheduled = sum(1 for p in pipelines.values() if p.schedule)
    template = synth.template
    template.resource_count_is("AWS::S3::Bucket", 2)  # data + its access logs
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    template.resource_count_is("AWS::Lambda::Function", len(FUNCTIONS))
    template.resource_count_is("AWS::Lambda::LayerVersion", 1)
    # sync, doctor, reconcile
    template.resource_count_is("AWS::StepFunctions::StateMachine", 3)
    reconciled = sum(1 for p in pipelines.values() if p.reconcile_schedule)
    # + nightly s3clean
    template.resource_count_is("AWS::Events::Rule", scheduled + reconciled + 1)
    # Executions failed / timed out, a verification mismatch, errors and throttles.
    template.resource_count_is("AWS::CloudWatch::Alarm", 3 + 2 * len(FUNCTIONS))
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    template.resource_count_is("AWS::SNS::Topic", 1)
    assert len(FUNCTIONS) == 6


def test_lambda_runtime_is_the_tests_interpreter() -> None:
    # The functions run on the Python version the suite runs on (the Makefile makes the
    # venv with it); pyarrow's wheels need python3.12's glibc (Amazon Linux 2023).
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    assert context["lambda_python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_functions_runtime_architecture_and_handlers(synth: Synth) -> None:
    functions = synth.resources("AWS::Lambda::Function")
    handlers = set()
    runtime = (
        "python"
        + json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["lambda_python_version"]
    )
    for resource in functions.values():
        props = resource["Properties"]
        assert props["Runtime"] == runtime
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert len(props["Layers"]) == 1
        handlers.add(props["Handler"])
    assert handlers == {f"myshift.handlers.{spec.name}.handler" for spec in FUNCTIONS}
    synth.template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "myshift.handlers.extract.handler", "MemorySize": 2048, "Timeout": 900},
    )
    synth.template.has_resource_properties(
        "AWS::Lambda::LayerVersion",
        {"CompatibleRuntimes": [runtime], "CompatibleArchitectures": ["arm64"]},
    )


def test_table(synth: Synth) -> None:
    synth.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": Match.array_with(
                [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ]
            ),
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
    )


def test_data_bucket(synth: Synth) -> None:
    buckets = synth.resources("AWS::S3::Bucket")
    data = [b for b in buckets.values() if "LoggingConfiguration" in b["Properties"]]
    assert len(data) == 1, "exactly one bucket (the data bucket) logs to the other"
    props = data[0]["Properties"]
    assert "VersioningConfiguration" not in props  # off by default
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    rules = props["LifecycleConfiguration"]["Rules"]
    assert {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}.items() <= rules[
        0
    ].items()
    # enforce_ssl: a Deny on aws:SecureTransport=false in every bucket policy
    for policy in synth.resources("AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        tls_only = {"Bool": {"aws:SecureTransport": "false"}}
        assert any(s["Effect"] == "Deny" and s.get("Condition") == tls_only for s in statements)


def test_outputs(synth: Synth) -> None:
    assert set(synth.template_json["Outputs"]) == {
        "BucketName",
        "StateTableName",
        "StateMachineArn",
        "DoctorStateMachineArn",
        "ReconcileStateMachineArn",
        "AlarmTopicArn",
        "StateMachineLogGroup",
        "WarehouseDatabaseUser",
    }
    user = synth.template_json["Outputs"]["WarehouseDatabaseUser"]["Value"]
    assert user == "IAMR:myshift-dev-load"  # the load role's fixed name, granted to


# --- the workflow ------------------------------------------------------------------


def _asset_file(outdir: Path, s3_key: str) -> Path:
    return outdir / f"asset.{s3_key}"


def _machines(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    """The state machines by definition name (`sync`, `doctor`): logical id, resource."""
    return {
        machine["Properties"]["StateMachineName"].rsplit("-", 1)[1]: (logical_id, machine)
        for logical_id, machine in synth.resources("AWS::StepFunctions::StateMachine").items()
    }


@pytest.mark.parametrize("name", ["sync", "doctor", "reconcile"])
def test_state_machine_substitutions(synth: Synth, name: str) -> None:
    machines = _machines(synth)
    assert set(machines) == {"sync", "doctor", "reconcile"}
    props = machines[name][1]["Properties"]
    substitutions = props["DefinitionSubstitutions"]
    # The deployed definition is the repository's file, byte for byte.
    staged = _asset_file(synth.outdir, props["DefinitionS3Location"]["Key"])
    text = staged.read_text(encoding="utf-8")
    source = DEFINITION_FILE.with_name(f"{name}.asl.json")
    assert text == source.read_text(encoding="utf-8")
    assert definition_placeholders(source) == set(substitutions)
    for placeholder in substitutions:
        text = text.replace(
            "${" + placeholder + "}", "arn:aws:lambda:eu-west-1:111122223333:function:x"
        )
    assert "${" not in text
    json.loads(text)
    # Each placeholder points at the function with the matching handler.
    functions = synth.resources("AWS::Lambda::Function")
    by_prefix = {spec.construct_id: spec.name for spec in FUNCTIONS}
    buckets = synth.resources("AWS::S3::Bucket")
    if name != "doctor":  # the doctor has no Distributed Map
        assert substitutions["DataBucketName"]["Ref"] in buckets
    for name, value in substitutions.items():
        if not name.endswith("FunctionArn"):  # DataBucketName, MapResultsPrefix
            continue
        logical_id = value["Fn::GetAtt"][0]
        handler = functions[logical_id]["Properties"]["Handler"]
        assert handler == f"myshift.handlers.{by_prefix[name.removesuffix('FunctionArn')]}.handler"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"


def _retry_error_names(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for retry in node.get("Retry", []):
            found.update(retry["ErrorEquals"])
        for value in node.values():
            found |= _retry_error_names(value)
    elif isinstance(node, list):
        for value in node:
            found |= _retry_error_names(value)
    return found


def test_transient_errors_are_retried() -> None:
    retried = _retry_error_names(json.loads(DEFINITION_FILE.read_text(encoding="utf-8")))
    missing = set(transient_error_names()) - retried
    assert not missing, f"transient errors never retried by the state machine: {missing}"


def test_state_machines_may_invoke_exactly_their_functions(synth: Synth) -> None:
    functions = synth.resources("AWS::Lambda::Function")

    def handlers(*modules: str) -> set[str]:
        return {
            logical_id
            for logical_id, f in functions.items()
            if f["Properties"]["Handler"].split(".")[-2] in modules
        }

    expected = {
        "sync": handlers("validate_input", "plan", "extract", "load", "state"),
        "doctor": handlers("plan", "extract", "load", "state"),  # no s3clean, no validation
        "reconcile": handlers("validate_input", "plan", "extract", "load", "state"),
    }
    for name, (_, machine) in _machines(synth).items():
        role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        invoked: set[str] = set()
        for policy in synth.resources("AWS::IAM::Policy").values():
            if {"Ref": role} not in policy["Properties"]["Roles"]:
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Action"] == "lambda:InvokeFunction":
                    invoked |= {r["Fn::GetAtt"][0] for r in statement["Resource"]}
        assert invoked == expected[name], name


def test_schedules(synth: Synth) -> None:
    pipelines = load_pipelines(synth.pipelines_dir)
    rules = synth.resources("AWS::Events::Rule").values()
    machine_id = _machines(synth)["sync"][0]
    sync_inputs = {}
    for rule in rules:
        (target,) = rule["Properties"]["Targets"]
        payload = json.loads(target["Input"])
        if target["Arn"] == {"Ref": machine_id}:
            sync_inputs[payload["pipeline"]] = (rule["Properties"]["ScheduleExpression"], payload)
        else:
            assert payload == S3CLEAN_EVENT
            assert rule["Properties"]["ScheduleExpression"] == "cron(0 3 * * ? *)"
    expected = {name: p for name, p in pipelines.items() if p.schedule}
    assert set(sync_inputs) == set(expected)
    for name, (schedule, payload) in sync_inputs.items():
        assert schedule == expected[name].schedule
        assert payload == {
            "pipeline": name,
            "tables": [t.name for t in expected[name].tables],
            "mode": "full",
        }  # no limit / max_chunks


# --- the functions' environment ----------------------------------------------------


def _dummy(value: Any) -> str:
    """A CDK token ({"Ref": ...}, {"Fn::GetAtt": ...}) as a plausible plain string."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (kind, arg) = next(iter(value.items()))
        name = arg if isinstance(arg, str) else "-".join(map(str, arg))
        return f"dummy-{kind.replace('::', '-').lower()}-{name.lower()}"
    raise AssertionError(f"unexpected environment value {value!r}")


def test_environment_is_what_settings_expect(synth: Synth) -> None:
    for logical_id, resource in synth.resources("AWS::Lambda::Function").items():
        variables = resource["Properties"]["Environment"]["Variables"]
        assert set(ENVIRONMENT_VARIABLES.values()) <= set(variables), logical_id
        env = {key: _dummy(value) for key, value in variables.items()}
        settings = Settings.from_environment(env)
        assert str(settings.pipelines_dir) == "/var/task/pipelines"
        assert variables["MYSHIFT_BUCKET"] == {"Ref": _logical_id_of_data_bucket(synth)}
        assert variables["POWERTOOLS_SERVICE_NAME"] == "myshift"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Myshift"
        assert "POWERTOOLS_LOG_LEVEL" in variables
        extra = set(variables) - set(ENVIRONMENT_VARIABLES.values())
        assert all(name.startswith("POWERTOOLS_") for name in extra), extra


def _logical_id_of_data_bucket(synth: Synth) -> str:
    buckets = synth.resources("AWS::S3::Bucket")
    return next(i for i, b in buckets.items() if "LoggingConfiguration" in b["Properties"])


def _code_asset(synth: Synth) -> Path:
    """The staged directory of the functions' one code asset, in the cloud assembly."""
    functions = synth.resources("AWS::Lambda::Function")
    keys = {
        f["Properties"]["Code"]["S3Key"]
        for f in functions.values()
        if f["Properties"].get("Handler", "").startswith("myshift.handlers.")
    }
    assert len(keys) == 1, "all functions share one code asset"
    manifest = json.loads((synth.outdir / f"{synth.stack.artifact_id}.assets.json").read_text())
    (source,) = [
        entry["source"]["path"]
        for entry in manifest["files"].values()
        if any(d["objectKey"] == next(iter(keys)) for d in entry["destinations"].values())
    ]
    return synth.outdir / source


def test_code_asset_holds_package_and_pipelines(synth: Synth) -> None:
    staged = _code_asset(synth)
    assert (staged / "myshift" / "handlers" / "__init__.py").is_file()
    assert sorted(p.name for p in (staged / "pipelines").iterdir()) == sorted(
        p.name for p in synth.pipelines_dir.iterdir()
    )  # the pipeline file and the CA bundle it names
    assert not list(staged.rglob("__pycache__"))


def test_code_asset_carries_the_ca_bundles_the_pipelines_name(variant: Synth) -> None:
    """The functions load the pipelines from the asset: the bundle is there, same bytes."""
    staged = _code_asset(variant) / "pipelines"
    written = variant.outdir.parent / "pipelines" / "certs" / "mysql-ca.pem"
    assert (staged / "certs" / "mysql-ca.pem").read_bytes() == written.read_bytes()
    deployed = load_pipelines(staged)  # as in AWS, relative to /var/task/pipelines
    assert deployed["warehouse"].source.tls.ca_path == staged / "certs" / "mysql-ca.pem"
    assert deployed["lake"].source.tls.mode == "required"


# --- IAM -------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["synth", "variant"])
def test_no_wildcard_actions(which: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synth = request.getfixturevalue(which)
    wildcard = re.compile(r"^(\*|[a-z0-9-]+:\*)$")
    for logical_id, statement in allow_statements(synthesized):
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            assert not wildcard.match(action), f"{logical_id} allows {action}"


def test_no_aws_managed_policies(synth: Synth) -> None:
    for logical_id, role in synth.resources("AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            assert "iam::aws:policy" not in json.dumps(arn), f"{logical_id} uses {arn}"


def _statements_with(synth: Synth, action: str) -> list[dict[str, Any]]:
    found = []
    for _, statement in allow_statements(synth):
        actions = statement["Action"]
        if action in ([actions] if isinstance(actions, str) else actions):
            found.append(statement)
    return found


def test_warehouse_scoping_with_a_cluster_and_secrets(variant: Synth) -> None:
    (submit,) = _statements_with(variant, "redshift-data:BatchExecuteStatement")
    resources = json.dumps(submit["Resource"])
    assert ":cluster:analytics-cluster" in resources
    assert ":workgroup/*" in resources  # serverless ARNs hold the id, not the name
    assert submit["Resource"] != "*"
    (creds,) = _statements_with(variant, "redshift:GetClusterCredentials")
    assert "dbuser:analytics-cluster/loader" in json.dumps(creds["Resource"])
    assert "dbname:analytics-cluster/analytics" in json.dumps(creds["Resource"])
    # The serverless target authenticates with its secret: no temporary credentials.
    assert not _statements_with(variant, "redshift-serverless:GetCredentials")
    secrets = [
        json.dumps(s["Resource"])
        for s in _statements_with(variant, "secretsmanager:GetSecretValue")
    ]
    assert any("secret:mysql-AbCdEf" in s for s in secrets)
    assert any("secret:redshift-GhIjKl" in s for s in secrets)
    assert all("*" not in s for s in secrets)
    # The COPY role may read the bucket through the bucket policy (see test_copy_role).
    conditions = [json.dumps(s.get("Condition")) for _, s in allow_statements(variant)]
    assert any("role/redshift-copy" in c for c in conditions)


def test_source_secret_only_for_functions_that_read_mysql(variant: Synth) -> None:
    policies = variant.resources("AWS::IAM::ManagedPolicy")
    (source_policy,) = [
        logical_id
        for logical_id, p in policies.items()
        if "mysql-AbCdEf" in json.dumps(p["Properties"]["PolicyDocument"])
    ]
    users = {
        variant.resources("AWS::IAM::Role")[role_id]["Properties"]["Description"]
        for role_id, role in variant.resources("AWS::IAM::Role").items()
        if {"Ref": source_policy} in role["Properties"].get("ManagedPolicyArns", [])
    }
    assert users == {"myshift plan function", "myshift extract function"}


def test_partial_secret_arns_get_the_six_character_suffix() -> None:
    base = "arn:aws:secretsmanager:eu-west-1:111122223333:secret"
    assert secret_resources([f"{base}:db-AbCdEf", f"{base}:db", f"{base}:db"]) == [
        f"{base}:db-??????",
        f"{base}:db-AbCdEf",
    ]


def test_context_switches(variant: Synth) -> None:
    assert variant.stack.stack_name == "Myshift-prod"
    variant.template.resource_count_is("AWS::S3::Bucket", 1)  # access_logs=false
    variant.template.has_resource_properties(
        "AWS::S3::Bucket", {"VersioningConfiguration": {"Status": "Enabled"}}
    )
    variant.template.has_resource(
        "AWS::DynamoDB::Table", {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
    )
    for resource in variant.resources("AWS::Lambda::Function").values():
        if resource["Properties"]["Handler"].startswith("myshift."):  # not CDK's auto-delete
            assert resource["Properties"]["Architectures"] == ["x86_64"]
    # No schedule in the file: only the nightly clean-up rule.
    variant.template.resource_count_is("AWS::Events::Rule", 1)


# --- cdk-nag ---------------------------------------------------------------------


@pytest.mark.parametrize("which", ["synth", "variant"])
def test_cdk_nag_reports_nothing_unsuppressed(which: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synth = request.getfixturevalue(which)
    findings = [
        f"{v.rule_name} ({v.severity}) at {r.construct_path}"
        for v in synthesized.nag_report.violations
        for r in v.violating_resources
    ]
    assert not findings, "\n".join(findings)


def test_every_acknowledgment_has_a_reason_and_a_finding(
    synth: Synth, raw_findings: list[tuple[str, str]]
) -> None:
    assert synth.acknowledgments, "expected the documented acknowledgments"
    for path, rule, reason in synth.acknowledgments:
        assert len(reason) > 40, f"{rule} at {path}: say why"
        assert any(
            found_rule == rule and (found_path == path or found_path.startswith(path + "/"))
            for found_rule, found_path in raw_findings
        ), f"stale acknowledgment {rule} at {path}: cdk-nag reports nothing there"


# --- the entry point -------------------------------------------------------------


def test_check_layer_refuses_a_layer_built_for_another_target(tmp_path: Path) -> None:
    layer = placeholder_layer(tmp_path / "layer")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pyarrow==26.0.1\n")
    check = {"requirements": requirements}
    check_layer(layer, arch="arm64", python_version="3.11", **check)  # no record: accepted

    def record(arch: str, python: str, glibc: tuple[int, int]) -> None:
        info = layer_build_info(requirements, arch, python, glibc, 1)
        layer_build_file(layer).write_text(json.dumps(info))

    record("arm64", "3.11", (2, 26))
    check_layer(layer, arch="arm64", python_version="3.11", **check)
    with pytest.raises(ValueError, match="built for arm64, the stack wants x86_64"):
        check_layer(layer, arch="x86_64", python_version="3.11", **check)
    with pytest.raises(ValueError, match=re.escape("python3.12")):
        check_layer(layer, arch="arm64", python_version="3.12", **check)
    record("arm64", "3.11", (2, 28))
    with pytest.raises(ValueError, match=re.escape("glibc 2.28")):
        check_layer(layer, arch="arm64", python_version="3.11", **check)
    record("arm64", "3.11", (2, 26))
    requirements.write_text("pyarrow==20.0.0\n")
    with pytest.raises(ValueError, match="changed since the build"):
        check_layer(layer, arch="arm64", python_version="3.11", **check)


def test_app_py_synthesizes(tmp_path: Path) -> None:
    layer = placeholder_layer(tmp_path / "layer")
    outdir = tmp_path / "cdk.out"
    result = subprocess.run(
        [
            sys.executable,
            "app.py",
            "-c",
            f"layer_dir={layer}",
            "-c",
            f"asset_dir={tmp_path / 'asset'}",
            "-c",
            "stage=ci",
            "-c",
            f"pipelines_dir={readme_pipelines(tmp_path / 'pipelines')}",
            "-c",
            "alarm_email=data-platform@example.com",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "CDK_OUTDIR": str(outdir)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cdk-nag AwsSolutions: 0 errors, 0 warnings unsuppressed" in result.stdout
    template = json.loads((outdir / "Myshift-ci.template.json").read_text())
    kinds = [r["Type"] for r in template["Resources"].values()]
    assert kinds.count("AWS::StepFunctions::StateMachine") == 3  # sync, doctor, reconcile
    assert kinds.count("AWS::Lambda::Function") == len(FUNCTIONS)


def test_app_main_fails_on_unacknowledged_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cdk.Validations, "acknowledge", lambda self, *rules: None)
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path / "cdk.out"))
    layer = placeholder_layer(tmp_path / "layer")
    code = app_module.main(
        [
            *("-c", f"layer_dir={layer}", "-c", f"asset_dir={tmp_path / 'asset'}"),
            *("-c", f"pipelines_dir={readme_pipelines(tmp_path / 'pipelines')}"),
            *("-c", "alarms=none"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    summary = out.splitlines()[0]
    assert re.match(r"cdk-nag AwsSolutions: [1-9]\d* errors, 0 warnings unsuppressed", summary)
    assert "AwsSolutions-L1: Myshift-dev/Functions/Extract/Resource" in out
