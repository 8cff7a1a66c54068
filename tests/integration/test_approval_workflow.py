"""The human path: statemachines/approval.asl.json executed by moto's ASL interpreter, its
Lambda tasks dispatched to the real handlers in-process, decisions through the API."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest

from eks_jit.server.logic.sweeper import sweep
from tests.support import ALICE, BOB, EXAMPLE_CONFIG, ONCALL, ONCALL_SESSION, race, wait_until

EDIT = {"cluster": "prod-eks", "namespace": "payments", "scope": "edit", "duration": "30m", "reason": "hotfix config"}


def execution(world, grant_id: str) -> dict[str, Any]:
    sfn = world.deps.workflow._sfn  # the adapter's own client
    arn = world.deps.workflow._arn.replace(":stateMachine:", ":execution:") + f":{grant_id}"
    return sfn.describe_execution(executionArn=arn)


def finished(world, grant_id: str) -> dict[str, Any]:
    return wait_until(lambda: (e := execution(world, grant_id))["status"] != "RUNNING" and e)


def notified(world, grant_id: str) -> None:
    wait_until(lambda: world.deps.store.get_side(grant_id, "task_token"))
    wait_until(lambda: "approvers_notified" in types(world, grant_id))


def types(world, grant_id: str) -> list[str]:
    return [e.type for e in world.deps.store.events(grant_id)]


def request_edit(world) -> dict[str, Any]:
    status, grant = world.call("POST", "/v1/grants", body=EDIT, caller=ONCALL_SESSION)
    assert status == 201 and grant["status"] == "pending_approval", grant
    notified(world, grant["id"])
    return grant


def test_approve_runs_the_same_activation_as_an_auto_approved_grant(world) -> None:
    grant = request_edit(world)
    assert world.entry(ONCALL) is None
    status, decided = world.call("POST", f"/v1/grants/{grant['id']}/approve", body={"comment": "ok"}, caller=ALICE)
    assert status == 200 and decided["status"] in ("approved", "active")
    assert finished(world, grant["id"])["status"] == "SUCCEEDED"
    stored = world.deps.store.get(grant["id"])
    assert stored.status.value == "active" and stored.approved_by == (ALICE,)
    assert world.entry(ONCALL)["policies"] == {"AmazonEKSEditPolicy": {"type": "namespace", "namespaces": ["payments"]}}
    assert world.schedules() == [f"eks-jit-{grant['id']}"]
    assert types(world, grant["id"]) == [
        "requested",
        "approvers_notified",
        "approved",
        "activated",
        "access_granted",
    ]
    approved = world.deps.store.events(grant["id"])[2]
    assert approved.actor == ALICE and approved.detail["comment"] == "ok" and approved.detail["via"] == "api"


def test_deny_ends_the_request_with_the_approvers_comment(world) -> None:
    grant = request_edit(world)
    status, denied = world.call("POST", f"/v1/grants/{grant['id']}/deny", body={"comment": "use staging"}, caller=BOB)
    assert status == 200 and denied["status"] == "denied" and denied["status_reason"] == "use staging"
    assert finished(world, grant["id"])["status"] == "SUCCEEDED"
    assert world.entry(ONCALL) is None and world.schedules() == []


def test_the_requester_cannot_approve_even_when_in_the_approver_set(world) -> None:
    # alice is a payments approver; as an SRE she may request edit in production with a second person
    status, grant = world.call("POST", "/v1/grants", body={**EDIT, "namespace": "orders"}, caller=ALICE)
    assert status == 201 and grant["decision"]["approvers"] == ["group:payments-approvers"]
    notified(world, grant["id"])
    status, error = world.call("POST", f"/v1/grants/{grant['id']}/approve", caller=ALICE)
    assert (status, error["code"]) == (403, "self_approval")
    status, error = world.call("POST", f"/v1/grants/{grant['id']}/deny", caller=ALICE)
    assert (status, error["code"]) == (403, "self_approval")
    assert world.deps.store.get(grant["id"]).status.value == "pending_approval"
    _, mine = world.call("GET", "/v1/approvals", caller=ALICE)
    assert mine["grants"] == []
    _, bobs = world.call("GET", "/v1/approvals", caller=BOB)
    assert [g["id"] for g in bobs["grants"]] == [grant["id"]]


def test_someone_outside_the_approver_set_cannot_decide(world) -> None:
    grant = request_edit(world)
    for caller in ("arn:aws:iam::111122223333:role/agents/report-agent", "arn:aws:iam::111122223333:role/stranger"):
        status, error = world.call("POST", f"/v1/grants/{grant['id']}/approve", caller=caller)
        assert (status, error["code"]) == (403, "not_an_approver")


def example_policies(old: str = "", new: str = "") -> str:
    text = (EXAMPLE_CONFIG.parent / "policies.cedar").read_text()
    assert old in text
    return text.replace(old, new)


@pytest.mark.thread_timeout  # moto's interpreter waits 1 s for the task token on a real timer
def test_nobody_deciding_expires_the_request_before_it_was_ever_active(world) -> None:
    world.use_policies(example_policies('@approval_timeout("1h")', '@approval_timeout("1s")'))
    status, grant = world.call("POST", "/v1/grants", body=EDIT, caller=ONCALL_SESSION)
    assert grant["status"] == "pending_approval"
    result = finished(world, grant["id"])
    assert result["status"] == "SUCCEEDED"
    stored = world.deps.store.get(grant["id"])
    assert stored.status.value == "expired" and stored.activated_at is None
    assert stored.status_reason == "nobody decided in time"
    status, error = world.call("POST", f"/v1/grants/{grant['id']}/approve", caller=BOB)
    assert (status, error["code"]) == (409, "invalid_state")
    assert world.entry(ONCALL) is None


def test_two_approvals_count_distinct_approvers(world) -> None:
    world.use_policies(
        example_policies(
            '@approvals("1")\n@approvers("group:payments-approvers")\n@approval_timeout',
            '@approvals("2")\n@approvers("group:payments-approvers")\n@approval_timeout',
        )
    )
    grant = request_edit(world)
    status, first = world.call("POST", f"/v1/grants/{grant['id']}/approve", caller=ALICE)
    assert status == 200 and first["status"] == "pending_approval" and first["approved_by"] == [ALICE]
    status, error = world.call("POST", f"/v1/grants/{grant['id']}/approve", caller=ALICE)
    assert (status, error["code"]) == (409, "already_voted")
    status, second = world.call("POST", f"/v1/grants/{grant['id']}/approve", caller=BOB)
    assert status == 200 and second["approved_by"] == [ALICE, BOB]
    assert finished(world, grant["id"])["status"] == "SUCCEEDED"
    assert world.deps.store.get(grant["id"]).status.value == "active"
    assert types(world, grant["id"])[:4] == ["requested", "approvers_notified", "approval_recorded", "approved"]


def test_approval_after_the_requester_cancelled_changes_nothing(world) -> None:
    grant = request_edit(world)
    status, cancelled = world.call("POST", f"/v1/grants/{grant['id']}/cancel", caller=ONCALL_SESSION)
    assert status == 200 and cancelled["status"] == "cancelled"
    assert finished(world, grant["id"])["status"] == "SUCCEEDED"
    status, error = world.call("POST", f"/v1/grants/{grant['id']}/approve", caller=ALICE)
    assert (status, error["code"]) == (409, "invalid_state")
    assert world.entry(ONCALL) is None and world.schedules() == []
    status, error = world.call("POST", f"/v1/grants/{grant['id']}/cancel", caller=BOB)
    assert (status, error["code"]) == (403, "forbidden")


def test_a_cancel_racing_the_workflows_note_still_cancels(world) -> None:
    # The workflow notes what it did on the pending grant (approvers asked, links sent) while the
    # requester cancels; the cancel lost that race with 409 conflict (tests/e2e/test_mcp.py in CI)
    # where it should look again and cancel, as approve, deny and revoke do.
    from eks_jit.server.domain.grant import note

    grant = request_edit(world)
    store = world.deps.store
    save, raced = store.save, []

    def save_after_a_note(version: int, updated: Any, event: Any) -> None:
        if event.type == "cancelled" and not raced:
            current = store.get(grant["id"])
            noted, noted_event = note(current, "approvers_notified", at=world.clock.now(), actor="eks-jit")
            save(current.version, noted, noted_event)  # the workflow's write lands first
            raced.append(noted_event.version)
        save(version, updated, event)

    store.save = save_after_a_note  # type: ignore[method-assign]
    try:
        status, cancelled = world.call("POST", f"/v1/grants/{grant['id']}/cancel", caller=ONCALL_SESSION)
    finally:
        store.save = save  # type: ignore[method-assign]
    assert raced and (status, cancelled["status"]) == (200, "cancelled"), cancelled
    assert types(world, grant["id"])[-2:] == ["approvers_notified", "cancelled"]


def test_activation_failure_ends_failed_with_the_cause_and_no_access(world) -> None:
    grant = request_edit(world)
    world.eks.create_access_entry(clusterName="prod-eks", principalArn=ONCALL, kubernetesGroups=["hand-made"])
    world.call("POST", f"/v1/grants/{grant['id']}/approve", caller=ALICE)
    result = finished(world, grant["id"])
    assert result["status"] == "FAILED"
    stored = world.deps.store.get(grant["id"])
    assert stored.status.value == "failed" and "does not manage" in stored.status_reason
    assert world.entry(ONCALL) == {"groups": ["hand-made"], "tags": {}, "policies": {}}
    assert world.schedules() == []


def test_a_retried_start_is_harmless(world) -> None:
    grant = request_edit(world)
    world.deps.workflow.start(world.deps.store.get(grant["id"]))  # ExecutionAlreadyExists is fine
    assert execution(world, grant["id"])["status"] == "RUNNING"


@pytest.mark.parametrize("verdicts", [("approve", "deny"), ("approve", "approve")])
def test_racing_decisions_produce_exactly_one_outcome(world, verdicts) -> None:
    grant = request_edit(world)
    results = race(
        lambda: world.call("POST", f"/v1/grants/{grant['id']}/{verdicts[0]}", caller=ALICE),
        lambda: world.call("POST", f"/v1/grants/{grant['id']}/{verdicts[1]}", caller=BOB),
    )
    statuses = sorted(r[0] for r in results)
    assert statuses == [200, 409], results
    finished(world, grant["id"])
    events = types(world, grant["id"])
    assert events.count("approved") + events.count("denied") == 1, events
    final = world.deps.store.get(grant["id"]).status.value
    assert final in ("active", "denied")
    assert (world.entry(ONCALL) is not None) == (final == "active")


def test_outcomes_are_published_for_other_tools(world) -> None:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    queue = sqs.create_queue(QueueName="outcomes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns = boto3.client("sns", region_name="eu-west-1")
    sns.subscribe(
        TopicArn=world.deps.notifier._outcomes, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    grant = request_edit(world)
    world.call("POST", f"/v1/grants/{grant['id']}/approve", caller=ALICE)
    finished(world, grant["id"])
    world.clock.advance(timedelta(minutes=31))
    sweep(world.deps)
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["event"] for m in messages] == ["approved", "activated", "expired"]
