"""AWS API calls per grant lifecycle, counted at botocore's API-call boundary while the
on-call story runs under moto: request (auto-approved, activated) -> schedule fires -> expired.

The minimum the design needs (docs/decisions.md, "AWS calls per grant"):
  request    DynamoDB 6: create grant+events, activate (grant+event+index), lease take/release,
             index read + batch get of the active grants; record access_granted is a 7th
             Scheduler 1 (one-time schedule); EKS 2 for a first grant (describe -> absent,
             create with groups) + 1 associate per access policy the scope carries
  expiry     DynamoDB 6: get grant, expire (grant+event+index), lease take/release, index read,
             record access_removed; EKS 2: describe (managed?), delete (policies go with it)
  plus one SNS Publish on the outcomes topic per status change that reaches a new state worth
  announcing (activated, expired): other tools subscribe to it (issue 3).
  => 11 calls for a group-only scope, 12 for an access-policy scope, 9 at expiry.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

TARGET = {"request": 11, "expiry": 9}  # the minimum written down above


def count_lifecycle(scope: str = "rollout-restart") -> dict[str, Counter[str]]:
    import botocore.client
    from moto import mock_aws

    from tests.conftest import make_deps
    from tests.support import EXAMPLE_CONFIG, ONCALL, FakeClock

    calls: Counter[str] = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation: str, params: dict[str, Any]) -> Any:
        calls[f"{self.meta.service_model.service_name}:{operation}"] += 1
        return original(self, operation, params)

    from eks_jit.local.resources import create_resources
    from eks_jit.server.config import load_config
    from eks_jit.server.logic.lifecycle import on_schedule
    from eks_jit.server.logic.requesting import AccessRequest, request_grant
    from tests.conftest import GROUP, MOTO_CONFIG, TABLE

    phases: dict[str, Counter[str]] = {}
    config = load_config(EXAMPLE_CONFIG)
    with mock_aws(config=MOTO_CONFIG):
        resources = create_resources(config[0], region="eu-west-1", table=TABLE, schedule_group=GROUP)
        deps = make_deps(resources, FakeClock())
        botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
        try:
            grant = request_grant(
                deps, AccessRequest(ONCALL, "prod-eks", "payments", scope, timedelta(minutes=15), "bench")
            )
            phases["request"], calls = calls.copy(), Counter()
            deps.clock.advance(timedelta(minutes=15))  # type: ignore[attr-defined]
            on_schedule(deps, grant.id)
            phases["expiry"] = calls.copy()
        finally:
            botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]
    return phases


def measure() -> list[dict[str, object]]:
    rows = []
    for scope in ("rollout-restart", "view"):
        for phase, counted in count_lifecycle(scope).items():
            total = sum(counted.values())
            target = TARGET[phase] + (1 if scope == "view" and phase == "request" else 0)
            rows.append(
                {
                    "figure": f"AWS calls, {phase} ({scope})",
                    "value": f"{total}: " + ", ".join(f"{k.split(':')[1]} {v}" for k, v in sorted(counted.items())),
                    "target": f"<= {target}",
                    "pass": total <= target,
                }
            )
    return rows


if __name__ == "__main__":
    print(json.dumps({k: dict(v) for k, v in count_lifecycle().items()}, indent=2))
