"""IAM policy evaluation for the local engine's principals, as AWS evaluates it.

moto's own evaluator knows no resources but S3's ("*" for every other service), turns
`?` into a regular expression and ignores conditions. This one is what the local twin
enforces for identity-based policies ("Policy evaluation logic", IAM User Guide):

- an explicit Deny wins; otherwise an Allow is needed (implicit deny);
- `Action`/`NotAction` match case-insensitively, `Resource`/`NotResource` case-
  sensitively, both with the `*` and `?` wildcards;
- conditions: the operators below, on the context keys the request supplies; a
  condition this evaluator cannot decide denies (a local run must not pass on a rule
  it did not check).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

ALLOW, DENY, IMPLICIT_DENY = "allow", "deny", "implicit deny"


@lru_cache(maxsize=4096)
def _pattern(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    # Only * and ? are wildcards in IAM ([ is a literal character).
    escaped = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"(?s:{escaped})\\Z", 0 if case_sensitive else re.IGNORECASE)


def matches(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM's wildcard match: `*` any run of characters, `?` one character."""
    return _pattern(pattern, case_sensitive).match(value) is not None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _string_condition(values: list[str], expected: list[str], operator: str) -> bool:
    like = operator in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike")
    ignore_case = operator.startswith("StringEqualsIgnoreCase")

    def one(actual: str, pattern: str) -> bool:
        if like:
            return matches(pattern, actual)
        if ignore_case:
            return actual.lower() == pattern.lower()
        return actual == pattern

    positive = any(one(a, e) for a in values for e in expected)
    return not positive if "Not" in operator else positive


_STRING_OPERATORS = frozenset(
    {
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "ArnEquals",
        "ArnNotEquals",
        "ArnLike",
        "ArnNotLike",
    }
)


class UndecidableConditionError(Exception):
    """A policy condition the local evaluator cannot decide (it denies instead)."""


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool:
    base = operator.removesuffix("IfExists")
    if_exists = operator.endswith("IfExists")
    quantifier = ""
    if ":" in base:  # ForAnyValue:StringLike ...
        quantifier, base = base.split(":", 1)
    present = key in context
    if not present:
        if base == "Null":
            return str(expected).lower() == "true"
        return if_exists or base.startswith("StringNot") or base.startswith("ArnNot")
    actual = [str(v) for v in _as_list(context[key])]
    wanted = [str(v) for v in _as_list(expected)]
    if base == "Null":
        return str(expected).lower() == "false"
    if base == "Bool":
        return any(a.lower() == w.lower() for a in actual for w in wanted)
    if base in _STRING_OPERATORS:
        if quantifier == "ForAllValues":
            return all(_string_condition([a], wanted, base) for a in actual)
        return _string_condition(actual, wanted, base)
    raise UndecidableConditionError(f"{operator} on {key}")


def _conditions_hold(conditions: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    for operator, by_key in conditions.items():
        for key, expected in by_key.items():
            if not _condition_holds(operator, key, expected, context):
                return False
    return True


def _statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, Any]
) -> bool:
    if "Action" in statement:
        if not any(matches(p, action, case_sensitive=False) for p in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(matches(p, action, case_sensitive=False) for p in _as_list(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        if not any(matches(p, resource) for p in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(matches(p, resource) for p in _as_list(statement["NotResource"])):
            return False
    conditions = statement.get("Condition")
    if conditions:
        try:
            return _conditions_hold(conditions, context)
        except UndecidableConditionError:
            # An Allow we cannot decide does not allow; a Deny we cannot decide denies.
            return statement.get("Effect") == "Deny"
    return True


@dataclass(frozen=True)
class Decision:
    """The outcome for one action on one resource."""

    effect: str  # ALLOW | DENY | IMPLICIT_DENY
    action: str
    resource: str

    @property
    def allowed(self) -> bool:
        return self.effect == ALLOW


def _documents(policies: Iterable[Any]) -> list[Mapping[str, Any]]:
    documents = []
    for policy in policies:
        document = json.loads(policy) if isinstance(policy, str) else policy
        documents.append(document)
    return documents


def evaluate(
    policies: Iterable[Any],
    action: str,
    resource: str,
    context: Mapping[str, Any] | None = None,
) -> Decision:
    """The effect of identity policies (documents or their JSON) on one request."""
    context = context or {}
    allowed = False
    for document in _documents(policies):
        for statement in _as_list(document.get("Statement")):
            if not _statement_applies(statement, action, resource, context):
                continue
            if statement.get("Effect") == "Deny":
                return Decision(DENY, action, resource)
            if statement.get("Effect") == "Allow":
                allowed = True
    return Decision(ALLOW if allowed else IMPLICIT_DENY, action, resource)


def denial_message(principal: str, decision: Decision) -> str:
    """AccessDenied's message as AWS words it."""
    why = (
        "with an explicit deny in an identity-based policy"
        if decision.effect == DENY
        else f"because no identity-based policy allows the {decision.action} action"
    )
    return (
        f"User: {principal} is not authorized to perform: {decision.action} on resource: "
        f"{decision.resource} {why}"
    )


def trust_allows(trust_policy: Any, service: str) -> bool:
    """Whether a role's trust policy lets the AWS service `service` assume it."""
    document = json.loads(trust_policy) if isinstance(trust_policy, str) else trust_policy
    for statement in _as_list(document.get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        if not any(
            matches(a, "sts:AssumeRole", case_sensitive=False)
            for a in _as_list(statement.get("Action"))
        ):
            continue
        principals = statement.get("Principal") or {}
        if isinstance(principals, Mapping) and service in _as_list(principals.get("Service")):
            return True
    return False
