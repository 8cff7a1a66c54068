"""Revocation: the one-time schedules (precise), the revoke function they invoke, and the sweeper
on a fixed rate (the backstop when a schedule or a Lambda is lost).

- A dedicated schedule group; schedules are created by the functions, named ``eks-jit-<grant>``.
- The revoke and sweeper functions end grants, so they announce it on the outcomes topic
  (``messaging_env``: both topic ARNs, which is what builds the functions' SNS notifier).
- The Scheduler execution role: assumable only by ``scheduler.amazonaws.com`` on behalf of this
  account, and able only to invoke the revoke function and dead-letter to its queue.
- Two standard SQS queues (SSE, TLS only): the schedules' dead-letter queue (Scheduler could not
  invoke the revoke function) and the on-failure destination of the revoke and sweeper functions'
  asynchronous invocations (they ran and failed after their retries). Both are alarmed.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.functions import FunctionFactory, Made, env_var, function_name
from infra.nag import acknowledge
from infra.settings import Deployment

# The revoke path may wait up to Timing.max_wait (150 s) for expires_at, then reconciles under a
# lease (up to ~10 s to acquire) with SDK retries: five minutes leaves room for all of it.
REVOKE_TIMEOUT = Duration.minutes(5)
SWEEPER_TIMEOUT = Duration.minutes(5)  # overlapping runs are safe: leases and conditional writes
DLQ_REASON = (
    "This queue is itself a dead-letter destination (of {what}); a DLQ of a DLQ would only move the "
    "same messages again. Its depth is alarmed and messages are kept 14 days."
)


def _queue(scope: Construct, construct_id: str) -> sqs.Queue:
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )


class Revocation(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        factory: FunctionFactory,
        messaging_env: dict[str, str],
    ):
        super().__init__(scope, construct_id)
        settings = deployment.settings
        self.group = scheduler.ScheduleGroup(
            self,
            "Group",
            schedule_group_name=settings.schedule_group,
            removal_policy=RemovalPolicy.DESTROY,  # its schedules only target this stack's function
        )
        self.schedule_dlq = _queue(self, "ScheduleDeadLetters")
        acknowledge(self.schedule_dlq, "AwsSolutions-SQS3", DLQ_REASON.format(what="the revocation schedules"))
        self.failures = _queue(self, "AsyncFailures")
        acknowledge(
            self.failures,
            "AwsSolutions-SQS3",
            DLQ_REASON.format(what="the revoke and sweeper functions' asynchronous invocations"),
        )

        revoke_name = function_name(settings.prefix, "revoke")
        revoke_arn = f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{Aws.ACCOUNT_ID}:function:{revoke_name}"
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            description="EventBridge Scheduler: invoke the eks-jit revoke function, nothing else",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
        )
        self.scheduling_env = {
            env_var("schedule_group"): self.group.schedule_group_name,
            env_var("revoke_target_arn"): revoke_arn,
            env_var("scheduler_role_arn"): self.scheduler_role.role_arn,
            env_var("revoke_dlq_arn"): self.schedule_dlq.queue_arn,
        }
        environment = {**self.scheduling_env, **messaging_env}

        on_failure = destinations.SqsDestination(self.failures)
        self.revoke: Made = factory.make(
            self,
            "Revoke",
            name="revoke",
            handler="eks_jit.server.handlers.revoke.handler",
            description="Target of the one-time revocation schedules: waits for expires_at, expires, reconciles",
            timeout=REVOKE_TIMEOUT,
            environment=environment,
            retry_attempts=2,
            max_event_age=Duration.hours(1),
            on_failure=on_failure,
        )
        self.sweeper: Made = factory.make(
            self,
            "Sweeper",
            name="sweeper",
            handler="eks_jit.server.handlers.sweeper.handler",
            description="Backstop: expires overdue grants, finishes activations, reconciles every managed entry",
            timeout=SWEEPER_TIMEOUT,
            environment=environment,
            retry_attempts=0,  # the next run is the retry
            on_failure=on_failure,
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeRevokeFunction",
                actions=["lambda:InvokeFunction"],
                resources=[self.revoke.function.function_arn],
            )
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(
                sid="DeadLetterUndeliveredRevocations",
                actions=["sqs:SendMessage"],
                resources=[self.schedule_dlq.queue_arn],
            )
        )
        self.sweeper_rule = events.Rule(
            self,
            "SweeperSchedule",
            description="Runs the eks-jit sweeper",
            schedule=events.Schedule.rate(Duration.minutes(settings.sweeper_rate_minutes)),
            targets=[
                targets.LambdaFunction(
                    self.sweeper.function,
                    dead_letter_queue=self.failures,
                    max_event_age=Duration.minutes(settings.sweeper_rate_minutes * 5),
                    retry_attempts=2,
                )
            ],
        )
