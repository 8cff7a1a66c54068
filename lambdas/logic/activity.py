"""Activity reports: what a grant's principal did on its cluster during the grant's window,
from the EKS audit log, stored next to the grant when it closes; and the auditor's listing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..domain.activity import ActivityReport, summarise
from ..domain.errors import InvalidRequest
from ..domain.grant import Grant, GrantStatus
from ..domain.recording import CommandOutcome
from .access_control import ensure_auditor, ensure_may_see
from .ports import Deps
from .sessions import command_counts

REPORT = "activity"
CLOSED = (GrantStatus.EXPIRED, GrantStatus.REVOKED, GrantStatus.FAILED)


def build_report(deps: Deps, grant: Grant) -> ActivityReport:
    if grant.activated_at is None:
        return ActivityReport(grant.id, "never_active", None, None, note="the grant never gave access")
    now = deps.clock.now()
    end = grant.ended_at or now
    assert deps.audit_log is not None, "a function that reads activity is built with the audit log"
    events = deps.audit_log.events(grant.cluster, grant.requester, grant.activated_at, end, session=grant.id)
    if events is None:
        return ActivityReport(
            grant.id,
            "audit_logging_off",
            grant.activated_at.isoformat(),
            end.isoformat(),
            note=f"cluster {grant.cluster} does not send control-plane audit logs to CloudWatch Logs",
        )
    return summarise(grant.id, events, grant.requester, grant.activated_at, end, partial=grant.ended_at is None)


def _settled(deps: Deps, grant: Grant) -> bool:
    """Ended long enough ago that the audit log holds everything of the window."""
    return grant.ended_at is not None and grant.ended_at + deps.timing.audit_delay <= deps.clock.now()


PAGE = 500  # requests per side record: ~150 KB, well under DynamoDB's 400 KB item limit


def store_report(deps: Deps, grant: Grant) -> ActivityReport:
    """Store the report: the summary in one record, the full request list in pages."""
    report = build_report(deps, grant)
    pages = [report.requests[i : i + PAGE] for i in range(0, len(report.requests), PAGE)]
    for number, page in enumerate(pages):
        deps.store.put_side(grant.id, f"{REPORT}:requests:{number:04d}", {"requests": _json(page)})
    head = report.to_json() | {"requests": [], "note": report.note or "", "pages": len(pages)}
    deps.store.put_side(grant.id, REPORT, {"report": _json(head)})
    return report


def _stored(deps: Deps, grant_id: str) -> ActivityReport | None:
    head = deps.store.get_side(grant_id, REPORT)
    if head is None:
        return None
    fields = _load(head["report"])
    requests: list[dict[str, Any]] = []
    for number in range(int(fields.pop("pages", 0))):
        page = deps.store.get_side(grant_id, f"{REPORT}:requests:{number:04d}")
        requests += json.loads(page["requests"]) if page else []
    return ActivityReport(**(fields | {"requests": requests}))


def activity(deps: Deps, caller: str, grant_id: str) -> ActivityReport:
    """The stored report, or one built now (stored if the window is settled)."""
    grant = deps.store.get(grant_id)
    ensure_may_see(deps, caller, grant)
    stored = _stored(deps, grant_id)
    if stored is not None:
        return stored
    if grant.status in CLOSED and _settled(deps, grant):
        return store_report(deps, grant)
    report = build_report(deps, grant)
    if report.status == "complete":
        report.status = "partial"  # the audit log may still be catching up
        settles = (grant.ended_at or grant.expires_at or deps.clock.now()) + deps.timing.audit_delay
        report.note = (
            f"partial: the grant {'ended' if grant.ended_at else 'is still active'} and EKS delivers audit events "
            f"to CloudWatch Logs minutes late, so requests may be missing; the final report is stored after "
            f"{settles.isoformat()}"
        )
    return report


def write_due_reports(deps: Deps) -> list[str]:
    """The sweeper's part: reports for grants that closed a while ago and have none. Reads only
    grants created within the look-back (a key range), so its cost does not grow with history."""
    written = []
    now = deps.clock.now()
    since = now - deps.timing.audit_lookback - deps.catalog.settings.max_duration
    for status in CLOSED:
        for grant in deps.store.created_between(status, since, now):
            if grant.extends or not _settled(deps, grant):
                continue
            if deps.store.get_side(grant.id, REPORT) is None:
                store_report(deps, grant)
                written.append(grant.id)
    return written


Cursor = tuple[datetime, str]  # (created_at, id) of the last row a page gave
AUDIT_PAGE = 200
AUDIT_PAGE_MAX = 1000


@dataclass(frozen=True)
class AuditPage:
    rows: list[tuple[Grant, ActivityReport | None]]
    next: Cursor | None  # where the next page starts; None on the last page
    # grant id -> how many commands of each outcome the gateway recorded under it
    commands: dict[str, dict[CommandOutcome, int]] = field(default_factory=dict)


def _position(grant: Grant) -> Cursor:
    return grant.created_at, grant.id


def audit(
    deps: Deps, caller: str, since: datetime, until: datetime, *, limit: int = AUDIT_PAGE, after: Cursor | None = None
) -> AuditPage:
    """One page of the grants requested in [since, until), oldest first, each with its stored
    activity report if any. Ended grants are read by key range, at most ``limit + 1`` per status;
    the live statuses (pending, approved, active) stay small and are read whole."""
    ensure_auditor(deps, caller)
    if until <= since:
        raise InvalidRequest("'until' must be after 'since'", code="invalid_range", field="until")
    if not 1 <= limit <= AUDIT_PAGE_MAX:
        raise InvalidRequest(f"'limit' must be 1 to {AUDIT_PAGE_MAX}", code="invalid_limit", field="limit")
    if after is not None and not since <= after[0] < until:
        raise InvalidRequest(
            "the 'next' token belongs to another time range: pass the same 'since' and 'until' as the first page",
            code="invalid_next_token",
            field="next",
        )
    candidates: list[Grant] = []
    for status in GrantStatus:
        if status.is_terminal:
            candidates += deps.store.created_between(status, since, until, after=after, limit=limit + 1)
        else:
            candidates += (
                g
                for g in deps.store.by_status(status)
                if since <= g.created_at < until and (after is None or _position(g) > after)
            )
    candidates.sort(key=_position)
    page = candidates[:limit]
    rows = [(grant, _report_row(deps, grant)) for grant in page]
    return AuditPage(rows, _position(page[-1]) if len(candidates) > limit else None, command_counts(deps, page))


def _report_row(deps: Deps, grant: Grant) -> ActivityReport | None:
    report = _stored(deps, grant.id)
    if report is None and grant.activated_at is None and grant.status.is_terminal:
        report = ActivityReport(grant.id, "never_active", None, None)
    return report


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _load(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text)
    return loaded
