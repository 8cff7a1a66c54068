"""What a grant's principal did in Kubernetes during its window, from the EKS control-plane
audit log (``audit.k8s.io/v1`` Event objects). Pure: parsing, matching and summarising.

EKS authenticates an IAM principal through its access entry; the audit event's ``user``
carries the session ARN as ``username`` and the IAM ARN in ``extra.canonicalArn`` (role ARNs
without their path). A request outside the grant's scope is refused by Kubernetes with 403:
those are kept apart as ``forbidden``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

_ROLE = re.compile(r"^arn:(?P<part>aws[a-z-]*):iam::(?P<acct>[0-9]{12}):role/(?:.*/)?(?P<name>[^/]+)$")


@dataclass(frozen=True)
class ApiRequest:
    """One Kubernetes API request, as much of it as an auditor needs."""

    at: str
    verb: str
    resource: str
    namespace: str
    name: str
    code: int
    decision: str
    user_agent: str
    source_ip: str
    uri: str

    @property
    def key(self) -> str:
        return f"{self.verb} {self.resource} {self.namespace or '(cluster)'}"


@dataclass
class ActivityReport:
    grant_id: str
    status: str  # "complete" | "partial" (grant still active) | "audit_logging_off" | "never_active"
    window_start: str | None
    window_end: str | None
    total: int = 0
    summary: list[dict[str, Any]] = field(default_factory=list)  # per verb/resource/namespace
    forbidden: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def one_line(self) -> str:
        """``patch deployments payments x1 [200]; get secrets payments x1 [403]``."""
        if self.status in ("audit_logging_off", "never_active"):
            return self.status.replace("_", " ")
        parts = [
            f"{row['verb']} {row['resource']} {row['namespace'] or '(cluster)'} x{row['count']} "
            f"[{','.join(f'{c}' for c in sorted(row['codes']))}]"
            for row in self.summary
        ]
        return "; ".join(parts) or "no requests"


def canonical_arns(principal: str) -> set[str]:
    """The forms the EKS authenticator may log for ``principal`` (role ARNs lose their path)."""
    forms = {principal}
    role = _ROLE.match(principal)
    if role:
        forms.add(f"arn:{role['part']}:iam::{role['acct']}:role/{role['name']}")
    return forms


def session_prefix(principal: str) -> str | None:
    role = _ROLE.match(principal)
    return f"arn:{role['part']}:sts::{role['acct']}:assumed-role/{role['name']}/" if role else None


def belongs_to(event: dict[str, Any], principal: str) -> bool:
    user = event.get("user") or {}
    extra = user.get("extra") or {}
    if set(extra.get("canonicalArn") or []) & canonical_arns(principal):
        return True
    prefix = session_prefix(principal)
    username = str(user.get("username", ""))
    return username == principal or bool(prefix and username.startswith(prefix))


def parse(message: str) -> dict[str, Any] | None:
    try:
        event = json.loads(message)
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("kind") == "Event" else None


def to_request(event: dict[str, Any]) -> ApiRequest:
    ref = event.get("objectRef") or {}
    notes = event.get("annotations") or {}
    return ApiRequest(
        at=str(event.get("requestReceivedTimestamp", "")),
        verb=str(event.get("verb", "")),
        resource=str(ref.get("resource", "")) + (f"/{ref['subresource']}" if ref.get("subresource") else ""),
        namespace=str(ref.get("namespace", "")),
        name=str(ref.get("name", "")),
        code=int((event.get("responseStatus") or {}).get("code", 0)),
        decision=str(notes.get("authorization.k8s.io/decision", "")),
        user_agent=str(event.get("userAgent", "")),
        source_ip=",".join(event.get("sourceIPs") or []),
        uri=str(event.get("requestURI", "")),
    )


def summarise(
    grant_id: str,
    events: list[dict[str, Any]],
    principal: str,
    start: datetime,
    end: datetime,
    *,
    partial: bool,
) -> ActivityReport:
    """The report of the ``principal``'s requests in [start, end], ResponseComplete stage only
    (each request appears once)."""
    requests = sorted(
        (
            to_request(e)
            for e in events
            if belongs_to(e, principal) and e.get("stage", "ResponseComplete") == "ResponseComplete"
            and _within(e.get("requestReceivedTimestamp"), start, end)
        ),
        key=lambda r: r.at,
    )  # fmt: skip
    counts: Counter[str] = Counter(r.key for r in requests)
    codes: dict[str, Counter[int]] = {}
    first: dict[str, ApiRequest] = {}
    for r in requests:
        codes.setdefault(r.key, Counter())[r.code] += 1
        first.setdefault(r.key, r)
    summary = [
        {
            "verb": first[k].verb,
            "resource": first[k].resource,
            "namespace": first[k].namespace,
            "count": n,
            "codes": {str(c): m for c, m in sorted(codes[k].items())},
        }
        for k, n in sorted(counts.items())
    ]
    forbidden = [asdict(r) for r in requests if r.code == 403 or r.decision == "forbid"]
    return ActivityReport(
        grant_id=grant_id,
        status="partial" if partial else "complete",
        window_start=start.isoformat(),
        window_end=end.isoformat(),
        total=len(requests),
        summary=summary,
        forbidden=forbidden,
        requests=[asdict(r) for r in requests],
    )


def _within(value: Any, start: datetime, end: datetime) -> bool:
    """Is an audit timestamp (``2026-11-23T10:01:02.123456Z``) inside [start, end]?"""
    try:
        return start <= datetime.fromisoformat(str(value)) <= end
    except ValueError:
        return False
