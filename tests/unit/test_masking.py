"""Masking (lambdas/domain/masking.py): Secrets' values and configured patterns hidden, whatever the
shape of the answer and however a stream is cut into chunks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eks_jit.server.domain.masking import (
    LAST_APPLIED,
    MASK,
    LogMasker,
    Masking,
    Unmaskable,
    WatchMasker,
    mask_answer,
    mask_json_bytes,
)

M = Masking.of()
KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key id
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nq3Zz9\n-----END RSA PRIVATE KEY-----"


def secret(**data: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "payments-db", "annotations": {LAST_APPLIED: json.dumps({"data": data})}},
        "data": dict(data),
        "type": "Opaque",
    }


def test_a_secret_keeps_its_keys_and_loses_its_values() -> None:
    masked = mask_answer(secret(password="aHVudGVyMg==", username="YXBw"), M).value
    assert masked["data"] == {"password": MASK, "username": MASK}
    assert masked["metadata"]["annotations"][LAST_APPLIED] == MASK  # it repeats the data
    assert masked["metadata"]["name"] == "payments-db"


def test_secrets_are_masked_in_lists_tables_and_string_data() -> None:
    listed = {
        "kind": "SecretList",
        "apiVersion": "v1",
        "items": [secret(a="x"), {**secret(), "stringData": {"b": "y"}}],
    }
    out = mask_answer(listed, M)
    assert [i["data"] for i in out.value["items"]] == [{"a": MASK}, {}]
    assert out.value["items"][1]["stringData"] == {"b": MASK}
    table = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "rows": [{"cells": ["payments-db"], "object": secret(a="x")}],
    }
    assert mask_answer(table, M).value["rows"][0]["object"]["data"] == {"a": MASK}


def test_a_secret_whose_data_is_not_a_map_is_not_shown_at_all() -> None:
    odd = {**secret(), "data": "cGFzc3dvcmQ="}
    assert mask_answer(odd, M).value["data"] == MASK


def test_only_core_v1_secrets_are_secrets() -> None:
    crd = {"apiVersion": "example.com/v1", "kind": "Secret", "data": {"a": "visible"}}
    assert mask_answer(crd, M).value["data"] == {"a": "visible"}


@pytest.mark.parametrize(
    "text",
    [
        f"key={KEY_ID} ok",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        PEM,
    ],
)
def test_patterns_are_masked_in_any_json_string(text: str) -> None:
    config = {"kind": "ConfigMap", "apiVersion": "v1", "data": {"env": text}}
    out = mask_answer(config, M)
    assert out.count >= 1 and KEY_ID not in json.dumps(out.value) and "eyJhbGci" not in json.dumps(out.value)
    assert "MIIEpAIBAAKCAQEA7" not in json.dumps(out.value)


def test_an_operator_pattern_is_masked_and_a_bad_one_refused_at_load() -> None:
    masking = Masking.of([("ticket", r"TKT-[0-9]{6}")])
    assert masking.text("see TKT-123456") == (f"see {MASK}", 1)
    with pytest.raises(ValueError, match="not a regular expression"):
        Masking.of([("broken", "(")])


def test_an_answer_that_is_not_json_cannot_be_masked() -> None:
    with pytest.raises(Unmaskable):
        mask_json_bytes(b"\x0a\x0bk8s\x00protobuf", M)


def test_json_with_nothing_to_mask_passes_byte_for_byte() -> None:
    data = b'{"kind": "Deployment",  "metadata": {"name": "x"}}'
    assert mask_json_bytes(data, M) == (data, 0)


LOG = f"starting\nusing key {KEY_ID} for s3\n{PEM}\nready on :8080\n".encode()


def masked_log(chunks: list[bytes]) -> bytes:
    masker = LogMasker(M)
    return b"".join(masker.feed(c) for c in chunks) + masker.end()


def test_a_log_is_masked_line_by_line_with_key_blocks_masked_whole() -> None:
    out = masked_log([LOG]).decode()
    assert KEY_ID not in out and "MIIEpAIBAAKCAQEA7" not in out and "q3Zz9" not in out
    assert out.splitlines() == ["starting", f"using key {MASK} for s3", MASK, MASK, MASK, MASK, "ready on :8080"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(LOG)), max_size=12))
def test_a_log_masks_the_same_however_it_is_cut_into_chunks(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [LOG[a:b] for a, b in zip([0, *points], [*points, len(LOG)], strict=True)]
    assert masked_log(chunks) == masked_log([LOG])


def test_a_log_line_too_long_to_hold_is_refused() -> None:
    masker = LogMasker(M, max_line=16)
    with pytest.raises(Unmaskable):
        masker.feed(b"x" * 17)


WATCH = b"".join(
    json.dumps({"type": t, "object": secret(password="aHVudGVy")}).encode() + b"\n" for t in ("ADDED", "MODIFIED")
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(WATCH)), max_size=8))
def test_a_watch_is_masked_event_by_event_however_it_is_cut(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [WATCH[a:b] for a, b in zip([0, *points], [*points, len(WATCH)], strict=True)]
    masker = WatchMasker(M)
    out = b"".join(masker.feed(c) for c in chunks) + masker.end()
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["object"]["data"] for e in events] == [{"password": MASK}] * 2
    assert b"aHVudGVy" not in out and masker.events == 2
