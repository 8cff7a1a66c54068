"""Coalesced reconciles (issue 16): a caller that finds the principal's lease held may return on
the strength of another reconcile only if that one read the caller's change. Driven on the
in-memory ports, with the other worker's moves made at the waiter's first backoff."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from eks_jit.server.logic import reconciler
from eks_jit.server.logic.deciding import AccessRequest
from eks_jit.server.logic.requesting import request_grant
from tests.memory.world import MemoryWorld
from tests.support import ONCALL

KEY = reconciler.lease_key(ONCALL, "prod-eks")


def ask(scope: str) -> AccessRequest:
    return AccessRequest(ONCALL, "prod-eks", "payments", scope, timedelta(minutes=15), "readiness probe failing")


@pytest.fixture
def world() -> MemoryWorld:
    return MemoryWorld(gsi_lag=False)


def other_worker_finishes(monkeypatch: pytest.MonkeyPatch, world: MemoryWorld, applied: Any) -> list[float]:
    """At the waiter's first backoff, the lease holder ("other") releases, recording ``applied()``."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        if not slept:
            world.ports.store.release_lease(KEY, "other", applied())
        slept.append(seconds)

    monkeypatch.setattr(reconciler, "time", SimpleNamespace(sleep=sleep))
    return slept


def policies(world: MemoryWorld) -> set[str]:
    entry = world.ports.eks.clusters["prod-eks"].entries.get(ONCALL)
    return {arn.rsplit("/", 1)[-1] for arn in entry.policies} if entry else set()


def test_a_reconcile_that_read_the_set_before_my_change_does_not_answer_for_me(world, monkeypatch) -> None:
    deps = world.base
    request_grant(deps, ask("rollout-restart"))
    stale = world.ports.store.access_generation(ONCALL, "prod-eks")  # what "other" read: before the view grant
    assert world.ports.store.acquire_lease(KEY, "other", deps.clock.now(), timedelta(seconds=30)).acquired
    slept = other_worker_finishes(monkeypatch, world, lambda: stale)

    view = request_grant(deps, ask("view"))

    assert view.status.value == "active" and slept  # it waited, then reconciled itself
    assert "AmazonEKSViewPolicy" in policies(world)
    assert world.ports.store.acquire_lease(KEY, "next", deps.clock.now(), timedelta(seconds=30)).applied == stale + 1


def test_a_reconcile_that_read_my_change_answers_for_me_without_a_second_apply(world, monkeypatch) -> None:
    deps = world.base
    request_grant(deps, ask("rollout-restart"))
    assert world.ports.store.acquire_lease(KEY, "other", deps.clock.now(), timedelta(seconds=30)).acquired
    # "other" read the set after the view grant's change and applied it (here: claims to; EKS untouched)
    other_worker_finishes(monkeypatch, world, lambda: world.ports.store.access_generation(ONCALL, "prod-eks"))
    before = dict(world.ports.eks.clusters["prod-eks"].entries)

    view = request_grant(deps, ask("view"))

    assert view.status.value == "active"
    assert world.ports.eks.clusters["prod-eks"].entries == before  # no apply of its own: covered
    recorded = world.ports.store.events(view.id)[-1]
    assert recorded.type == "access_granted" and recorded.detail["applied_by_concurrent_reconcile"] is True


def test_without_contention_nothing_extra_is_read(world, monkeypatch) -> None:
    reads: list[bool] = []
    store = world.ports.store
    original = store.access_generation
    monkeypatch.setattr(store, "access_generation", lambda *a: reads.append("gen") or original(*a))
    request_grant(world.base, ask("rollout-restart"))
    assert reads == []


def test_a_reconcile_that_covered_me_answers_for_me_even_once_the_lease_is_taken_again(world, monkeypatch) -> None:
    # The burst's tail (bench/load.py, 8 agents on one principal): a waiter covered by the
    # reconcile that just released kept waiting when a third worker took the lease before the
    # waiter's next attempt, because taking the lease overwrote the generation the release had
    # recorded. It must return on that recorded generation, without waiting for the third.
    deps = world.base
    request_grant(deps, ask("rollout-restart"))
    store = world.ports.store
    assert store.acquire_lease(KEY, "other", deps.clock.now(), timedelta(seconds=30)).acquired
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        if not slept:  # "other" read the view grant's change, applied it and released; "third" takes over
            store.release_lease(KEY, "other", store.access_generation(ONCALL, "prod-eks"))
            assert store.acquire_lease(KEY, "third", deps.clock.now(), timedelta(seconds=30)).acquired
        slept.append(seconds)

    monkeypatch.setattr(reconciler, "time", SimpleNamespace(sleep=sleep))
    view = request_grant(deps, ask("view"))

    assert view.status.value == "active" and len(slept) == 1  # answered at the next attempt
    assert store.events(view.id)[-1].detail["applied_by_concurrent_reconcile"] is True


def test_a_reconcile_that_failed_records_nothing_it_left_so_the_next_reads_eks(world, monkeypatch) -> None:
    from eks_jit.server.domain.access import Access
    from eks_jit.server.domain.errors import TransientAwsError

    deps, store = world.base, world.ports.store
    request_grant(deps, ask("rollout-restart"))
    cluster = world.ports.eks.clusters["prod-eks"]
    original = type(world.ports.eks).cluster
    reads: list[bool] = []

    def failing_cluster(self: Any, name: str, *, session: str) -> Any:
        entries = original(self, name, session=session)
        read = entries.read

        def associate(*args: Any, **kwargs: Any) -> None:
            raise TransientAwsError("eks:AssociateAccessPolicy: throttled (injected)")

        monkeypatch.setattr(entries, "associate", associate)

        def listed(principal: str, *, with_policies: bool = True) -> Any:
            reads.append(with_policies)
            return read(principal, with_policies=with_policies)

        monkeypatch.setattr(entries, "read", listed)
        return entries

    monkeypatch.setattr(type(world.ports.eks), "cluster", failing_cluster)
    failed = request_grant(deps, ask("view"))

    # the view grant's reconcile took the policies from the record and failed half-way: it
    # recorded nothing, so the clean-up after the failed activation listed them before recording
    assert failed.status.value == "failed" and reads == [False, True]
    taken = store.acquire_lease(KEY, "next", deps.clock.now(), timedelta(seconds=30))
    entry = cluster.entries[ONCALL]
    assert taken.left is not None and taken.left.entry == Access(frozenset(entry.groups), dict(entry.policies))
