"""Kubernetes ``Status`` objects: how the API server (and the gateway in front of it) answers a failure,
so kubectl prints ``Error from server (Forbidden): <message>``. Pure."""

from __future__ import annotations

from typing import Any

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    502: "InternalError",
    503: "ServiceUnavailable",
}


def status(
    code: int, message: str, *, reason: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``Status`` (``kind: Status``, ``apiVersion: v1``) as the API server answers a failure."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, "InternalError"),
        "code": code,
    }
    if details:
        body["details"] = details
    return body
