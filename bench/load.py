"""Load in local mode: N agents (threads) on ONE principal (agent-oncall) each request an
auto-approved grant (answered ``active`` in the same call), use it (a short sleep) and revoke it,
round after round; half of them keep their last grant. Reports POST /v1/grants throughput and
p50/p99 latency, and checks afterwards that the access entry on the emulated cluster equals the
union of the grants still active (eks_jit.server.domain.access), and that every request came back active.

One principal is the hard case: its access entry is one object that every request and revoke
rewrites, serialised by the reconcile lease, so this measures the lease as much as the API.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent / "eks-jit"
AGENT = "arn:aws:iam::123456789012:role/agents/oncall-agent"
TARGET_P99 = 2.0  # seconds, local mode on 2 cores: one principal's reconciles run one at a time


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def start_local(state_dir: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    plane = subprocess.Popen(
        [str(BIN), "local", "up", "--port", "0", "--state-dir", str(state_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while not (state_dir / "local.json").exists():
        if plane.poll() is not None or time.monotonic() > deadline:
            plane.kill()
            raise RuntimeError("local mode did not start")
        time.sleep(0.1)
    time.sleep(0.2)
    return plane, json.loads((state_dir / "local.json").read_text())


def observed_access(state: dict[str, Any]) -> Any:
    """The agent's managed entry on the demo cluster, as an Access (None when there is none)."""
    from eks_jit.server.domain.access import Access, PolicyScope

    eks = boto3.client("eks", endpoint_url=state["aws_endpoint"], region_name=state["region"],
                       aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
    if AGENT not in eks.list_access_entries(clusterName="demo")["accessEntries"]:
        return None
    entry = eks.describe_access_entry(clusterName="demo", principalArn=AGENT)["accessEntry"]
    listed = eks.list_associated_access_policies(clusterName="demo", principalArn=AGENT)["associatedAccessPolicies"]
    policies = {
        p["policyArn"]: PolicyScope.cluster()
        if p["accessScope"]["type"] == "cluster"
        else PolicyScope.of(p["accessScope"].get("namespaces", []))
        for p in listed
    }
    return Access(frozenset(entry.get("kubernetesGroups", [])), policies)


def justified_access(state: dict[str, Any], active: list[dict[str, Any]]) -> Any:
    from eks_jit.server.config import load_catalog
    from eks_jit.server.domain.access import access_of, union_of

    scopes = load_catalog(state["config"]).scopes
    return union_of(access_of(g["scope"], scopes[g["scope"]], g["namespaces"]) for g in active)


def run(agents: int = 8, rounds: int = 6, hold: float = 0.1) -> dict[str, Any]:
    from eks_jit.client import ApiError, Client

    with tempfile.TemporaryDirectory(prefix="eks-jit-load-") as tmp:
        plane, state = start_local(Path(tmp))
        try:
            who = next(i for i in state["identities"] if i["name"] == "agent-oncall")
            credentials = Credentials(who["access_key_id"], who["secret_access_key"])
            requests: list[float] = []
            revokes: list[float] = []
            statuses: list[str] = []
            errors: list[str] = []
            kept: list[str] = []
            lock = threading.Lock()
            barrier = threading.Barrier(agents + 1)

            def agent(number: int) -> None:
                client = Client(state["api_endpoint"], region=state["region"], credentials=credentials)
                barrier.wait()
                for round_ in range(rounds):
                    scope = ("rollout-restart", "view")[(number + round_) % 2]
                    sent = time.perf_counter()
                    try:
                        grant = client.request_grant("demo", "payments", scope, "10m", f"load {number}/{round_}")
                    except ApiError as exc:
                        with lock:
                            errors.append(f"request: {exc.code}")
                        continue
                    took = time.perf_counter() - sent
                    with lock:
                        requests.append(took)
                        statuses.append(grant["status"])
                    time.sleep(hold)  # "using" the access
                    if round_ == rounds - 1 and number % 2 == 0:
                        with lock:
                            kept.append(grant["id"])
                        continue
                    sent = time.perf_counter()
                    try:
                        client.revoke(grant["id"], "done")
                    except ApiError as exc:
                        with lock:
                            errors.append(f"revoke: {exc.code}")
                        continue
                    with lock:
                        revokes.append(time.perf_counter() - sent)

            threads = [threading.Thread(target=agent, args=(n,)) for n in range(agents)]
            for thread in threads:
                thread.start()
            barrier.wait()
            began = time.perf_counter()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - began

            checker = Client(state["api_endpoint"], region=state["region"], credentials=credentials)
            active = checker.grants(status="active")
            justified = justified_access(state, active)
            observed = observed_access(state)
            matches = (observed is None and justified.is_empty) or (
                observed is not None
                and observed.groups == justified.groups
                and dict(observed.policies) == dict(justified.policies)
            )
        finally:
            plane.terminate()
            plane.wait(timeout=30)
    return {
        "agents": agents,
        "rounds": rounds,
        "wall": wall,
        "requests": requests,
        "revokes": revokes,
        "statuses": statuses,
        "errors": errors,
        "kept": sorted(kept),
        "active": sorted(g["id"] for g in active),
        "justified": justified.describe(),
        "observed": observed.describe() if observed is not None else None,
        "matches": matches,
    }


def measure(agents: int = 8, rounds: int = 6) -> list[dict[str, object]]:
    result = run(agents, rounds)
    lat, wall = result["requests"], result["wall"]
    calls = len(lat) + len(result["revokes"])
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    active = result["statuses"].count("active")
    exact = result["matches"] and result["active"] == result["kept"]
    correct = exact and active == agents * rounds and not result["errors"]
    return [
        {
            "figure": f"load: POST /v1/grants latency ({agents} agents, one principal)",
            "value": f"p50 {p50:.3f}s, p99 {p99:.3f}s, mean {statistics.fmean(lat):.3f}s",
            "target": f"p99 <= {TARGET_P99}s",
            "pass": p99 <= TARGET_P99,
        },
        {
            "figure": "load: throughput (request + use + revoke)",
            "value": f"{len(lat) / wall:.1f} grants/s, {calls / wall:.1f} API calls/s ({calls} in {wall:.1f}s)",
            "target": "report",
            "pass": True,
        },
        {
            "figure": "load: answered active; entry = remaining grants",
            "value": (
                f"{active}/{agents * rounds} active, {len(result['errors'])} errors, "
                f"{len(result['active'])} left active, entry {'matches' if result['matches'] else 'DIFFERS'}"
            ),
            "target": "all, exact",
            "pass": correct,
        },
    ]


if __name__ == "__main__":
    outcome = run(int(sys.argv[1]) if len(sys.argv) > 1 else 8, int(sys.argv[2]) if len(sys.argv) > 2 else 6)
    summary = {k: v for k, v in outcome.items() if k not in ("requests", "revokes", "statuses")}
    summary["p50"], summary["p99"] = percentile(outcome["requests"], 50), percentile(outcome["requests"], 99)
    summary["statuses"] = {s: outcome["statuses"].count(s) for s in set(outcome["statuses"])}
    print(json.dumps(summary, indent=2, default=str))
