"""The OpenAPI document of the HTTP API, generated from the same models the handler validates
with. ``python -m eks_jit.server.api.openapi > docs/openapi.json`` (``make openapi``) refreshes the
committed copy; a test fails when they differ."""

from __future__ import annotations

import json

from .. import __version__


def document() -> str:
    from ..handlers.api import app

    text = app.get_openapi_json_schema(
        title="eks-jit",
        version=__version__,
        summary="Just-in-time, self-expiring access to Amazon EKS",
        description=(
            "Every route is authorised with AWS SigV4 (API Gateway AWS_IAM). Errors are JSON "
            "{code, message, field?}; the code is stable."
        ),
    )
    return json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(document(), end="")
