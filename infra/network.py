"""The network the source-reading functions run in: the pipelines' VPC placement.

MySQL is private, so plan and extract run in the subnets the pipeline files name;
the subnets and security groups are imported, never managed here.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, ArnFormat, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from myshift.config import PipelineConfig, VpcConfig

from infra.nag import nag_arn

# Where a pipeline's functions run: (subnets, security groups, (create endpoints, vpc id,
# route tables...)).
Placement = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def pipelines_vpc(pipelines: Mapping[str, PipelineConfig]) -> VpcConfig | None:
    """The one VPC placement of the pipelines that give one (None: no VPC).

    A Lambda function sits in one set of subnets, and plan/extract serve every
    pipeline of the stack: pipelines in different VPCs need separate stacks (stages,
    each with its own `pipelines/<stage>/`). A pipeline without `vpc` is reached from
    the others' subnets (or, when none has one, from outside any VPC).
    """
    placements: dict[Placement, list[str]] = {}
    configs: dict[Placement, VpcConfig] = {}
    for name, pipeline in sorted(pipelines.items()):
        if pipeline.vpc is not None:
            vpc = pipeline.vpc
            key = (
                tuple(sorted(vpc.subnet_ids)),
                tuple(sorted(vpc.security_group_ids)),
                (str(vpc.create_endpoints), vpc.vpc_id or "", *sorted(vpc.route_table_ids)),
            )
            placements.setdefault(key, []).append(name)
            configs.setdefault(key, vpc)
    if len(placements) > 1:
        groups = "; ".join(
            f"{', '.join(names)}: subnets {', '.join(subnets)}, security groups {', '.join(sgs)}"
            + (f", endpoints in {endpoints[1]}" if endpoints[0] == "True" else "")
            for (subnets, sgs, endpoints), names in sorted(placements.items(), key=lambda kv: kv[1])
        )
        raise ValueError(
            "pipelines name different vpc settings, but one stack places its functions in "
            f"one VPC ({groups}). Give them the same vpc block, or deploy them as separate "
            "stages (pipelines/<stage>/*.yml, -c stage=<stage>)."
        )
    if not placements:
        return None
    key = next(iter(placements))
    return configs[key].model_copy(
        update={"subnet_ids": list(key[0]), "security_group_ids": list(key[1])}
    )


class SourceNetwork(Construct):
    """The pipelines' subnets and security groups (imported, not managed here) and the
    network-interface permissions a function in them needs.

    The roles are our own (no AWSLambdaBasicExecutionRole), so CDK does not add
    AWSLambdaVPCAccessExecutionRole: this policy is its scoped equivalent (its log
    permissions are already granted per log group).
    """

    def __init__(self, scope: Construct, construct_id: str, *, vpc: VpcConfig) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.subnets = [
            ec2.Subnet.from_subnet_id(self, f"Subnet{i}", subnet_id)
            for i, subnet_id in enumerate(vpc.subnet_ids)
        ]
        self.security_groups = [
            ec2.SecurityGroup.from_security_group_id(self, f"SecurityGroup{i}", group_id)
            for i, group_id in enumerate(vpc.security_group_ids)
        ]

        def ec2_arn(resource: str, name: str) -> str:
            return stack.format_arn(
                service="ec2",
                resource=resource,
                resource_name=name,
                arn_format=ArnFormat.SLASH_RESOURCE_NAME,
            )

        interfaces = ec2_arn("network-interface", "*")
        self.policy = iam.ManagedPolicy(
            self,
            "NetworkInterfaces",
            description="myshift: network interfaces in the pipelines' subnets (VPC access)",
            statements=[
                iam.PolicyStatement(
                    sid="CreateInterfacesInThePipelineSubnets",
                    actions=["ec2:CreateNetworkInterface"],
                    resources=[
                        *(ec2_arn("subnet", s.subnet_id) for s in self.subnets),
                        *(
                            ec2_arn("security-group", g.security_group_id)
                            for g in self.security_groups
                        ),
                        interfaces,
                    ],
                ),
                iam.PolicyStatement(
                    sid="ManageInterfaces",
                    actions=[
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=[interfaces],
                ),
                iam.PolicyStatement(
                    sid="DescribeNetwork",
                    actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
                    resources=["*"],
                ),
            ],
        )
        Validations.of(self.policy).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{nag_arn(stack, interfaces)}]",
                reason="Lambda creates and deletes the functions' network interfaces; their "
                "ids are not known at deploy time. Creation is limited to the pipeline "
                "file's subnets and security groups; this account and region only.",
            ),
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets support no "
                "resource-level permissions (Lambda's VPC access needs both).",
            ),
        )

        if vpc.create_endpoints:
            self._endpoints(vpc)

    def _endpoints(self, vpc: VpcConfig) -> None:
        """What the functions in the subnets reach without a NAT: S3 and DynamoDB
        (gateway endpoints on the subnets' route tables) and Secrets Manager (an
        interface endpoint with private DNS, so the SDK's usual hostname resolves to
        it; HTTPS from the functions' security groups only)."""
        stack = Stack.of(self)
        assert vpc.vpc_id is not None

        def service(name: str) -> str:
            return f"com.amazonaws.{stack.region}.{name}"

        for name in ("s3", "dynamodb"):
            ec2.CfnVPCEndpoint(
                self,
                f"{name.capitalize()}Endpoint",
                vpc_id=vpc.vpc_id,
                service_name=service(name),
                vpc_endpoint_type="Gateway",
                route_table_ids=list(vpc.route_table_ids),
            )
        group = ec2.CfnSecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc_id=vpc.vpc_id,
            group_description="myshift: HTTPS to the Secrets Manager endpoint from the functions",
            security_group_ingress=[
                ec2.CfnSecurityGroup.IngressProperty(
                    ip_protocol="tcp",
                    from_port=443,
                    to_port=443,
                    source_security_group_id=g.security_group_id,
                    description="myshift functions",
                )
                for g in self.security_groups
            ],
        )
        ec2.CfnVPCEndpoint(
            self,
            "SecretsManagerEndpoint",
            vpc_id=vpc.vpc_id,
            service_name=service("secretsmanager"),
            vpc_endpoint_type="Interface",
            subnet_ids=[s.subnet_id for s in self.subnets],
            security_group_ids=[group.attr_group_id],
            private_dns_enabled=True,
        )

    def place(self, function: lambda_.Function, role: iam.Role) -> None:
        """Run `function` in the subnets with the security groups; grant the ENI policy.

        Set on the CloudFormation resource: the L2 `vpc=` wants an IVpc (a VPC id the
        pipeline file does not give) only to select subnets we already name.
        """
        role.add_managed_policy(self.policy)
        cfn = function.node.default_child
        assert isinstance(cfn, lambda_.CfnFunction)
        cfn.vpc_config = lambda_.CfnFunction.VpcConfigProperty(
            subnet_ids=[s.subnet_id for s in self.subnets],
            security_group_ids=[g.security_group_id for g in self.security_groups],
        )
