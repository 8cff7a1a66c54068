"""The on-call story through the real boundaries: API Gateway event with a SigV4 identity ->
API handler -> policy -> DynamoDB -> EKS access entry -> Scheduler -> revoke handler."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from eks_jit.server.handlers import revoke as revoke_handler
from tests.support import ONCALL, ONCALL_SESSION, LambdaContextStub

RESTART = {
    "cluster": "prod-eks",
    "namespace": "payments",
    "scope": "rollout-restart",
    "duration": "15m",
    "reason": "readiness probe failing on payments-api",
}


def test_rollout_restart_is_auto_approved_applied_scheduled_and_revoked_at_expiry(world) -> None:
    # Given the agent holds no access at rest
    assert world.entry(ONCALL) is None

    # When it asks for rollout-restart on payments for 15 minutes (signed as its role session)
    status, grant = world.call("POST", "/v1/grants", body=RESTART, caller=ONCALL_SESSION)

    # Then it is active in the same round trip, for its role ARN (path resolved from the registry)
    assert status == 201, grant
    assert grant["status"] == "active"
    assert grant["requester"] == ONCALL
    assert grant["decision"]["outcome"] == "auto_approve"
    expires_at = datetime.fromisoformat(grant["expires_at"])
    assert expires_at - datetime.fromisoformat(grant["activated_at"]) == timedelta(minutes=15)

    # And EKS has a managed entry with exactly the payments group
    entry = world.entry(ONCALL)
    assert entry == {
        "groups": ["eks-jit:rollout-restart:payments"],
        "tags": {"eks-jit:managed": "true"},
        "policies": {},
    }

    # And a one-time revocation schedule, named after the grant, fires before expiry
    schedule = world.scheduler.get_schedule(Name=f"eks-jit-{grant['id']}", GroupName="eks-jit")
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    fires_at = datetime.fromisoformat(schedule["ScheduleExpression"][3:-1] + "+00:00")
    assert expires_at - timedelta(seconds=120) <= fires_at <= expires_at - timedelta(seconds=1)
    assert json.loads(schedule["Target"]["Input"]) == {"grant_id": grant["id"]}

    # When the schedule fires (its earliest possible second) the revoke path waits out the rest
    world.clock.set(fires_at)
    result = revoke_handler.handler(json.loads(schedule["Target"]["Input"]), LambdaContextStub())

    # Then the access entry is gone and the grant expired exactly at expires_at
    assert result == {"grant_id": grant["id"], "status": "expired"}
    assert world.entry(ONCALL) is None
    status, detail = world.call("GET", f"/v1/grants/{grant['id']}", caller=ONCALL_SESSION)
    assert status == 200 and detail["status"] == "expired"
    assert datetime.fromisoformat(detail["ended_at"]) == expires_at

    # And every step is in the event list, in order, each with its own version
    assert [e["type"] for e in detail["events"]] == [
        "requested",
        "approved",
        "activated",
        "access_granted",
        "expired",
        "access_removed",
    ]
    assert [e["version"] for e in detail["events"]] == [1, 2, 3, 4, 5, 6]
    assert detail["events"][1]["actor"] == "policy:oncall-agent-payments-auto"
    assert detail["events"][3]["detail"]["desired"]["groups"] == ["eks-jit:rollout-restart:payments"]
    assert detail["events"][5]["detail"]["changes"]["delete"] is True


def test_a_duplicate_schedule_delivery_changes_nothing(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    world.clock.advance(timedelta(minutes=15))
    first = revoke_handler.handler({"grant_id": grant["id"]}, LambdaContextStub())
    items_after_first = world.table_items()
    second = revoke_handler.handler({"grant_id": grant["id"]}, LambdaContextStub())
    assert first == second == {"grant_id": grant["id"], "status": "expired"}
    assert sorted(map(str, world.table_items())) == sorted(map(str, items_after_first))
    assert world.entry(ONCALL) is None


def test_early_revoke_removes_access_and_deletes_the_schedule(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    assert world.schedules() == [f"eks-jit-{grant['id']}"]
    status, revoked = world.call("POST", f"/v1/grants/{grant['id']}/revoke", body={"reason": "restart done"})
    assert status == 200 and revoked["status"] == "revoked" and revoked["status_reason"] == "restart done"
    assert world.entry(ONCALL) is None
    assert world.schedules() == []
    # a revoke of an ended grant is refused and changes nothing
    status, error = world.call("POST", f"/v1/grants/{grant['id']}/revoke")
    assert status == 409 and error["code"] == "invalid_state"


def test_an_active_grant_says_how_to_reach_the_cluster_and_the_cli_writes_a_kubeconfig(world) -> None:
    from eks_jit.kubeconfig import kubeconfig

    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    described = world.eks.describe_cluster(name="prod-eks")["cluster"]
    assert grant["connection"] == {
        "cluster": "prod-eks",
        "region": "eu-west-1",
        "endpoint": described["endpoint"],
        "certificate_authority": described["certificateAuthority"]["data"],
        "access_mode": "entry",
    }
    config = kubeconfig(grant)
    assert config["clusters"][0]["cluster"]["server"] == described["endpoint"]
    assert config["contexts"][0]["context"]["namespace"] == "payments"
    assert config["users"][0]["user"]["exec"]["args"] == [
        "--region", "eu-west-1", "eks", "get-token", "--cluster-name", "prod-eks", "--output", "json",
    ]  # fmt: skip
    assert "env" not in config["users"][0]["user"]["exec"]
    signed_as = kubeconfig(grant, profile="oncall")["users"][0]["user"]["exec"]  # the CLI's --profile
    assert signed_as["args"][:2] == ["--profile", "oncall"]
    assert signed_as["env"] == [{"name": "AWS_PROFILE", "value": "oncall"}]
    world.call("POST", f"/v1/grants/{grant['id']}/revoke")
    _, ended = world.call("GET", f"/v1/grants/{grant['id']}")
    assert ended["connection"] is None
