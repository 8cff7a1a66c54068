"""The RBAC the catalog relies on: rendered, schema-valid, one group per namespace."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from eks_jit.cli import main
from eks_jit.rbac import manifests, validate
from eks_jit.server.config import load_config
from eks_jit.server.domain.catalog import PolicyRule
from tests.support import EXAMPLE_CONFIG, ROOT


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
