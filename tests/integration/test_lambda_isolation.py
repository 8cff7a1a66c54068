"""Concurrent invocations of the api handler in one process each see their own event
(eks_jit/emulation/lambda_isolation.py), as each Lambda environment does."""

from __future__ import annotations

import sys

from eks_jit.emulation import lambda_isolation
from tests.support import ALICE, ONCALL, ONCALL_SESSION, race


def test_concurrent_invocations_never_see_each_others_event(world) -> None:
    # powertools keeps the event on the resolver's class; without per-thread isolation a request
    # could be answered as another caller (seen in bench/load.py's burst under local mode)
    lambda_isolation.register()
    callers = {ONCALL_SESSION: ONCALL, ALICE: ALICE}
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads far more often than a loaded machine does
    try:
        for _ in range(20):
            answers = race(*(lambda c=c: (c, world.call("GET", "/v1/whoami", caller=c)) for c in list(callers) * 3))
            for caller, (status, me) in answers:
                assert status == 200 and me["principal"] == callers[caller], (caller, me)
    finally:
        sys.setswitchinterval(interval)
