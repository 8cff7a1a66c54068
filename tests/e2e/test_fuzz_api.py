"""Fuzz the HTTP API from its committed OpenAPI document (docs/openapi.json) with schemathesis,
against `eks-jit local up`, every request SigV4-signed as agent-oncall (service execute-api).

For every generated request (schema-conforming and schema-violating, with bodies steered now and
then towards the local cluster, its namespaces and scopes, and grant ids that exist):
- no 5xx;
- every 4xx answers JSON ``{code, message, field?}`` (``grant_id`` when the refusal was recorded);
- a refused request writes nothing: the grant table (grants, events, access index, read through
  the local AWS endpoint) and the emulated EKS access entries are the same before and after, but
  for the one ``denied`` grant a policy refusal records, and what the local scheduler and
  sweeper do on their own meanwhile (system actors, never the caller).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.e2e.conftest import Local
from tests.support import ROOT

pytestmark = pytest.mark.e2e
AGENT = "arn:aws:iam::123456789012:role/agents/oncall-agent"
SYSTEM_ACTORS = ("eks-jit", "eks-jit:scheduler", "eks-jit:sweeper")
EXAMPLES = 8  # per operation and generation mode (plus schemathesis' coverage cases): ~40 s in all

schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES)
EXISTING: list[str] = []  # grant ids created by the fixture below, offered to path parameters


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Keep schemathesis' body, or make it about the local cluster (where policy, bounds and
    state checks live), so refusals come from deep in the handler and not only from validation."""
    if not isinstance(body, dict):
        return st.just(body)
    local = st.fixed_dictionaries(
        {},
        optional={
            "cluster": st.sampled_from(["demo", "prod-eks", ""]),
            "namespace": st.sampled_from(["payments", "orders", "kube-system", "Payments", None]),
            "scope": st.sampled_from(["view", "edit", "rollout-restart", "cluster-view", "admin", "nope"]),
            "duration": st.sampled_from(["1s", "4s", "30s", "2m", "16m", "PT1H", "13h", "0s", "-5m", "abc"]),
        },
    )
    return st.one_of(st.just(body), local.map(lambda extra: {**body, **extra}))


@schema.hook
def flatmap_path_parameters(context: Any, parameters: Any) -> Any:
    if not EXISTING or not isinstance(parameters, dict) or "grant_id" not in parameters:
        return st.just(parameters)
    return st.one_of(st.just(parameters), st.sampled_from(EXISTING).map(lambda g: {**parameters, "grant_id": g}))


class SigV4(requests.auth.AuthBase):
    """Sign the request exactly as sent (method, URL with query, body) with botocore's signer."""

    def __init__(self, key: str, secret: str, region: str) -> None:
        self._signer = SigV4Auth(Credentials(key, secret), "execute-api", region)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        headers = {"Content-Type": request.headers["Content-Type"]} if "Content-Type" in request.headers else {}
        aws = AWSRequest(method=request.method, url=request.url, data=body, headers=headers)
        self._signer.add_auth(aws)
        request.headers.update({k: v for k, v in aws.headers.items() if k.lower() != "content-type"})
        return request


class Watch:
    """What a request could change, read through the local AWS endpoint."""

    def __init__(self, local: Local) -> None:
        self._ddb = local.aws("dynamodb")
        self._eks = local.aws("eks")
        self._table = local.state["resources"]["table"]

    def items(self) -> dict[tuple[str, str], Any]:
        found: dict[tuple[str, str], Any] = {}
        for page in self._ddb.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
            for item in page["Items"]:
                key = (item["pk"]["S"], item["sk"]["S"])
                if key[0].startswith(("GRANT#", "ACCESS#")):  # leases and side records are not the record
                    found[key] = item
        return found

    def entries(self) -> dict[str, Any]:
        found = {}
        for principal in self._eks.list_access_entries(clusterName="demo")["accessEntries"]:
            entry = self._eks.describe_access_entry(clusterName="demo", principalArn=principal)["accessEntry"]
            policies = self._eks.list_associated_access_policies(clusterName="demo", principalArn=principal)
            found[principal] = (
                sorted(entry.get("kubernetesGroups", [])),
                sorted(json.dumps(p["accessScope"], sort_keys=True) + p["policyArn"] for p in
                       policies["associatedAccessPolicies"]),
            )  # fmt: skip
        return found


def unexplained_changes(
    before: dict[tuple[str, str], Any], after: dict[tuple[str, str], Any], recorded: str | None
) -> list[str]:
    """Changes to the grant table that neither the refusal's own record (``recorded``: the id a
    policy denial returns) nor the local scheduler/sweeper explain."""
    problems = []
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    by_system = {
        k[0] for k in changed if k[1].startswith("EVENT#") and k in after and after[k]["actor"]["S"] in SYSTEM_ACTORS
    }
    for key in sorted(changed):
        if recorded and key[0] == f"GRANT#{recorded}" and not any(k[0] == key[0] for k in before):
            continue  # the denied grant a policy refusal records
        if key[0].startswith("GRANT#") and key[0] in by_system:
            continue  # expired or reconciled in the background during the request
        if key[0].startswith("ACCESS#") and by_system:
            continue  # the access index moves with those background changes
        problems.append(f"{key}: {'added' if key not in before else 'removed' if key not in after else 'changed'}")
    return problems


SEEN: collections.Counter[str] = collections.Counter()  # status and error code of every answer


@pytest.fixture(scope="module")
def agent(local: Local) -> Iterator[dict[str, Any]]:
    who = local.identity("agent-oncall")
    auth = SigV4(who["access_key_id"], who["secret_access_key"], local.state["region"])
    session = requests.Session()
    session.auth = auth
    url = local.state["api_endpoint"]
    # Grants that exist, for the path parameters: a pending one (self-approval, extend and cancel
    # refusals), a denied one; an active one is left to the fuzzer's own requests.
    for body in (
        {"cluster": "demo", "namespace": "payments", "scope": "edit", "duration": "5m", "reason": "fuzz"},
        {"cluster": "demo", "namespace": "orders", "scope": "view", "duration": "1m", "reason": "fuzz"},
    ):
        answer = session.post(f"{url}/v1/grants", json=body, timeout=30).json()
        EXISTING.append(answer.get("id") or answer["grant_id"])
    yield {"session": session, "url": url, "watch": Watch(local)}
    print("\nfuzzed answers:", ", ".join(f"{k} x{v}" for k, v in sorted(SEEN.items())))


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_fuzzed_requests_get_no_5xx_a_clear_4xx_and_change_nothing_when_refused(case: Any, agent: Any) -> None:
    watch: Watch = agent["watch"]
    before_items, before_entries = watch.items(), watch.entries()
    response = case.call(base_url=agent["url"], session=agent["session"], timeout=10)
    request = f"{case.method} {case.formatted_path} query={case.query} headers={case.headers} body={case.body!r}"
    assert response.status_code < 500, f"{request} -> {response.status_code} {response.text}"
    if response.status_code < 400:
        SEEN[str(response.status_code)] += 1
        return
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), request
    error = response.json()
    assert isinstance(error, dict), f"{request} -> {error!r}"
    SEEN[f"{response.status_code} {error.get('code')}"] += 1
    assert isinstance(error.get("code"), str) and error["code"], f"{request} -> {error}"
    assert isinstance(error.get("message"), str) and error["message"], f"{request} -> {error}"
    assert error.get("field") is None or isinstance(error["field"], str), f"{request} -> {error}"
    assert set(error) <= {"code", "message", "field", "grant_id"}, f"{request} -> {error}"
    assert "Traceback" not in response.text, request
    recorded = error.get("grant_id") if error["code"] == "policy_denied" else None
    problems = unexplained_changes(before_items, watch.items(), recorded)
    assert not problems, f"{request} -> {response.status_code} {error['code']} but wrote: {problems}"
    after_entries = watch.entries()
    if after_entries != before_entries:  # only the background may have taken access away meanwhile
        assert set(after_entries) <= set(before_entries) and AGENT not in after_entries, (
            f"{request} -> {response.status_code} {error['code']} but the access entries changed"
        )


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE"])
def test_a_method_the_api_does_not_have_gets_a_json_4xx(method: str, agent: Any) -> None:
    """API Gateway answers a method a resource lacks with a 4xx (403 "Missing Authentication
    Token" for REST APIs). Found by the fuzzer: local mode's gateway answered 501 with
    BaseHTTPRequestHandler's HTML page."""
    response = agent["session"].request(method, f"{agent['url']}/v1/grants", timeout=30)
    assert 400 <= response.status_code < 500, response.status_code
    assert set(response.json()) >= {"code", "message"}


def test_a_body_that_is_not_utf8_gets_a_json_400(agent: Any) -> None:
    """API Gateway hands such a body on and the handler answers 400 malformed_json. Found by the
    fuzzer: local mode's gateway raised UnicodeDecodeError in proxy_event and closed the
    connection without an answer."""
    response = agent["session"].post(
        f"{agent['url']}/v1/grants",
        data=b'{"cluster": "\xff"}',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400 and response.json()["code"] == "malformed_json"
