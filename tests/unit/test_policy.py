"""The example policy decides as the README says, and a bad policy or catalog never loads."""

from datetime import timedelta
from pathlib import Path

import pytest

from eks_jit.server.config import ConfigError, load_config
from eks_jit.server.domain.policy import AccessQuestion, PolicyError, PolicySet
from tests.support import ALICE, CLUSTER, EXAMPLE_CONFIG, ONCALL, OTHER_AGENT

M = timedelta(minutes=1)


@pytest.fixture(scope="module")
def example():
    return load_config(EXAMPLE_CONFIG)


def decide(example, principal, scope, namespace="payments", minutes=15, cluster=CLUSTER):
    return example[1].decide(AccessQuestion(principal, cluster, scope, namespace, minutes * M))


@pytest.mark.parametrize("scope", ["rollout-restart", "view"])
def test_oncall_agent_narrow_scopes_on_payments_are_auto_approved_up_to_15m(example, scope) -> None:
    decision = decide(example, ONCALL, scope)
    assert decision.outcome == "auto_approve" and decision.max_duration == 15 * M
    assert decide(example, ONCALL, scope, minutes=16).outcome == "too_long"


def test_the_same_scope_elsewhere_is_not_auto_approved(example) -> None:
    assert decide(example, ONCALL, "rollout-restart", namespace="orders").outcome == "deny"


def test_edit_on_payments_needs_one_human_from_the_approver_set(example) -> None:
    decision = decide(example, ONCALL, "edit", minutes=30)
    assert decision.outcome == "needs_approval"
    assert decision.approvals_required == 1 and decision.approvers == ("group:payments-approvers",)
    assert decision.approval_timeout == 60 * M


def test_cluster_scope_is_denied_to_agents_with_the_policy_reason(example) -> None:
    decision = decide(example, ONCALL, "cluster-view", namespace="")
    assert decision.outcome == "deny" and decision.reason == "agents are never granted cluster-wide scopes"


def test_other_agents_get_nothing(example) -> None:
    for scope in ("view", "rollout-restart", "edit", "admin"):
        assert decide(example, OTHER_AGENT, scope, minutes=5).outcome == "deny"


def test_unregistered_principals_are_refused_by_name(example) -> None:
    decision = decide(example, "arn:aws:iam::111122223333:role/stranger", "view", minutes=5)
    assert decision.outcome == "deny" and "not registered" in decision.reason


def test_cluster_attributes_drive_decisions(example) -> None:
    assert decide(example, ALICE, "cluster-view", namespace="", cluster="staging-eks").outcome == "auto_approve"
    assert decide(example, ALICE, "view", cluster="prod-eks").outcome == "needs_approval"


PERMIT = '@approval("auto") @max_duration("15m") permit(principal, action, resource) when { %s };'


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (PERMIT % 'context.scope == EksJit::Scope::"nonexistent"', "unknown Scope 'nonexistent'"),
        (PERMIT % 'resource == EksJit::Cluster::"ghost"', "unknown Cluster 'ghost'"),
        (PERMIT % 'principal in EksJit::Group::"nobody"', "unknown Group 'nobody'"),
        (PERMIT % 'context.colour == "red"', "colour"),
        ("permit(principal, action, resource) when { context.scope == };", "parse"),
        ('@max_duration("15m") permit(principal, action, resource);', "@approval"),
        ('@approval("auto") permit(principal, action, resource);', "@max_duration"),
        ('@approval("auto") @max_duration("soon") permit(principal, action, resource);', "not a duration"),
        ('@approval("manual") @max_duration("1h") permit(principal, action, resource);', "@approvers"),
        (
            '@approval("manual") @approvers("group:ghosts") @max_duration("1h") permit(principal, action, resource);',
            "ghosts",
        ),
        (
            '@approval("manual") @approvers("agent-oncall") @max_duration("1h") permit(principal, action, resource);',
            "not a human",
        ),
        (
            '@approval("manual") @approvals("0") @approvers("approver-bob") @max_duration("1h") '
            "permit(principal, action, resource);",
            "at least 1",
        ),
    ],
)
def test_a_bad_policy_never_loads(example, policy: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        PolicySet(policy, example[0])


def test_a_bad_configuration_file_is_refused_with_the_field_at_fault(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text().replace(
        "access_policies: [AmazonEKSEditPolicy]", "access_policies: [NotAPolicy ARN]"
    )
    (tmp_path / "policies.cedar").write_text((EXAMPLE_CONFIG.parent / "policies.cedar").read_text())
    (tmp_path / "eks-jit.yaml").write_text(text.replace("region: eu-west-1", "region: moon", 1))
    with pytest.raises(ConfigError, match=r"clusters\.prod-eks\.region"):
        load_config(tmp_path / "eks-jit.yaml")


def test_a_policy_naming_a_scope_missing_from_the_catalog_fails_the_load(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text()
    start = text.index("  rollout-restart:")
    end = text.index("principals:")
    (tmp_path / "eks-jit.yaml").write_text(text[:start] + text[end:])
    (tmp_path / "policies.cedar").write_text((EXAMPLE_CONFIG.parent / "policies.cedar").read_text())
    with pytest.raises(ConfigError, match="unknown Scope 'rollout-restart'"):
        load_config(tmp_path / "eks-jit.yaml")
