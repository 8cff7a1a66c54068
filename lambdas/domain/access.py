"""What an access entry should contain, and what to change to get there. Pure functions.

The access entry of a principal on a cluster is a function of that principal's active
grants: the union of their Kubernetes groups and of their access policies, where a policy
granted cluster-wide by one grant is cluster-wide, and otherwise its namespaces are merged
(EKS replaces a policy's scope on re-association, so merging is ours).

Groups and the username are only ever set by creating the entry: ``CreateAccessEntry`` is the
one action whose IAM condition keys cover them (``eks:kubernetesGroups``, ``eks:username``);
``UpdateAccessEntry`` has none, so eks-jit's roles may not call it. An entry whose groups or
username differ from what they should be is deleted and created again (docs/decisions.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .catalog import Level, Scope, kubernetes_group


@dataclass(frozen=True)
class PolicyScope:
    """An access scope: ``cluster`` (no namespaces) or ``namespace`` with its namespaces."""

    type: str
    namespaces: frozenset[str] = frozenset()

    @staticmethod
    def cluster() -> PolicyScope:
        return PolicyScope("cluster")

    @staticmethod
    def of(namespaces: Iterable[str]) -> PolicyScope:
        return PolicyScope("namespace", frozenset(namespaces))

    def merge(self, other: PolicyScope) -> PolicyScope:
        if "cluster" in (self.type, other.type):
            return PolicyScope.cluster()
        return PolicyScope.of(self.namespaces | other.namespaces)


@dataclass(frozen=True)
class Access:
    """The content of an access entry: Kubernetes groups and associated access policies."""

    groups: frozenset[str] = frozenset()
    policies: Mapping[str, PolicyScope] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.groups and not self.policies

    def union(self, other: Access) -> Access:
        policies = dict(self.policies)
        for arn, scope in other.policies.items():
            policies[arn] = policies[arn].merge(scope) if arn in policies else scope
        return Access(self.groups | other.groups, policies)

    def describe(self) -> dict[str, object]:
        """A JSON-friendly summary for events and logs."""
        return {
            "groups": sorted(self.groups),
            "policies": {
                arn.rsplit("/", 1)[-1]: ("cluster" if s.type == "cluster" else sorted(s.namespaces))
                for arn, s in sorted(self.policies.items())
            },
        }


def access_of(scope_name: str, scope: Scope, namespaces: Iterable[str]) -> Access:
    """What one grant of ``scope`` in ``namespaces`` contributes."""
    spaces = tuple(namespaces)
    if scope.level is Level.CLUSTER:
        groups = frozenset({kubernetes_group(scope_name, None)}) if scope.rbac else frozenset()
        return Access(groups, {arn: PolicyScope.cluster() for arn in scope.access_policies})
    groups = frozenset(kubernetes_group(scope_name, ns) for ns in spaces) if scope.rbac else frozenset()
    return Access(groups, {arn: PolicyScope.of(spaces) for arn in scope.access_policies})


def union_of(accesses: Iterable[Access]) -> Access:
    total = Access()
    for access in accesses:
        total = total.union(access)
    return total


@dataclass(frozen=True)
class Entry:
    """An access entry as EKS has it."""

    managed: bool
    access: Access
    username_is_default: bool = True  # False: someone set another Kubernetes username


@dataclass(frozen=True)
class Left:
    """What a completed reconcile left on the cluster, recorded on its released lease: no entry
    (``entry`` None) or a managed one with the default username holding ``entry``'s access."""

    entry: Access | None

    def as_entry(self) -> Entry | None:
        return None if self.entry is None else Entry(managed=True, access=self.entry)

    def to_json(self) -> str:
        if self.entry is None:
            return json.dumps({"exists": False})
        policies = {
            arn: {"type": s.type, "namespaces": sorted(s.namespaces)} for arn, s in sorted(self.entry.policies.items())
        }
        return json.dumps({"exists": True, "groups": sorted(self.entry.groups), "policies": policies})

    @staticmethod
    def from_json(text: str) -> Left:
        data = json.loads(text)
        if not data["exists"]:
            return Left(None)
        policies = {arn: PolicyScope(p["type"], frozenset(p["namespaces"])) for arn, p in data["policies"].items()}
        return Left(Access(frozenset(data["groups"]), policies))


@dataclass(frozen=True)
class Plan:
    """The changes that turn the actual entry into the desired one, in a safe order: delete
    (``recreate`` or ``delete``), create with ``groups``, then add/replace policies, then remove
    policies. ``recreate`` deletes and creates again (groups or username changed): every desired
    policy is associated anew."""

    create: bool = False
    recreate: bool = False
    groups: frozenset[str] | None = None  # the groups the entry is (re)created with
    associate: Mapping[str, PolicyScope] = field(default_factory=dict)
    disassociate: frozenset[str] = frozenset()
    delete: bool = False

    @property
    def is_noop(self) -> bool:
        return not (self.create or self.recreate or self.delete or self.associate or self.disassociate)

    def describe(self) -> dict[str, object]:
        return {
            "create": self.create,
            "recreate": self.recreate,
            "delete": self.delete,
            "groups": None if self.groups is None else sorted(self.groups),
            "associate": sorted(a.rsplit("/", 1)[-1] for a in self.associate),
            "disassociate": sorted(a.rsplit("/", 1)[-1] for a in self.disassociate),
        }


def plan(desired: Access, actual: Entry | None) -> Plan:
    """The difference between ``desired`` and a *managed* (or absent) actual entry."""
    if actual is None:
        if desired.is_empty:
            return Plan()
        return Plan(create=True, groups=desired.groups, associate=dict(desired.policies))
    if desired.is_empty:
        return Plan(delete=True)
    have = actual.access
    if desired.groups != have.groups or not actual.username_is_default:
        return Plan(recreate=True, groups=desired.groups, associate=dict(desired.policies))
    return Plan(
        associate={arn: s for arn, s in desired.policies.items() if have.policies.get(arn) != s},
        disassociate=frozenset(have.policies) - frozenset(desired.policies),
    )
