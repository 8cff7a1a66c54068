"""EKS access entries in memory, at the port (``AccessEntries``/``ClusterAccessEntries``).

The rules are the emulation's own (``eks_jit/emulation/eks_access_entries.py``: principal ARN
shape, no STS sessions or service-linked roles, the principal must exist in IAM at exactly that
ARN, group names, access-policy ARNs of the cluster's partition, the service-linked-only
policies, access scopes, one entry per principal, 3,000 per cluster) called as functions, and the
errors are those ``lambdas/adapters/eks.py`` makes of EKS's answers:

- create: an existing entry (managed or not) -> UnmanagedAccessEntry; InvalidParameterException
  -> PrincipalRefused; any other refusal -> AccessApplyError;
- associate on a missing entry, or a bad policy/scope -> AccessApplyError; associating again
  replaces the scope;
- disassociate or delete of something absent: nothing (``missing_ok``);
- read: None when absent; ``managed`` from the ``eks-jit:managed`` tag; policies (in the catalog's
  spelling) only for a managed entry and only ``with_policies``.

Not modelled: authentication modes (every cluster is API_AND_CONFIG_MAP), the authenticator's
propagation delay (the machine checks the API's state, as it does on moto), tags beyond the
managed tag, UpdateAccessEntry (the adapter never calls it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from moto.eks.exceptions import EKSError

from eks_jit.emulation import eks_access_entries as rules
from eks_jit.server.adapters.eks import PATH_RULE
from eks_jit.server.domain.access import Access, Entry, PolicyScope
from eks_jit.server.domain.catalog import MANAGED_TAG, Cluster, access_policy_arn, canonical_access_policy
from eks_jit.server.domain.errors import AccessApplyError, PrincipalRefused, UnmanagedAccessEntry
from eks_jit.server.domain.identity import default_username


@dataclass
class MemoryEntry:
    principal: str
    groups: frozenset[str]
    username: str
    tags: dict[str, str]
    policies: dict[str, PolicyScope] = field(default_factory=dict)  # partition ARN -> scope


class MemoryCluster:
    """One cluster's entries; ``iam`` is every IAM principal ARN that exists."""

    def __init__(self, name: str, partition: str, iam: set[str]) -> None:
        self.name = name
        self.partition = partition
        self.iam = iam
        self.entries: dict[str, MemoryEntry] = {}

    def seed_unmanaged(self, principal: str, policy: str | None) -> None:
        """An entry eks-jit did not make (the cluster creator's), with a cluster-wide policy."""
        policies = {policy: PolicyScope.cluster()} if policy else {}
        self.entries[principal] = MemoryEntry(principal, frozenset(), default_username(principal), {}, policies)


class MemoryClusterEntries:
    def __init__(self, cluster: MemoryCluster) -> None:
        self._c = cluster

    def _refused(self, what: str, principal: str, exc: EKSError) -> AccessApplyError:
        return AccessApplyError(f"{what} for {principal} on {self._c.name}: {exc.code}: {exc.message}")

    def read(self, principal: str, *, with_policies: bool = True) -> Entry | None:
        entry = self._c.entries.get(principal)
        if entry is None:
            return None
        managed = entry.tags.get(MANAGED_TAG) == "true"
        policies = (
            {canonical_access_policy(arn): scope for arn, scope in entry.policies.items()}
            if managed and with_policies
            else {}
        )
        return Entry(
            managed=managed,
            access=Access(entry.groups, policies),
            username_is_default=entry.username == default_username(principal),
        )

    def create(self, principal: str, groups: frozenset[str]) -> None:
        try:
            parsed = rules.parse_principal(principal)
            rules.check_kubernetes_groups(groups)
            if principal not in self._c.iam:
                raise rules._invalid(rules.INVALID_PRINCIPAL)
        except EKSError as exc:  # InvalidParameterException: the principal is what comes from outside
            raise PrincipalRefused(
                f"EKS refused principal {principal} on {self._c.name} ({exc.code}: {exc.message}). {PATH_RULE}"
            ) from exc
        if principal in self._c.entries:
            raise UnmanagedAccessEntry(f"an access entry for {principal} appeared on {self._c.name}")
        if len(self._c.entries) >= rules.MAX_ACCESS_ENTRIES_PER_CLUSTER:
            raise AccessApplyError(
                f"creating the access entry for {principal} on {self._c.name}: ResourceLimitExceededException"
            )
        self._c.entries[principal] = MemoryEntry(
            principal, frozenset(groups), rules.default_username(parsed, rules.STANDARD), {MANAGED_TAG: "true"}
        )

    def associate(self, principal: str, policy_arn: str, scope: PolicyScope) -> None:
        entry = self._c.entries.get(principal)
        if entry is None:
            raise AccessApplyError(
                f"associating an access policy for {principal} on {self._c.name}: ResourceNotFoundException"
            )
        arn = access_policy_arn(policy_arn, self._c.partition)
        raw: dict[str, object] = {"type": scope.type}
        if scope.type == "namespace":
            raw["namespaces"] = sorted(scope.namespaces)
        try:
            rules.check_access_policy(arn, self._c.partition)
            if arn.rsplit("/", 1)[-1] in rules.SERVICE_LINKED_ONLY_POLICIES:
                raise rules._invalid(f"The access policy {arn} is for service-linked roles only.")
            parsed = rules.parse_access_scope(raw)
        except EKSError as exc:
            raise self._refused("associating an access policy", principal, exc) from exc
        entry.policies[arn] = PolicyScope.cluster() if parsed.type == "cluster" else PolicyScope.of(parsed.namespaces)

    def disassociate(self, principal: str, policy_arn: str) -> None:
        entry = self._c.entries.get(principal)
        if entry is not None:
            entry.policies.pop(access_policy_arn(policy_arn, self._c.partition), None)

    def delete(self, principal: str) -> None:
        self._c.entries.pop(principal, None)

    def principals(self) -> list[str]:
        return sorted(self._c.entries)


class MemoryAccessEntries:
    def __init__(self, clusters: Mapping[str, Cluster], iam: Iterable[str]) -> None:
        self.iam = set(iam)
        self.clusters = {name: MemoryCluster(name, c.partition, self.iam) for name, c in clusters.items()}

    def cluster(self, name: str, *, session: str) -> MemoryClusterEntries:
        return MemoryClusterEntries(self.clusters[name])
