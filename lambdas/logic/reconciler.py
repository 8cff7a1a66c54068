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
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..domain.access import Access, Plan, access_of, plan, union_of
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
    """The lease a reconcile holds; ``applied`` is what it records at release."""

    def __init__(self, applied: int) -> None:
        self.applied = applied


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
                _release(deps, key, owner, seen)
            yield seen  # a reconcile that read our change has put it in place
            return
        if attempt.acquired:
            break
        time.sleep(timing.lease_backoff)  # real time: another worker is finishing
    else:
        raise Busy(f"another reconcile of {principal} on {cluster} is running")
    held = _Lease(seen)
    try:
        yield held
    finally:
        _release(deps, key, owner, held.applied)


def _release(deps: Deps, key: str, owner: str, applied: int) -> None:
    try:
        deps.store.release_lease(key, owner, applied)
    except DomainError as exc:  # the lease expires on its own: the work done stands
        logger.warning("lease not released", extra={"key": key, "error": exc.message})


def _desired(deps: Deps, principal: str, cluster: str) -> tuple[Access, tuple[str, ...], int]:
    active, generation = deps.store.active_with_generation(principal, cluster)
    grants = [g for g in active if g.justifies_access()]
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
        actual = entries.read(principal, with_policies=not desired.is_empty)  # deleting needs no listing
        if actual is not None and not actual.managed:
            if desired.is_empty:  # nothing to give; whatever that entry holds is not ours to take
                held.applied = max(held.applied, generation)
                return Outcome(desired, Plan(), grant_ids, unmanaged_entry=True)
            raise UnmanagedAccessEntry(
                f"{principal} already has an access entry on {cluster} that eks-jit does not manage"
            )
        changes = plan(desired, actual)
        _apply(entries, principal, changes)
        held.applied = max(held.applied, generation)
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
