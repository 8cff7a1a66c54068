"""Typed domain errors. Each carries a stable ``code``; the edges translate them.

The HTTP edge maps them to status codes in one place (``lambdas/api/errors.py``); Step
Functions `Retry`/`Catch` match on the class name, so names are part of the contract.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the logic raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class InvalidRequest(DomainError):
    """The request is malformed or names something that does not exist (HTTP 400)."""

    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, field=field)
        if code:
            self.code = code


class PolicyDenied(DomainError):
    """Policy refuses the request (HTTP 403)."""

    code = "policy_denied"


class Forbidden(DomainError):
    """The caller may not act on this grant (HTTP 403)."""

    code = "forbidden"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


class GrantNotFound(DomainError):
    """No grant with that id (HTTP 404)."""

    code = "grant_not_found"


class InvalidTransition(DomainError):
    """The grant's status does not allow this action (HTTP 409)."""

    code = "invalid_state"


class Conflict(DomainError):
    """Someone else changed the item first: a conditional write lost (HTTP 409, retryable)."""

    code = "conflict"


class Busy(DomainError):
    """Another worker holds the reconcile lease for this principal; try again shortly."""

    code = "busy"


class UnmanagedAccessEntry(DomainError):
    """The principal already has an access entry that eks-jit did not create: never touch it."""

    code = "unmanaged_access_entry"


class AccessApplyError(DomainError):
    """EKS refused a change to an access entry in a way retrying will not fix."""

    code = "access_apply_failed"


class PrincipalRefused(AccessApplyError):
    """EKS refused the principal of an access entry: no IAM role or user exists at exactly that
    ARN, path included (``InvalidParameterException: ... invalid principal``)."""

    code = "principal_refused"


class SchedulingFailed(DomainError):
    """EventBridge Scheduler refused to create or delete a revocation schedule."""

    code = "scheduling_failed"


class NotificationFailed(DomainError):
    """No approver could be told about a request (Slack and SNS both failed)."""

    code = "notification_failed"


class TransientAwsError(DomainError):
    """An AWS call failed after the SDK's retries (throttling, 5xx, timeout): retry later."""

    code = "aws_unavailable"


class IdempotencyKeyReused(DomainError):
    """The Idempotency-Key was already used by this caller for a different request (HTTP 409):
    nothing was done. Not retryable: send a new key for a new request."""

    code = "idempotency_key_reused"


class IdempotencyInProgress(DomainError):
    """The first request with this Idempotency-Key is still being answered (HTTP 409): retry
    shortly with the same key to get its answer."""

    code = "idempotency_key_in_progress"
