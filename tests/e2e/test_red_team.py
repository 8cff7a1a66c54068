"""The red-team review's reproductions against local mode (issue "Narrow means narrow").

An attacker who can write the grant table (any function role could, before) forges an
`approved` grant that no policy permits and waits for the sweeper to activate it. In local
mode the AWS endpoint accepts any credentials, so the forger writes with the real adapter.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lambdas.adapters.dynamodb import DynamoGrantStore
from lambdas.domain.grant import Action, Decision, new_grant, transition

pytestmark = pytest.mark.e2e
AGENT = "arn:aws:iam::123456789012:role/agents/oncall-agent"
ALICE = "arn:aws:iam::123456789012:user/alice"


def test_a_forged_approved_grant_is_failed_by_the_sweeper_not_activated(local) -> None:
    store = DynamoGrantStore(local.aws("dynamodb"), local.state["resources"]["table"])
    asked = datetime.now(UTC) - timedelta(minutes=5)  # past the sweeper's activation grace
    grant, requested = new_grant(
        grant_id=str(uuid.uuid4()),
        requester=AGENT,
        cluster="demo",
        namespaces=("orders",),
        scope="admin",
        reason="routine",
        duration=timedelta(hours=12),
        decision=Decision(outcome="auto_approve", policy_ids=("forged",), max_duration=timedelta(hours=12)),
        now=asked,
    )
    approved, event = transition(grant, Action.APPROVE, at=asked, actor=ALICE)
    store.create(approved.model_copy(update={"approved_by": (ALICE,)}), [requested, event])

    deadline = time.monotonic() + 40  # local mode sweeps every 10 s
    while (found := store.get(grant.id)).status.value == "approved" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert found.status.value == "failed", found
    assert found.status_reason.startswith("activation refused: policy does not allow it now")
    assert AGENT not in local.entries()
