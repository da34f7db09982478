"""IAM for the Secrets Manager secrets the pipeline files name (MySQL and Redshift)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct

# A complete secret ARN ends in "-" and six random characters.
_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


def secret_resources(arns: Iterable[str]) -> list[str]:
    """IAM resources for the secrets named in pipeline files.

    A partial ARN (no random suffix) would never match the secret's real ARN, so it
    gets the documented `-??????` form: exactly six more characters, not a wildcard.
    """
    resources = set()
    for arn in arns:
        resources.add(arn if _SECRET_SUFFIX.search(arn) else f"{arn}-??????")
    return sorted(resources)


def secrets_key_statement(secrets: list[str]) -> iam.PolicyStatement:
    """kms:Decrypt of the named secrets' values under a customer managed key.

    Secrets Manager decrypts with the caller's permission; a secret under the account's
    `aws/secretsmanager` key needs nothing more, one under a customer managed key needs
    kms:Decrypt. The key is the secret owner's choice, so the statement names the
    secrets instead, as AWS's own AWSSecretsManagerClientReadOnlyAccess does: through
    Secrets Manager only, for these secrets' ARNs in the encryption context.
    """
    return iam.PolicyStatement(
        sid="DecryptTheSecrets",
        actions=["kms:Decrypt"],
        resources=["arn:aws:kms:*:*:key/*"],
        conditions={
            "StringLike": {
                "kms:ViaService": "secretsmanager.*.amazonaws.com",
                "kms:EncryptionContext:SecretARN": secrets,
            }
        },
    )


def acknowledge_secrets_key(policy: Construct) -> None:
    """cdk-nag's finding on `secrets_key_statement`'s key wildcard, with the reason."""
    Validations.of(policy).acknowledge(
        Acknowledgment(
            id="AwsSolutions-IAM5[Resource::arn:aws:kms:*:*:key/*]",
            reason="The KMS key of a secret is its owner's choice and unknown here; "
            "kms:Decrypt is limited to Secrets Manager (kms:ViaService) decrypting the "
            "named secrets (kms:EncryptionContext:SecretARN).",
        )
    )
