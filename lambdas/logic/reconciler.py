"""Level-triggered reconcile of one principal's access entry on one cluster.

Under a per-(principal, cluster) lease, so two reconciles never apply stale snapshots in the
wrong order: read the active grants (strongly consistent), compute the desired entry, read
the actual one, apply the difference. Running it twice changes nothing. An entry without
eks-jit's managed tag is never modified or deleted.
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

    def describe(self) -> dict[str, object]:
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


@contextmanager
def _lease(deps: Deps, principal: str, cluster: str) -> Iterator[None]:
    key, owner, timing = lease_key(principal, cluster), uuid.uuid4().hex, deps.timing
    for _ in range(timing.lease_attempts):
        if deps.store.acquire_lease(key, owner, deps.clock.now(), timing.lease_ttl):
            break
        time.sleep(timing.lease_backoff)  # real time: another worker is finishing
    else:
        raise Busy(f"another reconcile of {principal} on {cluster} is running")
    try:
        yield
    finally:
        try:
            deps.store.release_lease(key, owner)
        except DomainError as exc:  # the lease expires on its own: the work done stands
            logger.warning("lease not released", extra={"key": key, "error": exc.message})


def desired_access(deps: Deps, principal: str, cluster: str) -> tuple[Access, tuple[str, ...]]:
    grants = [g for g in deps.store.active_for(principal, cluster) if g.justifies_access()]
    scopes = deps.catalog.scopes
    access = union_of(access_of(g.scope, scopes[g.scope], g.namespaces) for g in grants if g.scope in scopes)
    return access, tuple(sorted(g.id for g in grants))


def reconcile(deps: Deps, principal: str, cluster: str, *, session: str) -> Outcome:
    """Make the principal's access entry on ``cluster`` equal what its active grants justify."""
    with _lease(deps, principal, cluster):
        desired, grant_ids = desired_access(deps, principal, cluster)
        entries = deps.eks.cluster(cluster, session=session)
        actual = entries.read(principal, with_policies=not desired.is_empty)  # deleting needs no listing
        if actual is not None and not actual.managed:
            if desired.is_empty:  # nothing to give; whatever that entry holds is not ours to take
                return Outcome(desired, Plan(), grant_ids, unmanaged_entry=True)
            raise UnmanagedAccessEntry(
                f"{principal} already has an access entry on {cluster} that eks-jit does not manage"
            )
        changes = plan(desired, actual)
        _apply(entries, principal, changes)
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
