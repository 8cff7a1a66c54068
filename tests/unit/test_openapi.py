import json
import re

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
        "/v1/grants/{grant_id}/session",
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


# -- written for agent toolkits that generate a client from it ------------------------------------------

OPERATION_IDS = {
    ("/v1/grants", "post"): "createGrant",
    ("/v1/grants", "get"): "listGrants",
    ("/v1/grants/{grant_id}", "get"): "getGrant",
    ("/v1/grants/{grant_id}/revoke", "post"): "revokeGrant",
    ("/v1/grants/{grant_id}/extend", "post"): "extendGrant",
    ("/v1/grants/{grant_id}/approve", "post"): "approveGrant",
    ("/v1/grants/{grant_id}/deny", "post"): "denyGrant",
    ("/v1/grants/{grant_id}/cancel", "post"): "cancelGrant",
    ("/v1/whoami", "get"): "whoAmI",
    ("/v1/grants/{grant_id}/activity", "get"): "getGrantActivity",
    ("/v1/grants/{grant_id}/session", "get"): "getGrantSession",
    ("/v1/audit", "get"): "auditGrants",
    ("/v1/approvals", "get"): "listApprovals",
    ("/v1/catalog", "get"): "getCatalog",  # when the route exists
}


def operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, methods in doc["paths"].items() for method, op in methods.items()]


def test_the_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV31SpecValidator

    doc = json.loads(document())
    assert doc["openapi"].startswith("3.1")
    validate(doc, cls=OpenAPIV31SpecValidator)


def test_every_operation_has_a_readable_unique_camel_case_id_a_summary_and_a_description() -> None:
    doc = json.loads(document())
    ids = []
    for path, method, op in operations(doc):
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z]*)*", op.get("operationId", "")), (path, method, op.get("operationId"))
        assert (path, method) not in OPERATION_IDS or op["operationId"] == OPERATION_IDS[(path, method)]
        assert op.get("summary") and op["summary"] != f"{method.upper()} {path}", (path, method)
        assert len(op.get("description", "")) >= 80, (path, method)  # what, when, which errors
        ids.append(op["operationId"])
    assert len(ids) == len(set(ids))
    assert {v for (p, _), v in OPERATION_IDS.items() if p in doc["paths"]} <= set(ids)


def test_every_field_and_parameter_is_described() -> None:
    doc = json.loads(document())
    missing = [
        f"{name}.{prop}"
        for name, schema in doc["components"]["schemas"].items()
        for prop, spec in schema.get("properties", {}).items()
        if not spec.get("description")
    ]
    missing += [
        f"{method} {path} ?{p['name']}"
        for path, method, op in operations(doc)
        for p in op.get("parameters", [])
        if not (p.get("description") or p.get("schema", {}).get("description"))
    ]
    assert missing == []


def test_every_route_is_sigv4_and_the_servers_are_a_stage_and_local_mode() -> None:
    doc = json.loads(document())
    scheme = doc["components"]["securitySchemes"]["sigv4"]
    assert scheme == scheme | {"type": "apiKey", "in": "header", "name": "Authorization"}
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert doc["security"] == [{"sigv4": []}]
    assert all("security" not in op for _, _, op in operations(doc))  # none opts out
    urls = [s["url"] for s in doc["servers"]]
    assert urls == ["https://{api_id}.execute-api.{region}.amazonaws.com/{stage}", "http://127.0.0.1:{port}"]
    for server in doc["servers"]:
        assert set(server["variables"]) == set(re.findall(r"{(\w+)}", server["url"]))


def test_errors_are_documented_as_the_api_answers_them() -> None:
    """Bad input is a 400 ErrorBody, never powertools' 422 model; the error shape is one schema."""
    doc = json.loads(document())
    assert not {"HTTPValidationError", "ValidationError"} & set(doc["components"]["schemas"])
    for path, method, op in operations(doc):
        assert "422" not in op["responses"], (path, method)
        assert op["responses"]["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }


def test_the_two_requests_that_make_grants_document_the_idempotency_key_and_no_other_route_does() -> None:
    doc = json.loads(document())
    keyed = {
        (path, method)
        for path, methods in doc["paths"].items()
        for method, op in methods.items()
        if any(p["in"] == "header" and p["name"].lower() == "idempotency-key" for p in op.get("parameters", []))
    }
    assert keyed == {("/v1/grants", "post"), ("/v1/grants/{grant_id}/extend", "post")}
    (header,) = [p for p in doc["paths"]["/v1/grants"]["post"]["parameters"] if p["in"] == "header"]
    (schema, _none) = header["schema"]["anyOf"]
    assert header["required"] is False and (schema["minLength"], schema["maxLength"]) == (1, 255)
    assert "idempotency_key_reused" in header["description"] and "idempotency_key_in_progress" in header["description"]
