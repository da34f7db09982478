"""The S3 bucket that holds the extracted Parquet files and the load manifests."""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct
from myshift.settings import MAP_RESULTS_DAYS, map_results_prefix


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
        common = {
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

    def grant_copy_read(self, role_arns: Iterable[str]) -> None:
        """Let Redshift's COPY roles (pipeline `target.copy_role_arn`) read the bucket.

        A bucket policy statement, because those roles belong to the warehouse and are
        not managed by this stack.
        """
        for arn in sorted(set(role_arns)):
            self.bucket.grant_read(iam.ArnPrincipal(arn))
