"""The burst and the storm on a model of the deployment: every request and revoke in its own
thread, as each runs in its own Lambda environment, over the in-memory ports (held to the same
contract tests as the AWS adapters: tests/memory/test_contract.py) with a modelled latency per
AWS call.

Why a model: local mode (bench/load.py) runs the HTTP gateway, SigV4 checks, every handler and
moto in ONE Python process on a 2-core machine, so its latency under 50 concurrent agents is the
queue for that interpreter (about 0.45 s of CPU per lifecycle, docs/performance.md), not the
control plane's design. On AWS each invocation has its own CPU and the time goes to AWS calls and
to waiting for the principal's reconcile lease. This bench keeps what matters of that: the real
request, activation, reconcile (lease, coalescing) and revoke logic, real threads and real
waits, and the number and kind of AWS calls, each one atomic (one lock per service, as DynamoDB
applies one write at a time per item and EKS one change per entry) and each taking
``LATENCY[service]`` seconds of sleep, released from the interpreter like a network wait.

The latencies are assumptions, not measurements (no AWS account here; docs/decisions.md): DynamoDB
single-digit milliseconds as AWS documents it, EKS access-entry calls 200 ms (a control-plane API;
EKS publishes no figure), Scheduler and SNS 30 ms. Not modelled: API Gateway and Lambda's own
overhead per invocation, cold starts (bench/cold_start.py), throttling (the lifecycle machine
injects it), the API layer's parsing and validation (a few milliseconds, done in parallel on AWS).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import percentile, storm_config  # noqa: E402

LATENCY = {"dynamodb": 0.008, "eks": 0.2, "scheduler": 0.03, "sns": 0.03}  # seconds per call (assumed)
BURST_P99 = 1.0  # seconds: 8 agents on one principal (issue 16)
STORM_P99 = 1.5  # seconds: 50 agents over 10 principals
STORM_THROUGHPUT = 20.0  # grants/s, request + revoke
_ITERATORS = frozenset({"by_status", "created_between", "managed_principals"})


class Modelled:
    """Every public method of ``target`` as one AWS call of ``service``: a sleep of the service's
    latency (the network), then the call under the service's lock (the service applies it
    atomically); reading an entry with its policies is two calls, as in the EKS adapter.
    ``wrap`` names methods that return another port object (wrapped the same way, no call of
    their own)."""

    def __init__(self, target: Any, service: str, lock: threading.Lock, wrap: tuple[str, ...] = ()) -> None:
        self._target, self._service, self._lock, self._wrap = target, service, lock, wrap
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)
        if name.startswith("_") or not callable(method):
            return method
        if name in self._wrap:
            return lambda *a, **kw: Modelled(method(*a, **kw), self._service, self._lock)

        def call(*args: Any, **kwargs: Any) -> Any:
            time.sleep(LATENCY[self._service])
            with self._lock:
                result = method(*args, **kwargs)
                if isinstance(result, Iterator) or name in _ITERATORS:
                    result = iter(list(result))
            if name == "read" and result is not None and result.managed and kwargs.get("with_policies", True):
                time.sleep(LATENCY[self._service])  # DescribeAccessEntry, then ListAssociatedAccessPolicies
            return result

        return call


def run(agents: int = 8, rounds: int = 6, hold: float = 0.1, principals: int = 1) -> dict[str, Any]:
    """As bench/load.py's ``run``: ``agents`` threads, agent n on principal n % ``principals``,
    released at once; each requests an auto-approved grant (rollout-restart or view on payments,
    alternating), holds it ``hold`` s and revokes it; even-numbered agents keep their last."""
    from eks_jit.local.resources import registered_principals
    from eks_jit.server.config import load_config
    from eks_jit.server.domain.access import Access, access_of, union_of
    from eks_jit.server.domain.catalog import MANAGED_TAG
    from eks_jit.server.domain.errors import DomainError
    from eks_jit.server.logic.deciding import AccessRequest
    from eks_jit.server.logic.ports import Deps, SystemClock
    from eks_jit.server.logic.queries import revoke_grant
    from eks_jit.server.logic.requesting import request_grant
    from tests.memory.eks import MemoryAccessEntries
    from tests.memory.services import MemoryScheduler, RecordingNotifier
    from tests.memory.store import MemoryGrantStore

    with tempfile.TemporaryDirectory(prefix="eks-jit-model-") as tmp:
        storm_config(Path(tmp), principals)
        catalog, policies = load_config(Path(tmp) / "eks-jit.yaml")
    names = ["agent-oncall"] if principals == 1 else [f"agent-storm-{n:02d}" for n in range(principals)]
    arns = {p.name: p.arn for p in catalog.principals}
    store, eks = MemoryGrantStore(gsi_lag=False), MemoryAccessEntries(catalog.clusters, registered_principals(catalog))
    locks = {service: threading.Lock() for service in LATENCY}
    deps = Deps(
        catalog=catalog,
        policies=policies,
        store=Modelled(store, "dynamodb", locks["dynamodb"]),
        eks=Modelled(eks, "eks", locks["eks"], wrap=("cluster",)),
        scheduler=Modelled(MemoryScheduler(), "scheduler", locks["scheduler"]),
        clock=SystemClock(),
        notifier=Modelled(RecordingNotifier(), "sns", locks["sns"]),
    )
    requests: list[float] = []
    statuses: list[str] = []
    errors: list[str] = []
    kept: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(agents + 1)

    def agent(number: int) -> None:
        arn = arns[names[number % len(names)]]
        barrier.wait()
        for round_ in range(rounds):
            scope = ("rollout-restart", "view")[(number + round_) % 2]
            ask = AccessRequest(arn, "demo", "payments", scope, timedelta(minutes=10), f"load {number}/{round_}")
            sent = time.perf_counter()
            try:
                grant = request_grant(deps, ask)
            except DomainError as exc:
                with lock:
                    errors.append(f"request: {exc.code}")
                continue
            with lock:
                requests.append(time.perf_counter() - sent)
                statuses.append(grant.status.value)
            time.sleep(hold)
            if round_ == rounds - 1 and number % 2 == 0:
                with lock:
                    kept.append(grant.id)
                continue
            try:
                revoke_grant(deps, arn, grant.id, "done")
            except DomainError as exc:
                with lock:
                    errors.append(f"revoke: {exc.code}")

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(agents)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began

    active_ids: list[str] = []
    differ: list[str] = []
    scopes = catalog.scopes
    for name in names:
        active = [g for g in store.active_for(arns[name], "demo") if g.justifies_access()]
        active_ids += [g.id for g in active]
        justified = union_of(access_of(g.scope, scopes[g.scope], g.namespaces) for g in active)
        entry = eks.clusters["demo"].entries.get(arns[name])
        observed = (
            Access(frozenset(entry.groups), dict(entry.policies))
            if entry is not None and entry.tags.get(MANAGED_TAG) == "true"
            else None
        )
        same = (observed is None and justified.is_empty) or (
            observed is not None
            and observed.groups == justified.groups
            and dict(observed.policies) == dict(justified.policies)
        )
        if not same:
            differ.append(name)
    return {
        "agents": agents,
        "principals": len(names),
        "rounds": rounds,
        "wall": wall,
        "requests": requests,
        "statuses": statuses,
        "errors": errors,
        "kept": sorted(kept),
        "active": sorted(active_ids),
        "matches": not differ,
    }


def rows(result: dict[str, Any], p99_target: float, throughput_target: float | None) -> list[dict[str, object]]:
    lat, wall = result["requests"], result["wall"]
    agents, principals, rounds = result["agents"], result["principals"], result["rounds"]
    label = f"model, {agents} agents, {principals} principal{'s' if principals > 1 else ''}"
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    active = result["statuses"].count("active")
    exact = result["matches"] and result["active"] == result["kept"]
    correct = exact and active == agents * rounds and not result["errors"]
    rate = len(lat) / wall
    return [
        {
            "figure": f"load: request latency ({label})",
            "value": f"p50 {p50:.3f}s, p99 {p99:.3f}s, mean {statistics.fmean(lat):.3f}s",
            "target": f"p99 <= {p99_target}s",
            "pass": p99 <= p99_target,
        },
        {
            "figure": f"load: throughput, request + use + revoke ({label})",
            "value": f"{rate:.1f} grants/s ({len(lat)} in {wall:.1f}s)",
            "target": f">= {throughput_target:g}/s" if throughput_target else "report",
            "pass": throughput_target is None or rate >= throughput_target,
        },
        {
            "figure": f"load: answered active; entries = remaining grants ({label})",
            "value": (
                f"{active}/{agents * rounds} active, {len(result['errors'])} errors, "
                f"{len(result['active'])} left active, entries {'match' if result['matches'] else 'DIFFER'}"
            ),
            "target": "all, exact",
            "pass": correct,
        },
    ]


def measure() -> list[dict[str, object]]:
    latency = ", ".join(f"{s} {v * 1000:g} ms" for s, v in LATENCY.items())
    burst = rows(run(agents=8, rounds=6), BURST_P99, None)
    storm = rows(run(agents=50, rounds=2, principals=10), STORM_P99, STORM_THROUGHPUT)
    note = {"figure": "model: assumed latency per AWS call", "value": latency, "target": "report", "pass": True}
    return [note, *burst, *storm]


if __name__ == "__main__":
    for row in measure():
        print(f"{row['figure']:<80} {row['value']:<60} {row['target']:<12} {'pass' if row['pass'] else 'MISS'}")
