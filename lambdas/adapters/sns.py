"""SNS: approval requests (one publish per approver, carrying only their own link, with an
``approver`` attribute that email subscriptions filter on) and outcomes for other tools."""

from __future__ import annotations

import json
from typing import Any

from ..domain.durations import format_duration
from ..domain.grant import REASON, Grant, GrantEvent, context_rows, untrusted_line
from ..logic.ports import ApprovalAsk
from .aws import transient_errors


def summary(grant: Grant) -> str:
    """Who asks for what, then the requester's reason and context, each one quoted line under our
    label (none can start a line of its own, so none can draw a block that looks like ours)."""
    where = f"{grant.cluster}/{','.join(grant.namespaces)}" if grant.namespaces else grant.cluster
    context = "".join(
        f'\n{label} (requester\'s words, unchecked): "{value}"' for label, value in context_rows(grant.context)
    )
    session = f"Only for the STS session: {untrusted_line(grant.session)}\n" if grant.session else ""
    return (
        f"{grant.requester} asks for '{grant.scope}' on {where} for {format_duration(grant.duration)}.\n"
        f"Request: {grant.id}\n{session}"
        f'{REASON}: "{untrusted_line(grant.reason)}"'
    ) + context


def approval_message(ask: ApprovalAsk) -> str:
    """The approver's email: their own link first, in a fixed place, then the request."""
    return (
        "Your approval link (single use, only for you; it opens a page, nothing is decided until you "
        f"press a button):\n{ask.link}\n\n{summary(ask.grant)}\n\n"
        "Only the link at the top of this message comes from eks-jit.\n"
    )


class SnsNotifier:
    def __init__(self, sns: Any, *, approvals_topic: str, outcomes_topic: str) -> None:
        self._sns = sns
        self._approvals = approvals_topic
        self._outcomes = outcomes_topic

    def ask(self, ask: ApprovalAsk) -> None:
        message = approval_message(ask)
        with transient_errors("publish approval request"):
            self._sns.publish(
                TopicArn=self._approvals,
                Subject=f"eks-jit: approve '{ask.grant.scope}' on {ask.grant.cluster}?"[:100],
                Message=message,
                MessageAttributes={
                    "approver": {"DataType": "String", "StringValue": ask.approver_name},
                    "grant_id": {"DataType": "String", "StringValue": ask.grant.id},
                },
            )

    def outcome(self, grant: Grant, event: GrantEvent) -> None:
        body = {
            "grant_id": grant.id,
            "event": event.type,
            "status": grant.status.value,
            "requester": grant.requester,
            "cluster": grant.cluster,
            "namespaces": list(grant.namespaces),
            "scope": grant.scope,
            "actor": event.actor,
            "at": event.at.isoformat(),
            "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
        }
        with transient_errors("publish outcome"):
            self._sns.publish(
                TopicArn=self._outcomes,
                Message=json.dumps(body),
                MessageAttributes={
                    "event": {"DataType": "String", "StringValue": event.type},
                    "cluster": {"DataType": "String", "StringValue": grant.cluster},
                },
            )
