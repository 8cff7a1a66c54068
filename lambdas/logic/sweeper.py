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

from lambdas.domain.errors import DomainError
from lambdas.domain.grant import Action, GrantStatus
from lambdas.logic.activity import write_due_reports
from lambdas.logic.lifecycle import SWEEPER, activate, apply_action, end
from lambdas.logic.ports import Deps
from lambdas.logic.reconciler import reconcile


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
    report = SweepReport()
    now = deps.clock.now()
    for grant in deps.store.by_status(GrantStatus.ACTIVE, before=now):
        _guard(report, grant.id, partial(end, deps, grant, Action.EXPIRE, actor=SWEEPER, reason="expired by sweeper"))
        report.overdue_expired.append(grant.id)
    for grant in deps.store.by_status(GrantStatus.PENDING_APPROVAL):
        timeout = grant.decision.approval_timeout
        if timeout is not None and grant.created_at + timeout <= now:
            _guard(
                report,
                grant.id,
                partial(apply_action, deps, grant, Action.EXPIRE, actor=SWEEPER, reason="approval timed out"),
            )
            report.approvals_timed_out.append(grant.id)
    for grant in deps.store.by_status(GrantStatus.APPROVED):
        approved_at = grant.approved_at or grant.created_at
        if approved_at + deps.timing.activation_grace > now:
            continue  # an activation may still be under way
        if approved_at + grant.duration <= now:
            _guard(
                report,
                grant.id,
                partial(end, deps, grant, Action.FAIL, actor=SWEEPER, reason="activation never completed"),
            )
        else:
            _guard(report, grant.id, partial(activate, deps, grant, actor=SWEEPER))
        report.activations_finished.append(grant.id)
    for principal, cluster in sorted(_all_managed(deps, report)):
        try:
            outcome = reconcile(deps, principal, cluster, session="sweeper")
        except DomainError as exc:
            report.errors.append(f"{cluster} {principal}: {exc.message}")
            continue
        report.reconciled += 1
        if not outcome.plan.is_noop:
            report.drift_fixed.append(f"{cluster} {principal}")
    if deps.audit_log is not None:
        try:
            report.activity_reports = write_due_reports(deps)
        except DomainError as exc:
            report.errors.append(f"activity reports: {exc.message}")
    return report


def _all_managed(deps: Deps, report: SweepReport) -> set[tuple[str, str]]:
    """Principals from the store's index plus managed entries found on each cluster."""
    pairs = set(deps.store.managed_principals())
    for cluster in deps.catalog.clusters:
        try:
            entries = deps.eks.cluster(cluster, session="sweeper")
            for principal in entries.principals():
                if (principal, cluster) in pairs:
                    continue
                entry = entries.read(principal, with_policies=False)
                if entry is not None and entry.managed:
                    pairs.add((principal, cluster))
        except DomainError as exc:
            report.errors.append(f"{cluster}: {exc.message}")
    return pairs


def _guard(report: SweepReport, grant_id: str, step: Callable[[], object]) -> None:
    """Run one grant's step; a failure is reported and the sweep goes on."""
    try:
        step()
    except DomainError as exc:
        report.errors.append(f"{grant_id}: {exc.message}")
