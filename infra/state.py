"""The DynamoDB table holding watermarks, locks, runs, schemas and file items."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

# Attribute names the domain code uses (myshift.state); the key schema is fixed.
PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expires_at"
_STRING = dynamodb.AttributeType.STRING


class StateTable(Construct):
    """One table, `pk` + `sk` strings, on-demand, PITR, TTL on `expires_at`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=_STRING),
            sort_key=dynamodb.Attribute(name=SORT_KEY, type=_STRING),
            # Runs are minutes apart and bursty: on-demand costs nothing while idle.
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            # Watermarks are the one thing a bad deploy or a bug must not lose.
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # Lock leases and old run/file items expire on their own.
            time_to_live_attribute=TTL_ATTRIBUTE,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # RETAIN_ON_UPDATE_OR_DELETE keeps it through a stack deletion, yet a failed
            # first create deletes it. No deletion protection: it would fail that
            # rollback's delete and leave the stack in ROLLBACK_FAILED.
            removal_policy=removal_policy,
        )
