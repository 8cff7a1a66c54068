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

import pytest
from hypothesis import HealthCheck, seed, settings
from hypothesis.stateful import get_state_machine_test, run_state_machine_as_test

from eks_jit.server.observability import logger
from tests.memory.world import MemoryWorld
from tests.property.test_lifecycle_machine import STATS, LifecycleMachine, summary

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
