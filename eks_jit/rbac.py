"""Render the in-cluster RBAC objects the scope catalog relies on.

A scope with ``rbac`` rules grants through a Kubernetes group, bound by RBAC eks-jit ships:
for a namespaced scope, a Role with the rules and a RoleBinding of the group
``eks-jit:<scope>:<namespace>`` in every registered namespace of the cluster (one group per
namespace, so a grant on one namespace gives nothing on another); for a cluster scope, a
ClusterRole and ClusterRoleBinding of ``eks-jit:<scope>``. A rule with ``only_changes`` also
gets a ValidatingAdmissionPolicy and its binding (``eks_jit/admission.py``), written in the same
file so one ``kubectl apply`` puts both walls up. Every object is validated offline against the
Kubernetes schema (``kubernetes-validate``, strict) before it is written.

A **gateway cluster** (``access_mode: gateway``) also gets what the data-path gateway needs to forward
as a grant (``lambdas/domain/impersonation.py``): its role's access entry is in the group
``eks-jit:gateway`` and carries no access policy, so

- a ClusterRole and ClusterRoleBinding let that group ``impersonate`` the one user ``eks-jit:grant``
  (the grant's id travels as an extra: RBAC cannot limit user names by prefix, and an unrestricted
  rule would let the gateway act as any user), exactly the groups a grant on this cluster can carry
  (every scope's ``eks-jit:<scope>:<namespace>`` for the cluster's namespaces, ``eks-jit:<scope>``
  for a cluster scope) and the three extras it sends (``userextras/eks-jit.io/grant-id``,
  ``.../principal``, ``.../session``,
  API group ``authentication.k8s.io``, as the Kubernetes "User impersonation" docs spell them);
- an impersonated user gets nothing from EKS access policies, so a scope granted through one is
  bound in RBAC to the Kubernetes role it corresponds to: a RoleBinding per namespace of the scope's
  group to the default ClusterRole ``view``, ``edit`` or ``admin`` (a ClusterRoleBinding for a
  cluster scope; ``cluster-admin`` for AmazonEKSClusterAdminPolicy; AmazonEKSAdminViewPolicy, which
  has no default role, gets a rendered ClusterRole reading everything). The gateway checks each
  request first; this RBAC stays the second wall behind it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from eks_jit import admission
from eks_jit.server.config import ConfigError
from eks_jit.server.domain.catalog import ACCESS_POLICY_PREFIX, Catalog, Cluster, Level, Scope, kubernetes_group
from eks_jit.server.domain.impersonation import EXTRAS, GATEWAY_GROUP, GRANT_USER

KUBERNETES_VERSION = "1.33.0"
LABELS = {"app.kubernetes.io/managed-by": "eks-jit"}
RBAC_GROUP = "rbac.authorization.k8s.io"
GATEWAY_ROLE = f"{GATEWAY_GROUP}-impersonator"  # eks-jit:gateway-impersonator: no scope's eks-jit-<name>
ADMIN_VIEW_ROLE = "eks-jit:admin-view"
# The Kubernetes role each EKS access policy stands for (EKS User Guide, "Review access policy
# permissions"): what an impersonated grant user is bound to in place of the policy.
ACCESS_POLICY_ROLES = {
    ACCESS_POLICY_PREFIX + "AmazonEKSViewPolicy": "view",
    ACCESS_POLICY_PREFIX + "AmazonEKSEditPolicy": "edit",
    ACCESS_POLICY_PREFIX + "AmazonEKSAdminPolicy": "admin",
    ACCESS_POLICY_PREFIX + "AmazonEKSClusterAdminPolicy": "cluster-admin",
    ACCESS_POLICY_PREFIX + "AmazonEKSAdminViewPolicy": ADMIN_VIEW_ROLE,
}


def _rules(scope: Scope) -> list[dict[str, Any]]:
    rules = []
    for r in scope.rbac:  # only_changes is not RBAC: it becomes an admission policy
        rule: dict[str, Any] = {"apiGroups": list(r.apiGroups), "resources": list(r.resources), "verbs": list(r.verbs)}
        if r.resourceNames:
            rule["resourceNames"] = list(r.resourceNames)
        rules.append(rule)
    return rules


def _role(kind: str, name: str, namespace: str | None, scope_name: str, scope: Scope) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": LABELS, "annotations": {"eks-jit/scope": scope_name}}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, "rules": _rules(scope)}


def _binding(
    kind: str, role_kind: str, name: str, namespace: str | None, group: str, role: str | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": LABELS}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role or name},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": group}],
    }


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    metadata = {"name": name, "labels": LABELS}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": metadata, "rules": rules}


def impersonable_groups(catalog: Catalog, cluster: Cluster) -> list[str]:
    """Every group ``impersonation.groups_for`` can give a grant on ``cluster``: any scope may be
    requested on any cluster, in any of its namespaces (or cluster-wide for a cluster scope)."""
    groups = set()
    for name, scope in catalog.scopes.items():
        if scope.level is Level.CLUSTER:
            groups.add(kubernetes_group(name, None))
        else:
            groups |= {kubernetes_group(name, ns) for ns in cluster.namespaces}
    return sorted(groups)


def _gateway_manifests(catalog: Catalog, cluster_name: str) -> list[dict[str, Any]]:
    """What the gateway's group may impersonate, and the access-policy scopes' bindings (module doc)."""
    cluster = catalog.clusters[cluster_name]
    groups = impersonable_groups(catalog, cluster)
    if GATEWAY_GROUP in groups:  # a cluster scope named "gateway": its grants would carry the gateway's group
        raise ConfigError(f"scope 'gateway' would grant the group {GATEWAY_GROUP}, the gateway's own: rename it")
    extras = sorted(f"userextras/{key}" for key in EXTRAS)
    objects = [
        _cluster_role(
            GATEWAY_ROLE,
            [
                # users: every grant is its own user (eks-jit:grant:<id>), so no name list can be written
                {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": [GRANT_USER]},
                {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": groups},
                {"apiGroups": ["authentication.k8s.io"], "resources": extras, "verbs": ["impersonate"]},
            ],
        ),
        _binding("ClusterRoleBinding", "ClusterRole", GATEWAY_ROLE, None, GATEWAY_GROUP),
    ]
    uses_admin_view = False
    for scope_name, scope in sorted(catalog.scopes.items()):
        for arn in scope.access_policies:
            role = ACCESS_POLICY_ROLES.get(arn)
            if role is None:  # the catalog refuses these for a gateway cluster already (kube_rules.scope_rules)
                raise ConfigError(f"scope '{scope_name}': {arn} has no Kubernetes role to bind on a gateway cluster")
            uses_admin_view |= role == ADMIN_VIEW_ROLE
            name = f"eks-jit-{scope_name}-policy-{role.removeprefix('eks-jit:')}"
            if scope.level is Level.CLUSTER:
                group = kubernetes_group(scope_name, None)
                objects.append(_binding("ClusterRoleBinding", "ClusterRole", name, None, group, role))
                continue
            # A RoleBinding to a ClusterRole grants its rules in that namespace only (cluster-admin
            # included: everything in the namespace), as the gateway reads a namespaced grant.
            for namespace in cluster.namespaces:
                group = kubernetes_group(scope_name, namespace)
                objects.append(_binding("RoleBinding", "ClusterRole", name, namespace, group, role))
    if uses_admin_view:
        objects.insert(
            2,
            _cluster_role(
                ADMIN_VIEW_ROLE, [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]
            ),
        )
    return objects


def manifests(catalog: Catalog, cluster: str, version: str = KUBERNETES_VERSION) -> list[dict[str, Any]]:
    """Every RBAC and admission object ``cluster`` needs for the catalog's RBAC scopes."""
    objects: list[dict[str, Any]] = []
    for scope_name, scope in sorted(catalog.scopes.items()):
        if not scope.rbac:
            continue
        name = f"eks-jit-{scope_name}"
        if scope.level is Level.CLUSTER:
            objects.append(_role("ClusterRole", name, None, scope_name, scope))
            objects.append(
                _binding("ClusterRoleBinding", "ClusterRole", name, None, kubernetes_group(scope_name, None))
            )
            continue
        for namespace in catalog.clusters[cluster].namespaces:
            objects.append(_role("Role", name, namespace, scope_name, scope))
            objects.append(_binding("RoleBinding", "Role", name, namespace, kubernetes_group(scope_name, namespace)))
    if catalog.clusters[cluster].gateway:
        objects += _gateway_manifests(catalog, cluster)
    return objects + admission.manifests(catalog, cluster, version)


def validate(objects: list[dict[str, Any]], version: str = KUBERNETES_VERSION) -> None:
    """Raise ``kubernetes_validate.ValidationError`` for the first object the schema refuses."""
    import kubernetes_validate

    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def render(catalog: Catalog, out: Path, version: str = KUBERNETES_VERSION) -> list[Path]:
    """Write ``<out>/<cluster>/rbac.yaml`` for every cluster; returns the files written."""
    rendered = {cluster: manifests(catalog, cluster, version) for cluster in sorted(catalog.clusters)}
    for objects in rendered.values():  # every cluster's objects first: a refusal writes nothing
        validate(objects, version)
    written = []
    for cluster, objects in rendered.items():
        path = out / cluster / "rbac.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            f"# Generated by `eks-jit rbac render` for cluster {cluster}: apply with kubectl apply -f\n"
            "# ValidatingAdmissionPolicy needs Kubernetes 1.30 or newer (admissionregistration.k8s.io/v1).\n"
        )
        if catalog.clusters[cluster].gateway:
            header += (
                f"# Gateway cluster: lets the gateway's group {GATEWAY_GROUP} impersonate grants, and binds the\n"
                "# access-policy scopes' groups to their Kubernetes roles. Apply it before the first gateway grant.\n"
            )
        path.write_text(header + yaml.safe_dump_all(objects, sort_keys=False))
        written.append(path)
    return written
