"""`active` means EKS accepted the entry and its policies; the cluster's authenticator follows
only after a propagation delay (EKS: "may take several seconds"), and so does revocation.

The emulation models the delay; here an agent's first kubectl call meets 401 until the entry
has propagated, and ``retry_while_propagating`` rides it out. Time for the agent is a fake
clock starting at the moment EKS accepted the entry, so nothing depends on the real clock.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import Message

import pytest

from eks_jit.client import retry_while_propagating
from eks_jit.emulation import eks_access_entries
from tests.support import ONCALL, ONCALL_SESSION, REGION

DELAY = 4.0
RESTART = {
    "cluster": "prod-eks",
    "namespace": "payments",
    "scope": "rollout-restart",
    "duration": "15m",
    "reason": "readiness probe failing on payments-api",
}


@pytest.fixture
def propagation() -> Iterator[float]:
    eks_access_entries.set_propagation_delay(DELAY)
    yield DELAY
    eks_access_entries.set_propagation_delay(0)


class Agent:
    """An agent whose clock starts when EKS accepted the entry; kubectl asks the emulated
    authenticator at that clock's time and answers 401 as the API server would."""

    def __init__(self, accepted_at: datetime) -> None:
        self.accepted_at = accepted_at
        self.elapsed = 0.0
        self.attempts = 0

    def sleep(self, seconds: float) -> None:
        self.elapsed += seconds

    def monotonic(self) -> float:
        return self.elapsed

    def kubectl_rollout_restart(self) -> list[str]:
        self.attempts += 1
        at = self.accepted_at + timedelta(seconds=self.elapsed)
        mapping = eks_access_entries.authentication("prod-eks", ONCALL, at, region=REGION)
        if mapping is None:
            raise urllib.error.HTTPError("https://prod-eks.example/apis/apps/v1", 401, "Unauthorized", Message(), None)
        return list(mapping.kubernetes_groups)


def request_restart(world) -> dict:
    status, grant = world.call("POST", "/v1/grants", body=RESTART, caller=ONCALL_SESSION)
    assert status == 201 and grant["status"] == "active", grant
    return grant


def accepted_at(world) -> datetime:
    return world.eks.describe_access_entry(clusterName="prod-eks", principalArn=ONCALL)["accessEntry"]["modifiedAt"]


def test_the_first_calls_after_active_are_retried_until_the_entry_has_propagated(world, propagation) -> None:
    request_restart(world)
    agent = Agent(accepted_at(world))

    # Without the helper, the agent's first call right after `active` is refused
    with pytest.raises(urllib.error.HTTPError) as first:
        agent.kubectl_rollout_restart()
    assert first.value.code == 401

    # With it, the call goes through once the entry has propagated, and not before
    groups = retry_while_propagating(agent.kubectl_rollout_restart, sleep=agent.sleep, monotonic=agent.monotonic)
    assert groups == ["eks-jit:rollout-restart:payments"]
    assert DELAY <= agent.elapsed <= DELAY + 1.0  # retried each second; timestamps are to the millisecond


def test_a_bound_shorter_than_the_propagation_surfaces_the_401(world, propagation) -> None:
    request_restart(world)
    agent = Agent(accepted_at(world))
    with pytest.raises(urllib.error.HTTPError):
        retry_while_propagating(
            agent.kubectl_rollout_restart, within=DELAY - 2, sleep=agent.sleep, monotonic=agent.monotonic
        )


def test_revoked_access_still_authenticates_for_the_propagation_delay(world, propagation) -> None:
    grant = request_restart(world)
    accepted = accepted_at(world)
    settled = accepted + timedelta(seconds=DELAY + 0.01)
    assert eks_access_entries.authentication("prod-eks", ONCALL, settled, region=REGION) is not None

    status, revoked = world.call("POST", f"/v1/grants/{grant['id']}/revoke", body={"reason": "done"})
    assert status == 200 and revoked["status"] == "revoked"
    assert world.entry(ONCALL) is None  # the API says gone at once
    # but the authenticator goes on mapping the agent until the deletion has propagated
    removed_after = max(settled, datetime.now(accepted.tzinfo))
    assert eks_access_entries.authentication("prod-eks", ONCALL, removed_after, region=REGION) is not None
    gone = removed_after + timedelta(seconds=DELAY + 0.01)
    assert eks_access_entries.authentication("prod-eks", ONCALL, gone, region=REGION) is None
