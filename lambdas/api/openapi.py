"""The OpenAPI document of the HTTP API, generated from the same models the handler validates
with. ``python -m eks_jit.server.api.openapi > docs/openapi.json`` (``make openapi``) refreshes the
committed copy; a test fails when they differ.

It is written for agent toolkits that generate a client from it: every operation has a camelCase
``operationId``, a summary and a description naming its error codes; every field is described;
one SigV4 security scheme applies to all of it; ``servers`` name a deployed stage and local mode.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server, ServerVariable

from .. import __version__
from .models import ErrorBody

SIGV4 = "sigv4"
SECURITY = APIKey(
    **{"in": APIKeyIn.header},
    name="Authorization",
    description=(
        "AWS Signature Version 4 (service `execute-api`, the API's region), as API Gateway's AWS_IAM "
        "authorization checks it: sign every request with the caller's IAM credentials (botocore's "
        "SigV4Auth, `aws-sigv4` in other SDKs). Local mode checks the same signature."
    ),
    openapi_extensions={"x-amazon-apigateway-authtype": "awsSigv4"},
)
SERVERS = [
    Server(
        url="https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
        description="a deployed eks-jit (the stack's ApiUrl output)",
        variables={
            "api_id": ServerVariable(default="abcdef1234", description="the REST API's id"),
            "region": ServerVariable(default="eu-west-1", description="the AWS region it is deployed in"),
            "stage": ServerVariable(default="prod", description="the API Gateway stage (infra/constructs/api.py)"),
        },
    ),
    Server(
        url="http://127.0.0.1:{port}",
        description="local mode (`eks-jit local up`): no AWS account, same API, same SigV4 check",
        variables={"port": ServerVariable(default="8765", description="`eks-jit local up --port`")},
    ),
]
# powertools documents a 422 with its own error model on every validated route; this API answers
# bad input with 400 and an ErrorBody instead (lambdas/handlers/api.py, invalid_request), so those go.
NOT_ANSWERED = ("422",)
UNUSED_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def document() -> str:
    from ..handlers.api import app

    text = app.get_openapi_json_schema(
        title="eks-jit",
        version=__version__,
        summary="Just-in-time, self-expiring access to Amazon EKS",
        description=(
            "Agents and people ask for one narrow, time-boxed grant on an EKS cluster; a Cedar policy "
            "auto-approves it or asks human approvers; the access ends on its own at `expires_at`. "
            "Every route is authorised with AWS SigV4 (API Gateway AWS_IAM). Errors are JSON "
            "{code, message, field?, grant_id?}; the code is stable and each operation's description "
            "names the codes it answers."
        ),
        servers=SERVERS,
        security_schemes={SIGV4: SECURITY},
        security=[{SIGV4: []}],
    )
    return json.dumps(_tidy(json.loads(text)), indent=2, sort_keys=True) + "\n"


def _tidy(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop the responses the API never gives, and name the one error shape once
    (``#/components/schemas/ErrorBody``) instead of inlining it in every response."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema()
    for methods in doc.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.get("responses", {})
            for status in NOT_ANSWERED:
                responses.pop(status, None)
            for response in responses.values():
                content = response.get("content", {}).get("application/json", {})
                if content.get("schema", {}).get("title") == "ErrorBody":  # the ERRORS of lambdas/handlers/api.py
                    content["schema"] = {"$ref": "#/components/schemas/ErrorBody"}
    schemas["ErrorBody"] = error_schema
    for _ in UNUSED_SCHEMAS:  # one may be used only by another that goes
        for name in UNUSED_SCHEMAS:
            if name in schemas and f"#/components/schemas/{name}" not in json.dumps(doc):
                del schemas[name]
    return doc


if __name__ == "__main__":
    print(document(), end="")
