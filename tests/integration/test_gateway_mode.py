"""A cluster whose ``access_mode`` is ``gateway``: the same API, policies, approvals and lifecycle,
but no access entry for the agent (the grant record is the access; the gateway reads it), a
connection that points at eks-jit's gateway, and grants that may be bound to one STS session.
Through the HTTP API handler, against moto (DynamoDB, EKS with the access-entry emulation)."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from eks_jit.cli import AUDIT_COLUMNS, audit_rows
from eks_jit.server import bootstrap
from eks_jit.server.adapters.sns import summary
from eks_jit.server.config import ConfigError, load_catalog, read_environment
from eks_jit.server.domain.grant import GrantStatus, summary_rows
from eks_jit.server.handlers import sweeper
from eks_jit.server.logic.ports import Timing
from tests.conftest import World, emulated_aws
from tests.integration.test_approval_workflow import notified
from tests.support import ADMIN, EXAMPLE_CONFIG, ONCALL, ONCALL_SESSION, FakeClock, LambdaContextStub, wait_until

GATEWAY = "https://gateway.eks-jit.example.com"
GATEWAY_CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n").decode()
GW_CLUSTER = """  prod-gw:
    account: "111122223333"
    region: eu-west-1
    environment: production
    namespaces: [payments, orders]
    access_mode: {mode}
"""
RESTART = {
    "cluster": "prod-gw",
    "namespace": "payments",
    "scope": "rollout-restart",
    "duration": "5m",
    "reason": "probe",
}
EDIT = {**RESTART, "scope": "edit", "duration": "30m", "reason": "hotfix"}
ON_ENTRY = {**RESTART, "cluster": "prod-eks"}


def write_config(folder: Path, mode: str) -> Path:
    """The example configuration plus cluster ``prod-gw`` in ``mode`` (its policies apply to it as to
    prod-eks: they test the environment, not the cluster's name)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = EXAMPLE_CONFIG.read_text().replace("clusters:\n", "clusters:\n" + GW_CLUSTER.format(mode=mode), 1)
    (folder / "eks-jit.yaml").write_text(text)
    (folder / "policies.cedar").write_text((EXAMPLE_CONFIG.parent / "policies.cedar").read_text())
    return folder / "eks-jit.yaml"


class Gw(World):
    configs: dict[str, Path]
    resources: Any

    def switch(self, mode: str, **env: str) -> None:
        """The same AWS, the deployment reconfigured: prod-gw in ``mode``."""
        environment = self.resources.environment(self.configs[mode], public_url="https://eks-jit.example.com/prod")
        environment |= {"EKS_JIT_GATEWAY_ENDPOINT": GATEWAY, "EKS_JIT_GATEWAY_CA": GATEWAY_CA} | env
        self.deps = bootstrap.build(read_environment(environment), clock=self.clock, timing=Timing(lease_backoff=0.01))
        bootstrap.use(self.deps)

    def sweep(self) -> None:
        sweeper.handler({}, LambdaContextStub())


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gw]:
    configs = {mode: write_config(tmp_path / mode, mode) for mode in ("entry", "gateway")}
    with emulated_aws(load_catalog(configs["gateway"])) as resources:
        world = Gw(
            deps=None,  # type: ignore[arg-type]  # set by switch
            clock=FakeClock(),
            eks=boto3.client("eks"),
            ddb=boto3.client("dynamodb"),
            scheduler=boto3.client("scheduler"),
        )
        world.configs, world.resources = configs, resources
        world.switch("gateway")
        yield world
        bootstrap.use(None)


def entries(world: World, cluster: str = "prod-gw") -> list[str]:
    return world.all_entries(cluster)


# -- the catalog and the answers say the mode ------------------------------------------------------------


def test_the_catalog_says_each_clusters_mode(gw: Gw) -> None:
    status, catalog = gw.call("GET", "/v1/catalog", caller=ONCALL)
    assert status == 200
    modes = {(e["cluster"], e["namespace"], e["scope"]): e["access_mode"] for e in catalog["entries"]}
    assert modes[("prod-gw", "payments", "rollout-restart")] == "gateway"
    assert modes[("prod-eks", "payments", "rollout-restart")] == "entry"
    assert {m for (c, _, _), m in modes.items() if c == "prod-gw"} == {"gateway"}


def test_an_auto_approved_grant_on_a_gateway_cluster_is_active_with_no_access_entry(gw: Gw) -> None:
    status, grant = gw.call("POST", "/v1/grants", body=RESTART, caller=ONCALL_SESSION)
    assert (status, grant["status"], grant["access_mode"]) == (201, "active", "gateway"), grant
    assert ONCALL not in entries(gw)  # the agent's role has no entry: the gateway reads the grant
    assert grant["connection"] == {
        "cluster": "prod-gw",
        "region": "eu-west-1",
        "endpoint": f"{GATEWAY}/clusters/prod-gw",
        "certificate_authority": GATEWAY_CA,
        "access_mode": "gateway",
    }
    assert grant["session"] is None
    # the lifecycle is unchanged: revocation schedule, events, revoke
    assert any(grant["id"] in name for name in gw.schedules())
    status, revoked = gw.call("POST", f"/v1/grants/{grant['id']}/revoke", body={"reason": "done"}, caller=ONCALL)
    assert (status, revoked["status"]) == (200, "revoked") and ONCALL not in entries(gw)


def test_an_entry_cluster_keeps_its_access_entry_and_says_entry(gw: Gw) -> None:
    status, grant = gw.call("POST", "/v1/grants", body=ON_ENTRY, caller=ONCALL_SESSION)
    assert (status, grant["status"], grant["access_mode"]) == (201, "active", "entry"), grant
    assert grant["connection"]["access_mode"] == "entry"
    assert grant["connection"]["endpoint"] != f"{GATEWAY}/clusters/prod-eks"
    assert ONCALL in entries(gw, "prod-eks")


def test_an_approved_grant_on_a_gateway_cluster_activates_without_an_entry(gw: Gw) -> None:
    _, grant = gw.call("POST", "/v1/grants", body={**EDIT, "session": "task-42"}, caller=ONCALL_SESSION)
    assert grant["status"] == "pending_approval" and grant["session"] == "task-42"
    notified(gw, grant["id"])
    bob = "arn:aws:iam::111122223333:user/bob"
    status, approved = gw.call("POST", f"/v1/grants/{grant['id']}/approve", body={}, caller=bob)
    assert status == 200, approved
    wait_until(lambda: gw.deps.store.get(grant["id"]).status is GrantStatus.ACTIVE)  # the workflow activates it
    assert ONCALL not in entries(gw)


def test_without_a_gateway_endpoint_the_grant_stands_without_a_connection(gw: Gw) -> None:
    gw.switch("gateway", EKS_JIT_GATEWAY_ENDPOINT="")
    status, grant = gw.call("POST", "/v1/grants", body=RESTART, caller=ONCALL_SESSION)
    assert (status, grant["status"], grant["connection"]) == (201, "active", None)


# -- session-bound grants ---------------------------------------------------------------------------------


def test_a_session_bound_grant_keeps_its_session_everywhere(gw: Gw) -> None:
    status, grant = gw.call("POST", "/v1/grants", body={**RESTART, "session": "task-42"}, caller=ONCALL_SESSION)
    assert (status, grant["status"], grant["session"]) == (201, "active", "task-42"), grant
    _, detail = gw.call("GET", f"/v1/grants/{grant['id']}", caller=ONCALL)
    assert detail["session"] == "task-42"
    requested = next(e for e in detail["events"] if e["type"] == "requested")
    assert requested["detail"]["session"] == "task-42"  # in the append-only history
    assert gw.deps.store.get(grant["id"]).session == "task-42"  # read back from DynamoDB
    _, listed = gw.call("GET", "/v1/grants", caller=ONCALL)
    assert next(g for g in listed["grants"] if g["id"] == grant["id"])["session"] == "task-42"
    since, until = gw.clock.start - timedelta(hours=1), gw.clock.now() + timedelta(hours=1)
    _, audit = gw.call("GET", "/v1/audit", query={"since": since.isoformat(), "until": until.isoformat()}, caller=ADMIN)
    assert next(r for r in audit["rows"] if r["grant"]["id"] == grant["id"])["grant"]["session"] == "task-42"


def test_an_extension_inherits_the_session(gw: Gw) -> None:
    _, grant = gw.call("POST", "/v1/grants", body={**RESTART, "session": "task-42"}, caller=ONCALL_SESSION)
    status, extension = gw.call(
        "POST", f"/v1/grants/{grant['id']}/extend", body={"duration": "5m", "reason": "still rolling"}, caller=ONCALL
    )
    assert status == 201 and extension["session"] == "task-42", extension


def test_approvers_are_shown_the_session(gw: Gw) -> None:
    _, grant = gw.call("POST", "/v1/grants", body={**EDIT, "session": "task-42"}, caller=ONCALL_SESSION)
    stored = gw.deps.store.get(grant["id"])
    assert ("Only for the STS session", "task-42") in summary_rows(stored)  # Slack and the approval page
    assert "Only for the STS session: task-42" in summary(stored).splitlines()  # the email


BAD_SESSIONS = ["x", "a" * 65, "task 42", "task/42", "t\u00e4sk", "", 42]


@pytest.mark.parametrize("session", BAD_SESSIONS, ids=repr)
def test_a_session_that_is_no_sts_session_name_is_refused_first(gw: Gw, session: Any) -> None:
    before = sorted(map(str, gw.table_items()))
    # a bad duration and a short reason too: the session is checked as the body is parsed, like the context
    body = {**RESTART, "session": session, "duration": "forever", "reason": "x"}
    status, error = gw.call("POST", "/v1/grants", body=body, caller=ONCALL_SESSION)
    assert (status, error["code"], error["field"]) == (400, "invalid_session", "session"), error
    assert sorted(map(str, gw.table_items())) == before


def test_a_session_on_an_entry_cluster_is_refused_and_says_why(gw: Gw) -> None:
    before = sorted(map(str, gw.table_items()))
    status, error = gw.call("POST", "/v1/grants", body={**ON_ENTRY, "session": "task-42"}, caller=ONCALL_SESSION)
    assert (status, error["code"], error["field"]) == (400, "session_not_supported", "session"), error
    assert "access entry" in error["message"] and "every" in error["message"]
    assert sorted(map(str, gw.table_items())) == before and ONCALL not in entries(gw, "prod-eks")
    # the dry run answers the same
    status, error = gw.call(
        "POST", "/v1/grants", body={**ON_ENTRY, "session": "task-42", "dry_run": True}, caller=ONCALL_SESSION
    )
    assert (status, error["code"]) == (400, "session_not_supported")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"namespace": "kube-system"}, "unknown_namespace"),
        ({"scope": "nope"}, "unknown_scope"),
        ({"duration": "forever"}, "invalid_duration"),
        ({"duration": "13h"}, "duration_exceeds_maximum"),
        ({"reason": "x"}, "session_not_supported"),  # before the reason, as bad input about the target
    ],
)
def test_session_not_supported_comes_after_the_target_and_duration(gw: Gw, change: dict, code: str) -> None:
    body = {**ON_ENTRY, "session": "task-42", **change}
    status, error = gw.call("POST", "/v1/grants", body=body, caller=ONCALL_SESSION)
    assert (status, error["code"]) == (400, code), error


def test_the_dry_run_says_the_session_and_the_mode(gw: Gw) -> None:
    body = {**RESTART, "session": "task-42", "dry_run": True}
    status, answer = gw.call("POST", "/v1/grants", body=body, caller=ONCALL_SESSION)
    assert status == 200, answer
    assert (answer["decision"], answer["session"], answer["access_mode"]) == ("auto", "task-42", "gateway")
    _, answer = gw.call("POST", "/v1/grants", body={**ON_ENTRY, "dry_run": True}, caller=ONCALL_SESSION)
    assert (answer["session"], answer["access_mode"]) == (None, "entry")


def test_the_session_is_part_of_the_idempotent_request(gw: Gw) -> None:
    key = {"Idempotency-Key": "retry-me"}
    first_status, first = gw.call(
        "POST", "/v1/grants", body={**RESTART, "session": "task-42"}, caller=ONCALL_SESSION, headers=key
    )
    again_status, again = gw.call(
        "POST", "/v1/grants", body={**RESTART, "session": "task-42"}, caller=ONCALL_SESSION, headers=key
    )
    assert (first_status, again_status, again["id"]) == (201, 201, first["id"])
    status, error = gw.call(
        "POST", "/v1/grants", body={**RESTART, "session": "task-43"}, caller=ONCALL_SESSION, headers=key
    )
    assert (status, error["code"]) == (409, "idempotency_key_reused")
    status, error = gw.call("POST", "/v1/grants", body=RESTART, caller=ONCALL_SESSION, headers=key)
    assert (status, error["code"]) == (409, "idempotency_key_reused")


# -- a cluster's mode changes -----------------------------------------------------------------------------


def test_switching_a_cluster_to_gateway_removes_the_entry_its_grants_made(gw: Gw) -> None:
    gw.switch("entry")
    _, grant = gw.call("POST", "/v1/grants", body=RESTART, caller=ONCALL_SESSION)
    assert grant["status"] == "active" and ONCALL in entries(gw)
    gw.switch("gateway")
    gw.sweep()  # reconciles every managed principal: on a gateway cluster, to nothing
    assert ONCALL not in entries(gw)
    _, after = gw.call("GET", f"/v1/grants/{grant['id']}", caller=ONCALL)
    assert after["status"] == "active" and after["access_mode"] == "gateway"  # the grant is the access now


def test_a_session_bound_grant_never_becomes_an_access_entry(gw: Gw) -> None:
    _, grant = gw.call("POST", "/v1/grants", body={**RESTART, "session": "task-42"}, caller=ONCALL_SESSION)
    _, unbound = gw.call("POST", "/v1/grants", body={**RESTART, "scope": "view"}, caller=ONCALL_SESSION)
    assert grant["status"] == unbound["status"] == "active"
    gw.switch("entry")  # an entry would give every session of the role what one session was granted
    status, _ = gw.call("POST", f"/v1/grants/{unbound['id']}/revoke", body={}, caller=ONCALL)
    assert status == 200
    _, again = gw.call("POST", "/v1/grants", body={**RESTART, "scope": "view"}, caller=ONCALL_SESSION)
    assert again["status"] == "active"
    found = gw.entry(ONCALL, "prod-gw")
    assert found is not None and list(found["policies"]) == ["AmazonEKSViewPolicy"]
    assert found["groups"] == []  # no rollout-restart group: the bound grant gave the entry nothing


def test_a_gateway_cluster_refuses_a_scope_the_gateway_cannot_enforce(tmp_path: Path) -> None:
    config = write_config(tmp_path, "gateway")
    text = config.read_text().replace(
        "scopes:\n",
        "scopes:\n  nodes:\n    description: Auto Mode nodes\n    access_policies: [AmazonEKSAutoNodePolicy]\n",
    )
    config.write_text(text)
    with pytest.raises(ConfigError, match="scope 'nodes' cannot be used on a gateway cluster"):
        load_catalog(config)
    config.write_text(text.replace("access_mode: gateway", "access_mode: entry"))
    assert load_catalog(config).scopes["nodes"]  # on entry clusters EKS enforces it


def test_an_unknown_access_mode_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="access_mode"):
        load_catalog(write_config(tmp_path, "proxy"))


def test_the_answers_are_json_the_openapi_document_describes(gw: Gw) -> None:
    _, grant = gw.call("POST", "/v1/grants", body={**RESTART, "session": "task-42"}, caller=ONCALL_SESSION)
    document = json.loads((EXAMPLE_CONFIG.parent.parent.parent / "docs" / "openapi.json").read_text())
    schemas = document["components"]["schemas"]
    assert set(grant) <= set(schemas["GrantView"]["properties"])
    assert set(grant["connection"]) <= set(schemas["Connection"]["properties"])


def test_the_audit_csv_has_the_session_and_a_formula_stays_text(gw: Gw) -> None:
    _, grant = gw.call("POST", "/v1/grants", body={**RESTART, "session": "=1+1"}, caller=ONCALL_SESSION)
    assert grant["session"] == "=1+1"  # a valid STS session name
    since, until = gw.clock.start - timedelta(hours=1), gw.clock.now() + timedelta(hours=1)
    _, audit = gw.call("GET", "/v1/audit", query={"since": since.isoformat(), "until": until.isoformat()}, caller=ADMIN)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=AUDIT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(audit_rows([r for r in audit["rows"] if r["grant"]["id"] == grant["id"]]))
    (cells,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert cells["session"] == "'=1+1" and AUDIT_COLUMNS[-4:] == ("session", "commands", "blocked", "held")
