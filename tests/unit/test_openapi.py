import json

from eks_jit.server.api.openapi import document
from tests.support import ROOT


def test_the_committed_openapi_document_matches_the_models() -> None:
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert committed == document(), "docs/openapi.json drifted from the API models: run `make openapi`"


def test_every_route_documents_its_error_shape() -> None:
    doc = json.loads(document())
    assert set(doc["paths"]) == {
        "/v1/grants",
        "/v1/grants/{grant_id}",
        "/v1/grants/{grant_id}/revoke",
        "/v1/grants/{grant_id}/approve",
        "/v1/grants/{grant_id}/deny",
        "/v1/grants/{grant_id}/cancel",
        "/v1/grants/{grant_id}/extend",
        "/v1/grants/{grant_id}/activity",
        "/v1/audit",
        "/v1/approvals",
        "/v1/whoami",
        "/v1/catalog",
    }  # the Slack and approval-link routes verify their own signatures and are not for API clients
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            assert {"400", "403"} <= set(op["responses"]), (path, method)
    body = doc["paths"]["/v1/grants"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/GrantRequest")
    assert set(doc["components"]["schemas"]["GrantRequest"]["required"]) == {"cluster", "scope", "duration", "reason"}
