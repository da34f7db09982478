"""cdk-nag finding ids: how an acknowledgment names the resource it is about.

cdk-nag matches an acknowledgment by the finding's exact text, so these render a
resource as cdk-nag prints it rather than as the template holds it.
"""

from __future__ import annotations

from aws_cdk import CfnElement, Stack
from constructs import IConstruct


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


def logical_id(stack: Stack, resource: IConstruct) -> str:
    """The logical id of the CloudFormation resource a construct wraps (its default child)."""
    child = resource.node.default_child
    if not isinstance(child, CfnElement):  # an imported bucket, say: nothing in the template
        raise TypeError(f"{resource.node.path} has no CloudFormation resource of its own")
    return stack.get_logical_id(child)


def nag_attr(stack: Stack, resource: IConstruct, suffix: str = "") -> str:
    """`Resource::<LogicalId.Arn><suffix>`, the way cdk-nag names a grant's resource."""
    return f"Resource::<{logical_id(stack, resource)}.Arn>{suffix}"
