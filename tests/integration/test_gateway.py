"""The data-path gateway with real kubectl: the gateway app over HTTPS in front of the emulated
Kubernetes API, grants made through the HTTP API handler on moto, a test clock the gateway reads.

What kubectl sends is checked and forwarded as the covering grant (impersonated); what no grant covers
is refused with a Kubernetes Status kubectl prints; at ``expires_at`` the same kubeconfig is refused at
once and an open watch is closed; a revoke closes it too; a session-bound grant serves its session only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx2
import pytest
from botocore.credentials import Credentials

from eks_jit.emulation.kube_api import KubeApiServer
from eks_jit.emulation.lambda_dispatch import Context
from eks_jit.local import kube_gateway
from eks_jit.local.gateway import Gateway
from eks_jit.local.kube_gateway import LocalKubeGateway
from eks_jit.local.sessions import session_credentials
from eks_jit.local.sigv4 import Identity
from eks_jit.local.stack import GATEWAY_ROLE
from eks_jit.server.adapters.holds_api import ApiHolds
from eks_jit.server.adapters.session_log import DynamoSessionLog
from eks_jit.server.config import load_catalog
from eks_jit.server.domain.grant import GrantStatus
from eks_jit.server.domain.recording import CommandOutcome
from eks_jit.server.handlers import api
from eks_jit.token import token_for
from tests.conftest import emulated_aws
from tests.integration.test_approval_workflow import notified
from tests.integration.test_gateway_mode import EDIT, RESTART, Gw, write_config
from tests.kube_stub import kubectl
from tests.support import ADMIN, ALICE, ONCALL, ONCALL_SESSION, REGION, FakeClock, wait_until

BOB = "arn:aws:iam::111122223333:user/bob"
KEY = Identity("agent-oncall", "AKIALOCALONCALL00001", "local-secret-oncall", ONCALL)
GATEWAY_KEY = Identity("eks-jit-gateway", "AKIALOCALGATEWAY0001", "local-secret-gateway", GATEWAY_ROLE)
CLUSTER = "prod-gw"


@dataclass
class Through:
    """The world, the running gateway and a kubectl pointed at it."""

    world: Gw
    gateway: LocalKubeGateway
    log: DynamoSessionLog
    tmp: Path

    @property
    def api(self) -> KubeApiServer:
        return self.gateway.clusters[CLUSTER]

    @property
    def server(self) -> str:
        return f"{self.gateway.url}/clusters/{CLUSTER}"

    def token(self, session: str | None = None, cluster: str = CLUSTER, key: Identity = KEY) -> str:
        creds = (
            session_credentials(key.access_key_id, key.secret_access_key, session)
            if session
            else Credentials(key.access_key_id, key.secret_access_key)
        )
        token, _ = token_for(cluster, self.world.clock.now(), region="us-east-1", credentials=creds)
        return token

    def kubeconfig(self, token: str, name: str = "kc") -> Path:
        path = self.tmp / f"{name}.json"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": CLUSTER,
                            "cluster": {"server": self.server, "certificate-authority-data": self.gateway.ca_b64},
                        }
                    ],
                    "users": [{"name": "agent", "user": {"token": token}}],
                    "contexts": [
                        {"name": "c", "context": {"cluster": CLUSTER, "user": "agent", "namespace": "payments"}}
                    ],
                    "current-context": "c",
                }
            )
        )
        return path

    def kubectl(self, *args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        config = kubeconfig or self.kubeconfig(self.token())
        command = [kubectl(), "--kubeconfig", str(config), "--cache-dir", str(self.tmp / "cache"), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    def http(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx2.Response:
        headers = {"authorization": f"Bearer {token or self.token()}", **kw.pop("headers", {})}
        ca = self.gateway.server.ca_pem
        import ssl

        with httpx2.Client(verify=ssl.create_default_context(cadata=ca), timeout=30) as client:
            return client.request(method, self.server + path, headers=headers, **kw)

    def grant(self, body: dict[str, Any], caller: str = ONCALL_SESSION) -> dict[str, Any]:
        status, grant = self.world.call("POST", "/v1/grants", body=body, caller=caller)
        assert status == 201 and grant["status"] in ("active", "pending_approval"), grant
        return grant


@contextlib.contextmanager
def running(tmp_path: Path, configs: dict[str, Path], stream_limit: float | None = None) -> Iterator[Through]:
    """The gateway over HTTPS in front of the emulated API, on moto, for ``configs`` (entry and gateway)."""
    catalog = load_catalog(configs["gateway"])
    with emulated_aws(catalog) as resources:
        world = Gw(
            deps=None,  # type: ignore[arg-type]  # set by switch
            clock=FakeClock(),
            eks=boto3.client("eks"),
            ddb=boto3.client("dynamodb"),
            scheduler=boto3.client("scheduler"),
        )
        world.configs, world.resources = configs, resources
        world.switch("gateway", EKS_JIT_GATEWAY_ROLE_ARN=GATEWAY_KEY.principal_arn)
        log = DynamoSessionLog(world.ddb, resources.table)
        # the HTTP API over SigV4, for the one call the gateway makes to it (POST /v1/holds)
        api_gateway = Gateway(
            0, api.handler, {GATEWAY_KEY.access_key_id: GATEWAY_KEY}, lambda: Context("eks-jit-api"), region=REGION
        )
        api_gateway.start()
        signing = Credentials(GATEWAY_KEY.access_key_id, GATEWAY_KEY.secret_access_key)
        gateway = kube_gateway.start(
            catalog,
            world.deps.store,
            {KEY.access_key_id: KEY},
            world.clock,
            session_log=log,
            policies=world.deps.policies,
            stream_check_seconds=0.2,
            stream_limit_seconds=stream_limit,
            kube_clock=world.clock.now,
            holds=ApiHolds(api_gateway.url, REGION, lambda: signing),
        )
        try:
            yield Through(world, gateway, log, tmp_path)
        finally:
            gateway.stop()
            api_gateway.stop()


@pytest.fixture
def through(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Through]:
    """``@pytest.mark.stream_limit(seconds)`` gives the gateway a stream limit."""
    marker = request.node.get_closest_marker("stream_limit")
    configs = {mode: write_config(tmp_path / mode, mode) for mode in ("entry", "gateway")}
    with running(tmp_path, configs, marker.args[0] if marker else None) as t:
        yield t


def watching(t: Through) -> subprocess.Popen[str]:
    """``kubectl get deploy -w`` in payments, left running."""
    config = t.kubeconfig(t.token())
    return subprocess.Popen(
        [kubectl(), "--kubeconfig", str(config), "-n", "payments", "get", "deploy", "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def deployment(t: Through) -> dict[str, Any]:
    return t.api.cluster.object("deployments", "payments", "payments-api")


# -- what passes, and as whom ------------------------------------------------------------------------


def test_rollout_restart_passes_as_the_grant_and_changes_the_deployment(through: Through) -> None:
    grant = through.grant(RESTART)
    result = through.kubectl("-n", "payments", "rollout", "restart", "deployment/payments-api")
    assert result.returncode == 0, result.stderr
    assert "kubectl.kubernetes.io/restartedAt" in deployment(through)["spec"]["template"]["metadata"]["annotations"]
    patch = next(s for s in through.api.cluster.seen if s.method == "PATCH")
    assert patch.user == "eks-jit:grant"  # one name: RBAC can then limit the gateway to impersonating it
    assert list(patch.groups) == ["eks-jit:rollout-restart:payments"]
    assert {k: list(v) for k, v in patch.extra.items()} == {
        "eks-jit.io/grant-id": [grant["id"]],
        "eks-jit.io/principal": [ONCALL],
    }  # the local identity signs with its static keys here: no session
    assert patch.authenticated  # with the gateway's own credential, which only the gateway holds
    assert patch.path == "/apis/apps/v1/namespaces/payments/deployments/payments-api"


def test_what_the_grant_does_not_cover_is_refused_with_a_status_kubectl_prints(through: Through) -> None:
    through.grant(RESTART)
    before = deployment(through)
    image = through.kubectl("-n", "payments", "set", "image", "deployment/payments-api", "app=evil:1")
    assert image.returncode == 1 and "may change only" in image.stderr, image.stderr
    secrets = through.kubectl("-n", "payments", "get", "secrets")
    assert secrets.returncode == 1
    assert "Error from server (Forbidden): eks-jit refuses list secrets in namespace payments" in secrets.stderr
    orders = through.kubectl("-n", "orders", "get", "pods")
    assert orders.returncode == 1 and "namespace orders is not payments" in orders.stderr, orders.stderr
    assert deployment(through) == before
    forwarded = {(s.method, s.path) for s in through.api.cluster.seen}
    assert not any("secrets" in p or "orders" in p for _, p in forwarded)
    assert not any(m == "PATCH" for m, _ in forwarded)


def test_every_request_of_the_grant_is_recorded_allowed_or_refused(through: Through) -> None:
    grant = through.grant(RESTART)
    assert through.kubectl("-n", "payments", "rollout", "restart", "deployment/payments-api").returncode == 0
    assert through.kubectl("-n", "payments", "get", "secrets").returncode == 1
    recorded = through.log.commands(grant["id"])[0]
    patch = next(c for c in recorded if c.verb == "patch")
    assert (patch.outcome, patch.status, patch.principal) == (CommandOutcome.ALLOWED, 200, ONCALL)
    assert patch.path == "/apis/apps/v1/namespaces/payments/deployments/payments-api"
    assert "restartedAt" in (patch.body or "") and patch.summary == "Deployment payments-api"
    refused = next(c for c in recorded if c.path.endswith("/secrets"))
    assert (refused.outcome, refused.status, refused.verb) == (CommandOutcome.REFUSED, 403, "list")
    assert "does not allow list on secrets" in refused.reason and refused.body is None
    # discovery and /version too, and like every record below the cluster (make demo showed them
    # recorded as /clusters/<name>/version)
    assert {"/api", "/apis"} <= {c.path for c in recorded}
    assert not [c.path for c in recorded if c.path.startswith("/clusters/")]


# -- time and revocation ------------------------------------------------------------------------------


def test_at_expires_at_the_same_kubeconfig_is_refused_at_once(through: Through) -> None:
    grant = through.grant(RESTART)
    config = through.kubeconfig(through.token())
    assert through.kubectl("-n", "payments", "get", "deployment", "payments-api", kubeconfig=config).returncode == 0
    through.world.clock.set(datetime_of(grant["expires_at"]))
    again = through.kubectl("-n", "payments", "get", "deployment", "payments-api", kubeconfig=config)
    assert again.returncode == 1 and "expired at" in again.stderr, again.stderr


def test_a_watch_open_at_expiry_is_closed(through: Through) -> None:
    grant = through.grant(RESTART)
    watch = watching(through)
    try:
        wait_until(lambda: through.api.cluster.open_streams() == 1)
        through.world.clock.set(datetime_of(grant["expires_at"]))
        assert watch.wait(timeout=15) == 0  # kubectl ends a watch the server ends, with 0
        wait_until(lambda: through.api.cluster.open_streams() == 0)
    finally:
        watch.kill()
    watched = [c for c in through.log.commands(grant["id"])[0] if c.verb == "watch"]
    assert len(watched) == 1 and "ended by grant expired" in watched[0].summary


def test_a_watch_is_closed_when_the_grant_is_revoked(through: Through) -> None:
    grant = through.grant(RESTART)
    watch = watching(through)
    try:
        wait_until(lambda: through.api.cluster.open_streams() == 1)
        status, _ = through.world.call(
            "POST", f"/v1/grants/{grant['id']}/revoke", body={"reason": "done"}, caller=ADMIN
        )
        assert status == 200
        started = time.monotonic()
        assert watch.wait(timeout=15) == 0
        assert time.monotonic() - started < 5
    finally:
        watch.kill()
    assert through.kubectl("-n", "payments", "get", "deploy").returncode == 1


@pytest.mark.stream_limit(1.0)
def test_a_watch_ends_at_the_stream_limit_and_kubectl_may_open_another(through: Through) -> None:
    grant = through.grant(RESTART)
    config = through.kubeconfig(through.token())
    started = time.monotonic()
    watch = through.kubectl("-n", "payments", "get", "deploy", "-w", kubeconfig=config)
    assert watch.returncode == 0 and 0.9 < time.monotonic() - started < 10, watch.stderr
    watched = [c for c in through.log.commands(grant["id"])[0] if c.verb == "watch"]
    assert "ended by stream limit" in watched[0].summary
    assert through.kubectl("-n", "payments", "get", "deploy", kubeconfig=config).returncode == 0


# -- sessions -------------------------------------------------------------------------------------------


def test_a_session_bound_grant_serves_its_session_only(through: Through) -> None:
    through.grant({**RESTART, "session": "incident-4711"})
    mine = through.kubectl(
        "-n", "payments", "get", "deploy", kubeconfig=through.kubeconfig(through.token("incident-4711"), "mine")
    )
    assert mine.returncode == 0, mine.stderr
    other = through.kubectl(
        "-n", "payments", "get", "deploy", kubeconfig=through.kubeconfig(through.token("incident-4712"), "other")
    )
    assert other.returncode == 1 and "bound to session incident-4711, not incident-4712" in other.stderr
    bare = through.kubectl("-n", "payments", "get", "deploy", kubeconfig=through.kubeconfig(through.token(), "bare"))
    assert bare.returncode == 1 and "bound to session incident-4711" in bare.stderr
    seen = next(s for s in through.api.cluster.seen if s.method == "GET" and "deployments" in s.path)
    assert list(seen.extra["eks-jit.io/session"]) == ["incident-4711"]


# -- what the gateway never lets through -----------------------------------------------------------------


def test_a_caller_may_not_impersonate(through: Through) -> None:
    through.grant(RESTART)
    for header in ("Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-scopes"):
        answer = through.http("GET", "/apis/apps/v1/namespaces/payments/deployments", headers={header: "system:admin"})
        assert answer.status_code == 403 and answer.json()["reason"] == "Forbidden", answer.text
    assert not through.api.cluster.seen


def test_a_patch_with_two_content_types_is_refused(through: Through) -> None:
    through.grant(RESTART)
    path = "/apis/apps/v1/namespaces/payments/deployments/payments-api"
    patch = b'{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"x"}}}}}'
    headers = [
        ("authorization", f"Bearer {through.token()}"),
        ("content-type", "application/strategic-merge-patch+json"),
        ("content-type", "application/apply-patch+yaml"),
    ]
    import ssl

    with httpx2.Client(verify=ssl.create_default_context(cadata=through.gateway.server.ca_pem)) as client:
        answer = client.patch(through.server + path, content=patch, headers=headers)
    assert answer.status_code == 400 and "more than one Content-Type" in answer.json()["message"]
    assert not through.api.cluster.seen


def test_tokens_that_do_not_verify_are_401(through: Through) -> None:
    through.grant(RESTART)
    stranger = Identity("x", "AKIASTRANGER00000001", "other", ONCALL)
    for token in (
        "k8s-aws-v1.bm90IGEgdXJs",
        through.token(cluster="prod-eks"),  # signed for another cluster
        through.token(key=Identity(KEY.name, KEY.access_key_id, "wrong-secret", ONCALL)),
        through.token(key=stranger),
    ):
        answer = through.http("GET", "/api/v1/namespaces/payments/pods", token=token)
        assert answer.status_code == 401 and answer.json()["kind"] == "Status", answer.text
    expired = through.token()
    through.world.clock.advance(timedelta(minutes=15))
    assert through.http("GET", "/api", token=expired).status_code == 401
    assert not through.api.cluster.seen


def test_paths_the_api_server_could_read_otherwise_are_refused(through: Through) -> None:
    through.grant(RESTART)
    for path in (
        "/api/v1/namespaces/payments%2F..%2Forders/pods",
        "/api/v1/namespaces/payments/../orders/pods",
        "/api/v1/namespaces//pods",
    ):
        answer = through.http("GET", path)
        assert answer.status_code in (400, 403) and answer.json()["kind"] == "Status", (path, answer.text)
    assert not through.api.cluster.seen


def test_no_grant_no_discovery_and_no_other_cluster(through: Through) -> None:
    assert through.http("GET", "/api").status_code == 403
    through.grant(RESTART)
    assert through.http("GET", "/api").status_code == 200
    elsewhere = httpx2.get(
        f"{through.gateway.url}/clusters/prod-eks/api",
        headers={"authorization": f"Bearer {through.token(cluster='prod-eks')}"},
        verify=__import__("ssl").create_default_context(cadata=through.gateway.server.ca_pem),
    )
    assert elsewhere.status_code == 404  # an entry-mode cluster is not behind the gateway


def test_the_upstream_refuses_anyone_but_the_gateway(through: Through) -> None:
    import ssl

    with httpx2.Client(verify=ssl.create_default_context(cadata=through.api.ca_pem)) as client:
        direct = client.get(
            through.api.url + "/api/v1/namespaces/payments/secrets",
            headers={"authorization": f"Bearer {through.token()}"},
        )
    assert direct.status_code == 401


def datetime_of(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- masking (issue 18) -----------------------------------------------------------------------------------


def edit_grant(t: Through) -> dict[str, Any]:
    grant = t.grant(EDIT)
    assert grant["status"] == "pending_approval"
    notified(t.world, grant["id"])
    status, _ = t.world.call("POST", f"/v1/grants/{grant['id']}/approve", body={}, caller=BOB)
    assert status == 200
    wait_until(lambda: t.world.deps.store.get(grant["id"]).status is GrantStatus.ACTIVE)
    return grant


def test_a_secret_read_through_the_gateway_keeps_its_keys_and_masks_its_values(through: Through) -> None:
    grant = edit_grant(through)
    shown = through.kubectl("-n", "payments", "get", "secret", "payments-db", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    secret = json.loads(shown.stdout)
    assert set(secret["data"]) == {"password", "username"} and set(secret["data"].values()) == {"****"}
    stored = through.api.cluster.object("secrets", "payments", "payments-db")["data"]["password"]
    assert stored not in shown.stdout
    as_yaml = through.kubectl("-n", "payments", "get", "secrets", "-o", "yaml")
    assert as_yaml.returncode == 0 and stored not in as_yaml.stdout and "password: '****'" in as_yaml.stdout
    recorded = [c for c in through.log.commands(grant["id"])[0] if c.path.endswith("/secrets/payments-db")]
    assert recorded and "masked" in recorded[0].summary


def test_a_pod_log_has_the_key_looking_line_masked_streamed_or_not(through: Through) -> None:
    edit_grant(through)
    logs = through.kubectl("-n", "payments", "logs", "deployment/payments-api")
    assert logs.returncode == 0, logs.stderr
    assert "AKIAIOSFODNN7EXAMPLE" not in logs.stdout and "****" in logs.stdout
    assert len(logs.stdout.splitlines()) > 1  # the other lines pass


def test_a_secret_written_through_the_gateway_is_recorded_masked(through: Through) -> None:
    grant = edit_grant(through)
    body = {"data": {"password": "c3VwZXJzZWNyZXQ="}}
    answer = through.http(
        "PATCH",
        "/api/v1/namespaces/payments/secrets/payments-db",
        content=json.dumps({"kind": "Secret", "apiVersion": "v1", **body}),
        headers={"content-type": "application/merge-patch+json"},
    )
    # the emulation patches deployments only (405 here): what is checked is the record of the write
    assert answer.status_code in (200, 405) and "c3VwZXJzZWNyZXQ=" not in answer.text
    recorded = next(c for c in through.log.commands(grant["id"])[0] if c.verb == "patch")
    assert "c3VwZXJzZWNyZXQ=" not in (recorded.body or "") and "****" in (recorded.body or "")


def test_protobuf_is_never_asked_for_so_every_answer_can_be_read(through: Through) -> None:
    through.grant(RESTART)
    accept = "application/vnd.kubernetes.protobuf, application/json"
    answer = through.http("GET", "/apis/apps/v1/namespaces/payments/deployments", headers={"accept": accept})
    assert answer.status_code == 200
    assert through.api.cluster.seen[-1].accept == "application/json"


# -- guardrails (issue 18) ----------------------------------------------------------------------------


def test_kubectl_exec_is_blocked_by_the_guardrail_under_edit(through: Through) -> None:
    grant = edit_grant(through)
    pod = "payments-api-7c9d8f6b5d-x2k4p"
    shell = through.kubectl("-n", "payments", "exec", pod, "--", "sh", "-c", "id")
    assert shell.returncode != 0
    assert "agents-never-exec" in shell.stderr, shell.stderr
    assert not any("/exec" in s.path for s in through.api.cluster.seen)
    blocked = [c for c in through.log.commands(grant["id"])[0] if c.outcome is CommandOutcome.BLOCKED]
    assert blocked and blocked[0].path.endswith(f"/pods/{pod}/exec")


HOLD_ID = re.compile(r"approval required: eks-jit approve ([0-9a-f-]{36})")


def held_id(stderr: str) -> str:
    found = HOLD_ID.search(stderr)
    assert found, stderr
    return found.group(1)


def test_deleting_the_deployment_is_held_then_approved_passes_once(through: Through) -> None:
    grant = edit_grant(through)
    held = through.kubectl("-n", "payments", "delete", "deployment", "payments-api")
    assert held.returncode == 1 and "holds delete apps/deployments payments-api" in held.stderr, held.stderr
    hold = held_id(held.stderr)
    assert deployment(through)["metadata"]["name"] == "payments-api"
    assert not any(s.method == "DELETE" for s in through.api.cluster.seen)
    # asked again before anyone decided: the same approval, not a second one
    again = through.kubectl("-n", "payments", "delete", "deployment", "payments-api")
    assert held_id(again.stderr) == hold
    _, shown = through.world.call("GET", f"/v1/grants/{hold}", caller=ALICE)
    assert (shown["scope"], shown["status"], shown["command"]["grant"]) == ("command", "pending_approval", grant["id"])
    assert shown["command"]["path"] == "/apis/apps/v1/namespaces/payments/deployments/payments-api"
    assert shown["decision"]["approvers"] == ["group:payments-approvers"]
    # nobody approves their own held command
    status, refused = through.world.call("POST", f"/v1/grants/{hold}/approve", body={}, caller=ONCALL_SESSION)
    assert status == 403, refused
    notified(through.world, hold)
    status, approved = through.world.call("POST", f"/v1/grants/{hold}/approve", body={}, caller=BOB)
    assert status == 200, approved
    wait_until(lambda: through.world.deps.store.get(hold).status is GrantStatus.ACTIVE)
    # the held grant gives nothing else: another delete is held on its own
    other = through.kubectl("-n", "payments", "delete", "deployment", "payments-worker")
    assert other.returncode == 1 and held_id(other.stderr) != hold
    passed = through.kubectl("-n", "payments", "delete", "deployment", "payments-api", "--wait=false")
    assert passed.returncode == 0, passed.stderr
    assert 'deployment.apps "payments-api" deleted' in passed.stdout
    assert [s.method for s in through.api.cluster.seen].count("DELETE") == 1
    used = through.world.deps.store.get(hold)
    assert used.status is GrantStatus.EXPIRED and "used once" in used.status_reason
    # once: the same request again needs a new approval
    twice = through.kubectl("-n", "payments", "delete", "deployment", "payments-api", "--wait=false")
    assert twice.returncode == 1 and held_id(twice.stderr) not in (hold,), twice.stderr
    outcomes = [c.outcome for c in through.log.commands(grant["id"])[0] if c.verb == "delete"]
    assert CommandOutcome.APPROVED in outcomes and outcomes.count(CommandOutcome.HELD) >= 3
