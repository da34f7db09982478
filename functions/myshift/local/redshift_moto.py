"""Route moto's `redshift-data` API to the PostgreSQL-backed stand-in.

moto's own backend is a stub (no SQL, always STARTED, no batch). Both our Lambda code
(boto3 `redshift-data`) and moto's Step Functions aws-sdk tasks reach
`RedshiftDataAPIServiceResponse`, so replacing its action methods is enough. The
methods are looked up by name at each request (`BaseResponse.call_action`), so the
patch also covers actions moto does not implement at all (BatchExecuteStatement).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.redshiftdata.responses import RedshiftDataAPIServiceResponse

from myshift.local.enforcement import caller_arn
from myshift.local.redshift_standin import (
    CALLER,
    RedshiftDataStandIn,
    StandInNotFoundError,
    StandInValidationError,
)

_SUBMIT_FIELDS = (
    "ClusterIdentifier",
    "WorkgroupName",
    "Database",
    "DbUser",
    "SecretArn",
    "Parameters",
    "StatementName",
    "WithEvent",
    "ClientToken",
    "ResultFormat",
    "SessionId",
    "SessionKeepAliveSeconds",
    "WaitTimeSeconds",
)

# Data API action (as moto names its method) -> (stand-in method, request fields).
_ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "execute_statement": ("execute_statement", ("Sql", *_SUBMIT_FIELDS)),
    "batch_execute_statement": (
        "batch_execute_statement",
        ("Sqls", "ExecutionMode", *_SUBMIT_FIELDS),
    ),
    "describe_statement": ("describe_statement", ("Id",)),
    "get_statement_result": ("get_statement_result", ("Id", "NextToken")),
    "cancel_statement": ("cancel_statement", ("Id",)),
    "list_statements": (
        "list_statements",
        ("NextToken", "MaxResults", "StatementName", "Status", "RoleLevel"),
    ),
}

_ORIGINALS_ATTR = "_myshift_original_methods"


def _handler(
    standin: RedshiftDataStandIn, method: str, fields: tuple[str, ...]
) -> Callable[[RedshiftDataAPIServiceResponse], tuple[int, dict[str, str], str]]:
    """A response method that hands the request's fields to the stand-in."""

    def action(self: RedshiftDataAPIServiceResponse) -> tuple[int, dict[str, str], str]:
        params: dict[str, Any] = {}
        for name in fields:
            value = self._get_param(name)
            if value is not None:
                params[name] = value
        # The identity that signed the call: a statement belongs to the one that ran it.
        params[CALLER] = caller_arn(self.headers) or _access_key(self.headers)
        try:
            result = getattr(standin, method)(params)
        except StandInValidationError as exc:
            raise JsonRESTError("ValidationException", str(exc)) from exc
        except StandInNotFoundError as exc:
            raise JsonRESTError("ResourceNotFoundException", str(exc)) from exc
        # Timestamps are epoch seconds (JSON numbers): boto3 parses them as datetimes.
        return 200, {}, json.dumps(result)

    action.__name__ = method
    return action


def _access_key(headers: Any) -> str:
    """The signing key, where the engine knows no identity for it (no IAM enforcement)."""
    authorization = str(headers.get("Authorization") or "")
    return authorization.partition("Credential=")[2].partition("/")[0] or "anonymous"


def install(standin: RedshiftDataStandIn) -> None:
    """Make moto's redshift-data actions delegate to `standin` (replaces any earlier one)."""
    cls = RedshiftDataAPIServiceResponse
    if not hasattr(cls, _ORIGINALS_ATTR):
        setattr(cls, _ORIGINALS_ATTR, {name: cls.__dict__.get(name) for name in _ACTIONS})
    for name, (method, fields) in _ACTIONS.items():
        setattr(cls, name, _handler(standin, method, fields))


def uninstall() -> None:
    """Restore moto's own redshift-data methods (tests)."""
    cls = RedshiftDataAPIServiceResponse
    originals: dict[str, Any] | None = getattr(cls, _ORIGINALS_ATTR, None)
    if originals is None:
        return
    for name, original in originals.items():
        if original is None:
            delattr(cls, name)
        else:
            setattr(cls, name, original)
    delattr(cls, _ORIGINALS_ATTR)


@contextmanager
def installed(standin: RedshiftDataStandIn) -> Iterator[RedshiftDataStandIn]:
    """`install` for the duration of a block, then put back whatever was there before.

    Unlike `uninstall`, this keeps an outer installation (say, a session-wide engine)
    working after a test module used its own stand-in.
    """
    cls = RedshiftDataAPIServiceResponse
    previous = {name: cls.__dict__.get(name) for name in _ACTIONS}
    install(standin)
    try:
        yield standin
    finally:
        for name, method in previous.items():
            if method is None:
                delattr(cls, name)
            else:
                setattr(cls, name, method)
