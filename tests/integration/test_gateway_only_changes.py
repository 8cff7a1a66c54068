"""The gateway's `only_changes` check agrees with the admission policy entry mode relies on.

Each patch is applied by real kubectl (``--local``) to the stored Deployment and the rendered
ValidatingAdmissionPolicy's CEL judges the result (as tests/integration/test_admission_policy.py
does); the gateway judges the same patch from its body alone. Whenever the gateway allows a
patch, the policy must admit its result (the gateway is never the weaker wall); here they agree
on every case. The PATCH real ``kubectl rollout restart`` and ``kubectl set image`` send are
recorded against the stub API server and judged too.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eks_jit import admission, rbac
from eks_jit.server.config import load_catalog
from eks_jit.server.domain.kube_rules import patch_changes, update_changes
from tests import kube_stub
from tests.integration.test_admission_policy import (
    DEPLOYMENT,
    DEPLOYMENT_PATH,
    RESTART_ANNOTATION,
    Policy,
    as_the_api_server_stores,
)
from tests.support import EXAMPLE_CONFIG, FakeClock

ALLOWED = (("spec", "template", "metadata", "annotations", RESTART_ANNOTATION),)
TYPES = {"strategic": "application/strategic-merge-patch+json", "merge": "application/merge-patch+json"}
TYPES["json"] = "application/json-patch+json"
POINTER = "/spec/template/metadata/annotations/" + RESTART_ANNOTATION.replace("/", "~1")
LATER = FakeClock().now().strftime("%Y-%m-%dT%H:%M:%SZ")  # a restartedAt value: any time will do

PATCHES: dict[str, tuple[str, Any]] = {
    "the restart": ("strategic", {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: LATER}}}}}),
    "the restart as a merge patch": (
        "merge",
        {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: LATER}}}}},
    ),
    "the restart as a JSON patch": ("json", [{"op": "replace", "path": POINTER, "value": LATER}]),
    "the restart plus an image": (
        "strategic",
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {RESTART_ANNOTATION: LATER}},
                    "spec": {"containers": [{"name": "app", "image": "attacker.example/miner:1"}]},
                }
            }
        },
    ),
    "replicas": ("merge", {"spec": {"replicas": 30}}),
    "$patch replace of the annotations": (
        "strategic",
        {"spec": {"template": {"metadata": {"annotations": {"$patch": "replace", RESTART_ANNOTATION: LATER}}}}},
    ),
    "null annotations": ("merge", {"spec": {"template": {"metadata": {"annotations": None}}}}),
    "a move from the service account": (
        "json",
        [{"op": "move", "from": "/spec/template/spec/serviceAccountName", "path": POINTER}],
    ),
    "another template annotation": (
        "strategic",
        {"spec": {"template": {"metadata": {"annotations": {"sidecar.istio.io/inject": "false"}}}}},
    ),
    "a label": ("merge", {"metadata": {"labels": {"team": "attacker"}}}),
}


@pytest.fixture(scope="module")
def policy() -> Policy:
    catalog = load_catalog(EXAMPLE_CONFIG)
    (vap,) = [
        o
        for o in admission.manifests(catalog, "prod-eks", rbac.KUBERNETES_VERSION)
        if o["kind"] == "ValidatingAdmissionPolicy"
    ]
    return Policy(vap)


def applied(tmp_path: Path, kind: str, body: Any) -> dict[str, Any]:
    source = tmp_path / "deployment.json"
    source.write_text(json.dumps(DEPLOYMENT))
    out = kube_stub.run_kubectl(
        "patch", "--type", kind, "-p", json.dumps(body), "--local", "-f", str(source), "-o", "json"
    )
    return as_the_api_server_stores(DEPLOYMENT, json.loads(out), "kubectl")


@pytest.mark.parametrize("case", sorted(PATCHES))
def test_the_gateway_and_the_admission_policy_agree(policy: Policy, tmp_path: Path, case: str) -> None:
    kind, body = PATCHES[case]
    gateway_allows = not patch_changes(TYPES[kind], json.dumps(body).encode()).outside(ALLOWED)
    policy_admits = policy.refusals(DEPLOYMENT, applied(tmp_path, kind, body)) == []
    assert gateway_allows == policy_admits, (case, gateway_allows, policy_admits)


def test_what_kubectl_sends_for_restart_and_set_image(tmp_path: Path) -> None:
    with kube_stub.serve({DEPLOYMENT_PATH: copy.deepcopy(DEPLOYMENT)}) as stub:
        config = stub.kubeconfig(tmp_path, namespace="payments")
        kube_stub.run_kubectl("rollout", "restart", "deployment/payments-api", kubeconfig=config)
        kube_stub.run_kubectl(
            "set", "image", "deployment/payments-api", "app=attacker.example/miner:1", kubeconfig=config
        )
    restart, set_image = stub.writes
    assert (restart.method, set_image.method) == ("PATCH", "PATCH")
    assert not patch_changes(restart.content_type, json.dumps(restart.body).encode()).outside(ALLOWED)
    outside = patch_changes(set_image.content_type, json.dumps(set_image.body).encode()).outside(ALLOWED)
    assert ("spec", "template", "spec", "containers") in outside


# -- a PUT: the stored object against the new one --------------------------------------------------

LEAVES = [
    ("spec", "replicas"),
    ("spec", "template", "spec", "serviceAccountName"),
    ("spec", "template", "metadata", "annotations", RESTART_ANNOTATION),
    ("spec", "template", "metadata", "annotations", "prometheus.io/scrape"),
    ("spec", "template", "metadata", "labels", "app"),
    ("metadata", "labels", "team"),
    ("metadata", "resourceVersion"),
    ("spec", "revisionHistoryLimit"),
]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(LEAVES), st.one_of(st.none(), st.sampled_from(["x", "3", LATER])), max_size=3))
def test_an_update_is_judged_as_the_admission_policy_judges_it(policy: Policy, edits: dict[Any, Any]) -> None:
    new = copy.deepcopy(DEPLOYMENT)
    for path, value in edits.items():
        node = new
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    gateway_allows = not update_changes(DEPLOYMENT, new).outside(ALLOWED)
    assert gateway_allows == (policy.refusals(DEPLOYMENT, new) == [])
