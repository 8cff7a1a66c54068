"""Fixtures: AWS under moto (with the EKS access-entry emulation), the example configuration,
and the real adapters wired into the logic's Deps with a controllable clock."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "EksJit")
os.environ.setdefault("POWERTOOLS_DEV", "false")

from moto import mock_aws

from eks_jit.emulation import dynamodb_atomic, eks_access_entries, lambda_dispatch, lambda_isolation
from eks_jit.local.resources import Resources, create_resources, register_handlers
from eks_jit.server import bootstrap
from eks_jit.server.config import load_config, read_environment
from eks_jit.server.domain.policy import PolicySet
from eks_jit.server.handlers import api
from eks_jit.server.logic.ports import Deps, Timing
from tests.support import EXAMPLE_CONFIG, REGION, FakeClock, LambdaContextStub, api_event

eks_access_entries.register()
dynamodb_atomic.register()
lambda_isolation.register()  # race tests call the handlers from several threads at once
register_handlers()
TABLE = "eks-jit-grants"
GROUP = "eks-jit"
SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # a test value, not a real secret
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@pytest.fixture(autouse=True)
def children_share_the_shifted_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``faketime -f '@<instant>'`` (make shifted-clock) every process starts its clock at
    that instant, a child too: minutes into the run, a CLI or token plugin this test spawns would
    sign requests minutes before the moment the server under test lives in, and SigV4 would
    refuse them as from the past. Each test hands its children the instant the run has reached."""
    if os.environ.get("FAKETIME", "").startswith("@"):
        monkeypatch.setenv("FAKETIME", "@" + time.strftime("%Y-%m-%d %H:%M:%S"))


@pytest.fixture(scope="session")
def example_config() -> Any:
    return load_config(EXAMPLE_CONFIG)


@contextmanager
def emulated_aws(catalog: Any) -> Iterator[Resources]:
    """moto with the project's resources; on the way out, nothing of this world keeps running.

    moto's Step Functions interpreter runs executions on its own threads, and a Lambda task
    dispatched to a real handler reads the *current* dependencies (``bootstrap.deps()``) when
    it runs. A task still in flight when a test ends (a request's notify step, an activation
    after an approval the test did not wait for) would run in the next test and write into its
    table. So: stop every running execution, then wait for the handlers in flight to finish.
    """
    with mock_aws(config=MOTO_CONFIG):
        resources = create_resources(
            catalog, region=REGION, table=TABLE, schedule_group=GROUP, slack_signing_secret=SLACK_SIGNING_SECRET
        )
        try:
            yield resources
        finally:
            quiesce(resources)


def stop(sfn: Any, arn: str, attempts: int = 200) -> None:
    """Stop an execution; one moto has only just started has no environment yet to stop
    (AttributeError in its worker) until its interpreter thread makes one: try again."""
    for _ in range(attempts):
        try:
            sfn.stop_execution(executionArn=arn, cause="test teardown")
            return
        except AttributeError:
            time.sleep(0.01)
    sfn.stop_execution(executionArn=arn, cause="test teardown")


def quiesce(resources: Resources, timeout: float = 30.0) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=resources.state_machine_arn, statusFilter="RUNNING"
    ):
        for execution in page["executions"]:
            stop(sfn, execution["executionArn"])
    deadline = time.monotonic() + timeout
    while lambda_dispatch.in_flight():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{lambda_dispatch.in_flight()} handler(s) still running {timeout}s after the test")
        time.sleep(0.01)


@pytest.fixture
def aws(example_config: Any) -> Iterator[Resources]:
    with emulated_aws(example_config[0]) as resources:
        yield resources


@dataclass
class World:
    """The system under test and handles to look at AWS directly."""

    deps: Deps
    clock: FakeClock
    eks: Any
    ddb: Any
    scheduler: Any

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        response = self.raw(method, path, **kwargs)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    def raw(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return api.handler(api_event(method, path, **kwargs), LambdaContextStub())

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

    def use_policies(self, text: str) -> None:
        """Swap in another policy text (same catalog) for the rest of the test."""
        self.deps = replace(self.deps, policies=PolicySet(text, self.deps.catalog))
        bootstrap.use(self.deps)

    def all_entries(self, cluster: str = "prod-eks") -> list[str]:
        return self.eks.list_access_entries(clusterName=cluster)["accessEntries"]


def make_deps(
    resources: Resources, clock: FakeClock, config_path: Path = EXAMPLE_CONFIG, slack_url: str = "", **timing: Any
) -> Deps:
    """The real wiring (lambdas/bootstrap.py) against moto, with a controllable clock."""
    env = resources.environment(config_path, public_url="https://eks-jit.example.com/prod")
    environment = read_environment({**env, "EKS_JIT_SLACK_API_URL": slack_url} if slack_url else env)
    return bootstrap.build(environment, clock=clock, timing=Timing(lease_backoff=0.01, **timing))


@pytest.fixture
def world(aws: Resources) -> Iterator[World]:
    clock = FakeClock()
    deps = make_deps(aws, clock)
    bootstrap.use(deps)
    yield World(
        deps=deps,
        clock=clock,
        eks=boto3.client("eks", region_name=REGION),
        ddb=boto3.client("dynamodb", region_name=REGION),
        scheduler=boto3.client("scheduler", region_name=REGION),
    )
    bootstrap.use(None)


@pytest.fixture(autouse=True, scope="session")
def one_name_for_the_server_code() -> Iterator[None]:
    """lambdas/ is imported as eks_jit.server only: as ``lambdas`` too, each module would load twice
    (two ConfigError classes an ``except`` tells apart, two caches). Fails the run if any test did."""
    yield
    doubles = sorted(m for m in sys.modules if m.split(".")[0] == "lambdas")
    assert doubles == [], f"imported as lambdas.*: {doubles[:5]}"
