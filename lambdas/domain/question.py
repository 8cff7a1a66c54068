"""What policy is asked about one request, apart from the engine that answers it.

Kept out of ``domain/policy.py`` so that building a question loads no ``cedarpy``: the functions
that never decide a request (revoke, the sweeper, notify) import the logic that names this type,
and only the policy set itself, loaded where requests are decided, imports the Cedar engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class AccessQuestion:
    """What policy is asked for one namespace (or the cluster) of a request."""

    principal: str
    cluster: str
    scope: str
    namespace: str  # "" for a cluster-level scope
    duration: timedelta
