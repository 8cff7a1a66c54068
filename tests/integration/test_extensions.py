"""Extending an active grant: a new request linked to it, decided by the same policy on the
whole window; only an approved extension moves expires_at and the revocation schedule."""

from __future__ import annotations

from datetime import datetime, timedelta

from eks_jit.server.handlers import revoke as revoke_handler
from tests.integration.test_approval_workflow import finished, notified
from tests.support import ADMIN, ALICE, ONCALL, ONCALL_SESSION, OTHER_AGENT, LambdaContextStub

RESTART = {
    "cluster": "prod-eks",
    "namespace": "payments",
    "scope": "rollout-restart",
    "duration": "5m",
    "reason": "probe",
}


def fires_at(world, grant_id: str) -> datetime:
    schedule = world.scheduler.get_schedule(Name=f"eks-jit-{grant_id}", GroupName="eks-jit")
    return datetime.fromisoformat(schedule["ScheduleExpression"][3:-1] + "+00:00")


def test_an_auto_approvable_extension_moves_the_window_at_once(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    old_end = datetime.fromisoformat(grant["expires_at"])
    status, extension = world.call(
        "POST", f"/v1/grants/{grant['id']}/extend", body={"duration": "5m", "reason": "restart is slow"}
    )
    assert status == 201 and extension["status"] == "active" and extension["extends"] == grant["id"]
    _, detail = world.call("GET", f"/v1/grants/{grant['id']}")
    new_end = datetime.fromisoformat(detail["expires_at"])
    assert new_end - old_end == timedelta(minutes=5)
    assert detail["events"][-1]["type"] == "extended" and detail["events"][-1]["detail"]["extension"] == extension["id"]
    assert new_end - timedelta(seconds=120) < fires_at(world, grant["id"]) < new_end
    # the old alarm time passes: nothing ends; the new one does
    world.clock.set(old_end + timedelta(seconds=1))
    revoke_handler.handler({"grant_id": grant["id"]}, LambdaContextStub())  # a stale delivery
    assert world.deps.store.get(grant["id"]).status.value == "active"
    assert world.entry(ONCALL) is not None
    world.clock.set(new_end)
    revoke_handler.handler({"grant_id": grant["id"]}, LambdaContextStub())
    assert world.entry(ONCALL) is None
    assert world.deps.store.get(grant["id"]).status.value == "expired"


def test_an_extension_past_the_policy_maximum_is_refused_and_changes_nothing(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    before = sorted(map(str, world.table_items()))
    status, error = world.call("POST", f"/v1/grants/{grant['id']}/extend", body={"duration": "11m", "reason": "more"})
    assert (status, error["code"], error["field"]) == (400, "duration_exceeds_maximum", "duration")
    assert sorted(map(str, world.table_items())) == before


def test_an_extension_that_needs_a_human_moves_nothing_until_approved(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body={**RESTART, "scope": "edit", "duration": "20m"})
    notified(world, grant["id"])
    world.call("POST", f"/v1/grants/{grant['id']}/approve", caller=ALICE)
    finished(world, grant["id"])
    active = world.deps.store.get(grant["id"])
    assert active.status.value == "active"
    status, extension = world.call(
        "POST", f"/v1/grants/{grant['id']}/extend", body={"duration": "20m", "reason": "still fixing"}
    )
    assert status == 201 and extension["status"] == "pending_approval"
    notified(world, extension["id"])
    assert world.deps.store.get(grant["id"]).expires_at == active.expires_at
    world.call("POST", f"/v1/grants/{extension['id']}/approve", caller=ALICE)
    finished(world, extension["id"])
    assert world.deps.store.get(extension["id"]).status.value == "active"
    assert world.deps.store.get(grant["id"]).expires_at == active.expires_at + timedelta(minutes=20)
    # revoking the grant ends its extension too, and all access
    world.call("POST", f"/v1/grants/{grant['id']}/revoke")
    assert world.deps.store.get(extension["id"]).status.value == "revoked"
    assert world.entry(ONCALL) is None


def test_only_the_requester_may_extend_and_only_an_active_grant(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    status, error = world.call(
        "POST", f"/v1/grants/{grant['id']}/extend", body={"duration": "1m", "reason": "mine"}, caller=OTHER_AGENT
    )
    assert (status, error["code"]) == (403, "forbidden")
    world.call("POST", f"/v1/grants/{grant['id']}/revoke", caller=ONCALL_SESSION)
    status, error = world.call("POST", f"/v1/grants/{grant['id']}/extend", body={"duration": "1m", "reason": "late"})
    assert (status, error["code"]) == (409, "invalid_state")


def test_revoking_an_extension_on_its_own_is_refused_and_changes_nothing(world) -> None:
    """An attacker's (or a confused operator's) revoke of the extension must not answer
    'revoked' while the longer window it gave stays: it is refused with a stable code naming
    the grant to revoke instead, and nothing is written."""
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    _, extension = world.call(
        "POST", f"/v1/grants/{grant['id']}/extend", body={"duration": "5m", "reason": "restart is slow"}
    )
    assert extension["status"] == "active"
    before = sorted(map(str, world.table_items()))
    schedule_before = fires_at(world, grant["id"])
    status, error = world.call("POST", f"/v1/grants/{extension['id']}/revoke", caller=ONCALL_SESSION)
    assert (status, error["code"], error["grant_id"]) == (409, "extension_not_revocable", grant["id"])
    assert sorted(map(str, world.table_items())) == before
    assert fires_at(world, grant["id"]) == schedule_before
    assert world.deps.store.get(extension["id"]).status.value == "active"
    # an admin is refused the same way; revoking the grant itself ends both, and the access
    status, error = world.call("POST", f"/v1/grants/{extension['id']}/revoke", caller=ADMIN)
    assert (status, error["code"]) == (409, "extension_not_revocable")
    status, ended = world.call("POST", f"/v1/grants/{grant['id']}/revoke")
    assert status == 200 and ended["status"] == "revoked"
    assert world.deps.store.get(extension["id"]).status.value == "revoked"
    assert world.entry(ONCALL) is None
