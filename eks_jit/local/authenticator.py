"""Ask local mode's emulated cluster what its authenticator maps a principal to, right now.

Real EKS answers DescribeAccessEntry at once but applies an entry to authentication only
after it has propagated ("may take several seconds"); the emulation models that delay and
serves what the authenticator sees on an emulation-only route of the local AWS endpoint
(``GET /emulation/authentication``, SigV4 for ``eks``: see
eks_jit/emulation/eks_access_entries.py). The demo and the end-to-end tests watch a grant's
access arrive and leave through it.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def seen_by_authenticator(
    aws_endpoint: str, region: str, cluster: str, principal: str, at: datetime | None = None
) -> dict[str, Any]:
    """``{"authenticated": bool, "kubernetesGroups": [...], "accessPolicies": [...], "settlesAt": ...}``"""
    query = {"clusterName": cluster, "principalArn": principal, **({"at": at.isoformat()} if at else {})}
    url = f"{aws_endpoint.rstrip('/')}/emulation/authentication?{urlencode(query)}"
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials("local", "local"), "eks", region).add_auth(request)
    prepared = urllib.request.Request(url, headers=dict(request.headers.items()))  # noqa: S310 - local endpoint
    with urllib.request.urlopen(prepared, timeout=10) as response:  # noqa: S310 - local endpoint
        return dict(json.loads(response.read()))
