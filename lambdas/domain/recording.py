"""What the gateway records of each Kubernetes request a grant's holder sends: the session log.

One :class:`Command` per request that reached the gateway from a caller holding a grant in force on
the cluster (allowed or refused), kept under that grant. Auditors read it as a transcript
(``GET /v1/grants/{id}/session``, ``eks-jit session ID``); the audit CSV counts it. What is stored is
bounded: a write's body up to :data:`MAX_BODY_CHARS` characters (``body_truncated`` says so), a summary
of the answer (kind, name, item count, or a stream's event count), never the answer itself.
Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

MAX_BODY_CHARS = 4096
MAX_SUMMARY_CHARS = 200
MAX_REASON_CHARS = 1000


class CommandOutcome(StrEnum):
    ALLOWED = "allowed"  # forwarded; ``status`` is the API server's answer
    REFUSED = "refused"  # answered by the gateway (403 Status): no grant covers it
    BLOCKED = "blocked"  # a grant covers it, a guardrail forbids it
    HELD = "held"  # a grant covers it, a guardrail holds it for approval


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

    @property
    def key(self) -> str:
        """Unique and in arrival order within a grant: ``<at, ISO, microseconds>#<request id>``."""
        return f"{self.at.isoformat(timespec='microseconds')}#{self.request_id}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat(timespec="microseconds")
        data["outcome"] = self.outcome.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Command:
        return cls(
            **{
                **data,
                "at": datetime.fromisoformat(data["at"]),
                "outcome": CommandOutcome(data["outcome"]),
                "status": int(data["status"]),
                "duration_ms": int(data.get("duration_ms", 0)),
            }
        )


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
        return f"Status {answer.get('status', '')}: {answer.get('reason', '')}"[:MAX_SUMMARY_CHARS]
    if kind == "Table" or kind.endswith("List") or isinstance(answer.get("items"), list):
        rows = answer.get("rows") if kind == "Table" else answer.get("items")
        count = len(rows) if isinstance(rows, list) else 0
        return f"{kind}: {count:,} item{'s' if count != 1 else ''}"[:MAX_SUMMARY_CHARS]
    name = answer.get("metadata", {}).get("name") if isinstance(answer.get("metadata"), dict) else None
    return f"{kind} {name}".strip()[:MAX_SUMMARY_CHARS] if kind else ""
