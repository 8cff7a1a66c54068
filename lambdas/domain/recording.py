"""What the gateway records of each Kubernetes request a grant's holder sends: the session log.

One :class:`Command` per request that reached the gateway from a caller holding a grant in force on
the cluster (allowed or refused), kept under that grant. Auditors read it as a transcript
(``GET /v1/grants/{id}/session``, ``eks-jit session ID``); the audit CSV counts it. What is stored is
bounded: a write's body up to :data:`MAX_BODY_CHARS` characters (``body_truncated`` says so), a summary
of the answer (kind, name, item count, or a stream's event count), never the answer itself.

Every text field has a bound, enforced when a :class:`Command` is made (longer text is cut, and
``body_truncated`` or ``truncated`` says so), so one record always fits one DynamoDB item (400 KB):
at most :data:`MAX_RECORD_CHARS` characters in all, 4 bytes each at worst in UTF-8 (about 64 KB).
``at`` is kept in UTC, so keys sort as times.
Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

MAX_BODY_CHARS = 4096
MAX_SUMMARY_CHARS = 200
MAX_REASON_CHARS = 1000
MAX_PATH_CHARS = 4096
MAX_QUERY_CHARS = 4096
MAX_PRINCIPAL_CHARS = 2048  # an IAM ARN is at most 2,048 characters
MAX_SESSION_CHARS = 64  # an STS role session name is 2 to 64 characters
MAX_REQUEST_ID_CHARS = 128
MAX_VERB_CHARS = 32
MAX_GRANT_ID_CHARS = 64  # a UUID is 36
# Each text field's bound: the longest record is their sum (plus the fixed-size fields).
BOUNDS: dict[str, int] = {
    "grant_id": MAX_GRANT_ID_CHARS,
    "request_id": MAX_REQUEST_ID_CHARS,
    "principal": MAX_PRINCIPAL_CHARS,
    "session": MAX_SESSION_CHARS,
    "verb": MAX_VERB_CHARS,
    "path": MAX_PATH_CHARS,
    "query": MAX_QUERY_CHARS,
    "reason": MAX_REASON_CHARS,
    "body": MAX_BODY_CHARS,
    "summary": MAX_SUMMARY_CHARS,
}
MAX_RECORD_CHARS = sum(BOUNDS.values())


class CommandOutcome(StrEnum):
    ALLOWED = "allowed"  # forwarded; ``status`` is the API server's answer
    REFUSED = "refused"  # answered by the gateway (403 Status): no grant covers it
    BLOCKED = "blocked"  # a grant covers it, a guardrail forbids it
    HELD = "held"  # a grant covers it, a guardrail holds it for approval
    APPROVED = "approved"  # a held command passed on its own approval (``reason`` names it); forwarded


@dataclass(frozen=True)
class Command:
    grant_id: str
    at: datetime
    """When the request arrived (UTC); with ``request_id`` it orders and names the record."""
    request_id: str
    principal: str
    session: str | None
    verb: str
    """The Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection), or the
    lower-case HTTP method of a non-resource request (discovery)."""
    path: str
    """The path as forwarded (the canonical rendering the gateway authorized), below the cluster."""
    query: str
    outcome: CommandOutcome
    status: int
    reason: str = ""
    """Why it was refused (the Status message kubectl printed); empty when allowed."""
    body: str | None = None
    """A write's request body (UTF-8, replacement characters for bytes that are not), bounded."""
    body_truncated: bool = False
    summary: str = ""
    """``Deployment payments-api``, ``PodList: 3 items``, ``watch: 2 events``, ``log: 1,204 bytes``."""
    duration_ms: int = 0
    truncated: bool = False
    """A field other than the body (path, query, reason, summary, ...) was longer than its bound
    (:data:`BOUNDS`) and is recorded cut to it."""

    def __post_init__(self) -> None:
        # The bounds hold whoever made the record: it always fits one item, and keys sort as times.
        at = self.at if self.at.tzinfo else self.at.replace(tzinfo=UTC)
        object.__setattr__(self, "at", at.astimezone(UTC))
        if self.body is not None and len(self.body) > MAX_BODY_CHARS:
            object.__setattr__(self, "body", self.body[:MAX_BODY_CHARS])
            object.__setattr__(self, "body_truncated", True)
        for field in fields(self):
            bound = BOUNDS.get(field.name)
            value = getattr(self, field.name)
            if field.name != "body" and bound is not None and isinstance(value, str) and len(value) > bound:
                object.__setattr__(self, field.name, value[:bound])
                object.__setattr__(self, "truncated", True)

    @property
    def key(self) -> str:
        """Unique and in arrival order within a grant: ``<at, ISO, microseconds>#<request id>``."""
        return command_key(self.at, self.request_id)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat(timespec="microseconds")
        data["outcome"] = self.outcome.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Command:
        """The inverse of :meth:`to_json`; keys it does not know (a newer writer's) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(
            **{
                **{k: v for k, v in data.items() if k in known},
                "at": datetime.fromisoformat(data["at"]),
                "outcome": CommandOutcome(data["outcome"]),
                "status": int(data["status"]),
                "duration_ms": int(data.get("duration_ms", 0)),
            }
        )


def command_key(at: datetime, request_id: str) -> str:
    """The key of the command of ``request_id`` that arrived ``at`` (:attr:`Command.key`)."""
    return f"{at.astimezone(UTC).isoformat(timespec='microseconds')}#{request_id}"


def parse_command_key(key: str) -> tuple[datetime, str]:
    """(at, request id) of a :func:`command_key`; ValueError for anything else."""
    at, sep, request_id = key.partition("#")
    when = datetime.fromisoformat(at)
    if not sep or not request_id or when.tzinfo is None:
        raise ValueError(f"not a command key: {key!r}")
    return when, request_id


def bounded_body(body: bytes) -> tuple[str, bool]:
    """A request body as it is recorded: text, at most :data:`MAX_BODY_CHARS` characters."""
    text = body.decode("utf-8", errors="replace")
    return (text[:MAX_BODY_CHARS], True) if len(text) > MAX_BODY_CHARS else (text, False)


def summarize(status: int, answer: Any) -> str:
    """A short summary of a JSON answer: ``Deployment payments-api``, ``PodList: 3 items``,
    ``Status Failure: NotFound``. Empty for anything else."""
    if not isinstance(answer, dict):
        return ""
    kind = str(answer.get("kind", ""))[:60]
    if kind == "Status":
        reason = answer.get("reason")  # a Success Status has none
        return (f"Status {answer.get('status', '')}" + (f": {reason}" if reason else ""))[:MAX_SUMMARY_CHARS]
    if kind == "Table" or kind.endswith("List") or isinstance(answer.get("items"), list):
        rows = answer.get("rows") if kind == "Table" else answer.get("items")
        count = len(rows) if isinstance(rows, list) else 0
        return f"{kind}: {count:,} item{'s' if count != 1 else ''}"[:MAX_SUMMARY_CHARS]
    name = answer.get("metadata", {}).get("name") if isinstance(answer.get("metadata"), dict) else None
    return f"{kind} {name}".strip()[:MAX_SUMMARY_CHARS] if kind else ""
