"""The eks-jit control plane: a thin stack composing one construct per capability."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Fn, Stack
from constructs import Construct

from infra import permissions
from infra.constructs.api import Api
from infra.constructs.approvals import Approvals
from infra.constructs.gateway import Gateway
from infra.constructs.monitoring import Monitoring, Watched
from infra.constructs.notifications import Notifications
from infra.constructs.revocation import Revocation
from infra.constructs.storage import Storage
from infra.functions import FunctionFactory, Made, env_var
from infra.nag import acknowledge, wildcard_resource
from infra.settings import Deployment


class EksJitStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings, catalog = deployment.settings, deployment.catalog
        notifications = Notifications(
            self, "Notifications", prefix=settings.prefix, email=settings.alarm_email, principals=catalog.principals
        )
        storage = Storage(self, "Storage")
        factory = FunctionFactory(self, deployment, table_name=storage.table.table_name)
        revocation = Revocation(
            self, "Revocation", deployment=deployment, factory=factory, messaging_env=notifications.environment
        )
        approvals = Approvals(
            self,
            "Approvals",
            deployment=deployment,
            factory=factory,
            scheduling_env=revocation.scheduling_env,
            messaging_env=notifications.environment,
        )
        # The data-path gateway, only for a configuration with a gateway cluster: the api function then
        # answers gateway grants with its URL as their connection.
        gateway = (
            Gateway(self, "Gateway", deployment=deployment, factory=factory, table_arn=storage.table.table_arn)
            if permissions.gateway_clusters(catalog)
            else None
        )
        api = Api(
            self,
            "Api",
            deployment=deployment,
            factory=factory,
            environment={
                **revocation.scheduling_env,
                **notifications.environment,
                **approvals.api_environment,
                **(gateway.api_environment if gateway else {}),
            },
        )
        if gateway:
            # One held command (POST /v1/holds): the gateway calls the API at its stage URL with its own
            # role, and the API takes that route from that role only.
            gateway.function.add_environment(env_var("api_url"), api.public_url)
            api.handler.function.add_environment(env_var("gateway_role_arn"), gateway.handler.role.role_arn)
            permissions.grant(gateway.handler.role, permissions.hold_statements(api.invoke_arn("POST", "/v1/holds")))
        # Approval links point at the API (or the operator's custom domain in front of it).
        approvals.notify.function.add_environment(env_var("public_url"), settings.public_url or api.public_url)

        # Least privilege per function: infra/permissions.py says what each needs and why.
        targets = permissions.Targets(
            table_arn=storage.table.table_arn,
            schedule_group=settings.schedule_group,
            scheduler_role_arn=revocation.scheduler_role.role_arn,
            state_machine=approvals.name,
            topics=notifications.published,
            link_key_secret=approvals.link_key.secret_arn,
            slack_secret=approvals.slack_secret.secret_arn if approvals.slack_secret else None,
        )
        local_clusters = permissions.local_clusters(catalog)
        made: tuple[tuple[Made, permissions.Needs], ...] = (
            (api.handler, permissions.API),
            (revocation.revoke, permissions.REVOKE),
            (revocation.sweeper, permissions.SWEEPER),
            (approvals.notify, permissions.NOTIFY),
            (approvals.workflow, permissions.WORKFLOW),
        )
        for function, needs in made:
            permissions.grant(function.role, permissions.statements_for(needs, targets, catalog))
            accepted = permissions.accepted_wildcards(
                catalog, local_clusters, settings.schedule_group, needs, approvals.name
            )
            # On the role: its default policy and the managed overflow policies CDK splits off
            # when the per-principal entry ARNs pass the inline policy's size limit.
            for resource, reason in accepted.items():
                acknowledge(function.role, wildcard_resource(resource), reason)

        Monitoring(
            self,
            "Monitoring",
            prefix=settings.prefix,
            topic=notifications.topic,
            watched=Watched(
                api=api.handler.function,
                revoke=revocation.revoke.function,
                sweeper=revocation.sweeper.function,
                notify=approvals.notify.function,
                workflow=approvals.workflow.function,
                approvals=approvals.state_machine,
                stage=api.stage,
                schedule_dlq=revocation.schedule_dlq,
                failures=revocation.failures,
                sweeper_rate=Duration.minutes(settings.sweeper_rate_minutes),
                gateway=gateway.function if gateway else None,
            ),
        )
        CfnOutput(
            self,
            "ApiUrl",
            value=api.stage.url_for_path("/"),
            description="the endpoint for eks-jit --endpoint, $EKS_JIT_ENDPOINT and eks_jit.client.Client",
        )
        CfnOutput(self, "TableName", value=storage.table.table_name)
        CfnOutput(self, "NotificationsTopic", value=notifications.topic.topic_arn, description="alarms")
        CfnOutput(self, "OutcomesTopic", value=notifications.outcomes.topic_arn, description="every status change")
        CfnOutput(self, "ApprovalsTopic", value=notifications.approvals.topic_arn)
        CfnOutput(self, "ApprovalStateMachine", value=approvals.state_machine.state_machine_arn)
        CfnOutput(self, "LinkKeySecret", value=approvals.link_key.secret_arn)
        # Log group names carry this stack instance (infra/functions.py, log_group_name): say them.
        CfnOutput(
            self,
            "LogGroups",
            value=Fn.join(",", [m.log_group.log_group_name for m, _ in made] + [approvals.log_group.log_group_name]),
            description="the functions' log groups (api, revoke, sweeper, notify, workflow), then the workflow's",
        )
        CfnOutput(self, "ApiAccessLogGroup", value=api.access_logs.log_group_name)
        if gateway is not None:
            CfnOutput(
                self,
                "GatewayUrl",
                value=gateway.endpoint,
                description="the data-path gateway: gateway clusters' kubeconfigs point at <this>/clusters/<name>",
            )
            CfnOutput(
                self, "GatewayRoleArn", value=gateway.handler.role.role_arn, description="its access entries' principal"
            )
            CfnOutput(self, "GatewayLogGroup", value=gateway.handler.log_group.log_group_name)
        if approvals.slack_secret is not None:
            CfnOutput(
                self,
                "SlackSecret",
                value=approvals.slack_secret.secret_arn,
                description='put-secret-value {"bot_token": ..., "signing_secret": ...}',
            )
            CfnOutput(
                self,
                "SlackInteractionsUrl",
                value=api.stage.url_for_path("/v1/slack/interactions"),
                description="the Slack app's Interactivity request URL",
            )
