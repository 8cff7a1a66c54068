"""Revocation lag in local mode: start `eks-jit local up`, request a short grant, poll the
local AWS endpoint every 50 ms, and record the time from ``expires_at`` to the moment the
access entry is gone. Repeated for N grants (sequential: overlapping grants of one principal
would keep each other's entry alive). Reported as p50/p99; target p99 <= 1 s locally.

Also records time-to-access: from sending the request to the entry being visible in EKS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.credentials import Credentials

BIN = Path(sys.executable).parent / "eks-jit"
AGENT = "arn:aws:iam::123456789012:role/agents/oncall-agent"
POLL = 0.05
TARGET_P99 = 1.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(grants: int = 20, seconds: int = 5) -> dict[str, Any]:
    from eks_jit.client import Client

    with tempfile.TemporaryDirectory(prefix="eks-jit-bench-") as tmp:
        state_dir = Path(tmp)
        plane = subprocess.Popen(
            [str(BIN), "local", "up", "--port", "0", "--state-dir", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while not (state_dir / "local.json").exists():
                time.sleep(0.1)
            time.sleep(0.2)
            state = json.loads((state_dir / "local.json").read_text())
            who = next(i for i in state["identities"] if i["name"] == "agent-oncall")

            credentials = Credentials(who["access_key_id"], who["secret_access_key"])
            client = Client(state["api_endpoint"], region=state["region"], credentials=credentials)
            eks = boto3.client("eks", endpoint_url=state["aws_endpoint"], region_name=state["region"],
                               aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip

            def present() -> bool:
                return AGENT in eks.list_access_entries(clusterName="demo")["accessEntries"]

            lags, to_access = [], []
            for _ in range(grants):
                sent = time.monotonic()
                grant = client.request_grant("demo", "payments", "rollout-restart", f"{seconds}s", "bench")
                while not present():
                    time.sleep(POLL)
                to_access.append(time.monotonic() - sent)
                expires = datetime.fromisoformat(grant["expires_at"])
                while present():
                    time.sleep(POLL)
                lags.append((datetime.now(UTC) - expires).total_seconds())
        finally:
            plane.terminate()
            plane.wait(timeout=30)
    return {"lags": lags, "to_access": to_access}


def measure(grants: int = 20) -> list[dict[str, object]]:
    result = run(grants)
    lags, access = result["lags"], result["to_access"]
    p50, p99 = percentile(lags, 50), percentile(lags, 99)
    return [
        {
            "figure": f"revocation lag, local ({grants} grants, 50 ms polls)",
            "value": f"p50 {p50:.3f}s, p99 {p99:.3f}s, max {max(lags):.3f}s",
            "target": f"p99 <= {TARGET_P99}s",
            "pass": p99 <= TARGET_P99,
        },
        {
            "figure": "time to access, local (request sent -> entry in EKS)",
            "value": f"p50 {percentile(access, 50):.3f}s, p99 {percentile(access, 99):.3f}s",
            "target": "report",
            "pass": True,
        },
    ]


if __name__ == "__main__":
    for row in measure(int(sys.argv[1]) if len(sys.argv) > 1 else 20):
        print(row)
