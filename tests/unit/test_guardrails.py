"""Guardrail policies (action ``kube``): loaded and checked with the rest of the policy file, then asked
about single Kubernetes requests a grant already covers (lambdas/domain/policy.py, PolicySet.guard)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from eks_jit.server.config import load_config
from eks_jit.server.domain.policy import KubeQuestion, PolicyError, PolicySet
from tests.support import EXAMPLE_CONFIG

CATALOG, POLICIES = load_config(EXAMPLE_CONFIG)
AGENT = next(p.arn for p in CATALOG.principals if p.kind == "agent")
HUMAN = next(p.arn for p in CATALOG.principals if p.kind == "human")
RESTART = KubeQuestion(
    principal=AGENT,
    cluster="prod-eks",
    verb="patch",
    api_group="apps",
    resource="deployments",
    subresource="",
    namespace="payments",
    name="payments-api",
    scope="rollout-restart",
)


def test_a_request_no_guardrail_matches_passes() -> None:
    assert POLICIES.guard(RESTART).outcome == "pass"


@pytest.mark.parametrize("sub", ["exec", "attach", "portforward"])
def test_agents_never_exec_attach_or_port_forward(sub: str) -> None:
    guard = POLICIES.guard(
        replace(RESTART, verb="create", api_group="", resource="pods", subresource=sub, scope="edit")
    )
    assert (guard.outcome, guard.policy_ids) == ("block", ("agents-never-exec",))
    assert "may not exec" in guard.reason
    human = POLICIES.guard(
        replace(RESTART, principal=HUMAN, verb="create", api_group="", resource="pods", subresource=sub)
    )
    assert human.outcome == "pass"  # the example forbids it for agents only


def test_deleting_a_namespace_is_blocked_and_its_finalize_is_not_deleting_it() -> None:
    ns = replace(RESTART, verb="delete", api_group="", resource="namespaces", name="payments", scope="admin")
    assert POLICIES.guard(ns).outcome == "block"
    assert POLICIES.guard(replace(ns, verb="update", subresource="finalize")).outcome == "pass"


def test_secrets_are_read_only_under_edit() -> None:
    read = replace(RESTART, verb="get", api_group="", resource="secrets", name="payments-db")
    assert POLICIES.guard(replace(read, scope="edit")).outcome == "pass"
    assert POLICIES.guard(replace(read, scope="admin")).outcome == "block"
    assert POLICIES.guard(replace(read, verb="list", name="", scope="admin")).policy_ids == (
        "secrets-only-through-edit",
    )


def test_deleting_a_production_deployment_is_held_for_an_approver() -> None:
    guard = POLICIES.guard(replace(RESTART, verb="delete", scope="edit"))
    assert (guard.outcome, guard.approvals_required, guard.approvers) == ("hold", 1, ("group:payments-approvers",))
    assert POLICIES.guard(replace(RESTART, verb="delete", cluster="staging-eks", scope="edit")).outcome == "pass"


def test_a_forbid_wins_over_a_hold() -> None:
    text = POLICIES._text + (
        '\n@id("no-deletes-at-all") @reason("no") forbid (principal, action == EksJit::Action::"kube", resource)'
        ' when { context.verb == "delete" };'
    )
    guard = PolicySet(text, CATALOG).guard(replace(RESTART, verb="delete", scope="edit"))
    assert (guard.outcome, guard.policy_ids) == ("block", ("no-deletes-at-all",))


KUBE_PERMIT = 'permit (principal, action == EksJit::Action::"kube", resource);'


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('@approval("auto") ' + KUBE_PERMIT, 'needs @approval("manual")'),
        (KUBE_PERMIT, "manual"),
        ('@approval("manual") ' + KUBE_PERMIT, "@approvers"),
        (
            '@approval("manual") @approvers("group:sre") @max_duration("1h") ' + KUBE_PERMIT,
            "@max_duration is for grants",
        ),
        ('@approval("manual") @approvers("group:sre") @approvals("0") ' + KUBE_PERMIT, "at least 1"),
        ('@approval("manual") @approvers("group:ghosts") ' + KUBE_PERMIT, "unknown approver group"),
        (
            'forbid (principal, action == EksJit::Action::"kube", resource) when { context.duration_seconds > 1 };',
            "duration_seconds",
        ),
        ('@id("eks-jit-guardrails-pass") forbid (principal, action, resource);', "eks-jit's own"),
    ],
)
def test_a_bad_guardrail_never_loads(text: str, error: str) -> None:
    with pytest.raises(PolicyError) as raised:
        PolicySet(POLICIES._text + "\n" + text, CATALOG)
    assert error.replace("\\", "") in str(raised.value)
