"""An approver's inbox in local mode: an SQS queue subscribed to the approvals topic with the
same filter an approver's email subscription has (``approver = <name>``), so the demo and the
tests receive exactly the message, and the link, that approver would get."""

from __future__ import annotations

import json
import re
import time
from typing import Any

LINK = re.compile(r"(https?://\S+/v1/approval-links/\S+)")


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
