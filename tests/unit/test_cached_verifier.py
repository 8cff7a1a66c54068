"""The gateway asks STS once per token (logic/gateway.py, CachedVerifier), never past the token's life."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from botocore.credentials import Credentials

from eks_jit.server.domain.eks_token import TokenRefused
from eks_jit.server.domain.kube_rules import Caller
from eks_jit.server.logic.gateway import CachedVerifier
from eks_jit.token import token_for
from tests.support import FakeClock


class Counting:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def verify(self, token: str, cluster: str, now: datetime) -> Caller:
        self.calls.append(cluster)
        return Caller(f"arn:aws:iam::111122223333:role/caller-{len(self.calls)}", "task-1")


def token(clock: FakeClock, cluster: str = "prod-gw", key: str = "AKIAEXAMPLE000000001") -> str:
    return token_for(cluster, clock.now(), region="eu-west-1", credentials=Credentials(key, "secret"))[0]


def test_a_token_is_verified_once_and_then_remembered() -> None:
    clock, inner = FakeClock(), Counting()
    verifier = CachedVerifier(inner, lambda _: "aws")
    one = token(clock)
    assert verifier.verify(one, "prod-gw", clock.now()) == verifier.verify(one, "prod-gw", clock.now())
    assert inner.calls == ["prod-gw"]
    verifier.verify(token(clock, key="AKIAEXAMPLE000000002"), "prod-gw", clock.now())
    verifier.verify(one, "other", clock.now())  # the cluster is part of the key: STS decides again
    assert inner.calls == ["prod-gw", "prod-gw", "other"]


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    clock, inner = FakeClock(), Counting()
    verifier = CachedVerifier(inner, lambda _: "aws")
    one = token(clock)
    verifier.verify(one, "prod-gw", clock.now())
    clock.advance(timedelta(minutes=15))
    with pytest.raises(TokenRefused, match="expired"):
        verifier.verify(one, "prod-gw", clock.now())
    assert inner.calls == ["prod-gw"]


def test_a_refused_token_is_not_remembered() -> None:
    clock = FakeClock()

    class Refusing:
        calls = 0

        def verify(self, token: str, cluster: str, now: datetime) -> Caller:
            Refusing.calls += 1
            raise TokenRefused("STS refused the token (403)")

    verifier = CachedVerifier(Refusing(), lambda _: "aws")
    one = token(clock)
    for _ in range(2):
        with pytest.raises(TokenRefused):
            verifier.verify(one, "prod-gw", clock.now())
    assert Refusing.calls == 2


def test_it_holds_at_most_size_tokens() -> None:
    clock, inner = FakeClock(), Counting()
    verifier = CachedVerifier(inner, lambda _: "aws", size=2)
    tokens = [token(clock, key=f"AKIAEXAMPLE00000000{i}") for i in range(3)]
    for t in tokens:
        verifier.verify(t, "prod-gw", clock.now())
    verifier.verify(tokens[0], "prod-gw", clock.now())  # dropped as the oldest: asked again
    assert len(inner.calls) == 4
