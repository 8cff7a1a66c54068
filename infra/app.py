"""Builds the CDK app from its context: the control-plane stack, the cluster role stacks asked
for, and cdk-nag over all of them."""

from __future__ import annotations

import os
import sys

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from eks_jit.server.config import ConfigError
from infra.cluster_access_stack import EksJitClusterAccessStack
from infra.settings import Deployment, DeploySettings, context_of, load_deployment, safe_id
from infra.stack import EksJitStack

STACK_NAME = "EksJit"


def read_context(app: App) -> dict[str, object]:
    found = {key: app.node.try_get_context(key) for key in DeploySettings.model_fields}
    return context_of({k: v for k, v in found.items() if v is not None})


def build(app: App) -> Deployment:
    """Add every stack to ``app``; ConfigError when the context or the configuration is wrong."""
    deployment = load_deployment(read_context(app))
    env = Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    EksJitStack(
        app,
        STACK_NAME,
        deployment=deployment,
        env=env,
        description="eks-jit: just-in-time, self-expiring EKS access (control plane)",
    )
    for name in deployment.settings.cluster_access:
        cluster = deployment.catalog.clusters[name]
        EksJitClusterAccessStack(
            app,
            f"{STACK_NAME}ClusterAccess-{safe_id(name)}",
            deployment=deployment,
            cluster_name=name,
            env=Environment(account=cluster.account, region=cluster.region),
            description=f"eks-jit: the role the control plane assumes for cluster {name}",
        )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return deployment


def main() -> int:
    app = App()
    try:
        build(app)
    except ConfigError as exc:
        print(f"eks-jit: the configuration is not valid, nothing was synthesized:\n  {exc}", file=sys.stderr)
        return 1
    app.synth()
    return 0
