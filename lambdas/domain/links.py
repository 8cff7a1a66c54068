"""Approval links: one per approver, signed, bound to grant + approver + expiry, single use.

A link token is ``<claims>.<signature>``, both base64url: the claims are JSON
``{"g": grant id, "a": approver ARN, "e": expiry (epoch s), "n": nonce}`` and the signature is
HMAC-SHA256 over the claims text with a key kept in Secrets Manager. Single use is enforced by
the store (a conditional write keyed by the nonce), not here. GET never decides: see
``lambdas/handlers/api.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from lambdas.domain.errors import DomainError


class LinkAlreadyUsed(DomainError):
    """Each approval link works once (HTTP 410)."""

    code = "link_used"


class BadLink(ValueError):
    """The link is malformed, tampered with, or expired; ``reason`` is one of those words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class LinkClaims:
    grant_id: str
    approver: str
    expires_at: datetime
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(grant_id: str, approver: str, expires_at: datetime, key: bytes, nonce: str | None = None) -> str:
    claims = json.dumps(
        {"g": grant_id, "a": approver, "e": int(expires_at.timestamp()), "n": nonce or secrets.token_urlsafe(12)},
        separators=(",", ":"),
    ).encode()
    body = _b64(claims)
    return f"{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


def verify(token: str, key: bytes, now: datetime) -> LinkClaims:
    """The claims of a genuine, unexpired link; raises BadLink otherwise."""
    try:
        body, signature = token.split(".")
        expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
        genuine = hmac.compare_digest(expected, _unb64(signature))
    except (ValueError, TypeError):
        raise BadLink("malformed", "this approval link is not valid") from None
    if not genuine:
        raise BadLink("tampered", "this approval link is not valid")
    try:
        raw = json.loads(_unb64(body))
        claims = LinkClaims(raw["g"], raw["a"], datetime.fromtimestamp(int(raw["e"]), UTC), str(raw["n"]))
    except (ValueError, KeyError, TypeError):
        raise BadLink("malformed", "this approval link is not valid") from None
    if now >= claims.expires_at:
        raise BadLink("expired", "this approval link has expired")
    return claims
