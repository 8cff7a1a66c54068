"""What each Lambda function loads at cold start (issue 16; bench/cold_start.py times it).

Each handler is imported in a fresh interpreter, as Lambda's init does, and the modules it must
not load are looked for in ``sys.modules``: a stray top-level import anywhere under it fails here.
Then the wiring: building a function's dependencies makes no AWS client, and the clients it makes
share one session (one loader: each service model and the endpoint rules parsed once).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from eks_jit.server import bootstrap
from eks_jit.server.adapters import aws
from eks_jit.server.config import read_environment
from tests.support import EXAMPLE_CONFIG, REGION

ROOT = Path(__file__).resolve().parents[2]
# Only where requests are decided (the policy set loads it), only on the Slack route, only in the api.
CEDAR, SLACK, HTTP_API = "cedarpy", "slack_sdk", "aws_lambda_powertools.event_handler"
API_MODELS, IDEMPOTENCY_KEYS = "eks_jit.server.api.models", "aws_lambda_powertools.utilities.idempotency"
HEAVY = (CEDAR, SLACK, HTTP_API, API_MODELS, "yaml")


def loaded_by(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(json.loads(run.stdout))


@pytest.fixture(scope="module")
def loaded() -> dict[str, set[str]]:
    names = ("api", "revoke", "sweeper", "notify", "workflow")
    return {name: loaded_by(f"eks_jit.server.handlers.{name}") for name in names}


@pytest.mark.parametrize("function", ["revoke", "sweeper", "notify", "workflow"])
def test_a_function_that_serves_no_http_loads_neither_cedar_nor_slack_nor_the_http_api(
    loaded: dict[str, set[str]], function: str
) -> None:
    assert {m for m in HEAVY if m in loaded[function]} == set()


def test_the_api_loads_the_http_api_but_not_slack(loaded: dict[str, set[str]]) -> None:
    assert {HTTP_API, API_MODELS, IDEMPOTENCY_KEYS} <= loaded["api"]
    # cedarpy comes with the policy set on the first request (bench/cold_start.py's cold request
    # times that); slack-sdk only when a Slack interaction arrives
    assert {m for m in (CEDAR, SLACK, "yaml") if m in loaded["api"]} == set()


def test_what_a_function_loads_is_a_subset_of_what_the_api_loads(loaded: dict[str, set[str]]) -> None:
    """The api is the heaviest; a module only another function loads would be a new cost to watch."""
    project = {m for m in set().union(*loaded.values()) if m.startswith("eks_jit.")}
    assert project - loaded["api"] <= {
        "eks_jit.server.handlers.revoke",
        "eks_jit.server.handlers.sweeper",
        "eks_jit.server.handlers.notify",
        "eks_jit.server.handlers.workflow",
        "eks_jit.server.logic.sweeper",
    }


def test_building_a_function_s_dependencies_makes_no_client_until_one_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[tuple[Any, ...]] = []
    real = aws.client

    def counting(*args: Any) -> Any:
        made.append(args)
        return real(*args)

    monkeypatch.setattr(aws, "client", counting)
    env = read_environment({"EKS_JIT_TABLE": "grants", "EKS_JIT_CONFIG": str(EXAMPLE_CONFIG), "AWS_REGION": REGION})
    deps = bootstrap.build(env, with_policies=False)
    assert made == []
    assert deps.scheduler is not None
    assert deps.scheduler._scheduler.meta.service_model.service_name == "scheduler"  # type: ignore[attr-defined]
    assert made == [("scheduler", REGION, None)]


def test_every_client_of_the_process_comes_from_one_session() -> None:
    dynamodb, sns = aws.client("dynamodb", REGION), aws.client("sns", "us-west-2")
    other_account = aws.client_with(
        "eks", REGION, None, {"AccessKeyId": "AKIAOTHER", "SecretAccessKey": "secret", "SessionToken": "token"}
    )
    assert (
        dynamodb._loader is sns._loader is other_account._loader is aws.session()._session.get_component("data_loader")
    )
    assert other_account._request_signer._credentials.access_key == "AKIAOTHER"
    assert aws.client("dynamodb", REGION) is dynamodb
