"""CDK entry point: `python app.py [-c key=value ...]` synthesizes Myshift-<stage>.

Reads every pipeline file of the stage (`pipelines/<stage>/*.yml` when that directory
exists, else `pipelines/*.yml`), stages the Lambda code asset
(`build/asset/`), takes the layer from `build/layer/` (scripts/build_layer.py), checks
the stack with cdk-nag's AwsSolutions pack and writes the cloud assembly to `cdk.out/`
(or $CDK_OUTDIR). Works with the CDK CLI too (`cdk synth`, via cdk.json's "app").
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from myshift.config import (
    PipelineConfig,
    load_deployed_pipelines,
    load_pipelines,
    stage_pipelines_dir,
)
from myshift.errors import ConfigError

from infra import LOCAL_STAGE, REPO_ROOT, cdk_json_context
from infra.packaging import DEFAULT_ASSET_DIR, DEFAULT_LAYER_DIR, check_layer, stage_code_asset
from infra.stack import MyshiftStack, StackSettings

PIPELINES_DIR = REPO_ROOT / "pipelines"
NAG_PACK = "AwsSolutions"


def cli_context(argv: list[str]) -> dict[str, str]:
    """`-c key=value` / `--context key=value` pairs, as the CDK CLI accepts them.

    Without the CLI nobody else parses them; under the CLI they never reach argv.
    """
    context: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        if arg in ("-c", "--context"):
            pair = next(args, "")
        elif arg.startswith("--context="):
            pair = arg.split("=", 1)[1]
        else:
            raise SystemExit(f"usage: app.py [-c key=value ...] (unexpected {arg!r})")
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"context must be key=value, got {pair!r}")
        context[key] = value
    return context


def build_app(
    context: dict[str, Any],
    *,
    outdir: str | None = None,
    pipelines_dir: Path = PIPELINES_DIR,
    nag: bool = True,
) -> tuple[cdk.App, MyshiftStack]:
    """The app with the stack and cdk-nag registered (not synthesized yet).

    Context `asset_dir` / `layer_dir` / `pipelines_dir` (relative to the repository)
    move the staged code, the layer and the pipeline files; the tests point them at
    temporary directories.
    """
    # cdk.json first, then -c: the same precedence as the CLI. Under the CLI,
    # CDK_CONTEXT_JSON (already merged by the CLI) overrides both.
    app = cdk.App(context={**cdk_json_context(), **context}, outdir=outdir)
    settings = StackSettings.from_context(app.node)
    asset_dir = REPO_ROOT / str(app.node.try_get_context("asset_dir") or DEFAULT_ASSET_DIR)
    layer_dir = REPO_ROOT / str(app.node.try_get_context("layer_dir") or DEFAULT_LAYER_DIR)
    # A layer built for another architecture/runtime would deploy and fail on import.
    check_layer(
        layer_dir,
        arch=settings.lambda_architecture,
        python_version=settings.lambda_python_version,
    )
    if app.node.try_get_context("pipelines_dir"):
        pipelines_dir = REPO_ROOT / str(app.node.try_get_context("pipelines_dir"))
    pipelines_dir = stage_pipelines_dir(pipelines_dir, settings.stage)
    pipelines = stage_pipelines(pipelines_dir, settings.stage)
    code_dir = stage_code_asset(asset_dir, pipelines_dir=pipelines_dir, pipelines=pipelines)
    stack = MyshiftStack(
        app,
        f"Myshift-{settings.stage}",
        pipelines=pipelines,
        code_dir=code_dir,
        layer_dir=layer_dir,
        settings=settings,
    )
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def stage_pipelines(pipelines_dir: Path, stage: str) -> dict[str, PipelineConfig]:
    """The pipelines `stage` deploys: all of them for the local engine's stage; for any
    other stage every file but the `local_only` ones, each able to run in Lambda, and
    at least one (ConfigError otherwise, naming the file and the field)."""
    if stage == LOCAL_STAGE:
        return load_pipelines(pipelines_dir)
    pipelines = load_deployed_pipelines(pipelines_dir)
    if not pipelines:
        raise ConfigError(
            f"{pipelines_dir}: no pipeline to deploy for stage {stage} (local_only files are "
            f"left out): add {pipelines_dir}/<name>.yml (README, Deploy)"
        )
    return pipelines


def acknowledgments(scope: cdk.App | cdk.Stack) -> list[tuple[str, str, str]]:
    """Every cdk-nag acknowledgment in the tree: (construct path, rule id, reason)."""
    key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found: list[tuple[str, str, str]] = []
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != key or not isinstance(entry.data, dict):
                continue
            for rule, reason in entry.data.items():
                rule_id = rule.split("::", 1)[-1]  # CDK prefixes "Annotation::"
                if rule_id.startswith(NAG_PACK):
                    found.append((construct.node.path, rule_id, str(reason)))
    return found


def nag_summary(outdir: Path, acknowledged: int) -> tuple[int, int, str]:
    """(errors, warnings, text): cdk-nag's unsuppressed findings from the validation report."""
    report_path = outdir / "validation-report.json"
    errors = warnings = 0
    lines: list[str] = []
    if report_path.is_file():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        for plugin in report.get("pluginReports", []):
            if plugin.get("pluginName") != NAG_PACK:
                continue
            for violation in plugin.get("violations", []):
                constructs = violation.get("violatingConstructs") or [{}]
                if violation.get("severity") == "error":
                    errors += len(constructs)
                else:
                    warnings += len(constructs)
                for construct in constructs:
                    path = construct.get("constructPath", "?")
                    lines.append(f"  {violation.get('ruleName')}: {path}")
    text = (
        f"cdk-nag {NAG_PACK}: {errors} errors, {warnings} warnings unsuppressed "
        f"({acknowledged} acknowledged, each with its reason)"
    )
    return errors, warnings, "\n".join([text, *lines])


def main(argv: list[str]) -> int:
    """Synthesize; exit 1 when cdk-nag reports anything unsuppressed."""
    try:
        # Like the CLI: $CDK_OUTDIR, else ./cdk.out (CDK itself would pick a temp dir).
        app, stack = build_app(cli_context(argv), outdir=os.environ.get("CDK_OUTDIR", "cdk.out"))
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    outdir = Path(app.outdir)
    acknowledged = len(acknowledgments(stack))
    try:
        assembly = app.synth()
    except RuntimeError as exc:  # jsii turns CDK's ValidationError into a RuntimeError
        errors, warnings, text = nag_summary(outdir, acknowledged)
        print(text)
        if not (errors or warnings):
            print(f"error: synthesis failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    template = assembly.get_stack_artifact(stack.artifact_id).template_full_path
    print(f"synthesized {stack.stack_name} -> {template}")
    print(nag_summary(outdir, acknowledged)[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
