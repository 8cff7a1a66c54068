"""The backstop that runs on a fixed rate, whatever happened to schedules and Lambdas.

1. Active grants past ``expires_at`` are expired (a lost or failed schedule).
2. Pending requests past their approval timeout are expired.
3. Approved grants whose activation did not finish are activated, or failed if too late.
4. Every principal eks-jit ever managed, and every managed entry found on the clusters, is
   reconciled: an entry that no active grant justifies is taken away.
5. Grants that closed a while ago (the audit log's delivery delay) get their activity report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from ..domain.errors import DomainError
from ..domain.grant import Action, GrantStatus
from ..observability import logger
from .activity import write_due_reports
from .lifecycle import SWEEPER, activate, apply_action, end
from .ports import Deps
from .reconciler import Outcome, reconcile

T = TypeVar("T")


@dataclass
class SweepReport:
    overdue_expired: list[str] = field(default_factory=list)
    approvals_timed_out: list[str] = field(default_factory=list)
    activations_finished: list[str] = field(default_factory=list)
    reconciled: int = 0
    drift_fixed: list[str] = field(default_factory=list)  # "cluster principal" whose entry changed
    activity_reports: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def sweep(deps: Deps) -> SweepReport:
    """One pass. Every item is guarded on its own: one broken grant, principal or cluster is
    reported (the SweeperErrors alarm) and never stops the backstop for all the others."""
    report = SweepReport()
    now = deps.clock.now()
    for grant in deps.store.by_status(GrantStatus.ACTIVE, before=now):
        if _guard(
            report, grant.id, partial(end, deps, grant, Action.EXPIRE, actor=SWEEPER, reason="expired by sweeper")
        ):
            report.overdue_expired.append(grant.id)
    for grant in deps.store.by_status(GrantStatus.PENDING_APPROVAL):
        timeout = grant.decision.approval_timeout
        if timeout is not None and grant.created_at + timeout <= now:
            expire = partial(apply_action, deps, grant, Action.EXPIRE, actor=SWEEPER, reason="approval timed out")
            if _guard(report, grant.id, expire):
                report.approvals_timed_out.append(grant.id)
    for grant in deps.store.by_status(GrantStatus.APPROVED):
        approved_at = grant.approved_at or grant.created_at
        if approved_at + deps.timing.activation_grace > now:
            continue  # an activation may still be under way
        if approved_at + grant.duration <= now:
            finish = partial(end, deps, grant, Action.FAIL, actor=SWEEPER, reason="activation never completed")
        else:
            finish = partial(activate, deps, grant, actor=SWEEPER)
        if _guard(report, grant.id, finish):
            report.activations_finished.append(grant.id)
    indexed = set(deps.store.managed_principals())
    for principal, cluster in sorted(_all_managed(deps, report, indexed)):
        if cluster not in deps.catalog.clusters:
            report.errors.append(
                f"{cluster} {principal}: cluster is no longer configured; its entries are not reconciled"
            )
            continue
        outcome = _guard(
            report, f"{cluster} {principal}", partial(reconcile, deps, principal, cluster, session="sweeper")
        )
        if not isinstance(outcome, Outcome):
            continue
        report.reconciled += 1
        if not outcome.plan.is_noop:
            report.drift_fixed.append(f"{cluster} {principal}")
        if outcome.unmanaged_entry and (principal, cluster) in indexed:
            report.errors.append(f"{cluster} {principal}: has an entry without the eks-jit tag; not touched")
    if deps.audit_log is not None:
        written = _guard(report, "activity reports", partial(write_due_reports, deps))
        report.activity_reports = written if isinstance(written, list) else []
    return report


def _all_managed(deps: Deps, report: SweepReport, indexed: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Principals from the store's index plus managed entries found on each cluster."""
    pairs = set(indexed)
    for cluster in deps.catalog.clusters:
        _guard(report, cluster, partial(_managed_on, deps, cluster, pairs))
    return pairs


def _managed_on(deps: Deps, cluster: str, pairs: set[tuple[str, str]]) -> None:
    """Only registered principals can have an entry eks-jit made (IAM allows creating entries for
    them alone), and only their entries may the roles read: nobody else's is described."""
    registered = {p.arn for p in deps.catalog.principals}
    entries = deps.eks.cluster(cluster, session="sweeper")
    for principal in entries.principals():
        if principal in registered and (principal, cluster) not in pairs:
            entry = entries.read(principal, with_policies=False)
            if entry is not None and entry.managed:
                pairs.add((principal, cluster))


def _guard(report: SweepReport, item: str, step: Callable[[], T]) -> T | None:
    """Run one item's step; any failure is reported and the sweep goes on. The broad except is
    deliberate: this loop is the last line of defence, and an unexpected error (a cluster removed
    from the configuration, an AccessDenied) on one item must not leave every other one undone."""
    try:
        return step()
    except DomainError as exc:
        report.errors.append(f"{item}: {exc.message}")
    except Exception as exc:
        logger.exception("sweeper step failed", extra={"item": item})
        report.errors.append(f"{item}: unexpected {type(exc).__name__}: {exc}")
    return None
