"""The S3 bucket that holds the extracted Parquet files and the load manifests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct
from myshift.settings import MAP_RESULTS_DAYS, map_results_prefix

from infra.nag import logical_id


class Storage(Construct):
    """Data bucket (+ its server access log bucket when `access_logs` is on)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy,
        versioned: bool,
        access_logs: bool,
        data_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        common: dict[str, Any] = {
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "enforce_ssl": True,
            "minimum_tls_version": 1.2,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            "removal_policy": removal_policy,
            # A throw-away stage (removal_policy destroy) empties its buckets on stack
            # deletion: CloudFormation cannot delete a bucket that holds objects.
            "auto_delete_objects": removal_policy == RemovalPolicy.DESTROY,
        }
        self.access_logs_bucket: s3.Bucket | None = None
        if access_logs:
            # SSE-S3, not KMS: S3 log delivery cannot write to SSE-KMS buckets.
            self.access_logs_bucket = s3.Bucket(
                self,
                "AccessLogs",
                **common,
                lifecycle_rules=[
                    s3.LifecycleRule(
                        id="expire-access-logs",
                        expiration=Duration.days(90),
                        abort_incomplete_multipart_upload_after=Duration.days(1),
                    )
                ],
            )
            # cdk-nag's S1 exempts a bucket that receives other buckets' access logs.

        # SSE-S3 keeps the Redshift COPY role free of KMS grants; the bucket is private
        # and TLS-only either way.
        self.bucket = s3.Bucket(
            self,
            "Data",
            **common,
            versioned=versioned,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="data-bucket/" if access_logs else None,
            lifecycle_rules=[
                # A chunk upload killed mid-way must not be billed forever.
                s3.LifecycleRule(
                    id="abort-incomplete-multipart-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
                # Every run's Distributed Maps write a manifest (and results) here;
                # nothing reads them once the run ended.
                s3.LifecycleRule(
                    id="expire-map-results",
                    prefix=f"{map_results_prefix(data_prefix)}/",
                    expiration=Duration.days(MAP_RESULTS_DAYS),
                ),
                # A run's verification and reconciliation documents are removed when
                # it ends; a run that failed half-way leaves them.
                *(
                    s3.LifecycleRule(
                        id=f"expire{documents.replace('_', '-')}-documents",
                        prefix=f"{data_prefix}/{documents}/",
                        expiration=Duration.days(7),
                    )
                    for documents in ("_verify", "_reconcile")
                ),
                # `myshift doctor` writes a canary file and probe objects per check.
                s3.LifecycleRule(
                    id="expire-doctor-objects",
                    prefix=f"{data_prefix}/_doctor/",
                    expiration=Duration.days(1),
                ),
                # Retried chunks overwrite their own key; with versioning on, keep the
                # superseded copies only briefly.
                *(
                    [
                        s3.LifecycleRule(
                            id="expire-noncurrent-versions",
                            noncurrent_version_expiration=Duration.days(7),
                        )
                    ]
                    if versioned
                    else []
                ),
            ],
        )
        if not access_logs:
            Validations.of(self.bucket).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-S1",
                    reason="Server access logs switched off with the cdk.json context "
                    "'access_logs': false; CloudTrail data events are the alternative.",
                )
            )

    def copy_role(self, data_prefix: str) -> iam.Role:
        """The role Redshift's COPY assumes to read the extracted files: read on the data
        prefix only. Associate it with the workgroup or cluster (README, Deploy)."""
        role = iam.Role(
            self,
            "CopyRole",
            assumed_by=iam.ServicePrincipal("redshift.amazonaws.com"),
            description="myshift: Redshift COPY reads the extracted Parquet files",
        )
        for statement in self._read_statements(data_prefix):
            role.add_to_policy(statement)
        stack = Stack.of(self)
        bucket_id = logical_id(stack, self.bucket)
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{data_prefix}/*]",
                reason="COPY reads the manifests and Parquet files of every pipeline/table/run "
                "under the data prefix; their keys are not known at deploy time.",
            )
        )
        return role

    def grant_copy_read(self, role_arns: Iterable[str], data_prefix: str) -> None:
        """Let COPY roles that are not this stack's (pipeline `target.copy_role_arn`)
        read the data prefix, through the bucket policy.

        The principal is the role's account and the role is named in an
        `aws:PrincipalArn` condition: S3 refuses a bucket policy whose principal names a
        role that does not exist ("Invalid principal in policy"), and such a role may be
        created after this stack. An account principal delegates to that account's IAM,
        so the role's own policy must allow the same reads (README, Deploy).
        """
        by_account: dict[str, list[str]] = {}
        for arn in sorted(set(role_arns)):
            by_account.setdefault(arn.split(":")[4], []).append(arn)
        for account, arns in sorted(by_account.items()):
            for statement in self._read_statements(data_prefix):
                statement.add_principals(iam.AccountPrincipal(account))
                statement.add_condition("ArnEquals", {"aws:PrincipalArn": arns})
                self.bucket.add_to_resource_policy(statement)

    def _read_statements(self, data_prefix: str) -> list[iam.PolicyStatement]:
        """What COPY needs of the bucket: the objects under the data prefix, and listing
        that prefix (COPY from a prefix lists it)."""
        return [
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{data_prefix}/*")],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{data_prefix}/*"]}},
            ),
        ]
