"""The lifecycle machine of ``tests/property/test_lifecycle_machine.py`` (the same class: same
rules, same invariants, same final sweep) on the in-memory world, with faults at the port
boundary (``tests/memory/faults.py``) instead of at botocore.

``make test`` runs a bounded, derandomized number of examples (a few seconds). ``make soak``
sets ``EKS_JIT_SOAK_LIFECYCLES`` (10,000): batches of random examples, seeded from
``EKS_JIT_SOAK_SEED`` (or a fresh seed, printed either way, so a failure replays with
``EKS_JIT_SOAK_SEED=<seed>``), until that many grants went from active to ended.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.stateful import get_state_machine_test, run_state_machine_as_test

from eks_jit.server.domain.access import Access, access_of
from eks_jit.server.domain.grant import GrantStatus
from eks_jit.server.observability import logger
from tests.memory.eks import MemoryClusterEntries
from tests.memory.test_contract import activate, created, move
from tests.memory.world import MemoryWorld
from tests.property.test_lifecycle_machine import STATS, LifecycleMachine, summary
from tests.support import ONCALL, FakeClock

SOAK_LIFECYCLES = int(os.environ.get("EKS_JIT_SOAK_LIFECYCLES", "0"))
SOAK_STEPS = int(os.environ.get("EKS_JIT_SOAK_STEPS", "60"))
BATCH = 100  # examples per seed


@pytest.fixture(scope="module")
def memory_world() -> Iterator[MemoryWorld]:
    level = logger.log_level
    logger.setLevel("CRITICAL")
    built = MemoryWorld()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(uuid, "uuid4", built.ids)  # same run, same ids
            yield built
    finally:
        logger.setLevel(level)


def soak_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=SOAK_STEPS,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        print_blob=True,
    )


def test_grant_lifecycles_survive_faults_at_every_port_in_memory(memory_world: MemoryWorld) -> None:
    LifecycleMachine.world = memory_world  # type: ignore[assignment]
    STATS.clear()
    memory_world.faults.injected.clear()
    started = time.monotonic()
    first = None
    try:
        if not SOAK_LIFECYCLES:
            run_state_machine_as_test(
                LifecycleMachine,
                settings=settings(
                    max_examples=int(os.environ.get("EKS_JIT_MEMORY_EXAMPLES", "40")),
                    stateful_step_count=30,
                    deadline=None,
                    derandomize=True,  # the same examples on every CI run
                    suppress_health_check=list(HealthCheck),
                    database=None,
                    print_blob=True,
                ),
            )
            return
        first = int(os.environ.get("EKS_JIT_SOAK_SEED") or random.SystemRandom().randrange(2**32))
        print(f"\nsoak seed {first} (EKS_JIT_SOAK_SEED={first} replays this run)")
        batch = 0
        while STATS["lifecycles (active -> ended)"] < SOAK_LIFECYCLES:
            test = get_state_machine_test(LifecycleMachine, settings=soak_settings(BATCH))
            seed(first + batch)(test)()
            batch += 1
    finally:
        summary(memory_world, "memory", time.monotonic() - started)
        if first is not None:
            print(f"  soak seed: {first}")


def test_the_machine_on_memory_catches_access_left_in_place(
    memory_world: MemoryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attacker's test for the soak itself: an EKS whose DeleteAccessEntry and
    DisassociateAccessPolicy do nothing (revocation "succeeds", the access stays, TEAM #398) must
    fail the in-memory machine; a soak that cannot see a leak proves nothing."""
    monkeypatch.setattr(MemoryClusterEntries, "delete", lambda self, principal: None)
    monkeypatch.setattr(MemoryClusterEntries, "disassociate", lambda self, principal, policy: None)
    LifecycleMachine.world = memory_world  # type: ignore[assignment]
    with pytest.raises(AssertionError, match=r"no active grant justifies|still in place|but active grants justify"):
        run_state_machine_as_test(
            LifecycleMachine,
            settings=settings(
                max_examples=30,
                stateful_step_count=30,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                database=None,
                report_multiple_bugs=False,
                phases=[Phase.generate],  # found is enough: no shrinking
            ),
        )


def test_leaked_grants_names_access_left_behind_and_access_missing(memory_world: MemoryWorld) -> None:
    """The final sweep's count (``LifecycleMachine.leaked_grants``) on snapshots built by hand."""
    store, now = memory_world.ports.store, FakeClock().now()
    memory_world.reset()
    ended = move(store, activate(store, created(store, "g1", now), now), GrantStatus.EXPIRED, ended_at=now)
    live = activate(store, created(store, "g2", now), now)
    machine = SimpleNamespace(deps=memory_world.base)
    view = access_of(ended.scope, memory_world.catalog.scopes[ended.scope], ended.namespaces)

    def leaked(entry: Access) -> list[str]:
        snap = memory_world.snapshot()
        snap.entries = {(ONCALL, "prod-eks"): entry}
        return [line.split()[0] for line in LifecycleMachine.leaked_grants(machine, snap)]  # type: ignore[arg-type]

    assert leaked(view) == []  # g2, same scope, justifies what g1 left
    move(store, live, GrantStatus.REVOKED, ended_at=now)
    assert sorted(leaked(view)) == ["g1", "g2"]  # both ended, the access stays
    activate(store, created(store, "g3", now), now)
    assert leaked(Access()) == ["g3"]  # active without its access
