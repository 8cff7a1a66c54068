"""Load in local mode: N agents (threads) on P principals each request an auto-approved grant
(answered ``active`` in the same call), use it (a short sleep) and revoke it, round after round;
half of them keep their last grant. Reports POST /v1/grants throughput and p50/p99 latency, and
checks afterwards that every principal's access entry on the emulated cluster equals the union
of its grants still active (eks_jit.server.domain.access), and that every request came back active.

- The burst: 8 agents on ONE principal (agent-oncall), the hard case: its access entry is one
  object that every request and revoke rewrites, serialised by the reconcile lease, so this
  measures the lease as much as the API.
- The storm: 50 agents over 10 principals at once (an incident wakes every agent): local mode
  runs with the demo configuration plus 10 registered agents (``storm_config``).
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
LOCAL = ROOT / "config" / "local"
# Issue 16's latency and throughput targets are held by bench/lambda_model.py (each request in
# its own thread, as in its own Lambda environment, AWS calls with a modelled latency). Here, in
# local mode, the gateway, SigV4, every handler and moto share one interpreter: the same figures
# are reported (they measure that interpreter's queue), and correctness stays a target.


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def storm_config(folder: Path, principals: int) -> list[str]:
    """The demo configuration and identities plus ``principals`` agents in the on-call group
    (auto-approved for rollout-restart and view in payments), written to ``folder``; their names."""
    import yaml

    config = yaml.safe_load((LOCAL / "eks-jit.yaml").read_text())
    identities = yaml.safe_load((LOCAL / "identities.yaml").read_text())
    names = [f"agent-storm-{n:02d}" for n in range(principals)]
    for n, name in enumerate(names):
        arn = f"arn:aws:iam::123456789012:role/agents/storm-agent-{n:02d}"
        config["principals"].append({"name": name, "arn": arn, "kind": "agent", "groups": ["oncall-agents"]})
        identities["identities"].append({"name": name, "access_key_id": f"AKIALOCALSTORM{n:06d}", "principal_arn": arn})
    (folder / "eks-jit.yaml").write_text(yaml.safe_dump(config))
    (folder / "identities.yaml").write_text(yaml.safe_dump(identities))
    (folder / config["policies"]).write_text((LOCAL / config["policies"]).read_text())
    return names


def start_local(state_dir: Path, config: Path | None = None) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    chosen = (
        ["--config", str(config / "eks-jit.yaml"), "--identities", str(config / "identities.yaml")] if config else []
    )
    plane = subprocess.Popen(
        [str(BIN), "local", "up", "--port", "0", "--state-dir", str(state_dir), *chosen],
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


def observed_access(state: dict[str, Any], principal: str = AGENT) -> Any:
    """The principal's managed entry on the demo cluster, as an Access (None when there is none)."""
    from eks_jit.server.domain.access import Access, PolicyScope

    eks = boto3.client("eks", endpoint_url=state["aws_endpoint"], region_name=state["region"],
                       aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
    if principal not in eks.list_access_entries(clusterName="demo")["accessEntries"]:
        return None
    entry = eks.describe_access_entry(clusterName="demo", principalArn=principal)["accessEntry"]
    listed = eks.list_associated_access_policies(clusterName="demo", principalArn=principal)
    listed = listed["associatedAccessPolicies"]
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


def run(agents: int = 8, rounds: int = 6, hold: float = 0.1, principals: int = 1) -> dict[str, Any]:
    """``agents`` threads, agent n signing as principal n % ``principals`` (agent-oncall alone when
    ``principals`` is 1), all released at once by a barrier."""
    from eks_jit.client import ApiError, Client

    with tempfile.TemporaryDirectory(prefix="eks-jit-load-") as tmp:
        config = None
        names = ["agent-oncall"]
        if principals > 1:
            config = Path(tmp) / "config"
            config.mkdir()
            names = storm_config(config, principals)
        plane, state = start_local(Path(tmp) / "state", config)
        try:
            who = {i["name"]: i for i in state["identities"]}
            credentials = {n: Credentials(who[n]["access_key_id"], who[n]["secret_access_key"]) for n in names}
            requests: list[float] = []
            revokes: list[float] = []
            statuses: list[str] = []
            errors: list[str] = []
            kept: list[str] = []
            lock = threading.Lock()
            barrier = threading.Barrier(agents + 1)

            def agent(number: int) -> None:
                name = names[number % len(names)]
                client = Client(state["api_endpoint"], region=state["region"], credentials=credentials[name])
                barrier.wait()
                for round_ in range(rounds):
                    scope = ("rollout-restart", "view")[(number + round_) % 2]
                    sent = time.perf_counter()
                    try:
                        grant = client.request_grant("demo", "payments", scope, "10m", f"load {number}/{round_}")
                    except ApiError as exc:
                        with lock:
                            errors.append(f"request: {exc.status} {exc.code}")
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
                            errors.append(f"revoke: {exc.status} {exc.code}")
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

            active: list[dict[str, Any]] = []
            differ = []
            for name in names:
                checker = Client(state["api_endpoint"], region=state["region"], credentials=credentials[name])
                mine = checker.grants(status="active")
                active += mine
                justified = justified_access(state, mine)
                observed = observed_access(state, who[name]["principal_arn"])
                same = (observed is None and justified.is_empty) or (
                    observed is not None
                    and observed.groups == justified.groups
                    and dict(observed.policies) == dict(justified.policies)
                )
                if not same:
                    differ.append(name)
        finally:
            plane.terminate()
            try:
                plane.wait(timeout=30)
            except subprocess.TimeoutExpired:  # stuck under the storm: it must not outlive the bench
                plane.kill()
                plane.wait(timeout=30)
    return {
        "agents": agents,
        "principals": len(names),
        "rounds": rounds,
        "wall": wall,
        "requests": requests,
        "revokes": revokes,
        "statuses": statuses,
        "errors": errors,
        "kept": sorted(kept),
        "active": sorted(g["id"] for g in active),
        "differ": differ,
        "matches": not differ,
    }


def _rows(result: dict[str, Any]) -> list[dict[str, object]]:
    lat, wall = result["requests"], result["wall"]
    agents, principals, rounds = result["agents"], result["principals"], result["rounds"]
    label = f"local mode, {agents} agents, {principals} principal{'s' if principals > 1 else ''}"
    calls = len(lat) + len(result["revokes"])
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    active = result["statuses"].count("active")
    exact = result["matches"] and result["active"] == result["kept"]
    correct = exact and active == agents * rounds and not result["errors"]
    rate = len(lat) / wall
    return [
        {
            "figure": f"load: POST /v1/grants latency ({label})",
            "value": f"p50 {p50:.3f}s, p99 {p99:.3f}s, mean {statistics.fmean(lat):.3f}s",
            "target": "report",
            "pass": True,
        },
        {
            "figure": f"load: throughput, request + use + revoke ({label})",
            "value": f"{rate:.1f} grants/s, {calls / wall:.1f} API calls/s ({calls} in {wall:.1f}s)",
            "target": "report",
            "pass": True,
        },
        {
            "figure": f"load: answered active; entries = remaining grants ({label})",
            "value": (
                f"{active}/{agents * rounds} active, {len(result['errors'])} errors"
                f"{' (' + ', '.join(sorted(set(result['errors']))) + ')' if result['errors'] else ''}, "
                f"{len(result['active'])} left active, entries {'match' if result['matches'] else 'DIFFER'}"
            ),
            "target": "all, exact",
            "pass": correct,
        },
    ]


def measure() -> list[dict[str, object]]:
    burst = _rows(run(agents=8, rounds=6))
    storm = _rows(run(agents=50, rounds=2, principals=10))
    return [*burst, *storm]


if __name__ == "__main__":
    outcome = run(
        int(sys.argv[1]) if len(sys.argv) > 1 else 8,
        int(sys.argv[2]) if len(sys.argv) > 2 else 6,
        principals=int(sys.argv[3]) if len(sys.argv) > 3 else 1,
    )
    summary = {k: v for k, v in outcome.items() if k not in ("requests", "revokes", "statuses")}
    summary["p50"], summary["p99"] = percentile(outcome["requests"], 50), percentile(outcome["requests"], 99)
    summary["statuses"] = {s: outcome["statuses"].count(s) for s in set(outcome["statuses"])}
    print(json.dumps(summary, indent=2, default=str))
