"""What an access entry should contain, and what to change to get there. Pure functions.

The access entry of a principal on a cluster is a function of that principal's active
grants: the union of their Kubernetes groups and of their access policies, where a policy
granted cluster-wide by one grant is cluster-wide, and otherwise its namespaces are merged
(EKS replaces a policy's scope on re-association, so merging is ours).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lambdas.domain.catalog import Level, Scope, kubernetes_group


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


@dataclass(frozen=True)
class Plan:
    """The changes that turn the actual entry into the desired one, in a safe order:
    create, then add/replace policies, then set groups, then remove policies, then delete."""

    create: bool = False
    set_groups: frozenset[str] | None = None
    associate: Mapping[str, PolicyScope] = field(default_factory=dict)
    disassociate: frozenset[str] = frozenset()
    delete: bool = False

    @property
    def is_noop(self) -> bool:
        return not (self.create or self.delete or self.associate or self.disassociate) and self.set_groups is None

    def describe(self) -> dict[str, object]:
        return {
            "create": self.create,
            "delete": self.delete,
            "set_groups": None if self.set_groups is None else sorted(self.set_groups),
            "associate": sorted(a.rsplit("/", 1)[-1] for a in self.associate),
            "disassociate": sorted(a.rsplit("/", 1)[-1] for a in self.disassociate),
        }


def plan(desired: Access, actual: Entry | None) -> Plan:
    """The difference between ``desired`` and a *managed* (or absent) actual entry."""
    if actual is None:
        if desired.is_empty:
            return Plan()
        return Plan(create=True, set_groups=desired.groups, associate=dict(desired.policies))
    if desired.is_empty:
        return Plan(delete=True)
    have = actual.access
    return Plan(
        set_groups=desired.groups if desired.groups != have.groups else None,
        associate={arn: s for arn, s in desired.policies.items() if have.policies.get(arn) != s},
        disassociate=frozenset(have.policies) - frozenset(desired.policies),
    )
