"""An approver's inbox in local mode: an SQS queue subscribed to the approvals topic with the
same filter an approver's email subscription has (``approver = <name>``), so the demo, the
tests and ``eks-jit local inbox`` receive exactly the message, and the link, that approver
would get by email.

``eks-jit local up`` creates one queue per human principal before the first request can be
made (:func:`create_inboxes`), so no message is lost. ``eks-jit local inbox`` moves what has
arrived into ``<state dir>/inbox.json`` (owner-only: the links are single-use credentials) and
lists the notices whose request is still pending for that approver (:func:`pending`)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eks_jit.files import write_private

LINK = re.compile(r"(https?://\S+/v1/approval-links/\S+)")
REQUEST = re.compile(r"^Request: (\S+)$", re.MULTILINE)
QUEUE_PREFIX = "eks-jit-inbox-"
STORE = "inbox.json"


class Inbox:
    def __init__(self, sqs: Any, sns: Any, topic_arn: str, approver: str, queue_name: str | None = None) -> None:
        self._sqs = sqs
        self.url = sqs.create_queue(QueueName=queue_name or f"inbox-{approver}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"FilterPolicy": json.dumps({"approver": [approver]}), "RawMessageDelivery": "true"},
        )

    def link_for(self, grant_id: str, timeout: float = 30.0) -> str:
        """The approval link in the message about ``grant_id``; TimeoutError if none arrives."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self._sqs.receive_message(QueueUrl=self.url, WaitTimeSeconds=1).get("Messages", []):
                found = LINK.search(message["Body"]) if grant_id in message["Body"] else None
                if found:
                    return found.group(1)
        raise TimeoutError(f"no approval message about {grant_id} arrived")


def create_inboxes(sqs: Any, sns: Any, topic_arn: str, approvers: Iterable[str]) -> dict[str, str]:
    """One subscribed queue per approver name: name -> queue URL (what local.json records)."""
    return {name: Inbox(sqs, sns, topic_arn, name, queue_name=f"{QUEUE_PREFIX}{name}").url for name in approvers}


@dataclass(frozen=True)
class Notice:
    """One approval request as the approver received it."""

    approver: str
    grant_id: str
    request: str  # the message's first line about the request: who asks for what, where, how long
    link: str


def parse(approver: str, body: str) -> Notice | None:
    """The notice in an approval message (eks-jit's format, lambdas/adapters/sns.py), or None."""
    link, request = LINK.search(body), REQUEST.search(body)
    if not link or not request:
        return None
    asks = next((line for line in body.splitlines() if " asks for " in line), "")
    return Notice(approver, request.group(1), asks, link.group(1))


def drain(sqs: Any, queue_url: str) -> list[str]:
    """Every message body waiting in the queue, deleted from it once read."""
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        batch = messages.get("Messages", [])
        if not batch:
            return bodies
        bodies += [m["Body"] for m in batch]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def load(state_dir: Path) -> list[Notice]:
    path = state_dir / STORE
    return [Notice(**n) for n in json.loads(path.read_text())] if path.exists() else []


def save(state_dir: Path, notices: list[Notice]) -> None:
    write_private(state_dir / STORE, json.dumps([asdict(n) for n in notices], indent=2))


def pending(kept: list[Notice], arrived: list[Notice], still_pending: dict[str, set[str]]) -> list[Notice]:
    """The notices to show and keep: kept and newly arrived ones, one per (approver, grant),
    whose grant ``still_pending[approver]`` holds (requests that approver may decide now).
    Approvers missing from ``still_pending`` were not looked at: their notices are kept as they are."""
    out: dict[tuple[str, str], Notice] = {}
    for notice in [*kept, *arrived]:
        looked = notice.approver in still_pending
        if not looked or notice.grant_id in still_pending[notice.approver]:
            out[(notice.approver, notice.grant_id)] = notice
    return list(out.values())
