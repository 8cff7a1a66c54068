"""retry_while_propagating: an agent's first Kubernetes calls after `active` may meet 401/403
while EKS applies the entry; the helper retries exactly those, for a bounded time, and nothing
else. Time is a fake here (sleep moves it), so nothing depends on the real clock."""

from __future__ import annotations

import subprocess
import urllib.error
from collections.abc import Callable
from email.message import Message

import pytest

from eks_jit.client import PROPAGATION_GRACE, ApiError, is_denied, retry_while_propagating


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def http_error(status: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError("https://k8s.example/api", status, "denied", Message(), None)


class KubeApiException(Exception):
    """Shaped like kubernetes.client.exceptions.ApiException."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def kubectl_failure(stderr: str) -> subprocess.CalledProcessError:
    return subprocess.CalledProcessError(1, ["kubectl", "get", "pods"], output="", stderr=stderr)


def denied_until(clock: FakeTime, allowed_at: float, error: Exception) -> Callable[[], str]:
    def call() -> str:
        if clock.now < allowed_at:
            raise error
        return "ok"

    return call


@pytest.mark.parametrize(
    "error",
    [
        http_error(401),
        http_error(403),
        KubeApiException(401),
        kubectl_failure("error: You must be logged in to the server (Unauthorized)\n"),
        kubectl_failure('Error from server (Forbidden): deployments.apps "payments-api" is forbidden: ...\n'),
    ],
)
def test_a_denial_is_retried_until_the_access_arrives(error: Exception) -> None:
    clock = FakeTime()
    call = denied_until(clock, 3.0, error)
    assert retry_while_propagating(call, sleep=clock.sleep, monotonic=clock.monotonic) == "ok"
    assert clock.slept == [1.0, 1.0, 1.0]


def test_a_denial_that_outlasts_the_bound_is_raised() -> None:
    clock = FakeTime()
    call = denied_until(clock, 1e9, http_error(403))
    with pytest.raises(urllib.error.HTTPError) as raised:
        retry_while_propagating(call, within=5.0, sleep=clock.sleep, monotonic=clock.monotonic)
    assert raised.value.code == 403
    assert clock.now <= 5.0 and len(clock.slept) == 5


def test_the_default_bound_stays_inside_an_mcp_tool_call() -> None:
    clock = FakeTime()
    with pytest.raises(urllib.error.HTTPError):
        retry_while_propagating(denied_until(clock, 1e9, http_error(401)), sleep=clock.sleep, monotonic=clock.monotonic)
    assert clock.now <= PROPAGATION_GRACE < 60


@pytest.mark.parametrize(
    "error",
    [
        http_error(404),
        http_error(500),
        KubeApiException(409),
        kubectl_failure('Error from server (NotFound): deployments.apps "x" not found\n'),
        ApiError(403, "policy_denied", "agents are never granted cluster-wide scopes"),  # eks-jit's own decision
        ValueError("not an HTTP error"),
    ],
)
def test_anything_else_is_raised_at_once(error: Exception) -> None:
    clock = FakeTime()
    assert not is_denied(error)
    with pytest.raises(type(error)):
        retry_while_propagating(denied_until(clock, 1e9, error), sleep=clock.sleep, monotonic=clock.monotonic)
    assert clock.slept == []
