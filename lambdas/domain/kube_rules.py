"""Whether a caller's active grants cover one Kubernetes request: RBAC's rules, decided by the gateway.

A grant's scope becomes rules (:func:`scope_rules`): its ``rbac`` rules as the catalog writes them,
plus, for each EKS access policy, the rules AWS documents for it (EKS User Guide, "Review access
policy permissions": :data:`ACCESS_POLICY_RULES`). A rule allows a request exactly as Kubernetes
RBAC's ``RuleAllows`` does (k8s.io/kubernetes ``pkg/apis/rbac/v1/evaluation_helpers.go``):
``*`` matches any verb, group or resource (subresources included), ``*/scale`` any resource's
``scale``, ``resourceNames`` need the request to carry a name (so they never allow create,
deletecollection or an unnamed list/watch), and ``nonResourceURLs`` (``/metrics``, ``/logs/*``)
apply only to non-resource requests and only through a cluster-wide grant, as only a
ClusterRoleBinding gives them. A namespaced grant covers requests in its namespaces only (the
namespace object itself, ``/api/v1/namespaces/payments``, is in namespace ``payments``).

Two places where the gateway is stricter than RBAC: a GET on ``pods/exec``, ``pods/attach`` or
``pods/portforward`` (a websocket upgrade: Kubernetes #128743) needs ``create`` as well as ``get``;
and a rule with ``only_changes`` allows a patch or update only once the gateway knows what it
changes (:class:`Changes`: :func:`patch_changes` for a PATCH body, :func:`update_changes` for a
PUT against the stored object), which must be nothing but the allowed fields; the same promise the
rendered ValidatingAdmissionPolicy keeps in entry mode (eks_jit/admission.py).

:func:`authorize` decides over the caller's grants: each is rechecked here (the caller's
principal, the cluster, active and not an extension, ``now`` before ``expires_at``, the session it
is bound to), and a refusal says which grants were considered and why each did not cover it.
Discovery is allowed to any caller with a grant in force on the cluster. Nothing reads a clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .catalog import (
    ACCESS_POLICY_PREFIX,
    SERVER_MANAGED_FIELDS,
    WRITE_VERBS_LIMITED,
    Level,
    PolicyRule,
    Scope,
    canonical_access_policy,
    format_field_path,
)
from .errors import DomainError
from .grant import Grant
from .kube_request import UPGRADED, KubeRequest, NonResourceRequest

FieldPath = tuple[str, ...]

WEBSOCKET_CONNECT_SUBRESOURCES = frozenset(UPGRADED)


class UnsupportedAccessPolicy(DomainError):
    """A scope names an EKS access policy whose rules the gateway does not know: it cannot enforce it."""

    code = "unsupported_access_policy"


class UnnarrowableChange(DomainError):
    """A patch or update under ``only_changes`` whose changes cannot be told (the gateway answers 403)."""

    code = "change_not_narrowable"


@dataclass(frozen=True)
class Rule:
    """One RBAC rule (a resource rule or a non-resource rule), with the fields writes may change."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    only_changes: tuple[FieldPath, ...] = ()

    @classmethod
    def of(cls, rule: PolicyRule) -> Rule:
        return cls(
            verbs=rule.verbs,
            api_groups=rule.apiGroups,
            resources=rule.resources,
            resource_names=rule.resourceNames,
            only_changes=rule.field_paths,
        )

    def allows(self, request: KubeRequest, verb: str | None = None) -> bool:
        """RBAC's RuleAllows for a resource request (``verb`` overrides the request's)."""
        return (
            _verb_matches(self.verbs, verb or request.verb)
            and ("*" in self.api_groups or request.api_group in self.api_groups)
            and _resource_matches(self.resources, request.resource_path, request.subresource)
            and (not self.resource_names or request.name in self.resource_names)
        )

    def allows_url(self, request: NonResourceRequest) -> bool:
        """RBAC's NonResourceURLMatches: ``*``, the exact path, or a prefix ending in ``*``."""
        return _verb_matches(self.verbs, request.verb) and any(
            url == "*" or url == request.path or (url.endswith("*") and request.path.startswith(url[:-1]))
            for url in self.non_resource_urls
        )


def _verb_matches(verbs: tuple[str, ...], verb: str) -> bool:
    return "*" in verbs or verb in verbs


def _resource_matches(resources: tuple[str, ...], combined: str, subresource: str) -> bool:
    for resource in resources:
        if resource in ("*", combined):
            return True
        if subresource and resource == f"*/{subresource}":
            return True
    return False


# -- the EKS access policies ----------------------------------------------------------------------

READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")


def _rules(*rows: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]) -> tuple[Rule, ...]:
    return tuple(Rule(verbs=verbs, api_groups=groups, resources=resources) for groups, resources, verbs in rows)


_VIEW_ROWS: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("apps",),
        (
            "controllerrevisions",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
        ),
        READ,
    ),
    (("autoscaling",), ("horizontalpodautoscalers", "horizontalpodautoscalers/status"), READ),
    (("batch",), ("cronjobs", "cronjobs/status", "jobs", "jobs/status"), READ),
    (("discovery.k8s.io",), ("endpointslices",), READ),
    (
        ("extensions",),
        (
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "ingresses",
            "ingresses/status",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "replicationcontrollers/scale",
        ),
        READ,
    ),
    (("networking.k8s.io",), ("ingresses", "ingresses/status", "networkpolicies"), READ),
    (("policy",), ("poddisruptionbudgets", "poddisruptionbudgets/status"), READ),
    (
        ("",),
        (
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/status",
        ),
        READ,
    ),
    (
        ("",),
        (
            "bindings",
            "events",
            "limitranges",
            "namespaces/status",
            "pods/log",
            "pods/status",
            "replicationcontrollers/status",
            "resourcequotas",
            "resourcequotas/status",
        ),
        READ,
    ),
    (("",), ("namespaces",), READ),
)
_EDIT_ROWS = (
    *_VIEW_ROWS,
    (
        ("apps",),
        (
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
        ),
        WRITE,
    ),
    (("autoscaling",), ("horizontalpodautoscalers",), WRITE),
    (("batch",), ("cronjobs", "jobs"), WRITE),
    (
        ("extensions",),
        (
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "ingresses",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicationcontrollers/scale",
        ),
        WRITE,
    ),
    (("networking.k8s.io",), ("ingresses", "networkpolicies"), WRITE),
    (("policy",), ("poddisruptionbudgets",), WRITE),
    (("",), ("pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"), READ),
    (("",), ("serviceaccounts",), ("impersonate",)),
    (("",), ("pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"), WRITE),
    (
        ("",),
        (
            "configmaps",
            "events",
            "persistentvolumeclaims",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "secrets",
            "serviceaccounts",
            "services",
            "services/proxy",
        ),
        WRITE,
    ),
)
_ADMIN_ROWS = (
    *_EDIT_ROWS,
    (("authorization.k8s.io",), ("localsubjectaccessreviews",), ("create",)),
    (("rbac.authorization.k8s.io",), ("rolebindings", "roles"), (*READ, *WRITE)),
)

ACCESS_POLICY_RULES: Mapping[str, tuple[Rule, ...]] = {
    ACCESS_POLICY_PREFIX + "AmazonEKSViewPolicy": _rules(*_VIEW_ROWS),
    ACCESS_POLICY_PREFIX + "AmazonEKSEditPolicy": _rules(*_EDIT_ROWS),
    ACCESS_POLICY_PREFIX + "AmazonEKSAdminPolicy": _rules(*_ADMIN_ROWS),
    ACCESS_POLICY_PREFIX + "AmazonEKSAdminViewPolicy": (Rule(verbs=READ, api_groups=("*",), resources=("*",)),),
    ACCESS_POLICY_PREFIX + "AmazonEKSClusterAdminPolicy": (
        Rule(verbs=("*",), api_groups=("*",), resources=("*",)),
        Rule(verbs=("*",), non_resource_urls=("*",)),
    ),
}
"""The rules of each EKS access policy the gateway can enforce, as the EKS User Guide's "Review access
policy permissions" lists them (awsdocs/amazon-eks-user-guide, access-policy-reference.adoc, the
version of December 2024): one :class:`Rule` per table row. View gives no Secrets and no
exec/attach/port-forward/proxy; edit adds writes, Secrets, pod entry and service-account
impersonation but no RBAC; admin adds Roles and RoleBindings. The access policies made for EKS's own
components (Auto Mode, hybrid nodes...) are not here: a scope naming one is refused for a gateway
cluster (:class:`UnsupportedAccessPolicy`)."""


def scope_rules(scope: Scope) -> tuple[Rule, ...]:
    """Everything a grant of ``scope`` may do, as rules. Raises :class:`UnsupportedAccessPolicy`."""
    rules: list[Rule] = []
    for arn in scope.access_policies:
        known = ACCESS_POLICY_RULES.get(canonical_access_policy(arn))
        if known is None:
            raise UnsupportedAccessPolicy(
                f"the gateway does not know the rules of {arn.removeprefix(ACCESS_POLICY_PREFIX)} "
                f"(it knows {', '.join(sorted(a.removeprefix(ACCESS_POLICY_PREFIX) for a in ACCESS_POLICY_RULES))})"
            )
        rules += known
    return tuple(rules) + tuple(Rule.of(r) for r in scope.rbac)


# -- what a write changes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """What a write does to an object, as field paths (``("spec", "replicas")``).

    ``set``: fields given a value, replaced or removed (everything below them may change).
    ``merged``: objects a merge patch descends into; merging into a field that is not an object
    turns it into one, so a merged path must be on the way to an allowed field (or below one)."""

    set: frozenset[FieldPath] = frozenset()
    merged: frozenset[FieldPath] = frozenset()

    def outside(self, allowed: Iterable[FieldPath]) -> list[FieldPath]:
        """The changed paths ``allowed`` (plus the fields the API server itself manages) does not cover."""
        paths = (*allowed, *SERVER_MANAGED_FIELDS)

        def under(path: FieldPath) -> bool:
            return any(path[: len(a)] == a for a in paths)

        def on_the_way(path: FieldPath) -> bool:
            return any(a[: len(path)] == path for a in paths)

        bad = [p for p in self.set if not under(p)] + [p for p in self.merged if not (under(p) or on_the_way(p))]
        return sorted(set(bad))


def strict_json(body: bytes) -> Any:
    """JSON exactly once: UTF-8, no duplicate keys (readers disagree on which one wins: Python keeps the
    last, Go's decoder merges both objects into one struct), no NaN, nested at most :data:`MAX_DEPTH`
    deep (Python's decoder recurses). For every body judged under ``only_changes``, PATCH and PUT."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise UnnarrowableChange("the body has a key twice in one object")
        return dict(items)

    def constant(name: str) -> Any:
        raise UnnarrowableChange(f"the body holds {name}, which is not JSON")

    try:
        found = json.loads(body.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    except RecursionError:
        raise UnnarrowableChange(f"the body is nested more than {MAX_DEPTH} deep") from None
    except (UnicodeDecodeError, ValueError) as error:
        if isinstance(error, UnnarrowableChange):
            raise
        raise UnnarrowableChange(f"the body is not JSON ({error})") from None
    if _depth(found) > MAX_DEPTH:
        raise UnnarrowableChange(f"the body is nested more than {MAX_DEPTH} deep")
    return found


MAX_DEPTH = 100
"""Deepest nesting of a body judged under ``only_changes`` (Kubernetes objects are far shallower; the
walks over a patch and an update recurse, and a deeper body would exhaust Python's stack)."""


def _depth(value: Any) -> int:
    """How deep ``value`` nests, counted without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        pending += [(child, depth + 1) for child in children]
    return deepest


def _merge_changes(patch: Any, strategic: bool) -> Changes:
    changed: set[FieldPath] = set()
    merged: set[FieldPath] = set()

    def walk(value: Any, path: FieldPath) -> None:
        if not isinstance(value, dict):
            changed.add(path)  # a value, a list (replaced, or merged by key), or null (deleted)
            return
        merged.add(path)
        for key, child in value.items():
            if strategic and key.startswith("$"):
                # $patch (replace/delete/merge), $retainKeys, $setElementOrder/<list>,
                # $deleteFromPrimitiveList/<list>, and any directive to come: it acts on this
                # object or on one of its lists, never on one named field alone.
                _, _, target = key.partition("/")
                changed.add((*path, target) if target else path)
                continue
            walk(child, (*path, key))

    walk(patch, ())
    return Changes(frozenset(changed), frozenset(merged))


def _pointer(text: Any) -> FieldPath:
    """A JSON pointer (RFC 6901) as a field path: ``/metadata/annotations/a~1b`` -> (metadata, annotations, a/b)."""
    if not isinstance(text, str) or (text and not text.startswith("/")):
        raise UnnarrowableChange(f"{text!r} is not a JSON pointer")
    segments = []
    for raw in text.split("/")[1:] if text else ():
        if "~" in raw.replace("~0", "").replace("~1", ""):
            raise UnnarrowableChange(f"{text!r} has a malformed '~' escape")
        segments.append(raw.replace("~1", "/").replace("~0", "~"))
    return tuple(segments)


def _json_patch_changes(patch: Any) -> Changes:
    if not isinstance(patch, list):
        raise UnnarrowableChange("a JSON patch is a list of operations")
    changed: set[FieldPath] = set()
    for operation in patch:
        if not isinstance(operation, dict) or not isinstance(operation.get("op"), str):
            raise UnnarrowableChange("each JSON patch operation is an object with an 'op'")
        op, path = operation["op"], _pointer(operation.get("path"))
        if op in ("add", "replace", "remove"):
            changed.add(path)
        elif op in ("move", "copy"):
            # move removes its source; copy only reads it, but a narrow scope carries no data
            # from elsewhere in the object into the field it may change: both paths must be allowed
            changed |= {path, _pointer(operation.get("from"))}
        elif op != "test":
            raise UnnarrowableChange(f"unknown JSON patch operation {op!r}")
    return Changes(frozenset(changed))


PATCH_TYPES = {
    "application/strategic-merge-patch+json": "strategic",
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
}


def patch_changes(content_type: str, body: bytes) -> Changes:
    """The fields a PATCH body touches, from its content type's semantics (a conservative superset:
    a field set to the value it already has counts as changed). Raises :class:`UnnarrowableChange`
    for a body or content type whose effect cannot be told without applying it (server-side apply)."""
    media = content_type.split(";", 1)[0].strip().lower()
    kind = PATCH_TYPES.get(media)
    if kind is None:
        raise UnnarrowableChange(
            f"a {media or 'PATCH without a content type'} cannot be narrowed to named fields: send a "
            "strategic-merge, merge or JSON patch"
        )
    patch = strict_json(body)
    if kind == "json":
        return _json_patch_changes(patch)
    return _merge_changes(patch, strategic=kind == "strategic")


def update_changes(before: Any, after: Any) -> Changes:
    """The fields an update (PUT) of ``before`` to ``after`` changes: every path whose value differs,
    lists compared whole."""
    changed: set[FieldPath] = set()

    def walk(old: Any, new: Any, path: FieldPath) -> None:
        if isinstance(old, dict) and isinstance(new, dict):
            for key in old.keys() | new.keys():
                if key not in old or key not in new:
                    changed.add((*path, key))
                else:
                    walk(old[key], new[key], (*path, key))
        elif old != new or type(old) is not type(new):
            changed.add(path)

    walk(before, after, ())
    return Changes(frozenset(changed))


# -- the decision -----------------------------------------------------------------------------------


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    NEEDS_CHANGES = "needs_changes"
    """A grant covers the request only if the write changes nothing but named fields: call again
    with :class:`Changes` (:func:`patch_changes`, or :func:`update_changes` against the stored object)."""


@dataclass(frozen=True)
class HeldGrant:
    """A grant the caller holds, and the STS session it is bound to (``None``: any session of the role)."""

    grant: Grant
    session: str | None = None


@dataclass(frozen=True)
class Caller:
    """Who sent the request: the IAM role or user ARN (as the registry and grants name it) and the
    STS role session name (``None`` for an IAM user)."""

    principal: str
    session: str | None = None


@dataclass(frozen=True)
class Considered:
    grant_id: str
    scope: str
    why_not: str = ""
    """Empty for the grant that covers the request."""


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    grant_id: str | None = None
    considered: tuple[Considered, ...] = ()
    allowed_changes: tuple[FieldPath, ...] = field(default=())
    """For NEEDS_CHANGES: the fields some covering rule lets the write change."""

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED


def _not_in_force(held: HeldGrant, caller: Caller, cluster: str, now: datetime) -> str:
    """Why ``held`` gives nothing right now ("" when it is in force)."""
    grant = held.grant
    if grant.requester != caller.principal:
        return "it is another principal's grant"
    if grant.cluster != cluster:
        return f"it is for cluster {grant.cluster}"
    if not grant.justifies_access():
        return "it is an extension (its window is its grant's)" if grant.extends else f"it is {grant.status}"
    if grant.expires_at is None or now >= grant.expires_at:
        return f"it expired at {grant.expires_at.isoformat() if grant.expires_at else '?'}"
    if grant.activated_at is not None and now < grant.activated_at:
        return "it is not active yet"
    if held.session is not None and held.session != caller.session:
        return f"it is bound to session {held.session}, not {caller.session or 'a caller without a session'}"
    return ""


def in_force(held: HeldGrant, caller: Caller, cluster: str, now: datetime) -> bool:
    """Whether ``held`` gives ``caller`` anything on ``cluster`` at ``now`` (whatever the request)."""
    return not _not_in_force(held, caller, cluster, now)


def _verbs_needed(request: KubeRequest) -> tuple[str, ...]:
    if request.verb == "get" and request.resource == "pods" and request.subresource in WEBSOCKET_CONNECT_SUBRESOURCES:
        return ("get", "create")  # a websocket upgrade runs the command: it is a create (Kubernetes #128743)
    return (request.verb,)


def _covers(
    grant: Grant, scope: Scope, rules: Sequence[Rule], request: KubeRequest, changes: Changes | None
) -> tuple[str, tuple[FieldPath, ...] | None]:
    """("" and None) if the grant covers ``request``; ("" and paths) if it would for a write that changes
    only those paths; otherwise (why not, None)."""
    if scope.level is Level.NAMESPACE:
        if not request.namespace:
            return f"{grant.scope} is a namespaced scope and the request is cluster-wide", None
        if request.namespace not in grant.namespaces:
            return f"namespace {request.namespace} is not {', '.join(grant.namespaces)}", None
    narrowed: list[tuple[FieldPath, ...]] = []
    for verb in _verbs_needed(request):
        matching = [r for r in rules if r.allows(request, verb)]
        if not matching:
            what = f"{request.api_group + '/' if request.api_group else ''}{request.resource_path}"
            named = f" named {request.name}" if request.name else ""
            return f"{grant.scope} does not allow {verb} on {what}{named}", None
        if verb not in WRITE_VERBS_LIMITED or any(not r.only_changes for r in matching):
            continue  # only_changes narrows writes; the same rule's reads are plain reads
        narrowed = [r.only_changes for r in matching]
    if not narrowed:
        return "", None
    if changes is None:
        return "", tuple(p for paths in narrowed for p in paths)
    for paths in narrowed:
        if not changes.outside(paths):
            return "", None
    outside = changes.outside(narrowed[0])
    allowed = ", ".join(format_field_path(p) for p in narrowed[0])
    return (
        f"{grant.scope} may change only {allowed}; this {request.verb} changes "
        f"{', '.join(format_field_path(p) or '(the whole object)' for p in outside)}",
        None,
    )


def authorize(
    request: KubeRequest | NonResourceRequest,
    *,
    caller: Caller,
    cluster: str,
    grants: Iterable[HeldGrant],
    scopes: Mapping[str, Scope],
    now: datetime,
    changes: Changes | None = None,
) -> Decision:
    """Whether one of ``grants`` covers ``request`` from ``caller`` on ``cluster`` at ``now``."""
    considered: list[Considered] = []
    in_force: list[HeldGrant] = []
    for held in grants:
        why = _not_in_force(held, caller, cluster, now)
        if why:
            considered.append(Considered(held.grant.id, held.grant.scope, why))
        else:
            in_force.append(held)

    if isinstance(request, NonResourceRequest) and request.is_discovery:
        if in_force:
            grant = in_force[0].grant
            return Decision(Outcome.ALLOWED, f"discovery, with grant {grant.id} in force", grant.id)
        return _denied(request.describe(), cluster, considered, "no grant is in force on the cluster")

    needs: list[tuple[Grant, tuple[FieldPath, ...]]] = []
    for held in in_force:
        grant = held.grant
        scope = scopes.get(grant.scope)
        if scope is None:
            considered.append(Considered(grant.id, grant.scope, f"scope {grant.scope} is not in the catalog"))
            continue
        try:
            rules = scope_rules(scope)
        except UnsupportedAccessPolicy as error:
            considered.append(Considered(grant.id, grant.scope, error.message))
            continue
        if isinstance(request, NonResourceRequest):
            if scope.level is Level.CLUSTER and any(r.allows_url(request) for r in rules):
                return Decision(Outcome.ALLOWED, f"{request.describe()} by grant {grant.id}", grant.id)
            considered.append(Considered(grant.id, grant.scope, f"{grant.scope} does not allow {request.describe()}"))
            continue
        why, narrowed = _covers(grant, scope, rules, request, changes)
        if why:
            considered.append(Considered(grant.id, grant.scope, why))
        elif narrowed is None:
            return Decision(Outcome.ALLOWED, f"{request.describe()} by grant {grant.id} ({grant.scope})", grant.id)
        else:
            needs.append((grant, narrowed))
    if needs:
        grant, paths = needs[0]
        return Decision(
            Outcome.NEEDS_CHANGES,
            f"{request.describe()} is allowed by grant {grant.id} ({grant.scope}) only if it changes nothing but "
            + ", ".join(format_field_path(p) for p in paths),
            grant.id,
            tuple(considered),
            tuple(p for _, ps in needs for p in ps),
        )
    return _denied(request.describe(), cluster, considered, "")


def _denied(what: str, cluster: str, considered: list[Considered], why: str) -> Decision:
    if not considered and not why:
        why = "the caller holds no grant on the cluster"
    details = "; ".join(f"grant {c.grant_id} ({c.scope}): {c.why_not}" for c in considered)
    reason = f"eks-jit refuses {what} on cluster {cluster}: " + (why or "no grant covers it")
    if details:
        reason += f" (considered {details})"
    return Decision(Outcome.DENIED, reason, None, tuple(considered))
