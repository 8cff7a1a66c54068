"""ValidatingAdmissionPolicies for scopes whose writes may change only named fields.

RBAC decides *whether* a group may patch a deployment, never *what* the patch changes, so
``patch deployments`` is edit-level power. A catalog rule with ``only_changes`` (see
:class:`eks_jit.server.domain.catalog.PolicyRule`) is rendered here as a ValidatingAdmissionPolicy
(``admissionregistration.k8s.io/v1``, GA since Kubernetes 1.30, evaluated by the API server:
no webhook to run) and its binding. The policy matches UPDATE requests (a PATCH is an UPDATE
in admission) from the scope's Kubernetes groups and refuses any that changes a field other
than the allowed ones.

How the CEL is built: the allowed paths form a tree. At every object on the way to an allowed
field, each *other* property of that object (read from the Kubernetes OpenAPI schema that
``kubernetes-validate`` ships) must be equal in ``object`` and ``oldObject``; at a map
(annotations, labels) every key but the allowed ones must be unchanged, added or removed
nowhere. Optional field selection (``object.?spec.?replicas``) makes an absent field equal
only to an absent field. The fields the API server itself changes on every update
(``metadata.managedFields``, ``metadata.resourceVersion``, ``metadata.generation``) are
allowed implicitly. One validation per compared field, so a refusal names the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from eks_jit.server.domain.catalog import (
    SERVER_MANAGED_FIELDS,
    Catalog,
    Level,
    PolicyRule,
    Scope,
    format_field_path,
    kubernetes_group,
)

API_VERSION = "admissionregistration.k8s.io/v1"
SERVER_MANAGED = SERVER_MANAGED_FIELDS
# CEL reserved words: Kubernetes exposes properties with these names as __<word>__.
_CEL_RESERVED = frozenset(
    [
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ]
)


class AdmissionRenderError(ValueError):
    """A rule's ``only_changes`` cannot be turned into a policy (unknown resource or field)."""


def cel_name(prop: str) -> str:
    """A property name as Kubernetes CEL spells it (its escaping rules for reserved words and
    the characters ``_ . - /``)."""
    if prop in _CEL_RESERVED:
        return f"__{prop}__"
    escaped = prop.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__")
    return escaped.replace("/", "__slash__")


def _cel_string(text: str) -> str:
    return json.dumps(text)


# -- the Kubernetes schema ------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """A schema node: an object with named properties, a map, or anything else (a leaf)."""

    kind: str  # "object" | "map" | "leaf"
    properties: dict[str, Any] = field(default_factory=dict)


class Schema:
    """The OpenAPI definitions of one Kubernetes version, as shipped by kubernetes-validate."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self._defs = definitions

    @classmethod
    @cache
    def for_version(cls, version: str) -> Schema:
        import kubernetes_validate

        base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
        return cls(json.loads((base / "_definitions.json").read_text())["$defs"])

    def resource(self, group: str, resource: str) -> tuple[str, dict[str, Any]]:
        """(``group/version Kind``, definition) of a resource named as RBAC names it."""
        found = []
        for definition in self._defs.values():
            for gvk in definition.get("x-kubernetes-group-version-kind", ()):
                if gvk["group"] == group and _plural(gvk["kind"]) == resource and "properties" in definition:
                    found.append((gvk["version"], gvk["kind"], definition))
        if not found:
            raise AdmissionRenderError(f"no Kubernetes schema for resource '{resource}' in API group '{group}'")
        version, kind, definition = max(found, key=lambda f: _version_rank(f[0]))
        return f"{group + '/' if group else ''}{version} {kind}", definition

    def node(self, schema: dict[str, Any]) -> Node:
        while "$ref" in schema:
            schema = self._defs[schema["$ref"].rsplit("/", 1)[-1]]
        if "properties" in schema:
            return Node("object", schema["properties"])
        if "additionalProperties" in schema:
            return Node("map")
        return Node("leaf")


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    return lower + "s"


def _version_rank(version: str) -> tuple[int, int, int]:
    """v1 > v1beta2 > v1beta1 > v1alpha1."""
    import re

    major, stage, minor = re.fullmatch(r"v(\d+)(alpha|beta)?(\d*)", version).groups()  # type: ignore[union-attr]
    return int(major), {"alpha": 0, "beta": 1, None: 2}[stage], int(minor or 0)


# -- CEL ------------------------------------------------------------------------------------


def _select(root: str, path: tuple[str, ...]) -> str:
    return root + "".join(f".?{cel_name(p)}" for p in path)


def _tree(paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    """Allowed paths as nested dicts; ``None`` marks an allowed field (anything below it may change)."""
    tree: dict[str, Any] = {}
    for path in paths:
        node: dict[str, Any] | None = tree
        for segment in path[:-1]:
            assert node is not None
            node = node.setdefault(segment, {})
            if node is None:  # a shorter allowed path already frees everything below
                break
        else:
            assert node is not None
            node[path[-1]] = None
    return tree


def validations(
    schema: Schema, definition: dict[str, Any], paths: tuple[tuple[str, ...], ...], what: str
) -> list[dict[str, str]]:
    """The CEL validations that refuse any change outside ``paths`` (plus the server-managed
    fields) between ``oldObject`` and ``object``."""
    checks: list[dict[str, str]] = []

    def walk(node: Node, prefix: tuple[str, ...], allowed: dict[str, Any]) -> None:
        children = allowed
        if node.kind == "object":
            for segment in children:
                if segment not in node.properties:
                    where = format_field_path((*prefix, segment))
                    raise AdmissionRenderError(f"{what} has no field {where}")
            for prop in sorted(node.properties):
                path = (*prefix, prop)
                if prop not in children:
                    checks.append(
                        {
                            "expression": f"{_select('object', path)} == {_select('oldObject', path)}",
                            "message": f"may not change {format_field_path(path)}",
                            "reason": "Forbidden",
                        }
                    )
                elif children[prop] is not None:  # on the way to an allowed field: descend
                    walk(schema.node(node.properties[prop]), path, children[prop])
        elif node.kind == "map":
            if any(v is not None for v in children.values()):
                raise AdmissionRenderError(f"only_changes cannot go below a map key ({format_field_path(prefix)})")
            keys = "[" + ", ".join(_cel_string(k) for k in sorted(children)) + "]"
            new, old = (_select(root, prefix) + ".orValue({})" for root in ("object", "oldObject"))
            checks.append(
                {
                    "expression": (
                        f"{new}.all(k, k in {keys} || (k in {old} && {new}[k] == {old}[k])) "
                        f"&& {old}.all(k, k in {keys} || k in {new})"
                    ),
                    "message": f"may change no key of {format_field_path(prefix)} but {keys[1:-1]}",
                    "reason": "Forbidden",
                }
            )
        else:
            raise AdmissionRenderError(f"only_changes cannot go inside {format_field_path(prefix)} (a list or value)")

    walk(schema.node(definition), (), _tree(paths + SERVER_MANAGED))
    return checks


# -- the objects ----------------------------------------------------------------------------


def _groups(catalog: Catalog, cluster: str, scope_name: str, scope: Scope) -> list[str]:
    if scope.level is Level.CLUSTER:
        return [kubernetes_group(scope_name, None)]
    return [kubernetes_group(scope_name, ns) for ns in catalog.clusters[cluster].namespaces]


def _policy_name(scope_name: str, group: str, resource: str) -> str:
    return f"eks-jit-{scope_name}-{resource}" + (f".{group}" if group not in ("", "apps") else "")


def policies_for(
    catalog: Catalog, cluster: str, scope_name: str, scope: Scope, rule: PolicyRule, version: str
) -> list[dict[str, Any]]:
    schema = Schema.for_version(version)
    groups = _groups(catalog, cluster, scope_name, scope)
    group_list = "[" + ", ".join(_cel_string(g) for g in groups) + "]"
    allowed = ", ".join(rule.only_changes)
    objects: list[dict[str, Any]] = []
    for api_group in rule.apiGroups:
        for resource in rule.resources:
            what, definition = schema.resource(api_group, resource)
            checks = validations(schema, definition, rule.field_paths, what)
            for check in checks:
                check["message"] = f"eks-jit scope {scope_name} {check['message']} (it may change only {allowed})"
            name = _policy_name(scope_name, api_group, resource)
            labels = {"app.kubernetes.io/managed-by": "eks-jit"}
            objects.append(
                {
                    "apiVersion": API_VERSION,
                    "kind": "ValidatingAdmissionPolicy",
                    "metadata": {"name": name, "labels": labels, "annotations": {"eks-jit/scope": scope_name}},
                    "spec": {
                        "failurePolicy": "Fail",
                        "matchConstraints": {
                            "resourceRules": [
                                {
                                    "apiGroups": [api_group],
                                    "apiVersions": ["*"],
                                    "resources": [resource],
                                    "operations": ["UPDATE"],
                                }
                            ]
                        },
                        "matchConditions": [
                            {
                                "name": "eks-jit-scope-groups",
                                "expression": (
                                    "has(request.userInfo.groups) && "
                                    f"request.userInfo.groups.exists(g, g in {group_list})"
                                ),
                            }
                        ],
                        "validations": checks,
                    },
                }
            )
            objects.append(
                {
                    "apiVersion": API_VERSION,
                    "kind": "ValidatingAdmissionPolicyBinding",
                    "metadata": {"name": name, "labels": labels},
                    "spec": {"policyName": name, "validationActions": ["Deny"]},
                }
            )
    return objects


def manifests(catalog: Catalog, cluster: str, version: str) -> list[dict[str, Any]]:
    """Every admission object ``cluster`` needs for the catalog's ``only_changes`` rules."""
    objects: list[dict[str, Any]] = []
    for scope_name, scope in sorted(catalog.scopes.items()):
        for rule in scope.rbac:
            if rule.only_changes:
                objects += policies_for(catalog, cluster, scope_name, scope, rule, version)
    return objects
