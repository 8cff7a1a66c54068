"""The eks-jit control plane: a thin stack composing one construct per capability."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from constructs import Construct

from infra import permissions
from infra.constructs.api import Api
from infra.constructs.monitoring import Monitoring, Watched
from infra.constructs.notifications import Notifications
from infra.constructs.revocation import Revocation
from infra.constructs.storage import Storage
from infra.functions import FunctionFactory, Made
from infra.nag import acknowledge, policy_of, wildcard_resource
from infra.settings import Deployment


class EksJitStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings, catalog = deployment.settings, deployment.catalog
        notifications = Notifications(self, "Notifications", prefix=settings.prefix, email=settings.alarm_email)
        storage = Storage(self, "Storage")
        factory = FunctionFactory(self, deployment, table_name=storage.table.table_name)
        revocation = Revocation(self, "Revocation", deployment=deployment, factory=factory)
        api = Api(self, "Api", deployment=deployment, factory=factory, environment=revocation.scheduling_env)

        # Least privilege per function: infra/permissions.py says what each needs and why.
        local_clusters = permissions.local_clusters(catalog)
        made: tuple[tuple[Made, permissions.Needs], ...] = (
            (api.handler, permissions.API),
            (revocation.revoke, permissions.REVOKE),
            (revocation.sweeper, permissions.SWEEPER),
        )
        for function, needs in made:
            permissions.grant(
                function.role,
                [
                    *permissions.table_statements(storage.table.table_arn, needs),
                    *permissions.scheduling_statements(
                        settings.schedule_group, revocation.scheduler_role.role_arn, needs
                    ),
                    *permissions.eks_statements(catalog, local_clusters, needs),
                    *permissions.assume_role_statements(catalog),
                ],
            )
            for resource, reason in permissions.accepted_wildcards(local_clusters, settings.schedule_group).items():
                acknowledge(policy_of(function.role), wildcard_resource(resource), reason)

        Monitoring(
            self,
            "Monitoring",
            prefix=settings.prefix,
            topic=notifications.topic,
            watched=Watched(
                api=api.handler.function,
                revoke=revocation.revoke.function,
                sweeper=revocation.sweeper.function,
                stage=api.stage,
                schedule_dlq=revocation.schedule_dlq,
                failures=revocation.failures,
                sweeper_rate=Duration.minutes(settings.sweeper_rate_minutes),
            ),
        )
        CfnOutput(self, "ApiUrl", value=api.stage.url_for_path("/v1/grants"), description="POST here to ask")
        CfnOutput(self, "TableName", value=storage.table.table_name)
        CfnOutput(self, "NotificationsTopic", value=notifications.topic.topic_arn)
