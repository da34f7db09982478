"""The warehouse side of the stack: the Redshift Data API policy of the load function,
the database user its role becomes, and the COPY roles the pipeline files name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aws_cdk import Acknowledgment, ArnFormat, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct
from myshift.config import PipelineConfig

from infra.nag import nag_arn
from infra.secrets import acknowledge_secrets_key, secret_resources, secrets_key_statement


def warehouse_role_name(stack_name: str) -> str:
    """The role that runs every Redshift statement (the load function's): `<stack>-load`,
    in lower case.

    Redshift folds identifiers to lower case, quoted ones too (unless
    enable_case_sensitive_identifier is set), so a DBA's `GRANT ... TO "IAMR:Myshift-load"`
    names `iamr:myshift-load`; AWS does not document whether the Data API folds the role
    name when it derives the user. A lower-case role name is the same user either way.
    """
    return f"{stack_name}-load".lower()


def warehouse_database_user(stack_name: str) -> str:
    """The database user the Data API maps the load role to, with temporary credentials
    (Redshift Serverless, or a cluster without db_user): `IAMR:<role name>`."""
    return f"IAMR:{warehouse_role_name(stack_name)}"


class WarehouseAccessPolicy(Construct):
    """Redshift Data API access, scoped to the warehouses the pipelines name."""

    def __init__(
        self, scope: Construct, construct_id: str, *, pipelines: Mapping[str, PipelineConfig]
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        targets = [p.target for p in pipelines.values()]
        statements: list[iam.PolicyStatement] = []
        acknowledgments: list[Acknowledgment] = []

        def cluster_arn(resource: str, name: str) -> str:
            return stack.format_arn(
                service="redshift",
                resource=resource,
                resource_name=name,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )

        # Redshift Serverless ARNs carry the workgroup *id* while the pipeline files
        # name the workgroup: this account's and region's workgroups is the narrowest
        # resource a name allows.
        workgroups = sorted({t.workgroup for t in targets if t.workgroup})
        clusters = sorted({t.cluster_identifier for t in targets if t.cluster_identifier})
        workgroup_arn = stack.format_arn(
            service="redshift-serverless",
            resource="workgroup",
            resource_name="*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        execute_resources = [cluster_arn("cluster", c) for c in clusters]
        if workgroups:
            execute_resources.append(workgroup_arn)
        if not execute_resources:
            execute_resources = ["*"]
        statements.append(
            iam.PolicyStatement(
                sid="SubmitStatements",
                actions=["redshift-data:BatchExecuteStatement", "redshift-data:ExecuteStatement"],
                resources=execute_resources,
            )
        )
        # Describe/Get/Cancel take a statement id, not a resource: IAM cannot scope them.
        statements.append(
            iam.PolicyStatement(
                sid="FollowStatements",
                actions=[
                    "redshift-data:DescribeStatement",
                    "redshift-data:GetStatementResult",
                    "redshift-data:CancelStatement",
                ],
                resources=["*"],
            )
        )
        acknowledgments.append(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="redshift-data Describe/GetStatementResult/CancelStatement support no "
                "resource-level permissions (they take a statement id); only the load "
                "function, which runs the statements, follows them."
                + (
                    ""
                    if execute_resources != ["*"]
                    else " Execute/BatchExecuteStatement are also '*': no pipeline file names "
                    "a workgroup or cluster_identifier (a local-only target); name one to "
                    "scope them."
                ),
            )
        )
        if workgroups:
            acknowledgments.append(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{nag_arn(stack, workgroup_arn)}]",
                    reason="Redshift Serverless workgroup ARNs end in the workgroup id, which "
                    f"the pipeline files do not know (they name {', '.join(workgroups)}); "
                    "scoped to this account and region.",
                )
            )

        # Temporary credentials, when a target names no secret.
        if any(t.workgroup and not t.secret_arn for t in targets):
            statements.append(
                iam.PolicyStatement(
                    sid="ServerlessCredentials",
                    actions=["redshift-serverless:GetCredentials"],
                    resources=[workgroup_arn],
                )
            )
        for target in targets:
            if not target.cluster_identifier or target.secret_arn:
                continue
            cluster = target.cluster_identifier
            dbname = cluster_arn("dbname", f"{cluster}/{target.database}")
            if target.db_user:
                statements.append(
                    iam.PolicyStatement(
                        actions=["redshift:GetClusterCredentials"],
                        resources=[cluster_arn("dbuser", f"{cluster}/{target.db_user}"), dbname],
                    )
                )
            else:
                # No DbUser: the Data API maps the IAM role to a database user.
                statements.append(
                    iam.PolicyStatement(
                        actions=["redshift:GetClusterCredentialsWithIAM"], resources=[dbname]
                    )
                )
        target_secrets = secret_resources(t.secret_arn for t in targets if t.secret_arn)
        if target_secrets:
            statements.append(
                iam.PolicyStatement(
                    sid="WarehouseSecrets",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=target_secrets,
                )
            )
            statements.append(secrets_key_statement(target_secrets))

        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="myshift: Redshift Data API for the pipelines' warehouses",
            statements=statements,
        )
        Validations.of(self.policy).acknowledge(*acknowledgments)
        if target_secrets:
            acknowledge_secrets_key(self.policy)


def pipeline_copy_roles(pipelines: Iterable[PipelineConfig]) -> list[str]:
    """The Redshift COPY roles named in the pipeline files."""
    return sorted({p.target.copy_role_arn for p in pipelines if p.target.copy_role_arn})
