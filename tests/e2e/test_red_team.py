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

from eks_jit.server.adapters.dynamodb import DynamoGrantStore
from eks_jit.server.domain.grant import Action, Decision, new_grant, transition

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


def test_revoking_an_extension_on_its_own_is_refused_and_the_window_stays_true(local) -> None:
    import json

    def cli(*args: str):
        return local.cli(*args, who="agent-oncall")

    done = cli("request", "--cluster", "demo", "--namespace", "payments", "--scope", "view",
               "--duration", "1m", "--reason", "red team: extension")  # fmt: skip
    assert done.returncode == 0, done.stderr
    grant = json.loads(done.stdout)
    extended = cli("extend", grant["id"], "--duration", "1m", "--reason", "more")
    assert extended.returncode == 0, extended.stderr
    extension = json.loads(extended.stdout)
    assert extension["status"] == "active"
    longer = json.loads(cli("status", grant["id"]).stdout)["expires_at"]
    assert longer > grant["expires_at"]

    refused = cli("revoke", extension["id"])
    assert refused.returncode == 4, refused  # not allowed / wrong state, one line on stderr
    assert "extension_not_revocable" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    # nothing says "ended" while the access stays: the grant and its extension are as they were
    assert json.loads(cli("status", extension["id"]).stdout)["status"] == "active"
    assert json.loads(cli("status", grant["id"]).stdout)["expires_at"] == longer
    # revoking the grant ends both and takes the access away
    assert cli("revoke", grant["id"]).returncode == 0
    assert json.loads(cli("status", extension["id"]).stdout)["status"] == "revoked"
    assert AGENT not in local.entries()
