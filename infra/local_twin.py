"""The stack the local engine reproduces: `python -m infra.local_twin PIPELINES OUT`.

Synthesizes the CDK app for the local stage with the engine's pipeline files and writes
the template to OUT. The local engine creates its roles, policies, functions and state
machine from it, so a permission missing from the stack fails a local run as it would
fail in AWS. The layer is a placeholder and cdk-nag is not run (`make synth` and the
infra tests check the deployed stages).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from infra import LOCAL_STAGE

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def local_template(pipelines_dir: Path) -> dict[str, Any]:
    """The template of the local stage's stack for the pipelines in `pipelines_dir`."""
    import app as app_module  # the repository root is on sys.path (python -m)

    with tempfile.TemporaryDirectory(prefix="myshift-twin-") as tmp:
        root = Path(tmp)
        layer = root / "layer" / "python" / "placeholder"
        layer.mkdir(parents=True)
        (layer / "__init__.py").write_text("")
        cdk_app, stack = app_module.build_app(
            {
                "stage": LOCAL_STAGE,
                "layer_dir": str(root / "layer"),
                "asset_dir": str(root / "asset"),
            },
            outdir=str(root / "cdk.out"),
            pipelines_dir=pipelines_dir,
            nag=False,
        )
        assembly = cdk_app.synth()
        artifact = assembly.get_stack_artifact(stack.artifact_id)
        template: dict[str, Any] = json.loads(
            Path(artifact.template_full_path).read_text(encoding="utf-8")
        )
        return template


def main(argv: list[str]) -> int:
    """Write the local stage's template; exit 2 with one line when the app refuses."""
    if len(argv) != 2:
        print("usage: python -m infra.local_twin PIPELINES_DIR OUT_FILE", file=sys.stderr)
        return 2
    pipelines_dir, out = Path(argv[0]), Path(argv[1])
    from myshift.errors import MyshiftError

    try:
        template = local_template(pipelines_dir)
    except (MyshiftError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(template), encoding="utf-8")
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
