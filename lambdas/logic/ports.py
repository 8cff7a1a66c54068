"""The ports the logic talks through. Adapters implement them against AWS; tests may fake them.

Nothing in ``lambdas/logic`` imports boto3: it gets these objects through :class:`Deps`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from ..domain.access import Entry, Left, PolicyScope
from ..domain.catalog import Catalog
from ..domain.grant import Grant, GrantEvent, GrantStatus
from ..domain.recording import Command, CommandOutcome

if TYPE_CHECKING:
    from ..domain.policy import PolicySet


@dataclass(frozen=True)
class LeaseAttempt:
    acquired: bool
    applied: int = 0  # the access generation the last completed reconcile put in place
    left: Left | None = None  # taken: what the last reconcile left, if it completed and none began since


class GrantStore(Protocol):
    def create(self, grant: Grant, events: list[GrantEvent]) -> None:
        """Write a new grant with its first events; Conflict if the id exists."""

    def save(self, previous_version: int, grant: Grant, event: GrantEvent) -> None:
        """Write ``grant`` and ``event`` atomically if the stored version is still ``previous_version``
        (else Conflict); keeps the principal's active-grant index in step with the status."""

    def get(self, grant_id: str) -> Grant:
        """The grant, read strongly consistent; GrantNotFound if absent."""

    def events(self, grant_id: str) -> list[GrantEvent]: ...

    def by_requester(self, requester: str, status: GrantStatus | None = None, limit: int = 50) -> list[Grant]: ...

    def by_status(
        self,
        status: GrantStatus,
        before: datetime | None = None,
        *,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> Iterator[Grant]:
        """Grants in ``status``, by ``expires_at`` for ``active`` (which ``before`` bounds) and by
        ``created_at`` otherwise. Read in full only for the live statuses, which stay small."""

    def created_between(
        self,
        status: GrantStatus,
        since: datetime,
        until: datetime,
        *,
        after: tuple[datetime, str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Grant]:
        """Ended grants in ``status`` created in [since, until), oldest first, strictly after the
        cursor (created_at, id), at most ``limit``; reads only that range, not the whole history."""

    def active_for(self, principal: str, cluster: str) -> list[Grant]:
        """The active grants of ``principal`` on ``cluster``, read strongly consistent."""

    def active_with_generation(self, principal: str, cluster: str) -> tuple[list[Grant], int]:
        """``active_for`` and the access generation it was read at: the count of changes to the
        principal's active set on ``cluster``, bumped in the same transaction as each change."""

    def access_generation(self, principal: str, cluster: str) -> int:
        """The access generation now (strongly consistent); 0 before any grant was active."""

    def managed_principals(self) -> Iterator[tuple[str, str]]:
        """Every (principal, cluster) that eks-jit has ever given access to."""

    def put_side(self, grant_id: str, kind: str, data: dict[str, str], *, only_if_absent: bool = False) -> bool:
        """Store a private record next to the grant (task token, chat message, used link);
        False if ``only_if_absent`` and it exists. Never part of the grant or its events."""

    def get_side(self, grant_id: str, kind: str) -> dict[str, str] | None: ...

    def acquire_lease(self, key: str, owner: str, now: datetime, ttl: timedelta) -> LeaseAttempt:
        """Take the lease if free or expired, leaving the generation it records as applied as it
        was (only a release records one). Either way, the answer carries that generation. Taking
        it also takes what the last release recorded as left on the cluster (``left``): the
        record is removed, so a holder that dies or fails leaves none behind."""

    def release_lease(self, key: str, owner: str, applied: int = 0, left: Left | None = None) -> None:
        """Free the lease if ``owner`` still holds it, recording ``applied`` (never lowering it)
        and, after a reconcile that completed, what it ``left`` on the cluster."""


class SessionLog(Protocol):
    """The gateway's record of each Kubernetes request a grant's holder sent (domain/recording.py)."""

    def record(self, command: Command) -> None:
        """Store ``command`` under its grant; never overwrites one (same grant and key: Conflict)."""

    def commands(
        self, grant_id: str, *, limit: int = 1000, after: str | None = None
    ) -> tuple[list[Command], str | None]:
        """The grant's commands in arrival order, from after the key ``after``, at most ``limit``; and
        the key to go on from, or None when no command follows (a page ending at the last has none)."""

    def count(self, grant_id: str) -> int:
        """How many commands the grant has (DynamoDB: read eventually consistent, so a command recorded
        a moment ago may not be counted yet; ``commands`` reads strongly consistent)."""

    def outcomes(self, grant_id: str) -> dict[CommandOutcome, int]:
        """How many commands of each outcome the grant has (outcomes it has none of are left out), read
        as ``count`` reads: the audit's ``commands``, ``blocked`` and ``held``."""


class ClusterAccessEntries(Protocol):
    """The access entries of one cluster, as seen by one caller session."""

    def read(self, principal: str, *, with_policies: bool = True) -> Entry | None:
        """The entry, or None; ``with_policies=False`` skips listing its access policies."""

    def create(self, principal: str, groups: frozenset[str]) -> None:
        """A STANDARD entry with ``groups``, the managed tag and EKS's default username."""

    def associate(self, principal: str, policy_arn: str, scope: PolicyScope) -> None: ...

    def disassociate(self, principal: str, policy_arn: str) -> None: ...

    def delete(self, principal: str) -> None: ...

    def principals(self) -> list[str]:
        """Principal ARNs of every access entry on the cluster (managed or not)."""


class AccessEntries(Protocol):
    def cluster(self, name: str, *, session: str) -> ClusterAccessEntries:
        """The entries of cluster ``name``; ``session`` (a grant id or a job name) is carried into
        the role session name when the cluster lives in another account."""


class RevocationScheduler(Protocol):
    def schedule(self, grant_id: str, fire_at: datetime) -> str:
        """Create (or replace) the one-time schedule that revokes ``grant_id``; returns its name."""

    def cancel(self, grant_id: str) -> bool:
        """Delete the grant's schedule; False if there was none."""


class ApprovalWorkflow(Protocol):
    """The Step Functions approval workflow: one execution per grant, named by its id."""

    def start(self, grant: Grant) -> None:
        """Start the execution; starting it again for the same grant is harmless."""

    def resume(self, token: str, outcome: str) -> bool:
        """Hand ``outcome`` (approved/denied/cancelled) to the waiting execution; False if it
        no longer waits (timed out or stopped)."""


@dataclass(frozen=True)
class ApprovalAsk:
    """What an approver is sent: the request and their own signed link."""

    grant: Grant
    approver: str  # principal ARN
    approver_name: str
    link: str


class Notifier(Protocol):
    """SNS: approval requests (one message per approver, their own link) and outcomes."""

    def ask(self, ask: ApprovalAsk) -> None: ...

    def outcome(self, grant: Grant, event: GrantEvent) -> None: ...


@dataclass(frozen=True)
class ChatMessage:
    channel: str
    ts: str


class Chat(Protocol):
    """Slack: an interactive message per request, updated with the outcome."""

    def ask(self, grant: Grant, approvers: list[str]) -> ChatMessage: ...

    def update(self, message: ChatMessage, grant: Grant, outcome: str) -> None: ...


class AuditLog(Protocol):
    def events(
        self, cluster: str, principal: str, start: datetime, end: datetime, session: str
    ) -> list[dict[str, Any]] | None:
        """Audit events mentioning ``principal`` in the window; None if the cluster does not
        send audit logs."""


class Connections(Protocol):
    def connection(self, cluster: str) -> dict[str, str]:
        """``{cluster, region, endpoint, certificate_authority}`` of a configured cluster."""


class Secrets(Protocol):
    def get(self, secret_id: str) -> dict[str, str]:
        """A JSON secret, read once per container."""


class Idempotency(Protocol):
    """The first answer to an idempotent request (an ``Idempotency-Key``), kept for
    ``Timing.idempotency_window`` and given again to a retry of the same request."""

    def once(
        self,
        scope: str,
        key: str,
        request: dict[str, Any],
        answer: Callable[[], dict[str, Any]],
        *,
        in_flight: timedelta,
    ) -> tuple[dict[str, Any], bool]:
        """``answer()`` at most once per (``scope``, ``key``) within the window: (the answer, whether it
        is a replay of an earlier one). IdempotencyKeyReused if ``request`` differs from the first
        one's; IdempotencyInProgress while the first is still being answered (at most ``in_flight``).
        If ``answer()`` raises, nothing is kept and the error propagates (a retry runs it again)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(max(0.0, seconds))


@dataclass(frozen=True)
class Timing:
    """How revocation is timed (see docs/decisions.md, "Bounding the revocation lag")."""

    schedule_lead: timedelta = timedelta(seconds=60)  # Scheduler fires within a minute of its time
    max_wait: timedelta = timedelta(seconds=150)  # longest the revoke path waits for expires_at
    lease_ttl: timedelta = timedelta(seconds=30)
    lease_attempts: int = 100
    lease_backoff: float = 0.1  # seconds between attempts to take a held lease (and to see it applied)
    activation_grace: timedelta = timedelta(minutes=2)  # sweeper finishes approvals older than this
    audit_delay: timedelta = timedelta(minutes=5)  # EKS audit events reach CloudWatch Logs within this
    audit_lookback: timedelta = timedelta(hours=24)  # the sweeper writes reports for grants ended this recently
    idempotency_window: timedelta = timedelta(hours=24)  # an Idempotency-Key's first answer is kept this long


@dataclass(frozen=True)
class Deps:
    """Everything a logic function needs, built once per Lambda container."""

    catalog: Catalog
    policies: PolicySet | None  # None in functions that never decide a request (revoke, sweeper)
    store: GrantStore
    eks: AccessEntries
    scheduler: RevocationScheduler
    clock: Clock
    timing: Timing = Timing()
    workflow: ApprovalWorkflow | None = None  # None where no request needs approval
    notifier: Notifier | None = None  # None when no topic is configured
    chat: Chat | None = None  # None when Slack is off
    secrets: Secrets | None = None
    link_key_secret: str = ""  # Secrets Manager id of the approval-link HMAC key
    slack_secret: str = ""  # Secrets Manager id of {bot_token, signing_secret}
    audit_log: AuditLog | None = None  # None where no activity report is written or read
    connections: Connections | None = None  # None where no grant is shown to its requester
    public_url: str = ""  # base URL approval links point at
    idempotency: Idempotency | None = None  # only the api function uses it (POST /v1/grants, .../extend)
    session_log: SessionLog | None = None  # the gateway records into it; the api reads it (.../session, audit)
    gateway_role: str = ""  # the gateway function's role: the one caller of POST /v1/holds ("": no gateway)
