"""Alarms to an SNS topic, and a small CloudWatch dashboard."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from myshift.handlers.observability import DEFAULT_NAMESPACE, SERVICE, VERIFICATION_MISMATCH

PERIOD = Duration.minutes(5)


class Monitoring(Construct):
    """Any failed/timed-out execution, any function error or throttle raises an alarm."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        state_machine: sfn.StateMachine,
        functions: Mapping[str, lambda_.Function],
        alarm_email: str | None,
        alarm_topic_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic: sns.ITopic
        if alarm_topic_arn:
            # The team's own topic; its policy must let CloudWatch publish (README).
            self.topic = sns.Topic.from_topic_arn(self, "Alarms", alarm_topic_arn)
        else:
            self.topic = self._own_topic(stage)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        notify = actions.SnsAction(self.topic)

        self.alarms: list[cloudwatch.Alarm] = []

        def alarm(construct_id: str, metric: cloudwatch.IMetric, description: str) -> None:
            created = cloudwatch.Alarm(
                self,
                construct_id,
                metric=metric,
                alarm_description=description,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # No executions or invocations is the normal quiet state, not a problem.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(notify)
            self.alarms.append(created)

        # A table's verification found rows missing, duplicated or differing in the
        # warehouse (myshift.verification; EMF from the Plan function, by service).
        mismatch = cloudwatch.Metric(
            namespace=DEFAULT_NAMESPACE,
            metric_name=VERIFICATION_MISMATCH,
            dimensions_map={"service": SERVICE},
            period=PERIOD,
            statistic="Sum",
        )
        alarm(
            "VerificationMismatch",
            mismatch,
            "A table's verification found rows missing, duplicated or differing in Redshift "
            "(see the run record: myshift runs show RUN)",
        )
        failed = state_machine.metric_failed(period=PERIOD, statistic="Sum")
        timed_out = state_machine.metric_timed_out(period=PERIOD, statistic="Sum")
        alarm("ExecutionsFailed", failed, "A myshift sync execution failed")
        alarm("ExecutionsTimedOut", timed_out, "A myshift sync execution timed out")
        for name, function in sorted(functions.items()):
            prefix = "".join(part.capitalize() for part in name.split("_"))
            alarm(
                f"{prefix}Errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                f"The myshift {name} function raised errors",
            )
            alarm(
                f"{prefix}Throttles",
                function.metric_throttles(period=PERIOD, statistic="Sum"),
                f"The myshift {name} function was throttled",
            )

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.days(1),
            widgets=[
                [
                    cloudwatch.GraphWidget(
                        title="Sync executions",
                        left=[
                            state_machine.metric_started(period=PERIOD, statistic="Sum"),
                            state_machine.metric_succeeded(period=PERIOD, statistic="Sum"),
                            failed,
                            timed_out,
                        ],
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title="Execution time (ms)",
                        left=[state_machine.metric_time(period=PERIOD, statistic="p90")],
                        width=12,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Function errors",
                        left=[
                            fn.metric_errors(period=PERIOD, statistic="Sum", label=name)
                            for name, fn in sorted(functions.items())
                        ],
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title="Function duration p90 (ms)",
                        left=[
                            fn.metric_duration(period=PERIOD, statistic="p90", label=name)
                            for name, fn in sorted(functions.items())
                        ],
                        width=12,
                    ),
                ],
                [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24)],
            ],
        )

    def _own_topic(self, stage: str) -> sns.Topic:
        """The stack's alarm topic, with a policy that lets this account's alarms publish.

        No KMS key on purpose: CloudWatch alarm actions cannot publish to a topic
        encrypted with the AWS-managed SNS key, and notifications carry only alarm
        names and states. enforce_ssl keeps publishers on TLS (cdk-nag SNS3); it
        writes a topic policy, and a topic policy replaces SNS's default one, so the
        CloudWatch service principal must be allowed explicitly, scoped to this
        account's alarms (aws:SourceAccount, aws:SourceArn: the confused-deputy guard of
        the SNS developer guide's access-policy examples).
        """
        topic = sns.Topic(self, "Alarms", display_name=f"myshift {stage} alarms", enforce_ssl=True)
        stack = Stack.of(self)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        return topic
