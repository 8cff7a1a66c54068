"""Slack with ``slack-sdk``: one interactive message per request (who, what, where, how long,
why; Approve / Deny buttons with a confirmation step), updated with the outcome. The bot
token comes from Secrets Manager and is never logged."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from ..domain.errors import NotificationFailed
from ..domain.grant import REASON, Grant, context_rows, summary_rows, untrusted_line
from ..logic.ports import ChatMessage, Secrets

APPROVE, DENY = "approve", "deny"


def escape(text: str) -> str:
    """Slack's escaping for text in mrkdwn: a requester's reason must not become a link,
    a mention (``<!channel>``) or formatting that misleads the approver."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fields(grant: Grant) -> list[dict[str, Any]]:
    """Our labels in mrkdwn; the requester's reason (already one line) as plain_text, quoted and
    still escaped, so it can carry no formatting, mention, link or line of its own."""
    return [
        {"type": "plain_text", "text": f'{k}: "{escape(v)}"', "emoji": False}
        if k == REASON
        else {"type": "mrkdwn", "text": f"*{k}*\n{escape(v)}", "verbatim": True}
        for k, v in summary_rows(grant)
    ]


SECTION_TEXT_MAX = 3000  # Slack's limit on a section's text
CONTEXT_HEADING = "What the requester says this is for (their words, not checked by eks-jit):"


def _context_blocks(grant: Grant) -> list[dict[str, Any]]:
    """The request's context as one plain_text section: our heading and labels, then each value
    (already one line) quoted. plain_text is never parsed as mrkdwn, so ``<!channel>``, ``<@U…>``,
    ``<https://…|label>`` and ``*bold*`` stay visible characters; ``&<>`` are escaped as well,
    as for the reason. Cut to fit Slack's limit, saying so."""
    rows = context_rows(grant.context)
    if not rows:
        return []
    lines = [CONTEXT_HEADING]
    for label, value in rows:
        line = f'{label}: "{escape(value)}"'
        if sum(len(x) + 1 for x in lines) + len(line) > SECTION_TEXT_MAX - 40:
            lines.append(f"(… {len(rows) - len(lines) + 1} more: see the grant)")
            break
        lines.append(line)
    return [{"type": "section", "text": {"type": "plain_text", "text": "\n".join(lines), "emoji": False}}]


def _confirm(verb: str, grant: Grant) -> dict[str, Any]:
    return {
        "title": {"type": "plain_text", "text": f"{verb.capitalize()} this request?"},
        "text": {
            "type": "mrkdwn",
            "text": f"{verb.capitalize()} '{grant.scope}' on {grant.cluster} for {grant.requester}.",
        },
        "confirm": {"type": "plain_text", "text": verb.capitalize()},
        "deny": {"type": "plain_text", "text": "Back"},
    }


def request_blocks(grant: Grant, approvers: list[str]) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Access request* `{grant.id}`"}},
        {"type": "section", "fields": _fields(grant)},
        *_context_blocks(grant),
        {
            "type": "context",
            "elements": [{"type": "plain_text", "text": "Approvers: " + (", ".join(approvers) or "-")}],
        },
        {
            "type": "actions",
            "block_id": f"decide:{grant.id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE,
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "value": grant.id,
                    "confirm": _confirm("approve", grant),
                },
                {
                    "type": "button",
                    "action_id": DENY,
                    "text": {"type": "plain_text", "text": "Deny"},
                    "style": "danger",
                    "value": grant.id,
                    "confirm": _confirm("deny", grant),
                },
            ],
        },
    ]


def outcome_blocks(grant: Grant, outcome: str) -> list[dict[str, Any]]:
    who = ", ".join(grant.approved_by) if outcome in ("approved", "active") else ""
    line = (
        f"*{outcome.upper()}*"
        + (f" by {who}" if who else "")
        + (f": {escape(untrusted_line(grant.status_reason))}" if grant.status_reason else "")
    )
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Access request* `{grant.id}`"}},
        {"type": "section", "fields": _fields(grant)},
        *_context_blocks(grant),
        {"type": "section", "text": {"type": "mrkdwn", "text": line}},
    ]


class SlackChat:
    def __init__(self, secrets: Secrets, secret_id: str, channel: str, base_url: str | None = None) -> None:
        self._secrets = secrets
        self._secret_id = secret_id
        self._channel = channel
        self._base_url = base_url
        self._client: WebClient | None = None

    def _web(self) -> WebClient:
        if self._client is None:
            token = self._secrets.get(self._secret_id)["bot_token"]
            kwargs: dict[str, Any] = {"token": token, "timeout": 5}
            if self._base_url:
                kwargs["base_url"] = self._base_url
            self._client = WebClient(**kwargs)
        return self._client

    def ask(self, grant: Grant, approvers: list[str]) -> ChatMessage:
        try:
            sent = self._web().chat_postMessage(
                channel=self._channel,
                text=f"Access request {grant.id}",
                blocks=request_blocks(grant, approvers),
                unfurl_links=False,  # a requester's link gets no preview (and no fetch by Slack)
                unfurl_media=False,
            )
        except SlackApiError as exc:
            raise NotificationFailed(f"Slack refused the message: {exc.response.get('error')}") from exc
        except (SlackClientError, OSError) as exc:  # connection refused, DNS, timeout
            raise NotificationFailed(f"Slack unreachable: {type(exc).__name__}") from exc
        return ChatMessage(channel=str(sent["channel"]), ts=str(sent["ts"]))

    def update(self, message: ChatMessage, grant: Grant, outcome: str) -> None:
        try:
            self._web().chat_update(
                channel=message.channel,
                ts=message.ts,
                text=f"{outcome}: {grant.id}",
                blocks=outcome_blocks(grant, outcome),
            )
        except SlackApiError as exc:
            raise NotificationFailed(f"Slack refused the update: {exc.response.get('error')}") from exc
        except (SlackClientError, OSError) as exc:
            raise NotificationFailed(f"Slack unreachable: {type(exc).__name__}") from exc
