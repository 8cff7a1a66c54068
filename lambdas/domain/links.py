"""Approval links: one per approver, signed, bound to grant + approver + expiry, single use.

A link token is ``<claims>.<signature>``, both base64url without padding: the claims are JSON
``{"g": grant id, "a": approver ARN, "e": expiry (epoch s), "n": nonce}`` and the signature is
HMAC-SHA256 over the claims text with a key kept in Secrets Manager. Decoding is strict: only
the canonical spelling (the base64url alphabet, no padding, exact length, unused bits zero)
is read, and the signature is compared in constant time. Single use is enforced by
the store (a conditional write keyed by the nonce), not here. GET never decides: see
``lambdas/handlers/api.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import DomainError


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


_B64URL = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
SIGNATURE_LENGTH = len(_b64(bytes(hashlib.sha256().digest_size)))  # 43


def _unb64(text: str) -> bytes:
    """Strict base64url: the alphabet only, no padding, and the one canonical spelling (a
    lenient decoder skips foreign characters and ignores the last character's unused bits,
    so many texts would read as the same bytes)."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical base64url spelling")
    return data


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
        if len(signature) != SIGNATURE_LENGTH:
            raise ValueError("wrong signature length")
        expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
        genuine = hmac.compare_digest(expected, _unb64(signature))
        _unb64(body)  # the claims are read below only once genuine; their spelling is checked now
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
