"""Activation and the end of a grant: the only code that changes access.

``activate`` makes an approved grant active, schedules its revocation and reconciles the
principal. ``end`` moves a grant to expired/revoked/failed and reconciles. ``on_schedule`` is
the revoke path the one-time schedule invokes: it waits until ``expires_at`` (the schedule
fires up to ~2 minutes early, see docs/decisions.md) and then ends the grant. Every function
is safe to run twice: state changes are conditional, reconcile converges.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from ..domain.durations import format_duration
from ..domain.errors import (
    AccessApplyError,
    Busy,
    Conflict,
    DomainError,
    InvalidTransition,
    SchedulingFailed,
    TransientAwsError,
    UnmanagedAccessEntry,
)
from ..domain.grant import Action, Grant, GrantEvent, GrantStatus, extend, note, transition
from ..observability import MetricUnit, logger, metrics
from .justification import why_not_justified
from .ports import Deps
from .reconciler import Outcome, reconcile

ACCESS_ERRORS = (AccessApplyError, Busy, SchedulingFailed, TransientAwsError, UnmanagedAccessEntry)
SCHEDULER = "eks-jit:scheduler"
SWEEPER = "eks-jit:sweeper"
SYSTEM = "eks-jit"


def commit(deps: Deps, before: Grant, change: tuple[Grant, GrantEvent]) -> Grant:
    """Write a change conditioned on ``before``'s version; announce status changes on the
    outcomes topic (best effort: the record in the table is what counts)."""
    updated, event = change
    deps.store.save(before.version, updated, event)
    if deps.notifier is not None and updated.status is not before.status:
        try:
            deps.notifier.outcome(updated, event)
        except DomainError as exc:
            logger.warning("outcome not published", extra={"grant_id": updated.id, "error": exc.message})
    return updated


def apply_action(
    deps: Deps,
    grant: Grant,
    action: Action,
    *,
    actor: str,
    reason: str = "",
    expires_at: datetime | None = None,
    **detail: object,
) -> Grant:
    """One conditional state change with its event; Conflict if someone else moved first."""
    change = transition(grant, action, at=deps.clock.now(), actor=actor, reason=reason, expires_at=expires_at, **detail)
    return commit(deps, grant, change)


def record(deps: Deps, grant: Grant, kind: str, *, actor: str, **detail: object) -> Grant:
    """Append a non-status event; on a lost race re-read and append after the winner."""
    for _ in range(5):
        updated, event = note(grant, kind, at=deps.clock.now(), actor=actor, **detail)
        try:
            deps.store.save(grant.version, updated, event)
            return updated
        except Conflict:
            grant = deps.store.get(grant.id)
    raise Conflict(f"could not record {kind} on grant {grant.id}: too many concurrent writers")


def revocation_time(expires_at: datetime, now: datetime, lead: timedelta) -> datetime:
    """When to set the one-time schedule so that it fires before ``expires_at``.

    Scheduler runs a schedule for minute M at some second of M, so schedule for the whole
    minute at or before ``expires_at - lead``: it fires between ``expires_at - lead - 59s`` and
    ``expires_at - 1s``, and the revoke path waits out the rest. Never in the past.
    """
    target = (expires_at - lead).replace(second=0, microsecond=0)
    return max(target, (now + timedelta(seconds=1)).replace(microsecond=0))


def activate(deps: Deps, grant: Grant, *, actor: str = SYSTEM) -> Grant:
    """approved -> active: schedule revocation, put access in place. Fails closed: first the
    decision is derived again from what is recorded (``justification``); a grant it does not
    justify fails with the reason and nothing is given. An approved extension is applied to the
    grant it extends instead."""
    if why := why_not_justified(deps, grant):
        logger.error("activation refused", extra={"grant_id": grant.id, "principal": grant.requester, "why": why})
        metrics.add_metric(name="ActivationRefused", unit=MetricUnit.Count, value=1)
        return apply_action(deps, grant, Action.FAIL, actor=actor, reason=f"activation refused: {why}")
    if grant.extends is not None:
        return apply_extension(deps, grant, actor=actor)
    grant = apply_action(deps, grant, Action.ACTIVATE, actor=actor)
    assert grant.expires_at is not None
    try:
        fire_at = revocation_time(grant.expires_at, deps.clock.now(), deps.timing.schedule_lead)
        schedule = deps.scheduler.schedule(grant.id, fire_at)
        outcome = reconcile(deps, grant.requester, grant.cluster, session=grant.id, coalesce=True)
    except ACCESS_ERRORS as exc:
        try:
            return end(deps, grant, Action.FAIL, actor=actor, reason=f"activation failed: {exc.message}")
        except ACCESS_ERRORS as cleanup:
            # The grant has failed (it justifies nothing); the sweeper removes what is left.
            failed = deps.store.get(grant.id)
            return record(deps, failed, "cleanup_pending", actor=actor, error=cleanup.message)
    return record(
        deps,
        grant,
        "access_granted",
        actor=actor,
        schedule=schedule,
        revocation_fires_at=fire_at.isoformat(),
        **outcome.describe(),
    )


def apply_extension(deps: Deps, extension: Grant, *, actor: str = SYSTEM) -> Grant:
    """An approved extension moves its grant's ``expires_at`` and revocation schedule.

    The whole window is checked again here against the maximum the deciding policy allowed
    (other extensions may have been applied since this one was requested), and again after
    any lost race. The extension's own state change comes first and is conditional, so it is
    applied at most once; a crash between the two steps leaves the shorter window.
    """
    assert extension.extends is not None
    limit = min(
        extension.decision.max_duration or deps.catalog.settings.max_duration, deps.catalog.settings.max_duration
    )
    parent = deps.store.get(extension.extends)

    def refusal(current: Grant) -> str:
        if current.status is not GrantStatus.ACTIVE or current.expires_at is None:
            return "the grant it extends has ended"
        if current.duration + extension.duration > limit:
            return f"the window would exceed the policy maximum of {format_duration(limit)}"
        return ""

    if reason := refusal(parent):
        return apply_action(deps, extension, Action.FAIL, actor=actor, reason=reason)
    assert parent.expires_at is not None
    new_end = parent.expires_at + extension.duration
    extension = apply_action(deps, extension, Action.ACTIVATE, actor=actor, expires_at=new_end, extends=parent.id)
    for _ in range(5):
        if reason := refusal(parent):  # a concurrent extension got there first
            return apply_action(deps, extension, Action.FAIL, actor=actor, reason=reason)
        try:
            parent = commit(
                deps,
                parent,
                extend(parent, extension.duration, at=deps.clock.now(), actor=actor, extension_id=extension.id),
            )
            break
        except Conflict:
            parent = deps.store.get(parent.id)
    else:
        raise Conflict(f"could not extend grant {parent.id}: too many concurrent writers")
    assert parent.expires_at is not None
    deps.scheduler.schedule(parent.id, revocation_time(parent.expires_at, deps.clock.now(), deps.timing.schedule_lead))
    return extension


def _end_extensions(deps: Deps, grant: Grant, action: Action, actor: str) -> None:
    """Extensions end with the grant they extend (they never carried access of their own)."""
    for extension_id in grant.extended_by:
        extension = deps.store.get(extension_id)
        with contextlib.suppress(Conflict, InvalidTransition):  # already ended by someone else
            apply_action(deps, extension, action, actor=actor, reason=f"the grant it extends was {grant.status.value}")


def end(deps: Deps, grant: Grant, action: Action, *, actor: str, reason: str = "") -> Grant:
    """active/approved -> expired/revoked/failed, then take the access away.

    If another writer ended the grant first, its state stands and only the reconcile runs. An
    expiry that lost a race re-checks the time: an extension may have moved ``expires_at``.
    If the reconcile fails, the grant has still ended (it no longer justifies access) and the
    error propagates so the caller's retry, or the sweeper, finishes the removal.
    """
    ended_here = False
    for _ in range(5):
        try:
            grant = apply_action(deps, grant, action, actor=actor, reason=reason)
            ended_here = True
            break
        except Conflict:  # a concurrent note or state change: look again
            grant = deps.store.get(grant.id)
            if action is Action.EXPIRE and grant.expires_at and grant.expires_at > deps.clock.now():
                return grant  # extended meanwhile: not due any more (its new schedule is set)
        except InvalidTransition:  # someone else ended it first: their ending stands
            break
    else:
        raise Conflict(f"could not {action.value} grant {grant.id}: too many concurrent writers")
    if ended_here:
        _end_extensions(deps, grant, action, actor)
    try:
        outcome: Outcome = reconcile(deps, grant.requester, grant.cluster, session=grant.id, coalesce=True)
    finally:  # the access first; a Scheduler failure must not stop that, nor a reconcile failure this
        if action is not Action.EXPIRE:
            _cancel_schedule(deps, grant)
    if ended_here and outcome.unmanaged_entry:
        logger.error("access left in an untagged entry", extra={"grant_id": grant.id, "principal": grant.requester})
        grant = record(deps, grant, "unmanaged_entry_remains", actor=actor, **outcome.describe())
    elif ended_here:
        grant = record(deps, grant, "access_removed", actor=actor, **outcome.describe())
    return grant


def _cancel_schedule(deps: Deps, grant: Grant) -> None:
    try:
        deps.scheduler.cancel(grant.id)
    except DomainError as exc:  # it will fire, find the grant ended, and change nothing
        logger.warning("schedule not deleted", extra={"grant_id": grant.id, "error": exc.message})


def on_schedule(deps: Deps, grant_id: str) -> Grant:
    """The revoke path: wait until ``expires_at``, expire the grant, reconcile. Idempotent."""
    grant = deps.store.get(grant_id)
    if grant.status is GrantStatus.ACTIVE and grant.expires_at is not None:
        remaining = (grant.expires_at - deps.clock.now()).total_seconds()
        if remaining > deps.timing.max_wait.total_seconds():
            # Fired far too early (clock change, manual invoke): set the alarm again.
            fire_at = revocation_time(grant.expires_at, deps.clock.now(), deps.timing.schedule_lead)
            deps.scheduler.schedule(grant.id, fire_at)
            return record(deps, grant, "revocation_rescheduled", actor=SCHEDULER, fires_at=fire_at.isoformat())
        if remaining > 0:
            deps.clock.sleep(remaining)
        return end(deps, grant, Action.EXPIRE, actor=SCHEDULER)
    # Already ended (early revoke, duplicate delivery, sweeper): make sure access is gone.
    reconcile(deps, grant.requester, grant.cluster, session=grant.id)
    return grant
