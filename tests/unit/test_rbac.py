"""The RBAC the catalog relies on: rendered, schema-valid, one group per namespace."""

from datetime import timedelta
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from eks_jit.cli import main
from eks_jit.rbac import GATEWAY_ROLE, manifests, validate
from eks_jit.server.config import load_config
from eks_jit.server.domain.catalog import AccessMode, Catalog, Level, PolicyRule, Scope
from eks_jit.server.domain.grant import Decision as PolicyDecision
from eks_jit.server.domain.grant import Grant, GrantStatus
from eks_jit.server.domain.impersonation import GATEWAY_GROUP, groups_for
from tests.support import EXAMPLE_CONFIG, ROOT, FakeClock


@pytest.fixture(scope="module")
def catalog():
    return load_config(EXAMPLE_CONFIG)[0]


def test_rollout_restart_can_only_read_and_patch_what_a_restart_needs(catalog) -> None:
    roles = [o for o in manifests(catalog, "prod-eks") if o["kind"] == "Role"]
    assert {r["metadata"]["namespace"] for r in roles} == {"payments", "orders"}
    rules = {(g, res): set(r["verbs"]) for r in roles[0]["rules"] for g in r["apiGroups"] for res in r["resources"]}
    assert rules == {
        ("apps", "deployments"): {"get", "list", "watch", "patch"},
        ("apps", "replicasets"): {"get", "list", "watch"},
        ("", "pods"): {"get", "list", "watch"},
    }


def test_each_namespace_binds_only_its_own_group(catalog) -> None:
    bindings = {
        o["metadata"]["namespace"]: [s["name"] for s in o["subjects"]]
        for o in manifests(catalog, "prod-eks")
        if o["kind"] == "RoleBinding"
    }
    assert bindings == {
        "payments": ["eks-jit:rollout-restart:payments"],
        "orders": ["eks-jit:rollout-restart:orders"],
    }


def test_the_strict_kubernetes_schema_accepts_the_render_and_refuses_a_broken_object(catalog) -> None:
    objects = manifests(catalog, "prod-eks")
    validate(objects)
    broken = {**objects[0], "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbz": ["get"]}]}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate([broken])


def test_the_committed_manifests_are_what_the_catalog_renders(tmp_path: Path) -> None:
    assert main(["rbac", "render", "--config", str(EXAMPLE_CONFIG), "--out", str(tmp_path)]) == 0
    for fresh in tmp_path.rglob("*.yaml"):
        committed = ROOT / "deploy" / "rbac" / fresh.relative_to(tmp_path)
        assert committed.read_text() == fresh.read_text(), f"{committed} is stale: run `make rbac`"
    kinds = [o["kind"] for o in yaml.safe_load_all((tmp_path / "prod-eks" / "rbac.yaml").read_text())]
    assert kinds == ["Role", "RoleBinding"] * 2 + ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]


def test_resource_names_are_rendered_as_rbac_takes_them(catalog) -> None:
    named = catalog.scopes["rollout-restart"].model_copy(
        update={
            "rbac": (
                PolicyRule(apiGroups=("",), resources=("configmaps",), verbs=("get",), resourceNames=("app-config",)),
            )
        }
    )
    with_named = catalog.model_copy(update={"scopes": {"named": named}})
    (role,) = [o for o in manifests(with_named, "prod-eks") if o["kind"] == "Role"][:1]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["app-config"]}
    ]
    validate([role])


# ------------------------------------------------------------------ gateway clusters

EXTRAS_RULE = {
    "apiGroups": ["authentication.k8s.io"],
    "resources": ["userextras/eks-jit.io/grant-id", "userextras/eks-jit.io/principal", "userextras/eks-jit.io/session"],
    "verbs": ["impersonate"],
}


def _as_gateway(catalog: Catalog, cluster: str = "prod-eks") -> Catalog:
    clusters = dict(catalog.clusters)
    clusters[cluster] = clusters[cluster].model_copy(update={"access_mode": AccessMode.GATEWAY})
    return catalog.model_copy(update={"clusters": clusters})


def _grant(scope_name: str, scope: Scope, namespace: str | None) -> Grant:
    clock = FakeClock()
    return Grant(
        id="g-1",
        requester="arn:aws:iam::111122223333:role/agents/oncall-agent",
        cluster="prod-eks",
        namespaces=(namespace,) if namespace else (),
        scope=scope_name,
        reason="readiness probe failing",
        duration=timedelta(minutes=15),
        status=GrantStatus.ACTIVE,
        version=3,
        created_at=clock.now(),
        decision=PolicyDecision(outcome="auto_approve"),
    )


def test_the_gateway_group_impersonates_the_grant_user_and_exactly_the_groups_a_grant_can_carry(catalog) -> None:
    gateway = _as_gateway(catalog)
    objects = manifests(gateway, "prod-eks")
    validate(objects)
    (role,) = [o for o in objects if o["kind"] == "ClusterRole" and o["metadata"]["name"] == GATEWAY_ROLE]
    users, groups, extras = role["rules"]
    # one name only: never system:kube-controller-manager or any other user bound to something broad
    assert users == {
        "apiGroups": [""],
        "resources": ["users"],
        "verbs": ["impersonate"],
        "resourceNames": ["eks-jit:grant"],
    }
    assert extras == EXTRAS_RULE
    cluster = gateway.clusters["prod-eks"]
    carried = {
        group
        for name, scope in gateway.scopes.items()
        for namespace in ((None,) if scope.level is Level.CLUSTER else cluster.namespaces)
        for group in groups_for(_grant(name, scope, namespace), scope)
    }
    assert groups == {
        "apiGroups": [""],
        "resources": ["groups"],
        "verbs": ["impersonate"],
        "resourceNames": sorted(carried),
    }
    assert GATEWAY_GROUP not in carried and "system:masters" not in carried
    (binding,) = [o for o in objects if o["kind"] == "ClusterRoleBinding" and o["metadata"]["name"] == GATEWAY_ROLE]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": GATEWAY_ROLE}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": GATEWAY_GROUP}]


def test_access_policy_scopes_are_bound_to_their_kubernetes_roles_per_namespace_on_a_gateway_cluster(catalog) -> None:
    objects = manifests(_as_gateway(catalog), "prod-eks")
    bound = {
        (o["kind"], o["metadata"].get("namespace"), o["subjects"][0]["name"]): (
            o["roleRef"]["kind"],
            o["roleRef"]["name"],
        )
        for o in objects
        if o["kind"] in ("RoleBinding", "ClusterRoleBinding") and o["roleRef"]["name"] != GATEWAY_ROLE
    }
    policies = {k: v for k, v in bound.items() if v[0] == "ClusterRole"}
    assert policies == {
        ("RoleBinding", "payments", "eks-jit:view:payments"): ("ClusterRole", "view"),
        ("RoleBinding", "orders", "eks-jit:view:orders"): ("ClusterRole", "view"),
        ("RoleBinding", "payments", "eks-jit:edit:payments"): ("ClusterRole", "edit"),
        ("RoleBinding", "orders", "eks-jit:edit:orders"): ("ClusterRole", "edit"),
        ("RoleBinding", "payments", "eks-jit:admin:payments"): ("ClusterRole", "admin"),
        ("RoleBinding", "orders", "eks-jit:admin:orders"): ("ClusterRole", "admin"),
        ("ClusterRoleBinding", None, "eks-jit:cluster-view"): ("ClusterRole", "view"),
    }
    # the rbac scope keeps its own Role per namespace, and nothing else
    assert {k: v for k, v in bound.items() if v[0] == "Role"} == {
        ("RoleBinding", "payments", "eks-jit:rollout-restart:payments"): ("Role", "eks-jit-rollout-restart"),
        ("RoleBinding", "orders", "eks-jit:rollout-restart:orders"): ("Role", "eks-jit-rollout-restart"),
    }


def test_an_entry_cluster_gets_no_impersonation_and_no_policy_bindings(catalog) -> None:
    gateway = _as_gateway(catalog)
    assert manifests(gateway, "staging-eks") == manifests(catalog, "staging-eks")
    assert not [o for o in manifests(catalog, "prod-eks") if o["metadata"]["name"].startswith("eks-jit:gateway")]


def test_admin_view_gets_a_rendered_read_everything_role_and_cluster_admin_binds_per_namespace(catalog) -> None:
    scopes = {
        "read-all": Scope(description="t", level=Level.CLUSTER, access_policies=("AmazonEKSAdminViewPolicy",)),
        "ns-admin": Scope(description="t", access_policies=("AmazonEKSClusterAdminPolicy",)),
    }
    objects = manifests(_as_gateway(catalog).model_copy(update={"scopes": scopes}), "prod-eks")
    validate(objects)
    (admin_view,) = [o for o in objects if o["metadata"]["name"] == "eks-jit:admin-view"]
    assert admin_view["rules"] == [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]
    refs = {(o["kind"], o["metadata"].get("namespace"), o["roleRef"]["name"]) for o in objects if "roleRef" in o}
    assert ("ClusterRoleBinding", None, "eks-jit:admin-view") in refs
    assert {("RoleBinding", "payments", "cluster-admin"), ("RoleBinding", "orders", "cluster-admin")} <= refs
    assert ("ClusterRoleBinding", None, "cluster-admin") not in refs  # a namespaced scope stays in its namespaces


def test_a_cluster_scope_named_gateway_is_refused_its_group_is_the_gateway_s_own(catalog) -> None:
    scopes = {"gateway": Scope(description="t", level=Level.CLUSTER, access_policies=("AmazonEKSViewPolicy",))}
    with pytest.raises(ValueError, match="eks-jit:gateway"):
        manifests(_as_gateway(catalog).model_copy(update={"scopes": scopes}), "prod-eks")


def test_the_cli_renders_a_gateway_cluster_of_a_configuration_file(tmp_path: Path) -> None:
    local = ROOT / "config" / "local" / "eks-jit.yaml"
    assert main(["rbac", "render", "--config", str(local), "--out", str(tmp_path)]) == 0
    objects = list(yaml.safe_load_all((tmp_path / "demo-gateway" / "rbac.yaml").read_text()))
    assert any(o["metadata"]["name"] == GATEWAY_ROLE for o in objects)
    demo = list(yaml.safe_load_all((tmp_path / "demo" / "rbac.yaml").read_text()))
    assert not any(o["metadata"]["name"] == GATEWAY_ROLE for o in demo)


def test_rbac_render_refuses_a_scope_whose_group_is_the_gateway_s_with_exit_2(tmp_path: Path, capsys) -> None:
    source = ROOT / "config" / "local"
    raw = yaml.safe_load((source / "eks-jit.yaml").read_text())
    raw["scopes"]["gateway"] = {"description": "t", "level": "cluster", "access_policies": ["AmazonEKSViewPolicy"]}
    (tmp_path / "eks-jit.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / raw["policies"]).write_text((source / raw["policies"]).read_text())
    assert main(["rbac", "render", "--config", str(tmp_path / "eks-jit.yaml"), "--out", str(tmp_path / "out")]) == 2
    assert "eks-jit:gateway" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # not even the entry cluster's file
