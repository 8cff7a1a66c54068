"""One test's emulated world never acts on the next one's.

moto runs Step Functions executions on its own threads and the dispatcher runs the real
handler with whatever dependencies are current when the task starts. A workflow step still in
flight when a test ends (here the one that keeps the task token) used to run in the next test
and write into that test's table (the "changes nothing" assertions that compare the whole table could then fail
at random). The ``aws`` fixture now stops the executions and waits for the handlers in flight.
"""

from __future__ import annotations

import time
from typing import Any

from eks_jit.emulation import lambda_dispatch
from eks_jit.server import bootstrap
from tests.conftest import emulated_aws, make_deps
from tests.support import ONCALL_SESSION, FakeClock, LambdaContextStub, api_event

EDIT = {"cluster": "prod-eks", "namespace": "payments", "scope": "edit", "duration": "30m", "reason": "hotfix"}


def test_a_step_still_running_when_a_test_ends_does_not_run_in_the_next(example_config, monkeypatch) -> None:
    from eks_jit.server.handlers import api

    catalog = example_config[0]
    started = []
    real_step = lambda_dispatch._HANDLERS["eks-jit-workflow"]

    def slow_await(event: Any, context: Any) -> Any:
        if event.get("step") == "await":
            started.append(event["grant_id"])
            time.sleep(0.5)  # still running when the first world is torn down
        return real_step(event, context)

    monkeypatch.setitem(lambda_dispatch._HANDLERS, "eks-jit-workflow", slow_await)
    with emulated_aws(catalog) as first:
        bootstrap.use(make_deps(first, FakeClock()))
        response = api.handler(api_event("POST", "/v1/grants", caller=ONCALL_SESSION, body=EDIT), LambdaContextStub())
        assert response["statusCode"] == 201
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert started, "the workflow's await step never started"
    assert lambda_dispatch.in_flight() == 0  # the teardown waited for it

    with emulated_aws(catalog) as second:
        deps = make_deps(second, FakeClock())
        bootstrap.use(deps)
        time.sleep(0.7)  # long enough for a leaked notify to have written
        assert deps.store.get_side(started[0], "task_token") is None
    bootstrap.use(None)
