"""The emulated Kubernetes API (local mode's upstream for the gateway), driven by real kubectl.

Each test starts the emulation over HTTPS with a fresh CA and a seeded cluster whose clock is a
FakeClock, writes a kubeconfig with that CA and a static token, and runs kubectl as an agent
would: the oldest and the newest minor on the machine (1.27 asks for aggregated discovery
``v2beta1``, 1.33 for ``v2``). Requests that kubectl cannot make (a watch resumed from a given
resourceVersion, repeated impersonation headers without kubectl's own flags) go through
``http.client`` with the same CA.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import os
import re
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from eks_jit.emulation import kube_api, kube_seed, kube_tables
from eks_jit.emulation.kube_api import Cluster, KubeApiServer
from eks_jit.emulation.kube_patch import strategic_merge_patch
from eks_jit.local.https import GRACE
from eks_jit.server.domain.kube_status import REASONS
from tests.kube_stub import KUBECTL_DIR
from tests.support import FakeClock

RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
KUBECTL_MINORS = ("1.27", "1.33")
AWS_ACCESS_KEY_ID = re.compile(r"AKIA[0-9A-Z]{16}")


def kubectl_binary(minor: str) -> str:
    found = KUBECTL_DIR / f"kubectl.{minor}"
    if found.exists():
        return str(found)
    if os.environ.get("EKS_JIT_REQUIRE_KUBECTL"):
        raise RuntimeError(f"kubectl {minor} is required here (EKS_JIT_REQUIRE_KUBECTL) but {found} is missing")
    pytest.skip(f"kubectl {minor} not installed")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(clock: FakeClock) -> Iterator[KubeApiServer]:
    with kube_api.serve(Cluster.seeded(now=clock.now)) as running:
        yield running


@dataclass
class Kubectl:
    binary: str
    kubeconfig: Path
    cache: Path

    def command(self, *args: str) -> list[str]:
        return [self.binary, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache), *args]

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=60, check=False)
        if ok and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def __call__(self, *args: str) -> str:
        return self.run(*args).stdout

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(params=KUBECTL_MINORS, ids=lambda minor: f"kubectl{minor}")
def kubectl(request: pytest.FixtureRequest, api: KubeApiServer, tmp_path: Path) -> Kubectl:
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps(api.kubeconfig(token="static-test-token", namespace="payments")))
    return Kubectl(kubectl_binary(request.param), config, tmp_path / "cache")


def https(api: KubeApiServer, method: str, path: str, headers: list[tuple[str, str]] = (), body: bytes = b"") -> Any:  # type: ignore[assignment]
    """One request with the server's CA; repeated header names are sent as given."""
    url = urlsplit(api.url)
    context = ssl.create_default_context(cadata=api.ca_pem)
    connection = http.client.HTTPSConnection(url.hostname or "", url.port, context=context, timeout=10)
    connection.putrequest(method, path)
    for name, value in headers:
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    return connection, response


def call(api: KubeApiServer, method: str, path: str, **kwargs: Any) -> tuple[int, str, Any]:
    connection, response = https(api, method, path, **kwargs)
    try:
        raw = response.read()
        content_type = response.getheader("Content-Type", "")
        return response.status, content_type, json.loads(raw) if "json" in content_type else raw.decode()
    finally:
        connection.close()


def deployment(api: KubeApiServer, name: str = "payments-api", namespace: str = "payments") -> dict[str, Any]:
    return api.cluster.object("deployments", namespace, name)


def wait_until(condition: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- what kubectl does ----------------------------------------------------------------------------


def test_kubectl_lists_the_payments_deployment(kubectl: Kubectl, api: KubeApiServer) -> None:
    out = kubectl("-n", "payments", "get", "deployments")
    # the server's Table, aged by the emulation's clock (the FakeClock: 12 days after creation)
    assert [line.split() for line in out.splitlines()] == [
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        ["payments-api", "1/1", "1", "1", "12d"],
    ]
    paths = [seen.path for seen in api.cluster.seen]
    assert "/apis/apps/v1/namespaces/payments/deployments" in paths
    assert "/apis/apps/v1" not in paths  # aggregated discovery answered it all in /api and /apis


def test_rollout_restart_sets_the_annotation_and_a_new_generation(kubectl: Kubectl, api: KubeApiServer) -> None:
    before = deployment(api)
    assert RESTART_ANNOTATION not in before["spec"]["template"]["metadata"].get("annotations", {})

    out = kubectl("-n", "payments", "rollout", "restart", "deployment/payments-api")

    assert out.strip() == "deployment.apps/payments-api restarted"
    after = deployment(api)
    restarted_at = after["spec"]["template"]["metadata"]["annotations"][RESTART_ANNOTATION]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", restarted_at)
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert after["spec"]["template"]["spec"] == before["spec"]["template"]["spec"]  # nothing else changed
    (patch,) = [seen for seen in api.cluster.seen if seen.method == "PATCH"]
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert "fieldManager=kubectl-rollout" in patch.query
    assert kubectl("-n", "payments", "rollout", "status", "deployment/payments-api", "--timeout=10s").strip() == (
        'deployment "payments-api" successfully rolled out'
    )


def test_set_image_merges_the_container_by_name(kubectl: Kubectl, api: KubeApiServer) -> None:
    before = deployment(api)
    kubectl("-n", "payments", "set", "image", "deployment/payments-api", "app=registry.example/payments-api:9.9.9")

    after = deployment(api)
    (container,) = after["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/payments-api:9.9.9"
    (old,) = before["spec"]["template"]["spec"]["containers"]
    assert {k: v for k, v in container.items() if k != "image"} == {k: v for k, v in old.items() if k != "image"}
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert after["status"]["observedGeneration"] == after["metadata"]["generation"]


def test_a_patch_that_changes_nothing_keeps_the_resource_version(kubectl: Kubectl, api: KubeApiServer) -> None:
    before = deployment(api)
    kubectl("-n", "payments", "set", "image", "deployment/payments-api", f"app={kube_seed.PAYMENTS_IMAGE}")
    assert deployment(api)["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_a_merge_patch_replaces_lists_and_deletes_with_null(kubectl: Kubectl, api: KubeApiServer) -> None:
    patch = {"spec": {"replicas": 2, "revisionHistoryLimit": None}, "metadata": {"labels": {"tier": "api"}}}
    kubectl("-n", "payments", "patch", "deployment", "payments-api", "--type", "merge", "-p", json.dumps(patch))
    after = deployment(api)
    assert after["spec"]["replicas"] == 2 and "revisionHistoryLimit" not in after["spec"]
    assert after["metadata"]["labels"] == {"app": "payments-api", "tier": "api"}
    (seen,) = [s for s in api.cluster.seen if s.method == "PATCH"]
    assert seen.content_type == "application/merge-patch+json"


def test_a_deleted_deployment_is_gone(kubectl: Kubectl, api: KubeApiServer) -> None:
    printed = kubectl("-n", "payments", "delete", "deployment", "payments-api", "--wait=false")
    assert "deleted" in printed
    with pytest.raises(kube_api.ApiError, match="not found"):
        deployment(api)
    answer = call(api, "DELETE", "/apis/apps/v1/namespaces/payments/deployments/payments-api")
    assert answer[0] == 404 and answer[2]["reason"] == "NotFound"


def test_the_secret_is_served_as_json(kubectl: Kubectl) -> None:
    secret = json.loads(kubectl("-n", "payments", "get", "secret", "payments-db", "-o", "json"))
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "payments-db"
    assert base64.b64decode(secret["data"]["password"]).decode() == kube_seed.PAYMENTS_DB_PASSWORD


def test_logs_of_the_deployment_come_from_its_pod(kubectl: Kubectl, api: KubeApiServer) -> None:
    out = kubectl("-n", "payments", "logs", "deployment/payments-api")
    assert out.splitlines() == kube_seed.PAYMENTS_LOG
    assert [m.group(0) for m in AWS_ACCESS_KEY_ID.finditer(out)] == [kube_seed.FAKE_ACCESS_KEY_ID]
    (listed,) = [s for s in api.cluster.seen if s.path == "/api/v1/namespaces/payments/pods" and s.method == "GET"]
    assert "labelSelector=app%3Dpayments-api" in listed.query  # kubectl resolved the selector to the pod
    assert f"/api/v1/namespaces/payments/pods/{kube_seed.PAYMENTS_POD}/log" in [s.path for s in api.cluster.seen]


def test_orders_has_its_own_pod(kubectl: Kubectl, clock: FakeClock) -> None:
    clock.advance(timedelta(minutes=3, seconds=7))
    rows = [line.split() for line in kubectl("-n", "orders", "get", "pods", "-o", "wide").splitlines()]
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert rows[1:] == [[kube_seed.ORDERS_POD, "1/1", "Running", "0", "5h3m", "10.0.2.31", rows[1][-1]]]


def test_plain_json_for_a_client_that_asks_no_table(api: KubeApiServer) -> None:
    path = "/apis/apps/v1/namespaces/payments/deployments"
    code, content_type, listed = call(api, "GET", path, headers=[("Accept", "application/json")])
    assert (code, content_type, listed["kind"]) == (200, "application/json", "DeploymentList")
    table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    code, content_type, rows = call(api, "GET", path, headers=[("Accept", table_accept)])
    assert (content_type, rows["kind"], rows["metadata"]) == (kube_tables.TABLE_MEDIA, "Table", listed["metadata"])
    assert rows["rows"][0]["object"]["metadata"]["name"] == "payments-api"


def test_label_selectors_as_kubectl_sends_them(kubectl: Kubectl) -> None:
    def pods(*selector: str) -> list[str]:
        return kubectl("get", "pods", "-A", "-o", "name", *selector).split()

    both = [f"pod/{kube_seed.ORDERS_POD}", f"pod/{kube_seed.PAYMENTS_POD}"]
    assert pods() == both
    assert pods("-l", "app=payments-api") == [f"pod/{kube_seed.PAYMENTS_POD}"]
    assert pods("-l", "app!=payments-api") == [f"pod/{kube_seed.ORDERS_POD}"]
    assert pods("-l", "app in (orders-worker, payments-api),pod-template-hash") == both
    assert pods("-l", "app notin (orders-worker)") == [f"pod/{kube_seed.PAYMENTS_POD}"]
    assert pods("-l", "!app") == []
    assert pods("--field-selector", f"metadata.name={kube_seed.ORDERS_POD}") == [f"pod/{kube_seed.ORDERS_POD}"]


def test_a_missing_deployment_is_a_not_found_status(kubectl: Kubectl, api: KubeApiServer) -> None:
    result = kubectl.run("-n", "payments", "get", "deployment", "nope", ok=False)
    assert result.returncode == 1
    assert result.stderr.strip() == 'Error from server (NotFound): deployments.apps "nope" not found'
    code, content_type, body = call(api, "GET", "/apis/apps/v1/namespaces/payments/deployments/nope")
    assert (code, content_type) == (404, "application/json")
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"},
        "code": 404,
    }


def test_kubectls_impersonation_flags_are_recorded(kubectl: Kubectl, api: KubeApiServer) -> None:
    kubectl("-n", "payments", "get", "pods", "--as", "eks-jit:grant:g-1", "--as-group", "a", "--as-group", "b")
    (listed,) = [s for s in api.cluster.seen if s.path == "/api/v1/namespaces/payments/pods"]
    assert (listed.user, listed.groups, listed.bearer_token) == ("eks-jit:grant:g-1", ("a", "b"), True)


# -- streams: a watch and a followed log stay open until the server stops -------------------------


def test_get_pods_watch_sees_a_new_pod_and_is_closed_by_the_stop(
    kubectl: Kubectl, api: KubeApiServer, clock: FakeClock
) -> None:
    watching = kubectl.start("-n", "payments", "get", "pods", "-w")
    try:
        wait_until(lambda: api.cluster.open_streams() == 1, "kubectl's watch")
        new_pod = api.cluster.object("pods", "payments", kube_seed.PAYMENTS_POD)
        new_pod["metadata"] = {**new_pod["metadata"], "name": "payments-api-7c9d8f6b5d-new01"}
        del new_pod["metadata"]["uid"], new_pod["metadata"]["resourceVersion"]
        api.cluster.add(new_pod)
        time.sleep(0.3)  # the event reaches kubectl before the stop
        assert watching.poll() is None  # the watch stays open
        stopping = time.monotonic()
        api.stop()
        assert time.monotonic() - stopping < GRACE  # ended by the stop, not cut at uvicorn's grace
        out, err = watching.communicate(timeout=15)
    finally:
        watching.kill()
    assert watching.returncode == 0, err
    assert [line.split() for line in out.splitlines()] == [
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        [kube_seed.PAYMENTS_POD, "1/1", "Running", "0", "5h"],
        ["payments-api-7c9d8f6b5d-new01", "1/1", "Running", "0", "5h"],  # one header, though each event has the columns
    ]
    (watch,) = [s for s in api.cluster.seen if "watch=true" in s.query]
    assert "resourceVersion=" in watch.query  # resumed from the list's version: no replay of the pod


def test_logs_follow_streams_new_lines_until_the_stop(kubectl: Kubectl, api: KubeApiServer) -> None:
    following = kubectl.start("-n", "payments", "logs", "-f", "--tail", "1", "deployment/payments-api")
    try:
        wait_until(lambda: api.cluster.open_streams() == 1, "kubectl's followed log")
        api.cluster.append_log("payments", kube_seed.PAYMENTS_POD, 'level=info msg="after the follow"')
        time.sleep(0.3)
        assert following.poll() is None
        stopping = time.monotonic()
        api.stop()
        assert time.monotonic() - stopping < GRACE
        out, err = following.communicate(timeout=15)
    finally:
        following.kill()
    assert following.returncode == 0, err
    assert out.splitlines() == [kube_seed.PAYMENTS_LOG[-1], 'level=info msg="after the follow"']


# -- what kubectl cannot send by itself ------------------------------------------------------------


def test_repeated_impersonation_headers_are_recorded_per_request(api: KubeApiServer) -> None:
    headers = [
        ("Impersonate-User", "eks-jit:grant:g-2"),
        ("Impersonate-Group", "eks-jit:rollout-restart:payments"),
        ("Impersonate-Group", "eks-jit:view:payments"),
        ("Impersonate-Extra-Grant-Id", "g-2"),
    ]
    assert call(api, "GET", "/apis/apps/v1/namespaces/payments/deployments/payments-api", headers=headers)[0] == 200
    assert call(api, "GET", "/version")[0] == 200
    first, second = api.cluster.seen
    assert first.user == "eks-jit:grant:g-2"
    assert first.groups == ("eks-jit:rollout-restart:payments", "eks-jit:view:payments")
    assert first.extra == {"grant-id": ("g-2",)}
    assert not first.bearer_token
    assert (second.path, second.user, second.groups, second.extra) == ("/version", None, (), {})


def test_legacy_discovery_for_a_client_without_aggregated_discovery(api: KubeApiServer) -> None:
    code, content_type, groups = call(api, "GET", "/apis", headers=[("Accept", "application/json")])
    assert (code, content_type, groups["kind"]) == (200, "application/json", "APIGroupList")
    assert [g["name"] for g in groups["groups"]] == ["apps"]
    resources = call(api, "GET", "/api/v1")[2]
    names = {r["name"] for r in resources["resources"]}
    assert names == {"namespaces", "pods", "pods/log", "pods/exec", "pods/attach", "secrets", "configmaps"}
    apps = call(api, "GET", "/apis/apps/v1")[2]
    (deployments,) = [r for r in apps["resources"] if r["name"] == "deployments"]
    assert "patch" in deployments["verbs"] and deployments["shortNames"] == ["deploy"]
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    code, content_type, aggregated = call(api, "GET", "/apis", headers=[("Accept", accept)])
    assert content_type == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    assert aggregated["kind"] == "APIGroupDiscoveryList"
    assert call(api, "GET", "/openapi/v2")[0] == 404


def test_a_watch_resumes_after_a_resource_version(api: KubeApiServer) -> None:
    listed = call(api, "GET", "/apis/apps/v1/namespaces/payments/deployments")[2]
    since = listed["metadata"]["resourceVersion"]
    patch = json.dumps({"spec": {"replicas": 3}}).encode()
    merge = [("Content-Type", "application/merge-patch+json")]
    call(api, "PATCH", "/apis/apps/v1/namespaces/payments/deployments/payments-api", headers=merge, body=patch)
    api.cluster.delete("pods", "payments", kube_seed.PAYMENTS_POD)  # another kind: not in this watch
    path = f"/apis/apps/v1/namespaces/payments/deployments?watch=1&resourceVersion={since}&timeoutSeconds=1"
    connection, response = https(api, "GET", path)
    try:
        assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
        events = [json.loads(line) for line in response.read().splitlines()]  # ends at timeoutSeconds
    finally:
        connection.close()
    assert [(e["type"], e["object"]["spec"]["replicas"]) for e in events] == [("MODIFIED", 3)]
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) > int(since)


@pytest.mark.parametrize(
    ("content_type", "body", "code", "reason"),
    [
        ("application/json-patch+json", b'[{"op": "replace", "path": "/spec/replicas", "value": 2}]', 415, None),
        ("application/apply-patch+yaml", b"spec: {replicas: 2}", 415, None),
        ("application/merge-patch+json", b"{not json", 400, None),
        ("application/strategic-merge-patch+json", b'{"spec": {"$bogus": 1}}', 422, None),
        ("application/merge-patch+json", b'{"metadata": {"resourceVersion": "1"}}', 409, "Conflict"),
    ],
    ids=["json patch", "server-side apply", "not json", "unknown directive", "stale resourceVersion"],
)
def test_a_patch_that_cannot_apply_is_refused_and_changes_nothing(
    api: KubeApiServer, content_type: str, body: bytes, code: int, reason: str | None
) -> None:
    before = deployment(api)
    path = "/apis/apps/v1/namespaces/payments/deployments/payments-api"
    answer = call(api, "PATCH", path, headers=[("Content-Type", content_type)], body=body)
    assert answer[0] == code and answer[2]["kind"] == "Status" and answer[2]["code"] == code
    assert answer[2]["reason"] == (reason or REASONS[code])
    assert deployment(api) == before


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/api/v1/namespaces/payments/services", 404),
        ("GET", "/apis/batch/v1/namespaces/payments/jobs", 404),
        ("GET", "/api/v1/namespaces/payments/pods/nope/log", 404),
        ("GET", "/api/v1/namespaces/payments/pods/x/exec", 404),
        ("DELETE", "/api/v1/namespaces/payments/secrets/payments-db", 405),
        ("PATCH", "/api/v1/namespaces/payments/secrets/payments-db", 405),
        ("GET", "/api/v1/namespaces/payments/pods?labelSelector=app+in+oops", 400),
        ("GET", "/api/v1/namespaces/payments/pods?fieldSelector=spec.nodeName%3Dx", 400),
        ("GET", f"/api/v1/namespaces/payments/pods/{kube_seed.PAYMENTS_POD}/log?container=sidecar", 400),
    ],
)
def test_what_it_does_not_serve_is_a_status(api: KubeApiServer, method: str, path: str, code: int) -> None:
    answer = call(api, method, path, headers=[("Content-Type", "application/merge-patch+json")], body=b"{}")
    assert answer[0] == code and answer[2]["kind"] == "Status" and answer[2]["reason"] == REASONS[code]


def test_each_start_has_its_own_ca_and_port(clock: FakeClock) -> None:
    with kube_api.serve(Cluster.seeded(now=clock.now)) as one, kube_api.serve(Cluster.seeded(now=clock.now)) as two:
        assert one.url != two.url and one.ca_pem != two.ca_pem
        assert call(one, "GET", "/version")[2]["gitVersion"] == kube_api.SERVER_VERSION["gitVersion"]
        with pytest.raises(ssl.SSLCertVerificationError):
            call(dataclasses.replace(one, server=dataclasses.replace(one.server, ca_pem=two.ca_pem)), "GET", "/version")


# -- strategic merge as kubectl's own implementation applies it ------------------------------------

APP = {"name": "app"}
PROXY = {"name": "proxy"}
STRATEGIC_PATCHES: dict[str, Any] = {
    "rollout restart": {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: "then"}}}}},
    "set image": {
        "spec": {"template": {"spec": {"$setElementOrder/containers": [APP], "containers": [{**APP, "image": "x:2"}]}}}
    },
    "an env var in a container": {"spec": {"template": {"spec": {"containers": [{**APP, "env": [{"name": "A"}]}]}}}},
    "a sidecar ordered first": {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "init"}, APP, PROXY],
                    "containers": [{"name": "init", "image": "busybox:1"}],
                }
            }
        }
    },
    "a container deleted": {"spec": {"template": {"spec": {"containers": [{**APP, "$patch": "delete"}]}}}},
    "a list without merge key replaced": {"spec": {"template": {"spec": {"containers": [{**APP, "args": ["-v"]}]}}}},
    "ports merged by containerPort": {
        "spec": {"template": {"spec": {"containers": [{**APP, "ports": [{"containerPort": 9090, "name": "m"}]}]}}}
    },
    "a volume and its mount": {
        "spec": {
            "template": {
                "spec": {
                    "volumes": [{"name": "cfg", "configMap": {"name": "payments-api-config"}}],
                    "containers": [{**APP, "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]}],
                }
            }
        }
    },
    "env changed, added and deleted": {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            **APP,
                            "env": [
                                {"name": "A", "value": "0"},
                                {"name": "C", "value": "3"},
                                {"name": "B", "$patch": "delete"},
                            ],
                        }
                    ]
                }
            }
        }
    },
    "containers reordered only": {"spec": {"template": {"spec": {"$setElementOrder/containers": [PROXY, APP]}}}},
    "the second container's image": {
        "spec": {
            "template": {
                "spec": {"$setElementOrder/containers": [APP, PROXY], "containers": [{**PROXY, "image": "envoy:2"}]}
            }
        }
    },
    "the second container's env, no order given": {
        "spec": {"template": {"spec": {"containers": [{**PROXY, "env": [{"name": "A", "value": "4"}]}]}}}
    },
    "null deletes": {"spec": {"revisionHistoryLimit": None, "template": {"spec": {"restartPolicy": None}}}},
    "the strategy replaced with retainKeys": {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
    "the template spec replaced": {
        "spec": {"template": {"spec": {"$patch": "replace", "containers": [{"name": "only", "image": "y:1"}]}}}
    },
    "finalizers unioned and one removed": {
        "metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]},
    },
}


@pytest.mark.parametrize("patch", STRATEGIC_PATCHES.values(), ids=STRATEGIC_PATCHES.keys())
def test_strategic_merge_agrees_with_kubectl(patch: Any, clock: FakeClock, tmp_path: Path) -> None:
    original = Cluster.seeded(now=clock.now).object("deployments", "payments", "payments-api")
    original["metadata"]["finalizers"] = ["a", "c"]
    containers = original["spec"]["template"]["spec"]["containers"]
    containers[0]["env"] = [{"name": "B", "value": "1"}, {"name": "C", "value": "2"}]
    containers.append({**PROXY, "image": "envoy:1", "env": [{"name": "B", "value": "9"}]})
    source = tmp_path / "deployment.json"
    source.write_text(json.dumps(original))
    binary = kubectl_binary(KUBECTL_MINORS[-1])
    command = [binary, "patch", "--local", "-f", str(source), "--type", "strategic", "-p", json.dumps(patch)]
    result = subprocess.run([*command, "-o", "json"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert strategic_merge_patch(original, patch) == json.loads(result.stdout)


def test_with_a_token_only_its_holder_gets_in(clock: FakeClock, tmp_path: Path) -> None:
    with kube_api.serve(Cluster.seeded(now=clock.now), token="the-gateway-s-own") as api:
        agent = tmp_path / "agent"
        agent.write_text(json.dumps(api.kubeconfig(token="an-agent-s-eks-token", namespace="payments")))
        gateway = tmp_path / "gateway"
        gateway.write_text(json.dumps(api.kubeconfig(token="the-gateway-s-own", namespace="payments")))
        binary = kubectl_binary(KUBECTL_MINORS[-1])

        refused = Kubectl(binary, agent, tmp_path / "cache").run("get", "deployments", ok=False)
        assert refused.returncode == 1
        assert "error: You must be logged in to the server" in refused.stderr  # as for a 401 from EKS
        assert "payments-api" in Kubectl(binary, gateway, tmp_path / "cache")("get", "deployments")
        assert call(api, "GET", "/version")[0] == 401  # no token at all

        seen = [(s.path, s.bearer_token, s.authenticated) for s in api.cluster.seen]
        assert seen[0] == ("/api", True, False)  # the agent's kubectl got no further than discovery
        assert ("/apis/apps/v1/namespaces/payments/deployments", True, True) in seen
        assert seen[-1] == ("/version", False, False)


def test_a_kept_alive_connection_is_not_held_up_and_does_not_hold_up_the_stop(clock: FakeClock) -> None:
    api = kube_api.start(Cluster.seeded(now=clock.now))
    try:
        url = urlsplit(api.url)
        context = ssl.create_default_context(cadata=api.ca_pem)
        connection = http.client.HTTPSConnection(url.hostname or "", url.port, context=context, timeout=10)
        took = []
        for _ in range(21):
            started = time.perf_counter()
            connection.request("GET", "/apis/apps/v1/namespaces/payments/deployments/payments-api")
            assert connection.getresponse().read()
            took.append(time.perf_counter() - started)
        # With Nagle on, each body waits for the client's delayed ACK: 40 ms or more, every request.
        assert sorted(took)[10] < 0.02
    finally:
        stopping = time.monotonic()
        api.stop()  # the connection is idle and open (a gateway's pool): dropped, not waited for
        assert time.monotonic() - stopping < GRACE
        connection.close()


def test_no_answer_may_be_served_again_from_kubectls_cache(api: KubeApiServer) -> None:
    for path in ("/api", "/apis/apps/v1/namespaces/payments/deployments/nope", "/api/v1/namespaces/payments/pods"):
        connection, response = https(api, "GET", path)
        try:
            assert response.getheader("Cache-Control") == "no-cache, private", path
        finally:
            connection.close()
