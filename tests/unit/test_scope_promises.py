"""A scope's name and description are promises; the catalog refuses scopes that break them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from eks_jit.server.config import load_catalog
from eks_jit.server.domain.catalog import Scope, parse_field_path
from tests.support import EXAMPLE_CONFIG, ROOT

CONFIGS = [EXAMPLE_CONFIG, ROOT / "config" / "local" / "eks-jit.yaml"]
READ = ["get", "list", "watch"]


def scope(**fields: Any) -> Scope:
    return Scope.model_validate({"description": "test", **fields})


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.parent.name)
def test_the_example_read_only_scopes_are_marked_and_hold(config) -> None:
    catalog = load_catalog(config)
    assert {name for name, s in catalog.scopes.items() if s.read_only} == {"view", "cluster-view"}
    for s in catalog.scopes.values():  # no RBAC scope of the examples can exec into a pod or read a Secret
        assert not any(rule.reaches_into_pods() or rule.reads_secrets() for rule in s.rbac)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.parent.name)
def test_rollout_restart_writes_only_the_restart_annotation(config) -> None:
    (patching,) = [r for r in load_catalog(config).scopes["rollout-restart"].rbac if "patch" in r.verbs]
    assert patching.field_paths == (
        ("spec", "template", "metadata", "annotations", "kubectl.kubernetes.io/restartedAt"),
    )


@pytest.mark.parametrize(
    ("rules", "policies", "error"),
    [
        # a websocket exec is an HTTP GET: "get" on pods/exec opens a shell (Kubernetes #128743)
        ([{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}], [], "reaches into pods"),
        ([{"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["get"]}], [], "reaches into pods"),
        ([{"apiGroups": ["*"], "resources": ["*"], "verbs": READ}], [], "reaches into pods"),
        ([{"apiGroups": [""], "resources": ["secrets"], "verbs": READ}], [], "Secrets"),
        ([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}], [], r"grants \['patch'\]"),
        ([], ["AmazonEKSEditPolicy"], "not known to be read-only"),
        ([], ["AmazonEKSAdminViewPolicy"], "not known to be read-only"),  # it reads Secrets
    ],
)
def test_a_read_only_scope_that_is_not_is_refused(rules, policies, error) -> None:
    with pytest.raises(ValidationError, match=error):
        scope(read_only=True, rbac=rules, access_policies=policies)


@pytest.mark.parametrize(
    ("verbs", "resources", "path", "error"),
    [
        (["get", "create", "patch"], ["deployments"], "spec.replicas", "create and delete cannot be narrowed"),
        (["get", "list"], ["deployments"], "spec.replicas", "must include patch or update"),
        (["patch"], ["*"], "spec.replicas", "named resources"),
        (["patch"], ["deployments/scale"], "spec.replicas", "no subresources"),
        (["patch"], ["deployments"], "spec.template.spec.containers[0].image", "not a field path"),
    ],
)
def test_only_changes_that_cannot_be_enforced_is_refused(verbs, resources, path, error) -> None:
    rule = {"apiGroups": ["apps"], "resources": resources, "verbs": verbs, "only_changes": [path]}
    with pytest.raises(ValidationError, match=error):
        scope(rbac=[rule])


def test_field_paths_take_bracketed_map_keys() -> None:
    assert parse_field_path('metadata.labels["app.kubernetes.io/name"]') == (
        "metadata",
        "labels",
        "app.kubernetes.io/name",
    )
    for bad in ["", "a..b", ".a", "a[0]", 'a."b"']:
        with pytest.raises(ValueError, match="field path"):
            parse_field_path(bad)
