"""Nothing is activated because an item says `approved`: every activation derives the decision
again (policy now, votes in the event log). The attacker here can write grant items to the
table, as any function role could: it forges an `approved` grant and waits for the sweeper."""

from __future__ import annotations

import uuid
from datetime import timedelta

from eks_jit.server.domain.grant import Action, Decision, GrantStatus, new_grant, note, transition
from eks_jit.server.logic.sweeper import sweep
from tests.support import ALICE, BOB, EXAMPLE_CONFIG, ONCALL, OTHER_AGENT

FORBID_EDIT = """
@reason("edit is frozen")
forbid (principal, action, resource) when { context.scope == EksJit::Scope::"edit" };
"""


def forge(world, *, scope: str, namespace: str, hours: int = 12, voters: tuple[str, ...] = (ALICE,), requester=ONCALL):
    """Write an `approved` grant straight into the table with the given approval events."""
    now = world.clock.now()
    claimed = Decision(outcome="auto_approve", policy_ids=("forged",), max_duration=timedelta(hours=hours))
    grant, requested = new_grant(
        grant_id=str(uuid.uuid4()),
        requester=requester,
        cluster="prod-eks",
        namespaces=(namespace,),
        scope=scope,
        reason="looks legitimate",
        duration=timedelta(hours=hours),
        decision=claimed,
        now=now,
    )
    events = [requested]
    for voter in voters[:-1]:
        grant, event = note(grant, "approval_recorded", at=now, actor=voter)
        events.append(event)
    grant, approved = transition(grant, Action.APPROVE, at=now, actor=voters[-1] if voters else "policy:forged")
    world.deps.store.create(grant.model_copy(update={"approved_by": voters}), [*events, approved])
    world.clock.advance(timedelta(minutes=3))  # past the sweeper's activation grace
    return grant.id


def outcome(world, grant_id: str) -> tuple[str, str]:
    grant = world.deps.store.get(grant_id)
    return grant.status.value, grant.status_reason


def test_a_forged_approval_no_policy_permits_is_failed_not_activated(world) -> None:
    # agent-oncall, admin on orders, 12 h, "approved by alice": no policy permits any of it
    grant_id = forge(world, scope="admin", namespace="orders")
    report = sweep(world.deps)
    assert report.activations_finished == [grant_id]
    status, reason = outcome(world, grant_id)
    assert status == "failed" and reason.startswith("activation refused: policy does not allow it now"), reason
    assert world.entry(ONCALL) is None and world.schedules() == []
    assert [e.type for e in world.deps.store.events(grant_id)][-1] == "failed"


def test_a_forged_approval_of_a_manual_scope_without_votes_is_failed(world) -> None:
    # edit on payments needs one payments approver; the forged item names alice but no vote of
    # hers is in the event log (the "approved" event is the requester's own)
    grant_id = forge(world, scope="edit", namespace="payments", hours=1, voters=(ONCALL,))
    sweep(world.deps)
    status, reason = outcome(world, grant_id)
    assert status == "failed" and "0 of the 1 approvals policy requires are recorded" in reason, reason
    assert world.entry(ONCALL) is None


def test_votes_from_outside_the_approver_set_do_not_count(world) -> None:
    grant_id = forge(world, scope="edit", namespace="payments", hours=1, voters=(OTHER_AGENT, "policy:x"))
    sweep(world.deps)
    assert outcome(world, grant_id)[0] == "failed"
    assert world.entry(ONCALL) is None


def test_a_window_longer_than_policy_allows_is_refused_even_with_real_votes(world) -> None:
    # the manual permit allows edit for at most 1 h; the item asks for 12 h with a genuine vote
    grant_id = forge(world, scope="edit", namespace="payments", hours=12, voters=(ALICE,))
    sweep(world.deps)
    status, reason = outcome(world, grant_id)
    assert status == "failed" and "not a valid request" in reason and "maximum" in reason, reason


def test_a_genuine_approval_still_activates_through_the_sweeper(world) -> None:
    grant_id = forge(world, scope="edit", namespace="payments", hours=1, voters=(BOB,))
    assert sweep(world.deps).activations_finished == [grant_id]
    assert world.deps.store.get(grant_id).status is GrantStatus.ACTIVE
    assert world.entry(ONCALL)["policies"] == {"AmazonEKSEditPolicy": {"type": "namespace", "namespaces": ["payments"]}}


def test_a_policy_tightened_after_the_approval_stops_the_activation(world) -> None:
    grant_id = forge(world, scope="edit", namespace="payments", hours=1, voters=(ALICE,))
    world.use_policies((EXAMPLE_CONFIG.parent / "policies.cedar").read_text() + FORBID_EDIT)
    sweep(world.deps)
    status, reason = outcome(world, grant_id)
    assert status == "failed" and "edit is frozen" in reason, reason
    assert world.entry(ONCALL) is None
