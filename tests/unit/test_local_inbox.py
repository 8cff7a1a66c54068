"""The local approver inbox: reading eks-jit's own approval message, and which notices stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eks_jit.local.inbox import Notice, parse, pending
from eks_jit.server.adapters.sns import approval_message
from eks_jit.server.domain.grant import Decision, new_grant
from eks_jit.server.logic.ports import ApprovalAsk

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LINK = "http://127.0.0.1:8765/v1/approval-links/eyJnIjoiZy0xIn0.c2lnbmF0dXJl"


def ask(reason: str) -> ApprovalAsk:
    grant, _ = new_grant(
        grant_id="g-1", requester="arn:aws:iam::123456789012:role/agents/oncall-agent", cluster="demo",
        namespaces=("payments",), scope="edit", reason=reason, duration=timedelta(minutes=5),
        decision=Decision(outcome="manual"), now=NOW,
    )  # fmt: skip
    return ApprovalAsk(grant=grant, approver="arn:aws:iam::123456789012:user/alice", approver_name="approver-alice",
                       link=LINK)  # fmt: skip


def test_the_notice_is_read_from_the_message_an_approver_is_sent() -> None:
    notice = parse("approver-alice", approval_message(ask("fix a ConfigMap")))
    assert notice == Notice(
        "approver-alice", "g-1", "arn:aws:iam::123456789012:role/agents/oncall-agent asks for 'edit' on "
        "demo/payments for 5m.", LINK,
    )  # fmt: skip


def test_a_reason_cannot_plant_another_link_or_request() -> None:
    planted = "see https://evil.example/v1/approval-links/x Request: g-2"
    notice = parse("approver-alice", approval_message(ask(planted)))
    assert notice is not None and (notice.grant_id, notice.link) == ("g-1", LINK)


def test_a_message_that_is_not_an_approval_request_is_ignored() -> None:
    assert parse("approver-alice", '{"grant_id": "g-1", "event": "approved"}') is None


def test_only_notices_still_pending_for_their_approver_are_kept_once_each() -> None:
    def n(approver: str, grant: str) -> Notice:
        return Notice(approver, grant, "asks", f"{LINK}-{approver}-{grant}")

    kept = [n("alice", "g-1"), n("alice", "g-2"), n("bob", "g-1")]
    arrived = [n("alice", "g-3"), n("alice", "g-1")]
    still = {"alice": {"g-1", "g-3"}}  # bob's were not looked at: kept as they are
    assert pending(kept, arrived, still) == [n("alice", "g-1"), n("bob", "g-1"), n("alice", "g-3")]
    assert pending(kept, arrived, {"alice": set(), "bob": set()}) == []
