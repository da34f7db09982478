"""Every request to the local engine is signed by an identity and checked as IAM checks it.

moto authenticates requests once `INITIAL_NO_AUTH_ACTION_COUNT` is reached (keys of IAM
users, or of roles assumed through its STS), but it knows the resource of an S3 request
only: every other request is checked against `*`, so a policy scoped to a table or a
function ARN would deny everything, and one granting `*` anything. Here each request
gets the ARN(s) AWS authorizes it against and IAM's action name, and the caller's
policies are evaluated by `myshift.local.iam`. Relies on the pinned moto version.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from myshift.local import iam

REGION = "us-east-1"
ACCOUNT = "123456789012"

# Operation names whose IAM action differs (Service Authorization Reference).
_IAM_ACTIONS = {
    ("lambda", "Invoke"): "InvokeFunction",
    ("lambda", "InvokeAsync"): "InvokeAsync",
    ("s3", "ListObjectsV2"): "ListBucket",
}

# Services whose errors are JSON (`__type`): their AccessDeniedException carries AWS's
# whole sentence, the resource included.
_JSON_SERVICES = frozenset({"dynamodb", "lambda", "states", "redshift-data", "secretsmanager"})

_lock = threading.Lock()
_installed = False
# Every (principal, action, resource) the engine allowed: what each role really uses,
# held against the stack's least-privilege policies (`allowed_calls`).
_allowed: set[tuple[str, str, str]] = set()


def allowed_calls() -> set[tuple[str, str, str]]:
    """Every (principal ARN, IAM action, resource ARN) allowed so far in this process."""
    with _lock:
        return set(_allowed)


def workgroup_arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    """A Redshift Serverless workgroup's ARN: it ends in the workgroup's id (a UUID);
    locally a stable one derived from the name."""
    workgroup_id = uuid.uuid5(uuid.NAMESPACE_URL, f"redshift-serverless/{name}")
    return f"arn:aws:redshift-serverless:{region}:{account}:workgroup/{workgroup_id}"


def cluster_arn(identifier: str, region: str = REGION, account: str = ACCOUNT) -> str:
    """A provisioned Redshift cluster's ARN."""
    return f"arn:aws:redshift:{region}:{account}:cluster:{identifier}"


def _json_body(response: Any) -> dict[str, Any]:
    body = getattr(response, "body", None)
    if isinstance(body, dict):  # DynamoDB's responses parse it before authorizing
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body or not isinstance(body, str):
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _secret_arn(secret_id: str, region: str, account: str) -> str:
    if secret_id.startswith("arn:"):
        return secret_id
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[account][region]
    secret = backend.secrets.get(secret_id) if hasattr(backend, "secrets") else None
    return getattr(secret, "arn", f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}")


def resources_for(service: str, action: str, response: Any) -> list[str]:
    """The ARNs AWS authorizes this request against ("*" where the action has none)."""
    region = getattr(response, "region", REGION) or REGION
    account = getattr(response, "current_account", ACCOUNT) or ACCOUNT
    body = _json_body(response)
    if service == "dynamodb":
        table = f"arn:aws:dynamodb:{region}:{account}:table/"
        names: list[str] = []
        if "TableName" in body:
            name = table + str(body["TableName"])
            index = body.get("IndexName")
            names.append(f"{name}/index/{index}" if index else name)
        names += [table + str(n) for n in (body.get("RequestItems") or {})]
        for entry in body.get("TransactItems") or []:
            for operation in entry.values():
                if isinstance(operation, dict) and "TableName" in operation:
                    names.append(table + str(operation["TableName"]))
        return sorted(set(names)) or ["*"]
    if service == "lambda":
        path = unquote(str(getattr(response, "path", "")))
        parts = [p for p in path.split("/") if p]
        if "functions" in parts and parts.index("functions") + 1 < len(parts):
            name = parts[parts.index("functions") + 1]
            if name.startswith("arn:"):
                return [name]
            name = name.split(":")[0]
            return [f"arn:aws:lambda:{region}:{account}:function:{name}"]
        return ["*"]
    if service == "states":
        for field in ("executionArn", "stateMachineArn", "mapRunArn", "activityArn"):
            if field in body:
                return [str(body[field])]
        return ["*"]
    if service == "redshift-data":
        if action in ("ExecuteStatement", "BatchExecuteStatement"):
            if body.get("WorkgroupName"):
                return [workgroup_arn(str(body["WorkgroupName"]), region, account)]
            if body.get("ClusterIdentifier"):
                return [cluster_arn(str(body["ClusterIdentifier"]), region, account)]
        return ["*"]
    if service == "secretsmanager" and "SecretId" in body:
        return [_secret_arn(str(body["SecretId"]), region, account)]
    return ["*"]


def policy_documents(policies: list[Any]) -> list[Any]:
    """The documents of what moto's `collect_policies` returns (objects, JSON, dicts)."""
    from moto.iam.models import Policy

    documents = []
    for policy in policies:
        if isinstance(policy, Policy):
            version = next(v for v in policy.versions if v.is_default)
            documents.append(version.document)
        elif isinstance(policy, dict):
            documents.append(policy["policy_document"])
        else:
            documents.append(policy)
    return documents


def principal_policies(principal_arn: str) -> list[Any]:
    """The identity policies of a role (or assumed-role session) or user, by ARN."""
    from moto.iam.models import iam_backends

    backend = iam_backends[ACCOUNT]["aws"]
    kind, _, rest = principal_arn.split(":", 5)[5].partition("/")
    name = rest.split("/")[0]
    found: list[Any] = []
    if kind in ("assumed-role", "role"):
        for policy_name in backend.list_role_policies(name):
            found.append(backend.get_role_policy(name, policy_name)[1])
        found += backend.list_attached_role_policies(name)[0]
    elif kind == "user":
        for policy_name in backend.list_user_policies(name):
            found.append(backend.get_user_policy(name, policy_name))
        found += backend.list_attached_user_policies(name)[0]
    return policy_documents(found)


def caller_arn(headers: Any) -> str | None:
    """The principal that signed a request (role ARN for a role session), or None."""
    authorization = str(headers.get("Authorization") or headers.get("authorization") or "")
    credential = authorization.partition("Credential=")[2].partition("/")[0]
    if not credential:
        return None
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for assumed in sts_backends[ACCOUNT]["aws"].assumed_roles:
        if assumed.access_key_id == credential:
            return str(assumed.role_arn)
    for user in iam_backends[ACCOUNT]["aws"].users.values():
        if any(key.access_key_id == credential for key in user.access_keys):
            return str(user.arn)
    return None


def request_context(action: str, path: str) -> dict[str, str]:
    """The condition keys a request supplies that the stack's policies test.

    s3:ListBucket: `s3:prefix`, the listing's `prefix` parameter (Amazon S3 condition
    keys, Service Authorization Reference); absent when the request gives none.
    """
    if action != "s3:ListBucket":
        return {}
    query = parse_qs(urlparse(path).query, keep_blank_values=True)
    return {"s3:prefix": query["prefix"][0]} if "prefix" in query else {}


def authorize(principal_arn: str, action: str, resource: str, context: Any = None) -> None:
    """Raise AccessDeniedException (AWS's wording) unless the principal may do it."""
    decision = iam.evaluate(principal_policies(principal_arn), action, resource, context)
    if not decision.allowed:
        from moto.core.exceptions import JsonRESTError

        raise JsonRESTError("AccessDeniedException", iam.denial_message(principal_arn, decision))


def install() -> None:
    """Replace moto's permission check with one that knows resources (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.core.exceptions import JsonRESTError
        from moto.iam.access_control import IAMRequest, IAMRequestBase

        def check(self: Any, resource: str | list[str]) -> None:
            if self._action == "sts:GetCallerIdentity":
                return
            service, _, operation = self._action.partition(":")
            action = f"{service}:{_IAM_ACTIONS.get((service, operation), operation)}"
            documents = policy_documents(self._access_key.collect_policies())
            context = request_context(action, str(self._path))
            for arn in [resource] if isinstance(resource, str) else resource:
                decision = iam.evaluate(documents, action, arn, context)
                if decision.allowed:
                    with _lock:
                        _allowed.add((str(self._access_key.arn), action, arn))
                    continue
                if service in _JSON_SERVICES:
                    message = iam.denial_message(self._access_key.arn, decision)
                    raise JsonRESTError("AccessDeniedException", message)
                self._raise_access_denied()  # S3 and query services, as moto words them

        def authorize_normal(self: Any, resource: str = "*") -> None:
            if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
                ActionAuthenticatorMixin.request_count += 1
                return
            authorization = self.headers.get("Authorization") or ""
            scope = authorization.partition("Credential=")[2].split(",")[0].split("/")
            service = scope[3] if len(scope) > 3 else ""
            operation = self._get_action()
            if resource == "*" and service:
                resource = resources_for(service, operation, self)  # type: ignore[assignment]
            self._authenticate_and_authorize_action(IAMRequest, resource)

        original_request = IAMRequestBase._create_aws_request

        def signed_request(self: Any) -> Any:
            # moto hashes a bodiless request's headers as its payload (its `data` holds
            # them for a GET): the signature of every GET would not match.
            if not self._body and str(self._method).upper() in ("GET", "HEAD", "DELETE"):
                saved, self._data = self._data, b""
                try:
                    return original_request(self)
                finally:
                    self._data = saved
            return original_request(self)

        IAMRequestBase._create_aws_request = signed_request  # type: ignore[method-assign]
        IAMRequestBase.check_action_permitted = check  # type: ignore[method-assign]
        ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize_normal  # type: ignore[method-assign]
        _installed = True


@contextmanager
def enforced() -> Iterator[None]:
    """IAM enforcement on for the block (moto's setting; restored afterwards)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    install()
    before = (settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count)
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = before
