"""The lifecycle as a pure transition table, checked exhaustively."""

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from eks_jit.server.domain.errors import InvalidTransition
from eks_jit.server.domain.grant import (
    TERMINAL,
    TRANSITIONS,
    Action,
    Decision,
    ExtensionNotRevocable,
    GrantStatus,
    ensure_revocable,
    new_grant,
    next_status,
    note,
    transition,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
S = GrantStatus


def fresh():
    return new_grant(
        grant_id="g-1",
        requester="arn:aws:iam::111122223333:role/a",
        cluster="prod-eks",
        namespaces=("payments",),
        scope="view",
        reason="because",
        duration=timedelta(minutes=15),
        decision=Decision(outcome="auto_approve"),
        now=NOW,
    )


EXPECTED = {
    (S.PENDING_APPROVAL, Action.APPROVE): S.APPROVED,
    (S.PENDING_APPROVAL, Action.DENY): S.DENIED,
    (S.PENDING_APPROVAL, Action.CANCEL): S.CANCELLED,
    (S.PENDING_APPROVAL, Action.EXPIRE): S.EXPIRED,
    (S.PENDING_APPROVAL, Action.FAIL): S.FAILED,
    (S.APPROVED, Action.ACTIVATE): S.ACTIVE,
    (S.APPROVED, Action.REVOKE): S.REVOKED,
    (S.APPROVED, Action.FAIL): S.FAILED,
    (S.ACTIVE, Action.EXPIRE): S.EXPIRED,
    (S.ACTIVE, Action.REVOKE): S.REVOKED,
    (S.ACTIVE, Action.FAIL): S.FAILED,
}


@pytest.mark.parametrize(("status", "action"), list(product(GrantStatus, Action)))
def test_every_pair_of_status_and_action(status: GrantStatus, action: Action) -> None:
    if (status, action) in EXPECTED:
        assert next_status(status, action) is EXPECTED[(status, action)]
    else:
        with pytest.raises(InvalidTransition):
            next_status(status, action)


def test_the_table_is_the_documented_one() -> None:
    assert TRANSITIONS == EXPECTED


def test_terminal_states_have_no_way_out() -> None:
    assert {s for (s, _) in TRANSITIONS} & TERMINAL == set()
    assert {S.EXPIRED, S.REVOKED, S.DENIED, S.CANCELLED, S.FAILED} == TERMINAL


def test_every_state_is_reachable_from_a_new_request() -> None:
    reachable, frontier = {S.PENDING_APPROVAL}, [S.PENDING_APPROVAL]
    while frontier:
        here = frontier.pop()
        for (src, _), dst in TRANSITIONS.items():
            if src is here and dst not in reachable:
                reachable.add(dst)
                frontier.append(dst)
    assert reachable == set(GrantStatus)


def test_a_transition_bumps_the_version_and_emits_its_event() -> None:
    grant, requested = fresh()
    assert (grant.version, requested.version, requested.type) == (1, 1, "requested")
    approved, event = transition(grant, Action.APPROVE, at=NOW, actor="policy:x")
    assert (approved.version, event.version, event.type) == (2, 2, "approved")
    assert approved.approved_by == ("policy:x",) and approved.approved_at == NOW
    later = NOW + timedelta(seconds=3)
    active, event = transition(approved, Action.ACTIVATE, at=later, actor="eks-jit")
    assert active.expires_at == later + timedelta(minutes=15)
    assert event.detail == {"from": "approved", "to": "active", "expires_at": active.expires_at.isoformat()}
    ended, event = transition(active, Action.REVOKE, at=later, actor="me", reason="done")
    assert ended.ended_at == later and ended.status_reason == "done" and event.detail["reason"] == "done"
    noted, event = note(ended, "access_removed", at=later, actor="eks-jit", changes={})
    assert noted.status is S.REVOKED and noted.version == event.version == ended.version + 1
    assert grant.status is S.PENDING_APPROVAL  # the original is untouched: grants are values


@pytest.mark.parametrize("status", list(S))
def test_an_extension_is_never_revocable_on_its_own_and_a_grant_only_where_the_table_allows(status) -> None:
    grant = fresh()[0].model_copy(update={"status": status})
    extension = grant.model_copy(update={"id": "g-2", "extends": "g-1"})
    if (status, Action.REVOKE) in EXPECTED:
        ensure_revocable(grant)
        with pytest.raises(ExtensionNotRevocable) as refused:
            ensure_revocable(extension)
        assert refused.value.details["grant_id"] == "g-1" and refused.value.code == "extension_not_revocable"
    else:
        for which in (grant, extension):
            with pytest.raises(InvalidTransition) as refused:
                ensure_revocable(which)
            assert refused.value.code == "invalid_state"


def test_untrusted_text_becomes_one_visible_line() -> None:
    from eks_jit.server.domain.grant import untrusted_line

    hostile = "ok\r\n\n*Approve:* https://evil\u2028x\ty\u202e\u200bz\x00  end"
    line = untrusted_line(hostile)
    assert line == "ok \u23ce \u23ce *Approve:* https://evil \u23ce x yz end"
    assert untrusted_line("a" * 600, limit=10) == "a" * 9 + "\u2026"
    assert untrusted_line("caf\u00e9 \U0001f680") == "caf\u00e9 \U0001f680"  # letters and emoji stay
