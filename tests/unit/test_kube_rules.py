"""The gateway decides a Kubernetes request from the caller's grants as RBAC and the admission policy would.

Given a caller's grants (some expired, some for another session or namespace) and one parsed
request, ``authorize`` answers allowed (naming the grant), needs-changes (a write under
``only_changes``), or denied with a reason naming the verb, the resource, the namespace and why
each grant considered did not cover it. The EKS access policies are tested by the table rows the
EKS User Guide documents; the attacks on ``rollout-restart`` come first.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from eks_jit.server.config import load_catalog
from eks_jit.server.domain.catalog import Scope
from eks_jit.server.domain.grant import Decision as PolicyDecision
from eks_jit.server.domain.grant import Grant, GrantStatus
from eks_jit.server.domain.kube_request import parse_request
from eks_jit.server.domain.kube_rules import (
    ACCESS_POLICY_RULES,
    Caller,
    Changes,
    HeldGrant,
    Outcome,
    Rule,
    UnnarrowableChange,
    UnsupportedAccessPolicy,
    authorize,
    patch_changes,
    scope_rules,
    update_changes,
)
from tests.support import ROOT, FakeClock

AGENT = "arn:aws:iam::123456789012:role/agents/oncall-agent"
OTHER = "arn:aws:iam::123456789012:role/agents/report-agent"
RESTART = "kubectl.kubernetes.io/restartedAt"  # defined before SCOPES uses it
DEPLOYMENT = "/apis/apps/v1/namespaces/payments/deployments/payments-api"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"

CATALOG = load_catalog(ROOT / "config" / "local" / "eks-jit.yaml")
SCOPES: dict[str, Scope] = {
    **CATALOG.scopes,
    "cluster-admin": Scope(description="t", level="cluster", access_policies=("AmazonEKSClusterAdminPolicy",)),
    "admin-view": Scope(description="t", level="cluster", access_policies=("AmazonEKSAdminViewPolicy",)),
    "exec-get-only": Scope(description="t", rbac=({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]},)),
    "named-config": Scope(
        description="t",
        rbac=({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"], "resourceNames": ["app-config"]},),
    ),
    "any-scale": Scope(description="t", rbac=({"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]},)),
    "restart-by-update": Scope(
        description="t",
        rbac=(
            {
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "verbs": ["get", "update"],
                "only_changes": [f'spec.template.metadata.annotations["{RESTART}"]'],
            },
        ),
    ),
    "autonode": Scope(description="t", level="cluster", access_policies=("AmazonEKSAutoNodePolicy",)),
}

clock = FakeClock()
NOW = clock.now()


def grant(scope: str, *, namespaces: tuple[str, ...] = ("payments",), gid: str = "g-1", **fields: Any) -> Grant:
    values: dict[str, Any] = {
        "id": gid,
        "requester": AGENT,
        "cluster": "demo",
        "namespaces": namespaces if SCOPES[scope].level == "namespace" else (),
        "scope": scope,
        "reason": "readiness probe failing",
        "duration": timedelta(minutes=15),
        "status": GrantStatus.ACTIVE,
        "version": 3,
        "created_at": NOW - timedelta(minutes=1),
        "decision": PolicyDecision(outcome="auto_approve"),
        "activated_at": NOW - timedelta(minutes=1),
        "expires_at": NOW + timedelta(minutes=14),
    }
    return Grant(**{**values, **fields})


def decide(
    method: str,
    url: str,
    *grants: Grant | HeldGrant,
    caller: Caller | None = None,
    now: datetime = NOW,
    changes: Changes | None = None,
):
    path, _, query = url.partition("?")
    held = [g if isinstance(g, HeldGrant) else HeldGrant(g) for g in grants]
    return authorize(
        parse_request(method, path, query),
        caller=caller or Caller(AGENT, "incident-4711"),
        cluster="demo",
        grants=held,
        scopes=SCOPES,
        now=now,
        changes=changes,
    )


# -- rollout-restart means rollout restart -----------------------------------------------------------

KUBECTL_RESTART = json.dumps(
    {"spec": {"template": {"metadata": {"annotations": {RESTART: clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")}}}}}
)

PATCH_ATTACKS = {
    "a second field in the same patch": (
        SMP,
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {RESTART: "x"}},
                    "spec": {"containers": [{"name": "app", "image": "evil"}]},
                }
            }
        },
    ),
    "kubectl set image": (SMP, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "evil"}]}}}}),
    "more replicas": (MERGE, {"spec": {"replicas": 30}}),
    "another annotation next to the restart": (
        SMP,
        {"spec": {"template": {"metadata": {"annotations": {RESTART: "x", "sidecar.istio.io/inject": "false"}}}}},
    ),
    "$patch: replace on the annotations": (
        SMP,
        {"spec": {"template": {"metadata": {"annotations": {"$patch": "replace", RESTART: "x"}}}}},
    ),
    "$patch: delete of the template": (SMP, {"spec": {"template": {"$patch": "delete"}}}),
    "$retainKeys on the template spec": (SMP, {"spec": {"template": {"spec": {"$retainKeys": ["containers"]}}}}),
    "$setElementOrder of the containers": (
        SMP,
        {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}}}},
    ),
    "$deleteFromPrimitiveList of finalizers": (SMP, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
    "a null that deletes all annotations": (MERGE, {"spec": {"template": {"metadata": {"annotations": None}}}}),
    "a null that deletes the template spec": (SMP, {"spec": {"template": {"spec": None}}}),
    "a merge into a scalar field": (MERGE, {"spec": {"replicas": {}}}),
    "a patch that replaces the whole object": (MERGE, ["not", "an", "object"]),
    "a JSON patch of the image": (
        JSONPATCH,
        [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "evil"}],
    ),
    "a JSON patch move from elsewhere": (
        JSONPATCH,
        [
            {
                "op": "move",
                "from": "/spec/template/spec/serviceAccountName",
                "path": f"/spec/template/metadata/annotations/{RESTART.replace('/', '~1')}",
            }
        ],
    ),
    "a JSON patch copy from elsewhere": (
        JSONPATCH,
        [
            {
                "op": "copy",
                "from": "/spec/template/spec/containers/0/env",
                "path": f"/spec/template/metadata/annotations/{RESTART.replace('/', '~1')}",
            }
        ],
    ),
    "a JSON patch replacing the annotations map": (
        JSONPATCH,
        [{"op": "replace", "path": "/spec/template/metadata/annotations", "value": {RESTART: "x"}}],
    ),
    "a JSON patch remove of the whole document": (JSONPATCH, [{"op": "remove", "path": ""}]),
    "a deployment label": (MERGE, {"metadata": {"labels": {"team": "attacker"}}}),
    "a case-shifted key": (SMP, {"spec": {"template": {"metadata": {"Annotations": {RESTART: "x"}}}}}),
    "the kind": (MERGE, {"kind": "Pod", "spec": {"template": {"metadata": {"annotations": {RESTART: "x"}}}}}),
}


def test_kubectl_rollout_restart_needs_the_body_then_is_allowed() -> None:
    first = decide("PATCH", DEPLOYMENT, grant("rollout-restart"))
    assert first.outcome is Outcome.NEEDS_CHANGES and first.grant_id == "g-1"
    assert first.allowed_changes == (("spec", "template", "metadata", "annotations", RESTART),)
    changes = patch_changes(SMP + "; charset=utf-8", KUBECTL_RESTART.encode())
    second = decide("PATCH", DEPLOYMENT, grant("rollout-restart"), changes=changes)
    assert second.outcome is Outcome.ALLOWED and second.grant_id == "g-1"


@pytest.mark.parametrize("attack", sorted(PATCH_ATTACKS))
def test_every_other_patch_is_refused_under_rollout_restart(attack: str) -> None:
    content_type, body = PATCH_ATTACKS[attack]
    changes = patch_changes(content_type, json.dumps(body).encode())
    decision = decide("PATCH", DEPLOYMENT, grant("rollout-restart"), changes=changes)
    assert decision.outcome is Outcome.DENIED
    assert "rollout-restart may change only" in decision.reason and "g-1" in decision.reason


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (SMP, b"{not json"),
        (SMP, b'{"spec": {}, "spec": {"replicas": 30}}'),  # which spec wins depends on the reader
        (MERGE, b'{"spec": {"replicas": NaN}}'),
        (SMP, '{"spec": {}}'.encode("utf-16")),
        (SMP, b"\xff\xfe"),
        (JSONPATCH, b'{"op": "add"}'),  # not a list
        (JSONPATCH, b'[{"op": "add", "path": "spec/replicas", "value": 1}]'),  # not a pointer
        (JSONPATCH, b'[{"op": "add", "path": "/a~2b", "value": 1}]'),  # a malformed escape
        (JSONPATCH, b'[{"op": "explode", "path": "/spec"}]'),
        (JSONPATCH, b'["add"]'),
        ("application/apply-patch+yaml", b"spec: {}"),  # server-side apply: its effect needs the managers
        ("application/json", b"{}"),
        ("", b"{}"),
    ],
)
def test_bodies_whose_effect_cannot_be_told_are_refused(content_type: str, body: bytes) -> None:
    with pytest.raises(UnnarrowableChange) as refused:
        patch_changes(content_type, body)
    assert refused.value.code == "change_not_narrowable"


def test_patches_that_only_restart_are_allowed_in_every_patch_type() -> None:
    pointer = f"/spec/template/metadata/annotations/{RESTART.replace('/', '~1')}"
    for content_type, body in [
        (MERGE, {"spec": {"template": {"metadata": {"annotations": {RESTART: "x"}}}}}),
        (
            JSONPATCH,
            [{"op": "add", "path": pointer, "value": "x"}, {"op": "test", "path": "/spec/replicas", "value": 3}],
        ),
        (SMP, {"spec": {"template": {"metadata": {"annotations": {RESTART: None}}}}}),  # undo a restart mark
        (
            SMP,
            {
                "metadata": {"resourceVersion": "918273"},
                "spec": {"template": {"metadata": {"annotations": {RESTART: "x"}}}},
            },
        ),
        (SMP, {}),
    ]:
        changes = patch_changes(content_type, json.dumps(body).encode())
        assert decide("PATCH", DEPLOYMENT, grant("rollout-restart"), changes=changes).allowed, body


def test_an_update_is_compared_with_the_stored_object() -> None:
    before = {
        "metadata": {"name": "payments-api", "resourceVersion": "1", "annotations": {"a": "1"}},
        "spec": {
            "replicas": 3,
            "template": {"metadata": {"annotations": {}}, "spec": {"containers": [{"image": "v1"}]}},
        },
    }
    restarted = json.loads(json.dumps(before))
    restarted["spec"]["template"]["metadata"]["annotations"][RESTART] = "x"
    restarted["metadata"]["resourceVersion"] = "2"
    assert update_changes(before, restarted).outside([("spec", "template", "metadata", "annotations", RESTART)]) == []
    assert not decide("PUT", DEPLOYMENT, grant("rollout-restart")).allowed  # rollout-restart has no update
    assert decide("PUT", DEPLOYMENT, grant("restart-by-update")).outcome is Outcome.NEEDS_CHANGES
    assert decide("PUT", DEPLOYMENT, grant("restart-by-update"), changes=update_changes(before, restarted)).allowed

    imaged = json.loads(json.dumps(restarted))
    imaged["spec"]["template"]["spec"]["containers"][0]["image"] = "evil"
    decision = decide("PUT", DEPLOYMENT, grant("restart-by-update"), changes=update_changes(before, imaged))
    assert not decision.allowed and "spec.template.spec.containers" in decision.reason
    assert update_changes(before, before) == Changes()
    assert update_changes({"a": 1}, {"a": True}).set == {("a",)}  # 1 == True in Python, not in JSON


def test_an_unnarrowed_grant_next_to_a_narrowed_one_allows_the_write() -> None:
    grants = (grant("rollout-restart", gid="g-narrow"), grant("edit", gid="g-edit"))
    decision = decide("PATCH", DEPLOYMENT, *grants)
    assert decision.allowed and decision.grant_id == "g-edit"


def test_rollout_restart_cannot_scale_or_read_secrets() -> None:
    g = grant("rollout-restart")
    assert not decide("PATCH", f"{DEPLOYMENT}/scale", g).allowed
    assert not decide("GET", "/api/v1/namespaces/payments/secrets", g).allowed
    for method, url in [
        ("GET", DEPLOYMENT),
        ("GET", "/apis/apps/v1/namespaces/payments/deployments?fieldSelector=metadata.name%3Dpayments-api&watch=1"),
        ("GET", "/apis/apps/v1/namespaces/payments/replicasets"),
        ("GET", "/api/v1/namespaces/payments/pods"),
    ]:
        assert decide(method, url, g).allowed, url


# -- the EKS access policies, row by row ----------------------------------------------------------

# scope, method, path, allowed
POLICY_TABLE = [
    ("view", "GET", "/api/v1/namespaces/payments/pods", True),
    ("view", "GET", "/api/v1/namespaces/payments/pods/p/log", True),
    ("view", "GET", "/api/v1/namespaces/payments/configmaps/c", True),
    ("view", "GET", "/api/v1/namespaces/payments", True),  # its own namespace object
    ("view", "GET", "/apis/discovery.k8s.io/v1/namespaces/payments/endpointslices", True),
    ("view", "GET", "/apis/apps/v1/namespaces/payments/deployments/d/scale", True),
    ("view", "GET", "/api/v1/namespaces/payments/secrets", False),  # view gives no Secrets
    ("view", "GET", "/api/v1/namespaces/payments/secrets/db", False),
    ("view", "GET", "/api/v1/namespaces/payments/pods/p/exec", False),  # no exec, even as a GET
    ("view", "POST", "/api/v1/namespaces/payments/pods/p/portforward", False),
    ("view", "GET", "/api/v1/namespaces/payments/pods/p/proxy/metrics", False),
    ("view", "PATCH", "/apis/apps/v1/namespaces/payments/deployments/d", False),
    ("view", "DELETE", "/api/v1/namespaces/payments/pods", False),
    ("view", "GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/roles", False),
    ("edit", "PATCH", "/apis/apps/v1/namespaces/payments/deployments/d", True),
    ("edit", "DELETE", "/api/v1/namespaces/payments/pods", True),  # deletecollection
    ("edit", "GET", "/api/v1/namespaces/payments/secrets/db", True),
    ("edit", "GET", "/api/v1/namespaces/payments/pods/p/exec", True),
    ("edit", "POST", "/api/v1/namespaces/payments/pods/p/exec", True),
    ("edit", "POST", "/apis/batch/v1/namespaces/payments/jobs", True),
    ("edit", "PUT", "/apis/apps/v1/namespaces/payments/deployments/d/scale", True),
    ("edit", "PUT", "/apis/apps/v1/namespaces/payments/deployments/d/status", False),  # status is the system's
    ("edit", "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings", False),  # no RBAC
    ("edit", "GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/roles", False),
    ("edit", "DELETE", "/api/v1/namespaces/payments", False),  # not its namespace
    ("edit", "PUT", "/api/v1/namespaces/payments/resourcequotas/q", False),
    ("admin", "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings", True),
    ("admin", "POST", "/apis/authorization.k8s.io/v1/namespaces/payments/localsubjectaccessreviews", True),
    ("admin", "GET", "/api/v1/namespaces/payments/secrets", True),
    ("admin", "DELETE", "/api/v1/namespaces/payments", False),
    ("admin", "GET", "/api/v1/nodes", False),  # cluster-scoped: outside any namespace grant
    ("admin", "GET", "/api/v1/namespaces/orders/pods", False),
    ("cluster-view", "GET", "/api/v1/namespaces/orders/pods", True),
    ("cluster-view", "GET", "/api/v1/pods", True),  # every namespace
    ("cluster-view", "GET", "/api/v1/namespaces", True),
    ("cluster-view", "GET", "/api/v1/nodes", False),  # view has no nodes
    ("cluster-view", "GET", "/api/v1/secrets", False),
    ("cluster-view", "GET", "/metrics", False),
    ("admin-view", "GET", "/api/v1/secrets", True),  # AdminView includes Secrets
    ("admin-view", "GET", "/api/v1/nodes/n1", True),
    ("admin-view", "PATCH", "/api/v1/nodes/n1", False),
    ("cluster-admin", "DELETE", "/api/v1/nodes/n1", True),
    ("cluster-admin", "GET", "/metrics", True),
    ("cluster-admin", "POST", "/logs/kube-apiserver.log", True),
    ("any-scale", "GET", "/apis/apps/v1/namespaces/payments/statefulsets/s/scale", True),  # */scale
    ("any-scale", "GET", "/apis/apps/v1/namespaces/payments/statefulsets/s", False),
    ("exec-get-only", "GET", "/api/v1/namespaces/payments/pods/p/exec", False),  # a GET on exec needs create
    ("exec-get-only", "GET", "/api/v1/namespaces/payments/pods/p/attach", False),
]


@pytest.mark.parametrize(("scope", "method", "path", "allowed"), POLICY_TABLE)
def test_access_policies_allow_what_aws_documents(scope: str, method: str, path: str, allowed: bool) -> None:
    assert decide(method, path, grant(scope)).allowed is allowed


def test_view_rules_have_no_secret_no_write_and_no_pod_entry() -> None:
    view = ACCESS_POLICY_RULES["arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"]
    assert all(set(r.verbs) <= {"get", "list", "watch"} for r in view)
    resources = {res for r in view for res in r.resources}
    assert not resources & {"secrets", "pods/exec", "pods/attach", "pods/portforward", "pods/proxy", "services/proxy"}
    edit = ACCESS_POLICY_RULES["arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"]
    assert not any("rbac.authorization.k8s.io" in r.api_groups for r in edit)


def test_resource_names_as_rbac_reads_them() -> None:
    g = grant("named-config")
    base = "/api/v1/namespaces/payments/configmaps"
    assert decide("GET", f"{base}/app-config", g).allowed
    assert decide("PATCH", f"{base}/app-config", g).outcome is Outcome.ALLOWED
    assert not decide("GET", f"{base}/other", g).allowed
    assert not decide("GET", base, g).allowed  # an unnamed list
    assert decide("GET", f"{base}?fieldSelector=metadata.name%3Dapp-config&watch=true", g).allowed
    assert not decide("POST", base, g).allowed  # create carries no name in the path
    assert not decide("DELETE", base, g).allowed  # deletecollection


def test_rule_matching_is_rbacs() -> None:
    rule = Rule(verbs=("get",), api_groups=("apps",), resources=("deployments",))
    scale = parse_request("GET", "/apis/apps/v1/namespaces/p/deployments/d/scale")
    plain = parse_request("GET", "/apis/apps/v1/namespaces/p/deployments/d")
    assert rule.allows(plain) and not rule.allows(scale)  # a resource does not give its subresources
    wildcard = Rule(verbs=("*",), api_groups=("*",), resources=("*",))
    assert wildcard.allows(scale)
    literal = Rule(verbs=("get",), api_groups=("apps",), resources=("deployments/*",))
    assert not literal.allows(scale)  # RBAC has no res/* wildcard: only */sub


# -- who, where and when -------------------------------------------------------------------------


def test_a_grant_on_payments_gives_nothing_on_orders() -> None:
    decision = decide("GET", "/api/v1/namespaces/orders/pods", grant("edit"))
    assert not decision.allowed
    assert decision.reason.startswith("eks-jit refuses list pods in namespace orders on cluster demo")
    assert "grant g-1 (edit): namespace orders is not payments" in decision.reason


def test_the_first_request_at_expires_at_is_refused() -> None:
    g = grant("view")
    assert g.expires_at is not None
    just_before = g.expires_at - timedelta(microseconds=1)
    assert decide("GET", "/api/v1/namespaces/payments/pods", g, now=just_before).allowed
    at = decide("GET", "/api/v1/namespaces/payments/pods", g, now=g.expires_at)
    assert not at.allowed and "expired at" in at.reason
    assert not decide("GET", "/api", g, now=g.expires_at).allowed  # not even discovery


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"status": GrantStatus.REVOKED}, "it is revoked"),
        ({"status": GrantStatus.PENDING_APPROVAL}, "it is pending_approval"),
        ({"requester": OTHER}, "another principal's grant"),
        ({"cluster": "prod-eks"}, "it is for cluster prod-eks"),
        ({"extends": "g-0"}, "it is an extension"),
        ({"activated_at": NOW + timedelta(seconds=5)}, "not active yet"),
        ({"expires_at": None}, "expired"),
    ],
)
def test_only_a_grant_in_force_counts(fields: dict[str, Any], why: str) -> None:
    decision = decide("GET", "/api/v1/namespaces/payments/pods", grant("edit", **fields))
    assert not decision.allowed and why in decision.reason


def test_a_session_bound_grant_covers_only_its_session() -> None:
    bound = HeldGrant(grant("view"), session="incident-4711")
    assert decide("GET", "/api/v1/namespaces/payments/pods", bound, caller=Caller(AGENT, "incident-4711")).allowed
    other = decide("GET", "/api/v1/namespaces/payments/pods", bound, caller=Caller(AGENT, "incident-9999"))
    assert not other.allowed and "bound to session incident-4711, not incident-9999" in other.reason
    assert not decide("GET", "/api", bound, caller=Caller(AGENT, None)).allowed
    unbound = HeldGrant(grant("view"))
    assert decide("GET", "/api/v1/namespaces/payments/pods", unbound, caller=Caller(AGENT, "anything")).allowed


def test_discovery_needs_a_grant_in_force_and_nothing_more() -> None:
    g = grant("rollout-restart")
    for path in ["/api", "/apis", "/api/v1", "/apis/apps/v1", "/version", "/openapi/v3/apis/apps/v1"]:
        assert decide("GET", path, g).allowed, path
    none = decide("GET", "/apis")
    assert not none.allowed and "no grant is in force" in none.reason
    assert not decide("GET", "/metrics", g).allowed
    assert not decide("POST", "/apis", g).allowed


def test_a_refusal_lists_every_grant_considered() -> None:
    grants = (grant("view", gid="g-view"), grant("rollout-restart", gid="g-rr", namespaces=("orders",)))
    decision = decide("DELETE", "/api/v1/namespaces/payments/pods/p", *grants)
    assert not decision.allowed
    assert [c.grant_id for c in decision.considered] == ["g-view", "g-rr"]
    assert "grant g-view (view): view does not allow delete on pods named p" in decision.reason
    assert "grant g-rr (rollout-restart): namespace payments is not orders" in decision.reason


def test_an_access_policy_the_gateway_cannot_enforce_covers_nothing() -> None:
    with pytest.raises(UnsupportedAccessPolicy):
        scope_rules(SCOPES["autonode"])
    decision = decide("GET", "/api/v1/nodes", grant("autonode"))
    assert not decision.allowed and "does not know the rules of AmazonEKSAutoNodePolicy" in decision.reason
