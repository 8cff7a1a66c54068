"""Where eks-jit tells people and tools what happened: three SNS topics, each encrypted with its own
KMS key (so a publisher's key grant reaches exactly one topic), TLS only.

- alarms: CloudWatch alarms -> on-call (``alarm_email``). Nothing else publishes here.
- outcomes: every status change of a grant (``lambdas/logic/lifecycle.py`` ``commit``), a JSON
  message with ``event`` and ``cluster`` attributes, for other tools to subscribe to.
- approvals: one message per approver per request (``lambdas/adapters/sns.py`` ``ask``), carrying
  that approver's own signed link and an ``approver`` attribute. Every human principal with an
  ``email`` has an email subscription whose filter policy admits only messages for that principal's
  name, so an approver never receives another approver's link. Its topic policy (F7) refuses
  every other subscription: only the email addresses of those approvers, only over email, and only
  by CloudFormation's execution role of this account (the CDK bootstrap's ``cfn-exec-role``).
  Without it any principal of the account with ``sns:Subscribe`` could add an unfiltered
  subscription and receive every approver's link.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from eks_jit.server.domain.catalog import Principal
from infra.functions import env_var
from infra.permissions import EncryptedTopic, Topic

CLOUDWATCH = iam.ServicePrincipal("cloudwatch.amazonaws.com")
APPROVER_ATTRIBUTE = "approver"  # the message attribute lambdas/adapters/sns.py sets on each ask


def _key(scope: Construct, construct_id: str, description: str) -> kms.Key:
    return kms.Key(scope, construct_id, description=description, enable_key_rotation=True)


def _topic(scope: Construct, construct_id: str, *, name: str, display_name: str, key: kms.IKey) -> sns.Topic:
    return sns.Topic(scope, construct_id, topic_name=name, display_name=display_name, master_key=key, enforce_ssl=True)


def approvers_with_email(principals: Sequence[Principal]) -> list[Principal]:
    """The people approval requests are emailed to (agents never approve)."""
    return [p for p in principals if p.kind == "human" and p.email]


# The role CloudFormation creates this stack's resources with (DefaultStackSynthesizer, any qualifier).
CFN_EXECUTION_ROLE = f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/cdk-*-cfn-exec-role-{Aws.ACCOUNT_ID}-{Aws.REGION}"


def only_approvers_subscribe(topic_arn: str, approvers: Sequence[Principal]) -> list[iam.PolicyStatement]:
    """Deny statements for the approvals topic (threat model F7): nobody subscribes but
    CloudFormation deploying this stack, and only the approvers' email addresses, over email.
    (``sns:Endpoint`` and ``sns:Protocol`` are condition keys of ``sns:Subscribe``.)"""

    def deny(sid: str, conditions: dict[str, dict[str, object]] | None = None) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=sid,
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["sns:Subscribe"],
            resources=[topic_arn],
            conditions=conditions,
        )

    emails = sorted({a.email for a in approvers if a.email})
    if not emails:
        return [deny("NobodySubscribes")]
    return [
        deny("OnlyThisStackSubscribes", {"ArnNotLike": {"aws:PrincipalArn": CFN_EXECUTION_ROLE}}),
        deny("OnlyEmailSubscriptions", {"StringNotEquals": {"sns:Protocol": "email"}}),
        deny("OnlyApproversAddresses", {"StringNotEquals": {"sns:Endpoint": emails}}),
    ]


class Notifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        email: str | None,
        principals: Sequence[Principal],
    ) -> None:
        super().__init__(scope, construct_id)
        # Alarms (the ids "Key" and "Topic" predate the other two topics; kept so updates keep them).
        self.key = _key(self, "Key", "eks-jit alarms topic")
        # CloudWatch alarms publish to the encrypted topic: SNS asks KMS on their behalf.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishEncrypted",
                principals=[CLOUDWATCH],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        self.topic = _topic(self, "Topic", name=f"{prefix}-notifications", display_name="eks-jit", key=self.key)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[CLOUDWATCH],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        self.outcomes_key = _key(self, "OutcomesKey", "eks-jit grant outcomes topic")
        self.outcomes = _topic(
            self, "Outcomes", name=f"{prefix}-outcomes", display_name="eks-jit outcomes", key=self.outcomes_key
        )

        self.approvals_key = _key(self, "ApprovalsKey", "eks-jit approval requests topic")
        self.approvals = _topic(
            self, "Approvals", name=f"{prefix}-approvals", display_name="eks-jit approvals", key=self.approvals_key
        )
        for statement in only_approvers_subscribe(self.approvals.topic_arn, approvers_with_email(principals)):
            self.approvals.add_to_resource_policy(statement)
        for approver in approvers_with_email(principals):
            assert approver.email is not None
            self.approvals.add_subscription(
                subscriptions.EmailSubscription(
                    approver.email,
                    filter_policy={APPROVER_ATTRIBUTE: sns.SubscriptionFilter.string_filter(allowlist=[approver.name])},
                )
            )

        self.published = {
            Topic.APPROVALS: EncryptedTopic(self.approvals.topic_arn, self.approvals_key.key_arn),
            Topic.OUTCOMES: EncryptedTopic(self.outcomes.topic_arn, self.outcomes_key.key_arn),
        }
        # Both, wherever either is used: lambdas/bootstrap.py builds the notifier only with both.
        self.environment = {
            env_var("approvals_topic_arn"): self.approvals.topic_arn,
            env_var("outcomes_topic_arn"): self.outcomes.topic_arn,
        }
