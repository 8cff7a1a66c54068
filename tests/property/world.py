"""The world the lifecycle machine runs in: moto with the example configuration, the real wiring
(``tests.conftest.make_deps``), a cheap reset between examples, a fake approval workflow, and
fault-free views of what DynamoDB and EKS hold for the invariants."""

from __future__ import annotations

import contextlib
import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
from moto.dynamodb.models import dynamodb_backends

from eks_jit.local.resources import Resources, create_resources
from eks_jit.server.adapters.aws import transient_errors
from eks_jit.server.adapters.dynamodb import event_from_item, grant_from_item
from eks_jit.server.adapters.table import create_table_kwargs
from eks_jit.server.config import load_config
from eks_jit.server.domain.access import Access, PolicyScope
from eks_jit.server.domain.catalog import MANAGED_TAG
from eks_jit.server.domain.grant import Grant, GrantEvent
from eks_jit.server.logic.ports import Deps
from tests.conftest import GROUP, TABLE, make_deps
from tests.property.faults import Faults
from tests.support import EXAMPLE_CONFIG, REGION, FakeClock


@dataclass
class Execution:
    """One approval-workflow execution, as far as the model cares."""

    started: datetime
    timeout: timedelta
    state: str = "waiting"  # waiting | resumed | failing | closed
    notified: bool = False
    outcome: str = ""


class FakeWorkflow:
    """Stands in for Step Functions (the ASL itself is tested in tests/integration): records
    starts and resumes, and fails like the real adapter when a fault plan says so."""

    def __init__(self, faults: Faults, clock: FakeClock) -> None:
        self._faults = faults
        self._clock = clock
        self.executions: dict[str, Execution] = {}

    def start(self, grant: Grant) -> None:
        with transient_errors(f"start approval of {grant.id}"):
            self._faults.through("stepfunctions", "StartExecution", lambda: None)
        if grant.id not in self.executions:  # a second start: ExecutionAlreadyExists, harmless
            timeout = grant.decision.approval_timeout or timedelta(hours=1)
            self.executions[grant.id] = Execution(self._clock.now(), timeout)

    def resume(self, token: str, outcome: str) -> bool:
        with transient_errors("resume approval workflow"):
            self._faults.through("stepfunctions", "SendTaskSuccess", lambda: None)
        execution = self.executions.get(token.removeprefix("token:"))
        if execution is None or execution.state != "waiting":
            return False  # TaskTimedOut / TaskDoesNotExist
        execution.state, execution.outcome = "resumed", outcome
        return True


class Ids:
    """Deterministic ``uuid4`` replacement: ids that sort in creation order and repeat from run
    to run, so a derandomized example replays exactly."""

    def __init__(self) -> None:
        self._next = 0

    def reset(self) -> None:
        self._next = 0

    def __call__(self) -> uuid.UUID:
        self._next += 1
        return uuid.UUID(int=self._next, version=4)


@dataclass
class Snapshot:
    """The grant table and the managed access entries, read with no fault armed."""

    grants: dict[str, Grant]
    events: dict[str, list[GrantEvent]]
    event_items: dict[tuple[str, str], Any]
    index: dict[tuple[str, str], frozenset[str]]  # (principal, cluster) -> grant ids
    durable: dict[tuple[str, str], Any]  # every GRANT#/ACCESS# item (what a refusal must not touch)
    entries: dict[tuple[str, str], Access] = field(default_factory=dict)  # managed entries
    unmanaged: dict[tuple[str, str], Any] = field(default_factory=dict)


class World:
    """moto, started once per test; ``reset`` empties it for the next example."""

    def __init__(self) -> None:
        self.catalog, _ = load_config(EXAMPLE_CONFIG)
        self.resources: Resources = create_resources(self.catalog, region=REGION, table=TABLE, schedule_group=GROUP)
        self.base: Deps = make_deps(self.resources, FakeClock())
        self.ddb = boto3.client("dynamodb", region_name=REGION)
        self.eks = {name: boto3.client("eks", region_name=c.region) for name, c in self.catalog.clusters.items()}
        self.scheduler = boto3.client("scheduler", region_name=REGION)
        self.faults = Faults()
        self.ids = Ids()

    def reset(self) -> None:
        """Empty table, no access entry but the cluster creator's, no schedules: ~40 ms, against
        ~1.7 s for a new mock_aws with every resource (moto's CreateCluster alone is slow)."""
        self.ddb.delete_table(TableName=TABLE)
        self.ddb.create_table(**create_table_kwargs(TABLE))
        for name, eks in self.eks.items():
            for principal in eks.list_access_entries(clusterName=name)["accessEntries"]:
                entry = eks.describe_access_entry(clusterName=name, principalArn=principal)["accessEntry"]
                if MANAGED_TAG in entry.get("tags", {}):
                    eks.delete_access_entry(clusterName=name, principalArn=principal)
        for schedule in self.schedules():
            self.scheduler.delete_schedule(Name=schedule, GroupName=GROUP)

    def schedules(self) -> list[str]:
        found: list[str] = []
        for page in self.scheduler.get_paginator("list_schedules").paginate(GroupName=GROUP):
            found += [s["Name"] for s in page["Schedules"]]
        return found

    def schedule_time(self, name: str) -> datetime | None:
        from eks_jit.local.scheduler import due_time

        try:
            expression = self.scheduler.get_schedule(Name=name, GroupName=GROUP)["ScheduleExpression"]
        except self.scheduler.exceptions.ResourceNotFoundException:
            return None
        return due_time(expression)

    def delete_schedule(self, name: str) -> None:
        with contextlib.suppress(self.scheduler.exceptions.ResourceNotFoundException):
            self.scheduler.delete_schedule(Name=name, GroupName=GROUP)

    def table_items(self) -> list[dict[str, Any]]:
        """Every item, in DynamoDB's JSON, straight from moto's table: the same content a
        consistent Scan returns, without paying the wire format on every step."""
        table = dynamodb_backends[self.resources.account][REGION].get_table(TABLE)
        return [copy.deepcopy(item.to_json()["Attributes"]) for item in table.all_items()]

    def snapshot(self, *, with_entries: bool = True, skip: frozenset[str] = frozenset()) -> Snapshot:
        """What the table holds and, ``with_entries``, the access entries of every principal not
        in ``skip`` (principals whose entries are not checked now: saves EKS calls)."""
        snap = snapshot_of(self.table_items())
        if with_entries:
            for cluster, eks in self.eks.items():
                for principal in eks.list_access_entries(clusterName=cluster)["accessEntries"]:
                    if principal in skip:
                        continue
                    entry = eks.describe_access_entry(clusterName=cluster, principalArn=principal)["accessEntry"]
                    listed = eks.list_associated_access_policies(clusterName=cluster, principalArn=principal)
                    policies = {
                        p["policyArn"]: (
                            PolicyScope.cluster()
                            if p["accessScope"]["type"] == "cluster"
                            else PolicyScope.of(p["accessScope"].get("namespaces", []))
                        )
                        for p in listed["associatedAccessPolicies"]
                    }
                    if entry.get("tags", {}).get(MANAGED_TAG) == "true":
                        snap.entries[(principal, cluster)] = Access(
                            frozenset(entry.get("kubernetesGroups", [])), policies
                        )
                    else:
                        snap.unmanaged[(principal, cluster)] = (
                            sorted(entry.get("kubernetesGroups", [])),
                            entry.get("type"),
                            sorted((arn, s.type, tuple(sorted(s.namespaces))) for arn, s in policies.items()),
                        )
        return snap


def snapshot_of(items: list[dict[str, Any]], cache: dict[tuple[str, str], Any] | None = None) -> Snapshot:
    """The grants, events and access index in ``items`` (the table, in DynamoDB's JSON).
    ``cache`` (key -> (item, decoded)) skips decoding an item that is the very object decoded
    before: for a store that never changes an item in place (tests/memory/store.py)."""

    def decoded(key: tuple[str, str], item: dict[str, Any], decode: Any) -> Any:
        if cache is None:
            return decode(item)
        hit = cache.get(key)
        if hit is None or hit[0] is not item:
            hit = cache[key] = (item, decode(item))
        return hit[1]

    grants: dict[str, Grant] = {}
    events: dict[str, list[GrantEvent]] = {}
    event_items: dict[tuple[str, str], Any] = {}
    index: dict[tuple[str, str], frozenset[str]] = {}
    durable: dict[tuple[str, str], Any] = {}
    for item in items:
        key = (item["pk"]["S"], item["sk"]["S"])
        if key[0].startswith(("GRANT#", "ACCESS#")):
            durable[key] = item
        if key[1] == "GRANT":
            grant = decoded(key, item, grant_from_item)
            grants[grant.id] = grant
        elif key[1].startswith("EVENT#"):
            event = decoded(key, item, event_from_item)
            events.setdefault(event.grant_id, []).append(event)
            event_items[key] = item
        elif key[1] == "GRANTS":
            ids = frozenset(item.get("grant_ids", {}).get("SS", []))
            index[(item["principal_arn"]["S"], item["cluster"]["S"])] = ids
    for listed in events.values():
        listed.sort(key=lambda e: e.version)
    snap = Snapshot(grants, events, event_items, index, durable)
    return snap
