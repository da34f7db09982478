"""Synthesizing the CDK app in tests: one assembly, its template and cdk-nag's report.

The layer is a placeholder (building the real one needs pip downloads); the code asset
and the assembly go to a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# jsii prints a 12-line banner per process on Node 20; it is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # app.py and infra/ live at the repository root
    sys.path.insert(0, str(REPO_ROOT))

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

import app as app_module  # noqa: E402

PIPELINES_DIR = REPO_ROOT / "pipelines"


class Synth:
    """One synthesized app: the template, the assembly directory, the acknowledgments."""

    def __init__(
        self, app: cdk.App, stack: cdk.Stack, outdir: Path, pipelines_dir: Path = PIPELINES_DIR
    ) -> None:
        self.app = app
        self.stack = stack
        self.outdir = outdir
        self.pipelines_dir = pipelines_dir  # the pipeline files it was synthesized with
        self.acknowledgments = app_module.acknowledgments(stack)
        self.nag_report = AwsSolutionsChecks(verbose=True).validate_scope(app)
        # Synthesis runs cdk-nag again as a validation plugin and raises on findings.
        assembly = app.synth()
        artifact = assembly.get_stack_artifact(stack.artifact_id)
        self.template_path = Path(artifact.template_full_path)
        self.template_json: dict[str, Any] = json.loads(
            self.template_path.read_text(encoding="utf-8")
        )
        self.template = Template.from_json(self.template_json)

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template_json["Resources"].items()
            if resource["Type"] == kind
        }

    def definition_files(self) -> list[Path]:
        """The state machine definitions in the assembly (CDK uploads them as assets)."""
        found = []
        for resource in self.resources("AWS::StepFunctions::StateMachine").values():
            location = resource["Properties"]["DefinitionS3Location"]
            found.append(self.outdir / f"asset.{location['Key']}")
        return found


def placeholder_layer(root: Path) -> Path:
    """A tiny stand-in for build/layer: the stack only needs `python/` to exist."""
    package = root / "python" / "placeholder"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    return root


def synthesize(tmp: Path, context: dict[str, Any], pipelines_dir: Path = PIPELINES_DIR) -> Synth:
    """Synthesize the app into `tmp` with `context` over cdk.json's."""
    layer = placeholder_layer(tmp / "layer")
    app, stack = app_module.build_app(
        {**context, "layer_dir": str(layer), "asset_dir": str(tmp / "asset")},
        outdir=str(tmp / "cdk.out"),
        pipelines_dir=pipelines_dir,
    )
    return Synth(app, stack, tmp / "cdk.out", pipelines_dir)


# The production pipeline example of the deploy guide.
GUIDE = REPO_ROOT / "docs" / "operations.md"
_YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_pipeline_text(name: str = "settlement") -> str:
    """The deploy guide's pipeline example called `name` (its production example:
    docs/operations.md, Deploy, step 2), exactly as written there."""
    blocks = [b for b in _YAML_BLOCK.findall(GUIDE.read_text(encoding="utf-8"))]
    found = [b for b in blocks if re.search(rf"^name: {re.escape(name)}\s", b, re.MULTILINE)]
    assert len(found) == 1, f"{GUIDE.name} has {len(found)} yaml blocks with name: {name}"
    return found[0]


def readme_pipelines(directory: Path, name: str = "settlement") -> Path:
    """A pipelines directory holding the guide's example and the CA bundle it names
    (a throw-away CA: the guide's file is the RDS bundle the reader downloads)."""
    from tests.support.tls_mariadb import Authority

    text = readme_pipeline_text(name)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.yml").write_text(text, encoding="utf-8")
    bundle = re.search(r"^\s*ca_bundle:\s*(\S+)", text, re.MULTILINE)
    if bundle:
        Authority.create(directory / bundle.group(1), "deploy guide example CA")
    return directory


def allow_statements(synth: Synth) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Allow statement of every policy in the template, with its resource's id."""
    for logical_id, resource in synth.template_json["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        if resource["Type"] in ("AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"):
            documents.append(props["PolicyDocument"])
        for document in documents:
            for statement in document["Statement"]:
                if statement["Effect"] == "Allow":
                    yield logical_id, statement
