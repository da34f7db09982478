"""The database user a Redshift Data API call runs as, named as the Data API names it.

"Authorizing access to the Amazon Redshift Data API"
(https://docs.aws.amazon.com/redshift/latest/mgmt/data-api-access.html) and the
ExecuteStatement reference
(https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_ExecuteStatement.html):

- `SecretArn`: the user stored in the secret (its JSON `username`);
- `DbUser` with a cluster: that user (GetClusterCredentials);
- temporary credentials without `DbUser` (a Serverless workgroup, or a cluster through
  GetClusterCredentialsWithIAM): the IAM identity is its own database user,
  `IAMR:<role name>` for a role, `IAM:<user name>` for a user.

The stand-in runs each statement as a PostgreSQL role of that name, so a missing grant
fails locally as it fails in Redshift (see `RedshiftDataStandIn`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# The identity that signed a Data API call (set by the moto wiring, `redshift_moto`).
CALLER = "_Caller"

_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:role/(?:[^/]+/)*(?P<name>[^/]+)$")
_ASSUMED_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:sts::\d{12}:assumed-role/(?P<name>[^/]+)/[^/]+$")
_USER_ARN = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:user/(?:[^/]+/)*(?P<name>[^/]+)$")
_SECRET_ARN = re.compile(
    r"^arn:aws[\w-]*:secretsmanager:(?P<region>[\w-]+):(?P<account>\d{12}):secret:.+$"
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class DatabaseUserError(ValueError):
    """The call names no database user the Data API would accept (a ValidationException)."""


def database_user(params: Mapping[str, Any]) -> str:
    """The database user of a Data API call (`ExecuteStatement`/`BatchExecuteStatement`).

    `params` are the call's fields plus `CALLER`, the ARN of the IAM identity that
    signed it (an assumed role reports its role ARN). Raises DatabaseUserError for a
    call the Data API refuses: an unreadable secret, a secret without a username,
    `DbUser` with a Serverless workgroup (the workgroup derives the user from the IAM
    identity; the reference documents DbUser for clusters only, and the stand-in takes
    the stricter reading), or no identity at all.
    """
    secret_arn = params.get("SecretArn")
    if secret_arn:
        return _secret_username(str(secret_arn))
    db_user = params.get("DbUser")
    if db_user:
        if params.get("WorkgroupName"):
            raise DatabaseUserError(
                "DbUser is only for a provisioned cluster (ClusterIdentifier); a Serverless "
                "workgroup derives the database user from the IAM identity (IAMR:<role> or "
                "IAM:<user>) or takes it from SecretArn"
            )
        return str(db_user)
    caller = params.get(CALLER)
    if not caller:
        raise DatabaseUserError(
            "no IAM identity signed the call: the Data API derives the database user from it"
        )
    return iam_database_user(str(caller))


def iam_database_user(principal_arn: str) -> str:
    """`IAMR:<role name>` for a role (or its session), `IAM:<user name>` for a user.

    Anything else (an access key the local engine knows no identity for: AWS itself
    would have refused the signature) is named `IAM:<what was given>`, so that it still
    gets a user of its own with no privileges.
    """
    for pattern in (_ROLE_ARN, _ASSUMED_ROLE_ARN):
        match = pattern.match(principal_arn)
        if match:
            return f"IAMR:{match['name']}"
    match = _USER_ARN.match(principal_arn)
    if match:
        return f"IAM:{match['name']}"
    return f"IAM:{principal_arn.rsplit('/', 1)[-1].rsplit(':', 1)[-1]}"


def role_name(user: str) -> str:
    """The PostgreSQL role of a database user: ASCII letters folded to lower case.

    Redshift folds names, quoted ones too ("IAMR:Loader" and "iamr:loader" are one
    user unless enable_case_sensitive_identifier is on), and the stand-in folds every
    quoted identifier in the SQL it runs (`fold_quoted_identifier`), so a GRANT ... TO
    "IAMR:Loader" reaches the role the Data API call runs as.
    """
    return user.translate(_ASCII_LOWER)


def _secret_username(secret_arn: str) -> str:
    """The `username` of a Secrets Manager secret in moto's in-process backend."""
    match = _SECRET_ARN.match(secret_arn)
    if not match:
        raise DatabaseUserError(f"SecretArn must be a Secrets Manager secret ARN: {secret_arn!r}")
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[match["account"]][match["region"]]
    try:
        # None: the current version (moto's annotations say str, its code takes None).
        value = backend.get_secret_value(secret_arn, None, None)  # type: ignore[arg-type]
    except Exception as exc:  # moto raises its own not-found/invalid-state errors
        raise DatabaseUserError(
            "Secrets Manager can't find the specified secret (SecretArn)"
        ) from exc
    try:
        username = json.loads(value.get("SecretString") or "").get("username")
    except (ValueError, AttributeError):
        username = None
    if not isinstance(username, str) or not username:
        raise DatabaseUserError(
            "the secret (SecretArn) must be a JSON SecretString with a 'username'"
        )
    return username
