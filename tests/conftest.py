"""Fixtures: AWS under moto (with the EKS access-entry emulation), the example configuration,
and the real adapters wired into the logic's Deps with a controllable clock."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "EksJit")
os.environ.setdefault("POWERTOOLS_DEV", "false")

from moto import mock_aws

from eks_jit.emulation import dynamodb_atomic, eks_access_entries
from eks_jit.local.resources import create_resources
from lambdas import bootstrap
from lambdas.adapters.dynamodb import DynamoGrantStore
from lambdas.adapters.eks import EksAccessEntries
from lambdas.adapters.scheduler import EventBridgeRevocationScheduler
from lambdas.config import load_config
from lambdas.handlers import api
from lambdas.logic.ports import Deps, Timing
from tests.support import ACCOUNT, EXAMPLE_CONFIG, REGION, FakeClock, LambdaContextStub, api_event

eks_access_entries.register()
dynamodb_atomic.register()
TABLE = "eks-jit-grants"
GROUP = "eks-jit"
REVOKE_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:eks-jit-revoke"
SCHEDULER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/eks-jit-scheduler"


@pytest.fixture(scope="session")
def example_config() -> Any:
    return load_config(EXAMPLE_CONFIG)


@pytest.fixture
def aws(example_config: Any) -> Iterator[None]:
    with mock_aws():
        create_resources(example_config[0], region=REGION, table=TABLE, schedule_group=GROUP)
        yield


@dataclass
class World:
    """The system under test and handles to look at AWS directly."""

    deps: Deps
    clock: FakeClock
    eks: Any
    ddb: Any
    scheduler: Any

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        response = api.handler(api_event(method, path, **kwargs), LambdaContextStub())
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    def entry(self, principal: str, cluster: str = "prod-eks") -> dict[str, Any] | None:
        try:
            found = self.eks.describe_access_entry(clusterName=cluster, principalArn=principal)["accessEntry"]
        except self.eks.exceptions.ResourceNotFoundException:
            return None
        policies = self.eks.list_associated_access_policies(clusterName=cluster, principalArn=principal)
        return {
            "groups": sorted(found.get("kubernetesGroups", [])),
            "tags": found.get("tags", {}),
            "policies": {
                p["policyArn"].rsplit("/", 1)[-1]: p["accessScope"] for p in policies["associatedAccessPolicies"]
            },
        }

    def schedules(self) -> list[str]:
        return [s["Name"] for s in self.scheduler.list_schedules(GroupName=GROUP)["Schedules"]]

    def table_items(self) -> list[dict[str, Any]]:
        return self.ddb.scan(TableName=TABLE)["Items"]

    def all_entries(self, cluster: str = "prod-eks") -> list[str]:
        return self.eks.list_access_entries(clusterName=cluster)["accessEntries"]


def make_deps(example_config: Any, clock: FakeClock, **timing: Any) -> Deps:
    catalog, policies = example_config
    return Deps(
        catalog=catalog,
        policies=policies,
        store=DynamoGrantStore(boto3.client("dynamodb", region_name=REGION), TABLE),
        eks=EksAccessEntries(
            catalog.clusters, lambda name, cluster, session: boto3.client("eks", region_name=cluster.region)
        ),
        scheduler=EventBridgeRevocationScheduler(
            boto3.client("scheduler", region_name=REGION), group=GROUP, target_arn=REVOKE_ARN, role_arn=SCHEDULER_ROLE
        ),
        clock=clock,
        timing=Timing(lease_backoff=0.01, **timing),
    )


@pytest.fixture
def world(aws: None, example_config: Any) -> Iterator[World]:
    clock = FakeClock()
    deps = make_deps(example_config, clock)
    bootstrap.use(deps)
    yield World(
        deps=deps,
        clock=clock,
        eks=boto3.client("eks", region_name=REGION),
        ddb=boto3.client("dynamodb", region_name=REGION),
        scheduler=boto3.client("scheduler", region_name=REGION),
    )
    bootstrap.use(None)
