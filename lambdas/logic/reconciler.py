"""Level-triggered reconcile of one principal's access entry on one cluster.

Under a per-(principal, cluster) lease, so two reconciles never apply stale snapshots in the
wrong order: read the active grants (strongly consistent), compute the desired entry, read
the actual one, apply the difference. Running it twice changes nothing. An entry without
eks-jit's managed tag is never modified or deleted.

Coalesced: every change of a principal's active set bumps its access *generation* in the same
transaction (the access index item). A reconcile reads the active grants and the generation
together, and on success records on the lease the generation it put in place. A caller that
changed the set at generation ``g`` and finds the lease held waits for either the lease or a
completed reconcile with ``applied >= g``: that one read the set after the change, so the access
it applied includes it. In a burst of one principal, one reconcile answers everyone who was
waiting when it started, instead of each running its own in turn (issue 16).

What it left, on the lease: a reconcile that completes records on its released lease the access
it left (no entry, or a managed entry holding the desired access); the next request or revoke
takes that record with the lease and uses its policies instead of listing them
(ListAssociatedAccessPolicies). The entry is still described every time: its tag, groups and
username decide whether it is eks-jit's to change, so an entry deleted, re-created or untagged
outside eks-jit is seen as before. Only a completed reconcile records, and taking the lease
removes the record, so a reconcile that failed or died leaves none; under the lease no other
eks-jit writer changes the entry. A policy associated or removed outside eks-jit on a managed
entry goes unseen until the sweeper, which always lists, reconciles the principal
(docs/decisions.md).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ..domain.access import Access, Left, Plan, access_of, plan, union_of
from ..domain.errors import Busy, DomainError, UnmanagedAccessEntry
from ..observability import logger
from .ports import ClusterAccessEntries, Deps


@dataclass(frozen=True)
class Outcome:
    """What a reconcile found and did."""

    desired: Access
    plan: Plan
    grant_ids: tuple[str, ...]
    unmanaged_entry: bool = False  # the principal has an entry without eks-jit's tag: left alone
    covered_by: int | None = None  # another caller's reconcile applied this generation (or later)

    def describe(self) -> dict[str, object]:
        if self.covered_by is not None:
            return {"applied_by_concurrent_reconcile": True, "generation": self.covered_by}
        described: dict[str, object] = {
            "desired": self.desired.describe(),
            "changes": self.plan.describe(),
            "grants": list(self.grant_ids),
        }
        if self.unmanaged_entry:
            described["unmanaged_entry"] = True
        return described


def lease_key(principal: str, cluster: str) -> str:
    return f"{cluster}#{principal}"


class _Lease:
    """The lease a reconcile holds: ``found`` is what the last release recorded as left on the
    cluster (taken with the lease); ``applied`` and ``left`` are what its own release records."""

    def __init__(self, applied: int, found: Left | None) -> None:
        self.applied = applied
        self.found = found
        self.left: Left | None = None  # set only once this reconcile has completed


@contextmanager
def _lease(deps: Deps, principal: str, cluster: str, coalesce: bool) -> Iterator[_Lease | int]:
    """Yields the held lease, or (``coalesce``, without taking it) the generation a completed
    reconcile applied once that covers the caller's change."""
    key, owner, timing = lease_key(principal, cluster), uuid.uuid4().hex, deps.timing
    covering: int | None = None
    seen = 0  # the most an attempt showed applied: a lower bound of what our release records
    for _ in range(timing.lease_attempts):
        attempt = deps.store.acquire_lease(key, owner, deps.clock.now(), timing.lease_ttl)
        seen = max(seen, attempt.applied)
        if coalesce and covering is None and not attempt.acquired:
            # read only when contended, and after the caller's own change was written
            covering = deps.store.access_generation(principal, cluster)
        if covering is not None and seen >= covering:
            if attempt.acquired:  # free again, and what it last applied covers us: hand it back
                _release(deps, key, owner, seen, attempt.left)
            yield seen  # a reconcile that read our change has put it in place
            return
        if attempt.acquired:
            break
        time.sleep(timing.lease_backoff)  # real time: another worker is finishing
    else:
        raise Busy(f"another reconcile of {principal} on {cluster} is running")
    held = _Lease(seen, attempt.left)
    try:
        yield held
    finally:
        _release(deps, key, owner, held.applied, held.left)


def _release(deps: Deps, key: str, owner: str, applied: int, left: Left | None) -> None:
    try:
        deps.store.release_lease(key, owner, applied, left)
    except DomainError as exc:  # the lease expires on its own: the work done stands
        logger.warning("lease not released", extra={"key": key, "error": exc.message})


def _desired(deps: Deps, principal: str, cluster: str) -> tuple[Access, tuple[str, ...], int]:
    """What the principal's access entry should hold. On a gateway cluster, nothing: the gateway
    reads the active grants themselves (the grant record is the access), so the agent's role has no
    entry of its own, and a managed one left from before the cluster's mode changed is removed."""
    active, generation = deps.store.active_with_generation(principal, cluster)
    registered = deps.catalog.clusters.get(cluster)
    if registered is not None and registered.gateway:
        return Access(), (), generation
    # A session-bound grant is never an access entry (an entry binds the role, every session): on
    # a cluster switched from gateway to entry mode it gives nothing until it ends.
    grants = [g for g in active if g.justifies_access() and g.session is None]
    scopes = deps.catalog.scopes
    access = union_of(access_of(g.scope, scopes[g.scope], g.namespaces) for g in grants if g.scope in scopes)
    return access, tuple(sorted(g.id for g in grants)), generation


def reconcile(deps: Deps, principal: str, cluster: str, *, session: str, coalesce: bool = False) -> Outcome:
    """Make the principal's access entry on ``cluster`` equal what its active grants justify.

    ``coalesce``: the caller has just changed the principal's active set; when another reconcile
    holds the lease, one that completes having read that change (or a later one) already did this
    caller's work and answers for it. The sweeper and repair paths reconcile unconditionally."""
    with _lease(deps, principal, cluster, coalesce) as held:
        if isinstance(held, int):
            return Outcome(Access(), Plan(), (), covered_by=held)
        desired, grant_ids, generation = _desired(deps, principal, cluster)
        entries = deps.eks.cluster(cluster, session=session)
        found = held.found if coalesce else None  # the sweeper and repairs always list the policies
        # Always described (tag, groups, username: what makes an entry eks-jit's to change); the
        # policies are listed only when no completed reconcile recorded which it associated.
        actual = entries.read(principal, with_policies=not desired.is_empty and (found is None or found.entry is None))
        if actual is not None and not actual.managed:
            if desired.is_empty:  # nothing to give; whatever that entry holds is not ours to take
                held.applied = max(held.applied, generation)
                return Outcome(desired, Plan(), grant_ids, unmanaged_entry=True)
            raise UnmanagedAccessEntry(
                f"{principal} already has an access entry on {cluster} that eks-jit does not manage"
            )
        if actual is not None and found is not None and found.entry is not None:
            actual = replace(actual, access=Access(actual.access.groups, found.entry.policies))
        changes = plan(desired, actual)
        _apply(entries, principal, changes)
        held.applied, held.left = max(held.applied, generation), Left(None if desired.is_empty else desired)
        return Outcome(desired, changes, grant_ids)


def _apply(entries: ClusterAccessEntries, principal: str, changes: Plan) -> None:
    if changes.delete or changes.recreate:  # recreate: the principal has no access until create
        entries.delete(principal)
    if changes.delete:
        return
    if changes.create or changes.recreate:
        entries.create(principal, changes.groups or frozenset())
    for arn, scope in sorted(changes.associate.items()):
        entries.associate(principal, arn, scope)
    for arn in sorted(changes.disassociate):
        entries.disassociate(principal, arn)
