"""The lifecycle machine's world in memory: the interface of ``tests/property/world.World``
(``reset``, ``snapshot``, ``schedules``, ``schedule_time``, ``delete_schedule``, ``base``,
``faults``, ``ids``) over the in-memory ports, each wrapped for fault injection at the port
boundary (``tests/memory/faults.py``). No moto, no boto3 call: an example costs what the logic
costs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID

from eks_jit.emulation.eks_access_entries import CLUSTER_ADMIN_POLICY
from eks_jit.emulation.eks_access_entries import access_policy_arn as emulated_policy_arn
from eks_jit.local.resources import registered_principals
from eks_jit.server.config import load_config
from eks_jit.server.domain.access import Access
from eks_jit.server.domain.catalog import MANAGED_TAG
from eks_jit.server.logic.ports import Deps, Timing
from tests.memory.eks import MemoryAccessEntries
from tests.memory.faults import PortFaults, faulty
from tests.memory.services import MemoryConnections, MemoryScheduler, MemorySecrets, QuietAuditLog, RecordingNotifier
from tests.memory.store import MemoryGrantStore
from tests.property.world import Ids, Snapshot, snapshot_of
from tests.support import EXAMPLE_CONFIG, FakeClock

# moto's default caller, the creator of the clusters in the moto world (an entry eks-jit never touches)
CREATOR = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:user/moto"
LINK_KEY = "eks-jit/link-key"


@dataclass
class MemoryPorts:
    """The raw in-memory ports (no faults): what the world and the contract tests look at."""

    store: MemoryGrantStore
    eks: MemoryAccessEntries
    scheduler: MemoryScheduler
    notifier: RecordingNotifier


class MemoryWorld:
    def __init__(self, *, gsi_lag: bool = True) -> None:
        self.catalog, policies = load_config(EXAMPLE_CONFIG)
        self.ports = MemoryPorts(
            MemoryGrantStore(gsi_lag=gsi_lag),
            MemoryAccessEntries(self.catalog.clusters, registered_principals(self.catalog)),
            MemoryScheduler(),
            RecordingNotifier(),
        )
        self.faults = PortFaults(on_operation=self.ports.store.settle)
        self.ids = Ids()
        f = self.faults
        self.base = Deps(
            catalog=self.catalog,
            policies=policies,
            store=faulty(self.ports.store, "dynamodb", f),
            eks=faulty(self.ports.eks, "eks", f, wrap={"cluster": "eks"}),
            scheduler=faulty(self.ports.scheduler, "scheduler", f),
            clock=FakeClock(),
            timing=Timing(),
            notifier=faulty(self.ports.notifier, "sns", f),
            secrets=faulty(MemorySecrets({LINK_KEY: {"key": "memory-world-link-key"}}), "secretsmanager", f),
            link_key_secret=LINK_KEY,
            public_url="https://eks-jit.example.com/prod",
            audit_log=faulty(QuietAuditLog(), "logs", f),
            connections=MemoryConnections(),
        )
        self._decoded: dict[tuple[str, str], Any] = {}
        self.reset()

    def reset(self) -> None:
        self.ports.store.reset()
        self.ports.scheduler.schedules.clear()
        self.ports.notifier.asks.clear()
        self.ports.notifier.outcomes.clear()
        self._decoded.clear()
        for name, cluster in self.ports.eks.clusters.items():
            cluster.entries.clear()
            partition = self.catalog.clusters[name].partition
            cluster.seed_unmanaged(CREATOR, emulated_policy_arn(partition, CLUSTER_ADMIN_POLICY))

    def schedules(self) -> list[str]:
        return sorted(self.ports.scheduler.schedules)

    def schedule_time(self, name: str) -> datetime | None:
        return self.ports.scheduler.schedules.get(name)

    def delete_schedule(self, name: str) -> None:
        self.ports.scheduler.schedules.pop(name, None)

    def table_items(self) -> list[dict[str, Any]]:
        return list(self.ports.store.items.values())

    def snapshot(self, *, with_entries: bool = True, skip: frozenset[str] = frozenset()) -> Snapshot:
        snap = snapshot_of(self.table_items(), self._decoded)
        if with_entries:
            for cluster, state in self.ports.eks.clusters.items():
                for principal, entry in state.entries.items():
                    if principal in skip:
                        continue
                    if entry.tags.get(MANAGED_TAG) == "true":
                        snap.entries[(principal, cluster)] = Access(entry.groups, dict(entry.policies))
                    else:
                        snap.unmanaged[(principal, cluster)] = (
                            sorted(entry.groups),
                            "STANDARD",
                            sorted((arn, s.type, tuple(sorted(s.namespaces))) for arn, s in entry.policies.items()),
                        )
        return snap
