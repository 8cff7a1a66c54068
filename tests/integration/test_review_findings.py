"""Regression tests for what a fresh-eyed review found (docs/threat-model.md, F1-F15)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from eks_jit.server import bootstrap
from eks_jit.server.adapters.slack import request_blocks
from eks_jit.server.logic.lifecycle import on_schedule
from eks_jit.server.logic.sweeper import sweep
from tests.integration.test_approval_workflow import notified
from tests.support import ONCALL, race

RESTART = {
    "cluster": "prod-eks",
    "namespace": "payments",
    "scope": "rollout-restart",
    "duration": "5m",
    "reason": "probe",
}
EDIT = {"cluster": "prod-eks", "namespace": "payments", "scope": "edit", "duration": "30m", "reason": "fix"}


def test_f1_a_role_named_alice_cannot_approve_as_the_user_alice(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=EDIT)
    notified(world, grant["id"])
    status, error = world.call(
        "POST", f"/v1/grants/{grant['id']}/approve", caller="arn:aws:sts::111122223333:assumed-role/alice/evil"
    )
    assert (status, error["code"]) == (403, "not_an_approver")
    assert world.deps.store.get(grant["id"]).approved_by == ()


def test_f2_concurrent_extensions_never_pass_the_policy_maximum(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)  # 5m of a 15m maximum
    extend = {"duration": "5m", "reason": "more"}
    results = race(*(lambda: world.call("POST", f"/v1/grants/{grant['id']}/extend", body=extend) for _ in range(4)))
    assert all(status == 201 for status, _ in results), results
    stored = world.deps.store.get(grant["id"])
    assert stored.duration <= timedelta(minutes=15)
    assert stored.expires_at - stored.activated_at <= timedelta(minutes=15)
    refused = [body for _, body in results if body["status"] == "failed"]
    assert len(refused) == 2 and all("policy maximum" in body["status_reason"] for body in refused)


def test_f3_a_cluster_removed_from_the_configuration_does_not_stop_the_sweeper(world) -> None:
    world.call(
        "POST", "/v1/grants", body={**RESTART, "cluster": "staging-eks", "scope": "view", "duration": "10m"},
        caller="arn:aws:iam::111122223333:user/alice",
    )  # fmt: skip
    _, prod = world.call("POST", "/v1/grants", body=RESTART)
    clusters = {k: v for k, v in world.deps.catalog.clusters.items() if k != "staging-eks"}
    world.deps = replace(world.deps, catalog=world.deps.catalog.model_copy(update={"clusters": clusters}))
    bootstrap.use(world.deps)
    world.clock.advance(timedelta(minutes=6))
    report = sweep(world.deps)
    assert prod["id"] in report.overdue_expired  # the other cluster's overdue grant still ends
    assert world.entry(ONCALL) is None
    assert any("no longer configured" in e for e in report.errors)


def test_f4_an_entry_whose_tag_was_removed_is_reported_not_silently_kept(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    arn = world.eks.describe_access_entry(clusterName="prod-eks", principalArn=ONCALL)["accessEntry"]["accessEntryArn"]
    world.eks.untag_resource(resourceArn=arn, tagKeys=["eks-jit:managed"])
    world.call("POST", f"/v1/grants/{grant['id']}/revoke")
    assert world.deps.store.events(grant["id"])[-1].type == "unmanaged_entry_remains"
    assert any("without the eks-jit tag" in e for e in sweep(world.deps).errors)


def test_f5_an_extension_applied_while_the_revoke_path_waits_is_not_lost(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    old_end = datetime.fromisoformat(grant["expires_at"])
    world.clock.set(old_end - timedelta(seconds=90))
    stored = world.deps.store.get(grant["id"])

    class ExtendWhileSleeping:
        """The clock the revoke path sleeps on: an extension lands during the sleep."""

        def __init__(self, inner) -> None:
            self.inner, self.done = inner, False

        def now(self):
            return self.inner.now()

        def sleep(self, seconds: float) -> None:
            if not self.done:
                self.done = True
                world.call("POST", f"/v1/grants/{grant['id']}/extend", body={"duration": "5m", "reason": "slow"})
            self.inner.sleep(seconds)

    deps = replace(world.deps, clock=ExtendWhileSleeping(world.clock))
    assert stored.status.value == "active"
    result = on_schedule(deps, grant["id"])
    assert result.status.value == "active" and result.expires_at == old_end + timedelta(minutes=5)
    assert world.entry(ONCALL) is not None


def test_f9_an_absurd_duration_is_a_400_not_a_500(world) -> None:
    status, error = world.call("POST", "/v1/grants", body={**RESTART, "duration": "99999999999999h"})
    assert (status, error["code"]) == (400, "invalid_duration")


def test_f11_the_reason_cannot_become_slack_markup(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body={**EDIT, "reason": "<!channel> <https://evil|approve me>"})
    text = str(request_blocks(world.deps.store.get(grant["id"]), []))
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text


def test_zero_length_extensions_are_refused(world) -> None:
    _, grant = world.call("POST", "/v1/grants", body=RESTART)
    status, error = world.call("POST", f"/v1/grants/{grant['id']}/extend", body={"duration": "0s", "reason": "nothing"})
    assert (status, error["code"]) == (400, "invalid_duration")
