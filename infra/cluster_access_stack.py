"""The role eks-jit assumes to manage access entries of a cluster in another account.

Deployed into the cluster's account (``cdk deploy -c cluster_access=<cluster>``), named as the
cluster's ``role_arn`` in the configuration says. It trusts only the control plane's function roles
that change access (api, revoke, sweeper, workflow; never notify), by ARN so it survives their
re-creation and needs no deploy order, only with a
role session name ``eks-jit-...`` (the adapter's ``eks-jit-<grant id>``: CloudTrail in this
account shows which grant caused each change), and may do exactly what the functions do on
access entries, on this one cluster.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from eks_jit.server.adapters.eks import session_name
from infra import permissions
from infra.functions import role_name
from infra.nag import acknowledge, wildcard_resource
from infra.settings import Deployment

FUNCTIONS = tuple(name for name, needs in permissions.BY_FUNCTION.items() if needs.reconciles)
# The union of what those functions do on EKS.
ALL_OF_THEM = permissions.Needs(reconciles=True, list_access_entries=True, reads_audit_log=True)


def control_plane_roles(prefix: str, account: str, region: str) -> list[str]:
    return [f"arn:{Aws.PARTITION}:iam::{account}:role/{role_name(prefix, f, region)}" for f in FUNCTIONS]


class EksJitClusterAccessStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, deployment: Deployment, cluster_name: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = deployment.settings
        cluster = deployment.catalog.clusters[cluster_name]
        assert cluster.role_arn is not None and settings.control_plane_account and settings.control_plane_region
        path_and_name = cluster.role_arn.split(":role/", 1)[1]
        path, _, name = path_and_name.rpartition("/")
        trusted = control_plane_roles(settings.prefix, settings.control_plane_account, settings.control_plane_region)
        self.role = iam.Role(
            self,
            "Role",
            role_name=name,
            path=f"/{path}/" if path else "/",
            description=f"eks-jit control plane in {settings.control_plane_account}: access entries of {cluster_name}",
            max_session_duration=Duration.hours(1),
            assumed_by=iam.AccountPrincipal(settings.control_plane_account).with_conditions(
                {
                    "ArnEquals": {"aws:PrincipalArn": trusted},
                    "StringLike": {"sts:RoleSessionName": session_name("") + "*"},
                }
            ),
        )
        only_this = {cluster_name: cluster}
        statements = [
            *permissions.eks_statements(deployment.catalog, only_this, ALL_OF_THEM),
            *permissions.audit_log_statements(only_this, ALL_OF_THEM),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        accepted = permissions.accepted_wildcards(deployment.catalog, only_this, None, ALL_OF_THEM)
        for resource, reason in accepted.items():
            acknowledge(self.role, wildcard_resource(resource), reason)
        CfnOutput(self, "RoleArn", value=self.role.role_arn)
