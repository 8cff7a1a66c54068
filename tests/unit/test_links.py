"""Approval-link tokens decode strictly: exactly one spelling of a genuine signature works."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta

import pytest

from eks_jit.server.domain.links import BadLink, sign, verify

KEY = b"k" * 32
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
B64URL = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def token() -> str:
    return sign("g-1", "arn:aws:iam::111122223333:user/alice", NOW + timedelta(hours=1), KEY, nonce="n1")


def same_bytes_other_last_char(text: str) -> str:
    """The base64url text with the unused low bits of its last character set: decoders that
    ignore those bits read the same bytes."""
    index = B64URL.index(text[-1])
    spare = 0b11 if len(text) % 4 == 3 else 0b1111
    return text[:-1] + B64URL[index | spare if index & spare != spare else index & ~spare]


def test_a_genuine_link_verifies() -> None:
    claims = verify(token(), KEY, NOW)
    assert (claims.grant_id, claims.nonce) == ("g-1", "n1")


@pytest.mark.parametrize(
    ("why", "mangle"),
    [
        ("padding added", lambda b, s: f"{b}.{s}="),
        ("padding added to the claims", lambda b, s: f"{b}==.{s}" if len(b) % 4 == 2 else f"{b}=.{s}"),
        ("a character outside base64url", lambda b, s: f"{b}.{s[:10]}!{s[10:]}"),
        ("a newline inside", lambda b, s: f"{b}.{s[:10]}\n{s[10:]}"),
        ("standard base64 alphabet", lambda b, s: f"{b}.{s[:5]}+{s[6:]}"),
        ("standard base64 alphabet in the claims", lambda b, s: f"{b[:5]}/{b[6:]}.{s}"),
        ("same bytes, another last character", lambda b, s: f"{b}.{same_bytes_other_last_char(s)}"),
        ("claims: same bytes, another last character", lambda b, s: f"{same_bytes_other_last_char(b)}.{s}"),
        ("signature one character short", lambda b, s: f"{b}.{s[:-1]}"),
        ("signature with an extra character", lambda b, s: f"{b}.{s}A"),
        ("empty signature", lambda b, s: f"{b}."),
        ("non-ASCII", lambda b, s: f"{b}.{s[:-1]}é"),
    ],
)
def test_any_other_spelling_of_the_token_is_refused(why: str, mangle) -> None:
    body, signature = token().split(".")
    mangled = mangle(body, signature)
    assert mangled != token(), why
    with pytest.raises(BadLink) as refused:
        verify(mangled, KEY, NOW)
    assert refused.value.reason in ("malformed", "tampered"), why


def test_a_signature_by_another_key_is_tampered() -> None:
    body, _ = token().split(".")
    other = sign("g-1", "arn:aws:iam::111122223333:user/alice", NOW + timedelta(hours=1), b"x" * 32, nonce="n1")
    with pytest.raises(BadLink) as refused:
        verify(f"{body}.{other.split('.')[1]}", KEY, NOW)
    assert refused.value.reason == "tampered"
