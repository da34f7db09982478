"""The types of the AWS clients the code passes around, for annotations only.

mypy reads them from boto3-stubs (requirements-dev.txt). Those stubs are not in the
Lambda layer (layers/requirements.txt), so nothing here imports them at runtime: under
`TYPE_CHECKING` the names are the stubs' classes, at runtime plain `object` (modules
annotate with `from __future__ import annotations`, so the names are never evaluated
anyway; `object` only keeps `typing.get_type_hints` and a plain import working).
tests/unit/test_clients.py checks that importing the code loads no stub package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = [
    "DynamoDBClient",
    "RedshiftDataClient",
    "S3Client",
    "S3Object",
    "SFNClient",
    "SecretsManagerClient",
    "StateTable",
]

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import Table as StateTable
    from mypy_boto3_redshift_data.client import (
        RedshiftDataAPIServiceClient as RedshiftDataClient,
    )
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import ObjectTypeDef as S3Object
    from mypy_boto3_secretsmanager.client import SecretsManagerClient
    from mypy_boto3_stepfunctions.client import SFNClient
else:
    DynamoDBClient = RedshiftDataClient = S3Client = SFNClient = object
    S3Object = SecretsManagerClient = StateTable = object
