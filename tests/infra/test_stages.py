"""Stages: `-c stage=<stage>` gives separate stacks that can share one account.

dev and prod are synthesized into one app (as `cdk deploy --all` would see them) and
no physical name may be the same in both; each stage reads its own pipelines from
`pipelines/<stage>/` when that directory exists.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from myshift.config import load_pipelines, stage_pipelines_dir

from infra import cdk_json_context
from infra.packaging import stage_code_asset
from infra.stack import MyshiftStack, StackSettings
from tests.infra.conftest import ALARMS
from tests.support.cloudformation import NAME_PROPERTIES
from tests.support.pipelines import PIPELINE
from tests.support.synth import placeholder_layer, readme_pipelines, synthesize

STAGES = ("dev", "prod")


def _render(value: Any, stack_name: str) -> str | None:
    """A name as deployed: Refs to the stack name resolved; None when generated."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("Ref") == "AWS::StackName":
        return stack_name
    if isinstance(value, dict) and value.get("Ref") in ("AWS::Region", "AWS::AccountId"):
        return f"<{value['Ref']}>"  # the same in both stacks of one account/region
    if isinstance(value, dict) and "Fn::Select" in value and "AWS::StackId" in json.dumps(value):
        return f"<{stack_name} id>"  # part of the stack id: unique per stack creation
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        rendered = [_render(part, stack_name) for part in parts]
        return None if None in rendered else separator.join(rendered)  # type: ignore[arg-type]
    return None  # a reference to another resource: unique per stack


def physical_names(template: dict[str, Any], stack_name: str) -> dict[tuple[str, str], str]:
    """(resource type, name) -> logical id, for every explicitly named resource."""
    names: dict[tuple[str, str], str] = {}
    for logical_id, resource in template["Resources"].items():
        prop = NAME_PROPERTIES.get(resource["Type"])
        if prop is None or prop not in resource.get("Properties", {}):
            continue
        name = _render(resource["Properties"][prop], stack_name)
        assert name is not None, f"{logical_id}.{prop} could not be rendered"
        names[(resource["Type"], name)] = logical_id
    return names


@pytest.fixture(scope="module")
def two_stages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Myshift-dev and Myshift-prod synthesized into one app: their templates."""
    tmp = tmp_path_factory.mktemp("stages")
    layer = placeholder_layer(tmp / "layer")
    app = cdk.App(context={**cdk_json_context(), **ALARMS}, outdir=str(tmp / "cdk.out"))
    base = StackSettings.from_context(app.node)
    stacks = {}
    readme = readme_pipelines(tmp / "pipelines")
    for stage in STAGES:
        pipelines_dir = stage_pipelines_dir(readme, stage)
        stacks[stage] = MyshiftStack(
            app,
            f"Myshift-{stage}",
            pipelines=load_pipelines(pipelines_dir),
            code_dir=stage_code_asset(tmp / f"asset-{stage}", pipelines_dir=pipelines_dir),
            layer_dir=layer,
            settings=dataclasses.replace(base, stage=stage),
        )
    assembly = app.synth()
    return {
        stage: json.loads(
            Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path).read_text()
        )
        for stage, stack in stacks.items()
    }


def test_stack_names_differ_by_stage(two_stages: dict[str, dict[str, Any]]) -> None:
    assert "(dev)" in two_stages["dev"]["Description"]
    assert "(prod)" in two_stages["prod"]["Description"]


def test_no_physical_name_collides(two_stages: dict[str, dict[str, Any]]) -> None:
    dev = physical_names(two_stages["dev"], "Myshift-dev")
    prod = physical_names(two_stages["prod"], "Myshift-prod")
    assert dev, "expected at least the state machine's log group to be named"
    clashes = sorted(set(dev) & set(prod))
    assert not clashes, f"dev and prod would fight over: {clashes}"
    for kind, name in dev:
        if kind == "AWS::Logs::LogGroup":
            assert "Myshift-dev" in name


def test_stage_tags(two_stages: dict[str, dict[str, Any]]) -> None:
    for stage, template in two_stages.items():
        machines = [
            r
            for r in template["Resources"].values()
            if r["Type"] == "AWS::StepFunctions::StateMachine"
        ]
        assert len(machines) == 3  # sync, doctor, reconcile
        for machine in machines:
            assert {"Key": "stage", "Value": stage} in machine["Properties"]["Tags"]


def test_distributed_map_policy_matches_the_state_machine_name(
    two_stages: dict[str, dict[str, Any]],
) -> None:
    template = two_stages["dev"]
    machines = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    names = {_render(m["Properties"].get("StateMachineName"), "Myshift-dev") for m in machines}
    # Each matches Myshift-dev-*: the Distributed Maps' child executions are allowed.
    assert names == {"Myshift-dev-sync", "Myshift-dev-doctor", "Myshift-dev-reconcile"}


# --- per-stage pipeline directories ------------------------------------------------


def test_stage_directory_wins_over_the_shared_one(tmp_path: Path) -> None:
    pipelines = tmp_path / "pipelines"
    (pipelines / "prod").mkdir(parents=True)
    (pipelines / "shared.yml").write_text(PIPELINE.format(name="shared"))
    (pipelines / "prod" / "orders.yml").write_text(PIPELINE.format(name="orders"))
    assert stage_pipelines_dir(pipelines, "prod") == pipelines / "prod"
    assert stage_pipelines_dir(pipelines, "dev") == pipelines

    prod = synthesize(tmp_path / "prod", {"stage": "prod", **ALARMS}, pipelines_dir=pipelines)
    dev = synthesize(tmp_path / "dev", {"stage": "dev", **ALARMS}, pipelines_dir=pipelines)

    def scheduled(synth: Any) -> set[str]:
        inputs = [
            json.loads(target["Input"])
            for rule in synth.resources("AWS::Events::Rule").values()
            for target in rule["Properties"]["Targets"]
        ]
        return {i["pipeline"] for i in inputs if "pipeline" in i}

    assert scheduled(prod) == {"orders"}
    assert scheduled(dev) == {"shared"}
    # reconcile_schedule: off unless set; then a rule starting the reconcile state machine.
    (pipelines / "prod" / "orders.yml").write_text(
        PIPELINE.format(name="orders") + "reconcile_schedule: cron(0 4 ? * SUN *)\n"
    )
    weekly = synthesize(tmp_path / "weekly", {"stage": "prod", **ALARMS}, pipelines_dir=pipelines)
    machines = {
        m["Properties"]["StateMachineName"].rsplit("-", 1)[1]: logical_id
        for logical_id, m in weekly.resources("AWS::StepFunctions::StateMachine").items()
    }
    rules = {
        rule["Properties"]["ScheduleExpression"]: rule["Properties"]["Targets"][0]
        for rule in weekly.resources("AWS::Events::Rule").values()
    }
    target = rules["cron(0 4 ? * SUN *)"]
    assert target["Arn"] == {"Ref": machines["reconcile"]}
    assert json.loads(target["Input"]) == {"pipeline": "orders", "fix": False}
    assert rules["rate(1 hour)"]["Arn"] == {"Ref": machines["sync"]}
    # The functions read the same files the stack was built from.
    for synth, expected in ((prod, ["orders.yml"]), (dev, ["shared.yml"])):
        staged = tmp_path / synth.stack.stack_name.split("-")[1] / "asset" / "pipelines"
        assert sorted(p.name for p in staged.iterdir()) == expected


def test_the_cli_reads_the_pipelines_its_stage_deploys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from myshift.cli.main import Context

    pipelines = tmp_path / "pipelines"
    (pipelines / "prod").mkdir(parents=True)
    (pipelines / "shared.yml").write_text(PIPELINE.format(name="shared"))
    (pipelines / "prod" / "orders.yml").write_text(PIPELINE.format(name="orders"))
    monkeypatch.setenv("MYSHIFT_PIPELINES_DIR", str(pipelines))
    assert Context(local=False, stage="prod", as_json=False).pipeline("orders").name == "orders"
    assert Context(local=False, stage="dev", as_json=False).pipeline("shared").name == "shared"
    # The local engine reads the directory it was started with, whatever the stage.
    assert Context(local=True, stage="prod", as_json=False).pipelines_dir() == pipelines
