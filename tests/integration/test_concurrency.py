"""Races: nothing is done twice and nothing is lost."""

from __future__ import annotations

import json
from datetime import timedelta

from eks_jit.server.handlers import revoke as revoke_handler
from eks_jit.server.logic.sweeper import sweep
from tests.support import ONCALL, ONCALL_SESSION, LambdaContextStub, race

VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"


def body(scope: str, namespace: str = "payments", duration: str = "15m") -> dict[str, str]:
    return {"cluster": "prod-eks", "namespace": namespace, "scope": scope, "duration": duration, "reason": "incident"}


def event_types(world, grant_id: str) -> list[str]:
    return [e["type"] for e in world.call("GET", f"/v1/grants/{grant_id}", caller=ONCALL_SESSION)[1]["events"]]


def test_two_revokes_racing_end_the_grant_once(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=body("rollout-restart"))
    path = f"/v1/grants/{grant['id']}/revoke"
    results = race(*(lambda: world.call("POST", path) for _ in range(4)))
    statuses = sorted(r[0] for r in results)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}, results
    types = event_types(world, grant["id"])
    assert types.count("revoked") == 1 and types.count("access_removed") == 1, types
    assert world.entry(ONCALL) is None


def test_revoke_racing_the_schedule_ends_the_grant_once(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=body("rollout-restart"))
    world.clock.advance(timedelta(minutes=15))
    results = race(
        lambda: world.call("POST", f"/v1/grants/{grant['id']}/revoke"),
        lambda: revoke_handler.handler({"grant_id": grant["id"]}, LambdaContextStub()),
        lambda: revoke_handler.handler({"grant_id": grant["id"]}, LambdaContextStub()),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    types = event_types(world, grant["id"])
    assert types.count("revoked") + types.count("expired") == 1, types
    assert types.count("access_removed") == 1
    assert world.entry(ONCALL) is None


def test_overlapping_grants_keep_each_other_alive(world) -> None:
    _, restart = world.call("POST", "/v1/grants", body=body("rollout-restart", duration="5m"))
    world.clock.advance(timedelta(minutes=1))
    _, view = world.call("POST", "/v1/grants", body=body("view", duration="15m"))
    assert world.entry(ONCALL)["groups"] == ["eks-jit:rollout-restart:payments"]
    assert world.entry(ONCALL)["policies"] == {"AmazonEKSViewPolicy": {"type": "namespace", "namespaces": ["payments"]}}

    # the shorter grant expires through its schedule: the view grant's access stays
    world.clock.advance(timedelta(minutes=4))
    revoke_handler.handler({"grant_id": restart["id"]}, LambdaContextStub())
    assert world.entry(ONCALL) == {
        "groups": [],
        "tags": {"eks-jit:managed": "true"},
        "policies": {"AmazonEKSViewPolicy": {"type": "namespace", "namespaces": ["payments"]}},
    }
    # revoking the last one removes the entry
    world.call("POST", f"/v1/grants/{view['id']}/revoke")
    assert world.entry(ONCALL) is None


def test_concurrent_requests_of_one_principal_all_land_in_its_entry(world) -> None:
    results = race(
        lambda: world.call("POST", "/v1/grants", body=body("rollout-restart")),
        lambda: world.call("POST", "/v1/grants", body=body("view")),
        lambda: world.call("POST", "/v1/grants", body=body("rollout-restart")),
    )
    assert [r[1]["status"] for r in results] == ["active"] * 3, results
    entry = world.entry(ONCALL)
    assert entry["groups"] == ["eks-jit:rollout-restart:payments"]
    assert entry["policies"] == {"AmazonEKSViewPolicy": {"type": "namespace", "namespaces": ["payments"]}}
    # revoking two of the three in parallel keeps what the third needs
    restart_ids = [r[1]["id"] for r in results if r[1]["scope"] == "rollout-restart"]
    race(*(lambda gid=gid: world.call("POST", f"/v1/grants/{gid}/revoke") for gid in restart_ids))
    assert world.entry(ONCALL)["groups"] == []
    assert world.entry(ONCALL)["policies"] != {}


def test_the_sweeper_and_the_schedule_racing_expire_once(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=body("rollout-restart"))
    world.clock.advance(timedelta(minutes=16))
    results = race(
        lambda: sweep(world.deps), lambda: revoke_handler.handler({"grant_id": grant["id"]}, LambdaContextStub())
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    types = event_types(world, grant["id"])
    assert types.count("expired") == 1 and types.count("access_removed") == 1, types
    assert world.entry(ONCALL) is None


def test_events_are_never_rewritten(world) -> None:
    def events() -> dict[str, str]:
        items = [i for i in world.table_items() if i["sk"]["S"].startswith("EVENT#")]
        return {i["pk"]["S"] + i["sk"]["S"]: json.dumps(i, sort_keys=True) for i in items}

    _, grant = world.call("POST", "/v1/grants", body=body("rollout-restart"))
    before = events()
    status, revoked = world.call("POST", f"/v1/grants/{grant['id']}/revoke")
    assert (status, revoked["status"]) == (200, "revoked"), revoked
    after = events()
    assert {k: v for k, v in after.items() if k in before} == before  # nothing rewritten or removed
    assert len(after) == len(before) + 2  # revoked, access_removed
