"""Activity reports: what a grant's principal did on its cluster during the grant's window,
from the EKS audit log, stored next to the grant when it closes; and the auditor's listing."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from lambdas.domain.activity import ActivityReport, summarise
from lambdas.domain.errors import InvalidRequest
from lambdas.domain.grant import Grant, GrantStatus
from lambdas.logic.access_control import ensure_auditor, ensure_may_see
from lambdas.logic.ports import Deps

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
    return report


def write_due_reports(deps: Deps) -> list[str]:
    """The sweeper's part: reports for grants that closed a while ago and have none."""
    written = []
    since = deps.clock.now() - deps.timing.audit_lookback - deps.catalog.settings.max_duration
    for status in CLOSED:
        for grant in deps.store.by_status(status):
            if grant.created_at < since or grant.extends or not _settled(deps, grant):
                continue
            if deps.store.get_side(grant.id, REPORT) is None:
                store_report(deps, grant)
                written.append(grant.id)
    return written


def audit(deps: Deps, caller: str, since: datetime, until: datetime) -> list[tuple[Grant, ActivityReport | None]]:
    """Every grant requested in [since, until), with its stored activity report if any."""
    ensure_auditor(deps, caller)
    if until <= since:
        raise InvalidRequest("'until' must be after 'since'", code="invalid_range", field="until")
    rows = []
    for status in GrantStatus:
        for grant in deps.store.by_status(status):
            if since <= grant.created_at < until:
                report = _stored(deps, grant.id)
                if report is None and grant.activated_at is None and grant.status.is_terminal:
                    report = ActivityReport(grant.id, "never_active", None, None)
                rows.append((grant, report))
    return sorted(rows, key=lambda row: row[0].created_at)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _load(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text)
    return loaded
