"""The CDK app of myshift: one stack composing one construct per capability.

`infra/` is never imported by `functions/`; it reads the pipeline files through
`myshift.config` and the Lambda settings through `myshift.settings`, so the names the
functions expect and the values the stack sets cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

# The stage the local engine synthesizes (infra.local_twin): the only one that takes
# `local_only` pipelines and needs no alarm destination.
LOCAL_STAGE = "local"


def cdk_json_context(path: Path = REPO_ROOT / "cdk.json") -> dict[str, Any]:
    """The `context` block of cdk.json.

    The CDK CLI passes it to the app itself; `python app.py` (no CLI here) and the
    tests read it with this, so all three synthesize the same stack.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    context = data.get("context", {})
    if not isinstance(context, dict):
        raise ValueError(f"{path}: 'context' must be an object")
    return context
