"""cdk-nag finding ids: how an acknowledgment names the resource it is about.

cdk-nag matches an acknowledgment by the finding's exact text, so these render a
resource as cdk-nag prints it rather than as the template holds it.
"""

from __future__ import annotations

from aws_cdk import Stack
from constructs import Construct


def nag_arn(stack: Stack, arn: str) -> str:
    """An ARN as cdk-nag prints it in a finding id (pseudo parameters in <...>)."""
    rendered = stack.resolve(arn)
    if isinstance(rendered, str):
        return rendered
    parts: list[str] = []
    for part in rendered["Fn::Join"][1]:
        if isinstance(part, str):
            parts.append(part)
        elif "Ref" in part:
            parts.append(f"<{part['Ref']}>")
        else:
            raise ValueError(f"cannot render {part!r} for a cdk-nag finding id")
    return "".join(parts)


def nag_attr(stack: Stack, resource: Construct, suffix: str = "") -> str:
    """`Resource::<LogicalId.Arn><suffix>`, the way cdk-nag names a grant's resource."""
    logical_id = stack.get_logical_id(resource.node.default_child)  # type: ignore[arg-type]
    return f"Resource::<{logical_id}.Arn>{suffix}"
