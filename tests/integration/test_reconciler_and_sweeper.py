"""The reconciler only touches what it owns and converges; the sweeper is the backstop."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from eks_jit.server.adapters.eks import EksAccessEntries
from eks_jit.server.domain.grant import Action, GrantStatus, transition
from eks_jit.server.logic.reconciler import reconcile
from eks_jit.server.logic.requesting import AccessRequest, request_grant
from eks_jit.server.logic.sweeper import sweep
from tests.conftest import GROUP
from tests.support import ALICE, ONCALL, REGION, recreate_cluster

RESTART = {
    "cluster": "prod-eks",
    "namespace": "payments",
    "scope": "rollout-restart",
    "duration": "15m",
    "reason": "x" * 5,
}


def creator(world) -> str:
    return next(arn for arn in world.all_entries() if arn.endswith(":user/moto"))


def test_an_entry_eks_jit_did_not_create_is_never_touched(world) -> None:
    world.eks.create_access_entry(clusterName="prod-eks", principalArn=ONCALL, kubernetesGroups=["hand-made"])
    status, grant = world.call("POST", "/v1/grants", body=RESTART)
    assert status == 201 and grant["status"] == "failed"
    assert "does not manage" in grant["status_reason"]
    assert world.entry(ONCALL) == {"groups": ["hand-made"], "tags": {}, "policies": {}}
    assert world.schedules() == []
    sweep(world.deps)
    assert world.entry(ONCALL) == {"groups": ["hand-made"], "tags": {}, "policies": {}}


def test_the_cluster_creators_entry_survives_every_sweep(world) -> None:
    admin = creator(world)
    before = world.entry(admin)
    world.call("POST", "/v1/grants", body=RESTART)
    world.clock.advance(timedelta(hours=1))
    report = sweep(world.deps)
    assert len(report.overdue_expired) == 1
    assert world.entry(admin) == before
    assert world.entry(ONCALL) is None


def test_reconcile_twice_changes_nothing_the_second_time(world) -> None:
    world.call("POST", "/v1/grants", body=RESTART)
    modified = world.eks.describe_access_entry(clusterName="prod-eks", principalArn=ONCALL)["accessEntry"]["modifiedAt"]
    outcome = reconcile(world.deps, ONCALL, "prod-eks", session="test")
    assert outcome.plan.is_noop
    again = world.eks.describe_access_entry(clusterName="prod-eks", principalArn=ONCALL)["accessEntry"]["modifiedAt"]
    assert again == modified


def test_a_lost_schedule_is_covered_by_the_sweeper(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    world.scheduler.delete_schedule(Name=f"eks-jit-{grant['id']}", GroupName=GROUP)
    world.clock.advance(timedelta(minutes=14))
    assert sweep(world.deps).overdue_expired == []  # not yet due
    assert world.entry(ONCALL) is not None
    world.clock.advance(timedelta(minutes=1, seconds=30))
    report = sweep(world.deps)
    assert report.overdue_expired == [grant["id"]] and report.errors == []
    assert world.entry(ONCALL) is None
    _, detail = world.call("GET", f"/v1/grants/{grant['id']}")
    assert detail["status"] == "expired" and detail["status_reason"] == "expired by sweeper"


def test_drift_on_a_managed_entry_is_put_right(world) -> None:
    world.call("POST", "/v1/grants", body=RESTART)
    world.eks.update_access_entry(clusterName="prod-eks", principalArn=ONCALL, kubernetesGroups=["sneaky-extra"])
    world.eks.associate_access_policy(
        clusterName="prod-eks",
        principalArn=ONCALL,
        policyArn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
        accessScope={"type": "cluster"},
    )
    report = sweep(world.deps)
    assert report.drift_fixed == [f"prod-eks {ONCALL}"]
    assert world.entry(ONCALL) == {
        "groups": ["eks-jit:rollout-restart:payments"],
        "tags": {"eks-jit:managed": "true"},
        "policies": {},
    }


def test_a_managed_entry_left_behind_by_a_crash_is_removed(world) -> None:
    # the grant ended but the Lambda died before its reconcile: state says expired, EKS still has access
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    stored = world.deps.store.get(grant["id"])
    ended, event = transition(stored, Action.EXPIRE, at=world.clock.now(), actor="test")
    world.deps.store.save(stored.version, ended, event)
    assert world.entry(ONCALL) is not None
    sweep(world.deps)
    assert world.entry(ONCALL) is None


def test_activation_failure_leaves_no_access_and_says_why(world) -> None:
    recreate_cluster("staging-eks", accessConfig={"authenticationMode": "CONFIG_MAP"})
    grant = request_grant(
        world.deps,
        AccessRequest(ALICE, "staging-eks", "payments", "view", timedelta(minutes=30), "look at staging"),
    )
    assert grant.status is GrantStatus.FAILED
    assert "InvalidRequestException" in grant.status_reason
    assert world.schedules() == []
    assert [e.type for e in world.deps.store.events(grant.id)] == [
        "requested",
        "approved",
        "activated",
        "failed",
        "cleanup_pending",  # EKS refuses even reading entries on a CONFIG_MAP cluster: said, not hidden
    ]


class FlakyEks:
    """Wraps an EKS client: the first ``failures`` calls of ``operation`` answer throttling."""

    def __init__(self, inner: Any, operation: str, failures: int) -> None:
        self._inner, self._operation, self.failures = inner, operation, failures

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._operation:
            return attr

        def call(**kwargs: Any) -> Any:
            if self.failures > 0:
                self.failures -= 1
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, name)
            return attr(**kwargs)

        return call


@pytest.mark.parametrize("operation", ["create_access_entry", "associate_access_policy", "delete_access_entry"])
def test_throttling_never_leaves_access_the_grants_do_not_justify(world, operation: str) -> None:
    flaky = FlakyEks(boto3.client("eks", region_name=REGION), operation, failures=1)
    catalog = world.deps.catalog
    deps = world.deps.__class__(**{**world.deps.__dict__, "eks": EksAccessEntries(catalog.clusters, lambda *_: flaky)})
    body = {**RESTART, "scope": "view"} if operation == "associate_access_policy" else RESTART
    grant = request_grant(
        deps, AccessRequest(ONCALL, "prod-eks", "payments", body["scope"], timedelta(minutes=15), "probe failing")
    )
    if operation == "delete_access_entry":
        assert grant.status is GrantStatus.ACTIVE
        world.clock.advance(timedelta(minutes=15))
        report = sweep(deps)  # the expiry's reconcile is throttled, reported...
        assert report.errors == [f"{grant.id}: delete_access_entry on prod-eks: ThrottlingException"]
        assert report.drift_fixed == [f"prod-eks {ONCALL}"]  # ...and the reconcile-all pass finishes it
        assert world.entry(ONCALL) is None
    else:
        assert grant.status is GrantStatus.FAILED and "ThrottlingException" in grant.status_reason
        sweep(deps)
        assert world.entry(ONCALL) is None


def test_requests_nobody_decides_expire_after_the_approval_timeout(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body={**RESTART, "scope": "edit"})
    world.clock.advance(timedelta(minutes=59))
    assert sweep(world.deps).approvals_timed_out == []
    world.clock.advance(timedelta(minutes=2))
    assert sweep(world.deps).approvals_timed_out == [grant["id"]]
    _, detail = world.call("GET", f"/v1/grants/{grant['id']}")
    assert detail["status"] == "expired" and detail["activated_at"] is None
    assert world.entry(ONCALL) is None


def test_an_approved_grant_whose_activation_died_is_finished_by_the_sweeper(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body={**RESTART, "scope": "edit"})
    stored = world.deps.store.get(grant["id"])
    approved, event = transition(stored, Action.APPROVE, at=world.clock.now(), actor=ALICE)
    world.deps.store.save(stored.version, approved, event)  # ...and the activation never ran
    world.clock.advance(timedelta(minutes=3))
    report = sweep(world.deps)
    assert report.activations_finished == [grant["id"]]
    assert world.deps.store.get(grant["id"]).status is GrantStatus.ACTIVE
    assert world.entry(ONCALL)["policies"] == {"AmazonEKSEditPolicy": {"type": "namespace", "namespaces": ["payments"]}}


def username(world, principal: str) -> str:
    return world.eks.describe_access_entry(clusterName="prod-eks", principalArn=principal)["accessEntry"]["username"]


def test_a_username_changed_out_of_band_is_put_back_by_the_sweeper(world) -> None:
    # an attacker maps the agent's entry to a username other bindings name, to inherit them
    world.call("POST", "/v1/grants", body=RESTART)
    default = username(world, ONCALL)
    assert default == "arn:aws:sts::111122223333:assumed-role/oncall-agent/{{SessionName}}"
    # UpdateAccessEntry resets what it omits, so a careful attacker sends the groups it keeps
    groups = ["eks-jit:rollout-restart:payments"]
    world.eks.update_access_entry(
        clusterName="prod-eks", principalArn=ONCALL, kubernetesGroups=groups, username="payments-admin"
    )
    assert world.entry(ONCALL)["groups"] == groups and username(world, ONCALL) == "payments-admin"
    report = sweep(world.deps)
    assert report.drift_fixed == [f"prod-eks {ONCALL}"] and report.errors == []
    assert username(world, ONCALL) == default
    assert world.entry(ONCALL) == {
        "groups": ["eks-jit:rollout-restart:payments"],
        "tags": {"eks-jit:managed": "true"},
        "policies": {},
    }
    assert sweep(world.deps).drift_fixed == []  # converged


def test_new_groups_recreate_the_entry_and_keep_every_policy(world) -> None:
    # groups are set only by CreateAccessEntry (the one action IAM checks them on)
    world.call("POST", "/v1/grants", body={**RESTART, "scope": "view"})
    world.call("POST", "/v1/grants", body=RESTART)
    assert world.entry(ONCALL) == {
        "groups": ["eks-jit:rollout-restart:payments"],
        "tags": {"eks-jit:managed": "true"},
        "policies": {"AmazonEKSViewPolicy": {"type": "namespace", "namespaces": ["payments"]}},
    }
    assert sweep(world.deps).drift_fixed == []


class RecordingEks:
    """Wraps an EKS client and records the principal of every call that names one."""

    def __init__(self, inner: Any) -> None:
        self._inner, self.principals = inner, []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name in ("get_paginator", "can_paginate"):
            return attr

        def call(**kwargs: Any) -> Any:
            if "principalArn" in kwargs:
                self.principals.append((name, kwargs["principalArn"]))
            return attr(**kwargs)

        return call


def test_the_sweeper_reads_only_the_entries_of_registered_principals(world) -> None:
    # IAM lets the roles describe only registered principals' entries: the creator's is not one
    recording = RecordingEks(boto3.client("eks", region_name=REGION))
    catalog = world.deps.catalog
    deps = world.deps.__class__(
        **{**world.deps.__dict__, "eks": EksAccessEntries(catalog.clusters, lambda *_: recording)}
    )
    world.call("POST", "/v1/grants", body=RESTART)
    report = sweep(deps)
    assert report.errors == []
    assert creator(world) not in {p for _, p in recording.principals}
    assert {p for _, p in recording.principals} <= {p.arn for p in catalog.principals}


VIEW_BODY = {**RESTART, "scope": "view"}


def count_listings(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each read of an entry: True when it lists the entry's policies as well as describing it."""
    from eks_jit.server.adapters.eks import ClusterEntries

    reads: list[bool] = []
    original = ClusterEntries.read

    def read(self: Any, principal: str, *, with_policies: bool = True) -> Any:
        reads.append(with_policies)
        return original(self, principal, with_policies=with_policies)

    monkeypatch.setattr(ClusterEntries, "read", read)
    return reads


VIEW_ENTRY = {
    "groups": ["eks-jit:rollout-restart:payments"],
    "tags": {"eks-jit:managed": "true"},
    "policies": {"AmazonEKSViewPolicy": {"type": "namespace", "namespaces": ["payments"]}},
}


def test_the_next_change_takes_the_policies_the_last_reconcile_left_without_listing_them(world, monkeypatch) -> None:
    reads = count_listings(monkeypatch)
    world.call("POST", "/v1/grants", body=RESTART)
    status, view = world.call("POST", "/v1/grants", body=VIEW_BODY)
    assert status == 201 and view["status"] == "active"
    assert reads == [True, False]  # described both times; the policies came from the record the second
    assert world.entry(ONCALL) == VIEW_ENTRY
    sweep(world.deps)  # the sweeper never trusts the record
    assert reads[2:] == [True]


def test_an_entry_deleted_outside_eks_jit_after_the_record_is_seen_and_made_again(world) -> None:
    world.call("POST", "/v1/grants", body=RESTART)
    world.eks.delete_access_entry(clusterName="prod-eks", principalArn=ONCALL)  # out of band
    status, view = world.call("POST", "/v1/grants", body=VIEW_BODY)
    assert status == 201 and view["status"] == "active"
    assert world.entry(ONCALL) == VIEW_ENTRY


def test_a_policy_removed_outside_eks_jit_is_put_back_by_the_sweeper(world) -> None:
    # the record's known limit: it is trusted for the policies until the sweeper lists them
    world.call("POST", "/v1/grants", body=RESTART)
    world.call("POST", "/v1/grants", body=VIEW_BODY)
    world.eks.disassociate_access_policy(
        clusterName="prod-eks",
        principalArn=ONCALL,
        policyArn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
    )
    world.call("POST", "/v1/grants", body=RESTART)  # same groups: nothing to change, as far as it knows
    assert world.entry(ONCALL)["policies"] == {}  # unseen by the request
    report = sweep(world.deps)
    assert report.drift_fixed == [f"prod-eks {ONCALL}"]
    assert world.entry(ONCALL) == VIEW_ENTRY
