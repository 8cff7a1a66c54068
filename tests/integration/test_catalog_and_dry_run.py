"""An agent discovers what it may ask for (GET /v1/catalog) and what one request would get
(POST /v1/grants with dry_run) before asking: both answered by the policy evaluation requests
use, per caller, writing nothing."""

from __future__ import annotations

import pytest

from tests.support import ACCOUNT, ALICE, ONCALL, ONCALL_SESSION, OTHER_AGENT

ASK = {"cluster": "prod-eks", "namespace": "payments", "scope": "rollout-restart", "duration": "15m", "reason": "probe"}


def catalog(world, caller=ONCALL_SESSION):
    status, body = world.call("GET", "/v1/catalog", caller=caller)
    assert status == 200, body
    return {(e["cluster"], e["namespace"], e["scope"]): e for e in body["entries"]}


def snapshot(world):
    return sorted(map(str, world.table_items())), world.all_entries(), world.schedules()


def test_the_catalog_offers_the_oncall_agent_what_policy_grants_and_says_why_not_elsewhere(world) -> None:
    before = snapshot(world)
    offered = catalog(world)
    assert snapshot(world) == before

    restart = offered[("prod-eks", "payments", "rollout-restart")]
    assert (restart["decision"], restart["max_duration"], restart["policies"]) == (
        "auto",
        "15m",
        ["oncall-agent-payments-auto"],
    )
    assert restart["description"] and restart["level"] == "namespace"
    edit = offered[("prod-eks", "payments", "edit")]
    assert (edit["decision"], edit["max_duration"], edit["approvals_required"], edit["approvers"]) == (
        "manual",
        "1h",
        1,
        ["group:payments-approvers"],
    )
    assert offered[("prod-eks", "orders", "rollout-restart")]["decision"] == "deny"
    cluster_wide = offered[("prod-eks", None, "cluster-view")]
    assert cluster_wide["decision"] == "deny"
    assert cluster_wide["reason"] == "agents are never granted cluster-wide scopes"
    # every (cluster, namespace, scope) of the catalog is listed, each once
    clusters = world.deps.catalog.clusters
    scopes = world.deps.catalog.scopes
    expected = sum(
        1 if s.level.value == "cluster" else len(c.namespaces) for c in clusters.values() for s in scopes.values()
    )
    assert len(offered) == expected


def test_what_the_catalog_offers_is_what_a_request_gets(world) -> None:
    """No second reading of policy: for each entry, a dry run at the shortest window answers the
    same decision, and real requests of an offered and a denied entry go as the catalog said."""
    shortest = "2m"  # the example configuration's min_duration
    for (cluster, namespace, scope), entry in catalog(world).items():
        ask = {"cluster": cluster, "scope": scope, "duration": shortest, "reason": "probe", "dry_run": True}
        status, answer = world.call("POST", "/v1/grants", body=ask | ({"namespace": namespace} if namespace else {}))
        assert status == 200, answer
        assert (answer["decision"], answer["policies"]) == (entry["decision"], entry["policies"]), (cluster, scope)

    status, grant = world.call("POST", "/v1/grants", body=ASK)
    assert (status, grant["status"]) == (201, "active")
    status, error = world.call("POST", "/v1/grants", body=ASK | {"namespace": "orders"})
    assert (status, error["code"]) == (403, "policy_denied")


def test_another_agent_is_offered_nothing_and_an_unregistered_caller_learns_nothing(world) -> None:
    other = catalog(world, OTHER_AGENT)
    assert other and {e["decision"] for e in other.values()} == {"deny"}
    stranger = f"arn:aws:iam::{ACCOUNT}:role/someone-else"
    assert catalog(world, stranger) == {}


def test_a_human_sees_the_approvers_a_production_request_needs(world) -> None:
    offered = catalog(world, ALICE)
    assert offered[("prod-eks", "payments", "view")]["decision"] == "manual"
    assert offered[("prod-eks", "payments", "view")]["max_duration"] == "2h"


LONGER = """
@id("restart-auto")
@approval("auto")
@max_duration("15m")
permit (principal in EksJit::Group::"oncall-agents", action == EksJit::Action::"request", resource)
when { context.scope == EksJit::Scope::"rollout-restart" && context.namespace == "payments" };

@id("restart-longer-with-approver")
@approval("manual")
@approvers("group:payments-approvers")
@max_duration("1h")
permit (principal in EksJit::Group::"oncall-agents", action == EksJit::Action::"request", resource)
when { context.scope == EksJit::Scope::"rollout-restart" && context.namespace == "payments" };
"""


def test_an_auto_approval_with_approvers_beyond_it_shows_both_windows(world) -> None:
    world.use_policies(LONGER)
    entry = catalog(world)[("prod-eks", "payments", "rollout-restart")]
    assert (entry["decision"], entry["max_duration"]) == ("auto", "15m")
    assert entry["longer"] == {
        "decision": "manual",
        "max_duration": "1h",
        "approvals_required": 1,
        "approvers": ["group:payments-approvers"],
        "approval_timeout": "1h",
        "reason": "",
        "policies": ["restart-longer-with-approver"],
    }
    status, answer = world.call("POST", "/v1/grants", body=ASK | {"duration": "30m", "dry_run": True})
    assert (status, answer["decision"], answer["policies"]) == (200, "manual", ["restart-longer-with-approver"])


@pytest.mark.parametrize(
    ("body", "decision"),
    [
        (ASK, "auto"),
        (ASK | {"scope": "edit", "duration": "30m"}, "manual"),
        (ASK | {"namespace": "orders"}, "deny"),
        (ASK | {"scope": "cluster-view", "namespace": None}, "deny"),
    ],
    ids=["auto", "manual", "deny", "deny-cluster-wide"],
)
def test_a_dry_run_answers_the_decision_and_writes_nothing(world, body, decision) -> None:
    before = snapshot(world)
    ask = {k: v for k, v in body.items() if v is not None} | {"dry_run": True}
    status, answer = world.call("POST", "/v1/grants", body=ask)
    assert (status, answer["dry_run"], answer["decision"]) == (200, True, decision), answer
    assert answer["cluster"] == "prod-eks" and answer["duration"] == ask["duration"]
    if decision == "deny":
        assert answer["reason"]
    if decision == "manual":
        assert answer["approvers"] == ["group:payments-approvers"] and answer["approvals_required"] == 1
    assert snapshot(world) == before
    assert world.entry(ONCALL) is None


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"cluster": "nope-eks", "reason": "x"}, "unknown_cluster"),
        ({"duration": "16m"}, "duration_exceeds_maximum"),
        ({"duration": "soon"}, "invalid_duration"),
        ({"reason": "ok"}, "reason_too_short"),
        ({"dry_run": "maybe"}, "invalid_request"),
    ],
)
def test_a_dry_run_refuses_bad_input_as_the_request_would(world, changes, code) -> None:
    before = snapshot(world)
    status, error = world.call("POST", "/v1/grants", body=ASK | {"dry_run": True} | changes)
    assert (status, error["code"]) == (400, code), error
    assert snapshot(world) == before
