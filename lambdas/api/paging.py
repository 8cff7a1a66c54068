"""The ``next`` token of a paged listing: an opaque, URL-safe spelling of where the last page
ended. It is not a credential (the caller's IAM identity is checked on every page), so it is not
signed; a token that does not decode is a 400, never a fresh first page."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from ..domain.errors import InvalidRequest

Cursor = tuple[datetime, str]


def encode(cursor: Cursor) -> str:
    at, key = cursor
    raw = json.dumps([at.isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> Cursor:
    try:
        at, key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        when = datetime.fromisoformat(at)
        if not isinstance(key, str) or when.tzinfo is None:
            raise ValueError("not a cursor")
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidRequest(
            "'next' is not a token this API gave: pass the 'next' of the previous page unchanged",
            code="invalid_next_token",
            field="next",
        ) from None
    return when, key
