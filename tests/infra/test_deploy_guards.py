"""What a deployed stage refuses at synth, and what it always has.

- local-only pipelines (the demo) are left out; a file that could never run in Lambda
  (a password from an environment variable, a loopback MySQL) is refused in one line
  naming the file and the field, before anything is written;
- the alarms notify someone (an email, a topic), or the stage says they do not;
- the alarm topic lets CloudWatch publish (a topic policy replaces SNS's default);
- the deploy guide's production pipeline example synthesizes (the `synth` fixture is it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import app as app_module
from infra.local_twin import local_template
from tests.infra.conftest import ALARMS
from tests.support.synth import (
    PIPELINES_DIR,
    Synth,
    placeholder_layer,
    readme_pipeline_text,
    readme_pipelines,
    synthesize,
)


def _main(tmp: Path, pipelines: Path, *context: str) -> int:
    """app.py's main() with the assembly, the asset and the layer under `tmp`."""
    layer = placeholder_layer(tmp / "layer")
    args = [f"layer_dir={layer}", f"asset_dir={tmp / 'asset'}", f"pipelines_dir={pipelines}"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDK_OUTDIR", str(tmp / "cdk.out"))
        return app_module.main([part for arg in [*args, *context] for part in ("-c", arg)])


def _refused(tmp: Path, pipelines: Path, capsys: pytest.CaptureFixture[str], *context: str) -> str:
    """main()'s one stderr line, having checked it exited 2 and wrote nothing."""
    code = _main(tmp, pipelines, *context)
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert not (tmp / "asset").exists() and not list(tmp.glob("cdk.out/*.json"))
    return lines[0]


SECRET = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:myshift/mysql-AbCdEf"


# --- local-only pipelines ------------------------------------------------------------


def test_the_demo_pipeline_is_local_only() -> None:
    text = (PIPELINES_DIR / "demo.yml").read_text()
    assert "local_only: true" in text


def test_a_deployed_stage_leaves_local_only_pipelines_out(tmp_path: Path) -> None:
    pipelines = readme_pipelines(tmp_path / "pipelines")
    shutil.copy(PIPELINES_DIR / "demo.yml", pipelines / "demo.yml")
    synth = synthesize(tmp_path, {"stage": "qa", **ALARMS}, pipelines_dir=pipelines)
    scheduled = {
        json.loads(target["Input"]).get("pipeline")
        for rule in synth.resources("AWS::Events::Rule").values()
        for target in rule["Properties"]["Targets"]
    }
    assert scheduled == {"settlement", None}  # None: the nightly s3clean
    shipped = sorted(p.name for p in (tmp_path / "asset" / "pipelines").glob("*.yml"))
    assert shipped == ["settlement.yml"]


def test_the_local_stage_keeps_its_local_pipelines() -> None:
    template = local_template(PIPELINES_DIR)
    inputs = [
        json.loads(target["Input"])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Events::Rule"
        for target in resource["Properties"]["Targets"]
    ]
    assert {"demo"} <= {i.get("pipeline") for i in inputs}


def test_only_local_pipelines_is_nothing_to_deploy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _refused(tmp_path, PIPELINES_DIR, capsys, "stage=dev", *_alarm_args())
    assert line.startswith("error: ") and "no pipeline to deploy for stage dev" in line


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            (
                "secret_arn: " + SECRET,
                "password_env: MYSQL_PASSWORD",
            ),
            "source.password_env",
        ),
        (
            ("host: settlement.cluster-abc.eu-west-1.rds.amazonaws.com", "host: 127.0.0.1"),
            "source.host",
        ),
        (
            ("host: settlement.cluster-abc.eu-west-1.rds.amazonaws.com", "host: localhost"),
            "source.host",
        ),
    ],
)
def test_a_pipeline_lambda_could_never_run_is_refused_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str], field: str
) -> None:
    pipelines = readme_pipelines(tmp_path / "pipelines")
    path = pipelines / "settlement.yml"
    old, new = change
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    if "127.0.0.1" in new or "localhost" in new:  # loopback: TLS defaults to disabled
        path.write_text(
            path.read_text()
            .replace("mode: verify_identity", "mode: disabled")
            .replace("    ca_bundle: global-bundle.pem", "")
        )
    line = _refused(tmp_path, pipelines, capsys, "stage=prod", *_alarm_args())
    assert line.startswith(f"error: {path}: {field}: "), line
    assert "local_only: true" in line
    # The same file is the local engine's to run.
    path.write_text(
        path.read_text().replace("name: settlement\n", "name: settlement\nlocal_only: true\n", 1)
    )
    local = _main(tmp_path / "local", pipelines, "stage=local")
    assert local == 0, capsys.readouterr().err


# --- alarms ----------------------------------------------------------------------------


def _alarm_args() -> list[str]:
    return [f"{key}={value}" for key, value in ALARMS.items()]


def test_a_deployed_stage_without_an_alarm_destination_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipelines = readme_pipelines(tmp_path / "pipelines")
    line = _refused(tmp_path, pipelines, capsys, "stage=prod")
    assert line.startswith("error: stage prod: its alarms would notify nobody")
    for option in ("alarm_email", "alarm_topic_arn", "alarms=none"):
        assert option in line


@pytest.mark.parametrize(
    "context",
    [
        ("alarm_email=ops@example.com", "alarms=none"),
        ("alarm_email=ops@example.com", "alarm_topic_arn=arn:aws:sns:eu-west-1:111122223333:t"),
        ("alarm_email=not-an-address",),
        ("alarm_topic_arn=arn:aws:sqs:eu-west-1:111122223333:q",),
        ("alarms=some",),
    ],
)
def test_contradicting_or_malformed_alarm_settings_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], context: tuple[str, ...]
) -> None:
    pipelines = readme_pipelines(tmp_path / "pipelines")
    line = _refused(tmp_path, pipelines, capsys, "stage=prod", *context)
    assert line.startswith("error: context alarm"), line


def test_the_alarm_topic_lets_this_accounts_alarms_publish(synth: Synth) -> None:
    (policy,) = synth.resources("AWS::SNS::TopicPolicy").values()
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": topic_id}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert ":alarm:*" in json.dumps(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    # Still TLS only.
    assert any(s["Effect"] == "Deny" for s in statements)
    # Every alarm notifies that topic; the email is subscribed to it.
    for alarm in synth.resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
    (subscription,) = synth.resources("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Endpoint"] == ALARMS["alarm_email"]


def test_alarms_can_notify_an_existing_topic(tmp_path: Path) -> None:
    arn = "arn:aws:sns:eu-west-1:111122223333:platform-alarms"
    synth = synthesize(
        tmp_path,
        {"stage": "qa", "alarm_topic_arn": arn},
        pipelines_dir=readme_pipelines(tmp_path / "pipelines"),
    )
    assert not synth.resources("AWS::SNS::Topic")
    for alarm in synth.resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [arn]
    assert synth.template_json["Outputs"]["AlarmTopicArn"]["Value"] == arn


# --- the deploy guide's production example ------------------------------------------------------


def test_the_default_synth_is_the_readme_production_example(synth: Synth) -> None:
    written = (synth.pipelines_dir / "settlement.yml").read_text()
    assert written == readme_pipeline_text("settlement")
    staged = synth.outdir.parent / "asset" / "pipelines" / "settlement.yml"
    assert staged.read_text() == written  # what the functions read in AWS
    rules = [
        json.loads(t["Input"])
        for r in synth.resources("AWS::Events::Rule").values()
        for t in r["Properties"]["Targets"]
    ]
    assert {
        "pipeline": "settlement",
        "tables": ["settlement.settle_orders"],
        "mode": "full",
    } in rules
