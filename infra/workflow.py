"""The state machines: `statemachines/sync.asl.json` (the sync),
`statemachines/doctor.asl.json` (`myshift doctor`) and `statemachines/reconcile.asl.json`
(`myshift reconcile`).

The same files run locally (moto) with the same substitutions; here the `${...}`
placeholders become the deployed function ARNs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Acknowledgment, ArnFormat, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from myshift.settings import map_results_prefix

from infra.nag import logical_id, nag_arn

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def definition_placeholders(path: Path) -> set[str]:
    """Every `${Name}` in an ASL file."""
    return set(PLACEHOLDER.findall(path.read_text(encoding="utf-8")))


class Workflow(Construct):
    """State machine + its log group; invokes exactly the workflow functions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definition_file: Path,
        functions: Mapping[str, lambda_.IFunction],
        bucket: s3.IBucket,
        data_prefix: str,
        timeout: Duration,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        log_group_name: str,
        name: str = "sync",
        distributed_map: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        substitutions = {
            f"{prefix}FunctionArn": function.function_arn for prefix, function in functions.items()
        }
        if distributed_map:
            substitutions["DataBucketName"] = bucket.bucket_name
            # Static: moto evaluates a dynamic ResultWriter prefix against the results.
            substitutions["MapResultsPrefix"] = map_results_prefix(data_prefix)
        missing = definition_placeholders(definition_file) - set(substitutions)
        if missing:
            # A placeholder left in would deploy and fail at the first execution.
            raise ValueError(
                f"{definition_file} uses ${{{', '.join(sorted(missing))}}} "
                "which the stack does not provide"
            )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            retention=log_retention,
            removal_policy=removal_policy,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            # Named, so that the Distributed Map's child-execution permission can name it.
            state_machine_name=f"{Stack.of(self).stack_name}-{name}",
            definition_body=sfn.DefinitionBody.from_file(str(definition_file)),
            definition_substitutions=substitutions,
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                # Payloads carry pipeline/table names, keys and counts, never secrets.
                include_execution_data=True,
            ),
        )
        # The ASL invokes each function by its unqualified ARN: no `:*` versions.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="InvokeWorkflowFunctions",
                actions=["lambda:InvokeFunction"],
                resources=[fn.function_arn for fn in functions.values()],
            )
        )
        if distributed_map:
            self._grant_distributed_map(bucket, data_prefix)
        Validations.of(self.state_machine).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="All '*' resources here lack resource-level permissions: X-Ray "
                "tracing, and the CloudWatch Logs delivery APIs Step Functions logging "
                "uses (CreateLogDelivery, PutResourcePolicy, ...).",
            )
        )

    def _grant_distributed_map(self, bucket: s3.IBucket, data_prefix: str) -> None:
        # Distributed Maps: the chunk one reads a large plan from the bucket
        # (ItemReader); both write their results there (ResultWriter, which also uses
        # multipart uploads: the actions CDK's own ResultWriter grants); each runs
        # child executions of this state machine.
        stack = Stack.of(self)
        data_objects = bucket.arn_for_objects(f"{data_prefix}/*")
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="DistributedMapPlanAndResults",
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload",
                ],
                resources=[data_objects],
            )
        )
        children = [
            stack.format_arn(
                service="states",
                resource=kind,
                resource_name=f"{stack.stack_name}-*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for kind in ("stateMachine", "execution")
        ]
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="DistributedMapChildren",
                actions=[
                    "states:StartExecution",
                    "states:DescribeExecution",
                    "states:StopExecution",
                ],
                resources=children,
            )
        )
        bucket_id = logical_id(stack, bucket)
        Validations.of(self.state_machine).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{data_prefix}/*]",
                reason="The Distributed Map reads a run's chunk plan and writes its results "
                "under the data prefix; keys are per pipeline/table/run.",
            ),
            *(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{nag_arn(stack, arn)}]",
                    reason="Distributed Map child executions of this stack's own state "
                    "machine; its name is generated, so it is matched by the stack prefix.",
                )
                for arn in children
            ),
        )
