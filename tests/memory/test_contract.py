"""One contract, two implementations: every test here runs against the moto-backed adapters
(``DynamoGrantStore``, ``EksAccessEntries``, ``EventBridgeRevocationScheduler`` as
``lambdas/bootstrap.py`` wires them) and against the in-memory ports of ``tests/memory``, through
the ports of ``lambdas/logic/ports.py`` only. If the in-memory world starts to behave otherwise
than the adapters, a test here fails for one of the two parameters.

GSI reads are eventually consistent in DynamoDB (moto answers them at once; the in-memory store
lags until it settles): the tests ``settle()`` before reading a GSI, and assert only what holds
after propagation. ``test_gsi_reads_lag_until_settled`` pins the lag itself (memory only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from eks_jit.server.adapters.scheduler import schedule_name
from eks_jit.server.domain.access import PolicyScope
from eks_jit.server.domain.errors import (
    AccessApplyError,
    Conflict,
    GrantNotFound,
    PrincipalRefused,
    UnmanagedAccessEntry,
)
from eks_jit.server.domain.grant import Decision, Grant, GrantEvent, GrantStatus
from eks_jit.server.logic.ports import AccessEntries, GrantStore, RevocationScheduler
from tests.conftest import MOTO_CONFIG, quiesce
from tests.memory.world import MemoryWorld
from tests.property.world import World
from tests.support import ACCOUNT, ALICE, BOB, ONCALL, REGION, FakeClock

S = GrantStatus
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
EDIT = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"


@dataclass
class Ports:
    store: GrantStore
    eks: AccessEntries
    scheduler: RevocationScheduler
    clock: FakeClock
    settle: Callable[[], None]  # let GSI propagation catch up
    schedules: Callable[[], dict[str, datetime | None]]  # name -> when it fires
    add_unmanaged: Callable[[str, str], None]  # (cluster, principal): an entry made outside eks-jit


@pytest.fixture(scope="module")
def moto_world() -> Iterator[World]:
    """One moto for the module, emptied before each test (``World.reset``: ~40 ms, against ~2 s
    for a new mock_aws with every resource)."""
    with mock_aws(config=MOTO_CONFIG):
        built = World()
        try:
            yield built
        finally:
            quiesce(built.resources)


@pytest.fixture(params=["moto", "memory"])
def ports(request: pytest.FixtureRequest) -> Iterator[Ports]:
    clock = FakeClock()
    if request.param == "moto":
        world: World = request.getfixturevalue("moto_world")
        world.reset()
        deps, eks = world.base, boto3.client("eks", region_name=REGION)
        unmanaged: list[tuple[str, str]] = []

        def add_unmanaged(cluster: str, principal: str) -> None:
            eks.create_access_entry(clusterName=cluster, principalArn=principal)
            unmanaged.append((cluster, principal))

        yield Ports(
            deps.store,
            deps.eks,
            deps.scheduler,
            clock,
            lambda: None,
            lambda: {name: world.schedule_time(name) for name in world.schedules()},
            add_unmanaged,
        )
        for cluster, principal in unmanaged:  # reset() leaves entries it did not make
            eks.delete_access_entry(clusterName=cluster, principalArn=principal)
    else:
        memory = MemoryWorld(gsi_lag=True)
        raw = memory.ports
        yield Ports(
            raw.store,
            raw.eks,
            raw.scheduler,
            clock,
            raw.store.settle,
            lambda: dict(raw.scheduler.schedules),
            lambda cluster, principal: raw.eks.clusters[cluster].seed_unmanaged(principal, None),
        )


# -- helpers ------------------------------------------------------------------------------------------


def grant(gid: str, at: datetime, *, requester: str = ONCALL, status: GrantStatus = S.PENDING_APPROVAL) -> Grant:
    return Grant(
        id=gid,
        requester=requester,
        cluster="prod-eks",
        namespaces=("payments",),
        scope="view",
        reason="contract test",
        duration=timedelta(minutes=10),
        status=status,
        version=1,
        created_at=at,
        decision=Decision(outcome="auto_approve"),
    )


def event(g: Grant, type_: str, detail: dict[str, Any] | None = None) -> GrantEvent:
    return GrantEvent(grant_id=g.id, version=g.version, type=type_, at=g.created_at, actor="test", detail=detail or {})


def created(store: GrantStore, gid: str, at: datetime, **kw: Any) -> Grant:
    g = grant(gid, at, **kw)
    store.create(g, [event(g, "requested")])
    return g


def move(store: GrantStore, g: Grant, to: GrantStatus, **changes: Any) -> Grant:
    after = g.model_copy(update={"status": to, "version": g.version + 1, **changes})
    store.save(g.version, after, event(after, "moved", {"from": g.status.value, "to": to.value}))
    return after


def activate(store: GrantStore, g: Grant, expires: datetime) -> Grant:
    approved = move(store, g, S.APPROVED, approved_at=g.created_at)
    return move(store, approved, S.ACTIVE, activated_at=g.created_at, expires_at=expires)


def ids(grants: Iterator[Grant] | list[Grant]) -> list[str]:
    return [g.id for g in grants]


# -- the grant store -------------------------------------------------------------------------------


def test_create_of_an_existing_id_is_a_conflict_and_writes_nothing(ports: Ports) -> None:
    now = ports.clock.now()
    first = created(ports.store, "g1", now)
    again = grant("g1", now + timedelta(seconds=5), requester=ALICE)
    with pytest.raises(Conflict):
        ports.store.create(again, [event(again, "requested", {"second": True})])
    assert ports.store.get("g1") == first
    assert [e.detail for e in ports.store.events("g1")] == [{}]


def test_get_of_a_missing_grant_is_not_found(ports: Ports) -> None:
    with pytest.raises(GrantNotFound):
        ports.store.get("nope")
    assert ports.store.events("nope") == []


def test_save_with_a_stale_version_is_a_conflict_and_writes_nothing(ports: Ports) -> None:
    g = created(ports.store, "g1", ports.clock.now())
    approved = move(ports.store, g, S.APPROVED)
    stale = g.model_copy(update={"status": S.DENIED, "version": 2})
    with pytest.raises(Conflict):
        ports.store.save(1, stale, event(stale, "denied", {"from": "pending_approval", "to": "denied"}))
    assert ports.store.get("g1") == approved
    assert [(e.version, e.type) for e in ports.store.events("g1")] == [(1, "requested"), (2, "moved")]


def test_an_event_is_never_rewritten(ports: Ports) -> None:
    """The grant's version condition holds, but its event's version exists: the transaction fails whole."""
    g = created(ports.store, "g1", ports.clock.now())
    same = g.model_copy(update={"reason": "rewritten"})  # version 1 again: event 1 exists
    with pytest.raises(Conflict):
        ports.store.save(1, same, event(same, "requested", {"rewritten": True}))
    assert ports.store.get("g1") == g
    assert ports.store.events("g1")[0].detail == {}


def test_the_active_index_follows_the_status(ports: Ports) -> None:
    now = ports.clock.now()
    g = activate(ports.store, created(ports.store, "g1", now), now + timedelta(minutes=10))
    h = activate(ports.store, created(ports.store, "g2", now), now + timedelta(minutes=5))
    assert ids(ports.store.active_for(ONCALL, "prod-eks")) == ["g1", "g2"]
    assert ports.store.active_for(ONCALL, "staging-eks") == []
    move(ports.store, g, S.REVOKED, ended_at=now)
    assert ids(ports.store.active_for(ONCALL, "prod-eks")) == ["g2"]
    move(ports.store, h, S.EXPIRED, ended_at=now)
    assert ports.store.active_for(ONCALL, "prod-eks") == []
    ports.settle()
    assert list(ports.store.managed_principals()) == [(ONCALL, "prod-eks")]  # remembered when empty


def test_the_access_generation_counts_every_change_of_the_active_set_and_only_those(ports: Ports) -> None:
    now = ports.clock.now()
    assert ports.store.access_generation(ONCALL, "prod-eks") == 0
    g = created(ports.store, "g1", now)
    assert ports.store.access_generation(ONCALL, "prod-eks") == 0  # requested: not active yet
    g = activate(ports.store, g, now + timedelta(minutes=10))
    h = activate(ports.store, created(ports.store, "g2", now), now + timedelta(minutes=5))
    assert ports.store.active_with_generation(ONCALL, "prod-eks")[1] == 2
    move(ports.store, g, S.REVOKED, ended_at=now)
    active, generation = ports.store.active_with_generation(ONCALL, "prod-eks")
    assert (ids(active), generation) == (["g2"], 3)
    assert ports.store.access_generation(ONCALL, "staging-eks") == 0
    assert h.status is S.ACTIVE


def test_a_released_lease_tells_the_next_attempts_what_was_applied(ports: Ports) -> None:
    now, ttl = ports.clock.now(), timedelta(seconds=30)
    key = f"prod-eks#{ONCALL}"
    first = ports.store.acquire_lease(key, "a", now, ttl)
    assert (first.acquired, first.applied) == (True, 0)
    waiting = ports.store.acquire_lease(key, "b", now, ttl)
    assert (waiting.acquired, waiting.applied) == (False, 0)
    ports.store.release_lease(key, "a", applied=7)
    taken = ports.store.acquire_lease(key, "b", now, ttl)  # a released lease is free again
    assert (taken.acquired, taken.applied) == (True, 7)
    # b holds it: a waiter still learns what a's release recorded (taking it did not erase it;
    # it once did, and every waiter a released reconcile had covered waited for the next one)
    assert ports.store.acquire_lease(key, "c", now, ttl).applied == 7
    ports.store.release_lease(key, "c", applied=99)  # not the owner: records nothing
    ports.store.release_lease(key, "b", applied=9)
    assert ports.store.acquire_lease(key, "c", now, ttl) == type(first)(True, 9)
    assert ports.store.acquire_lease(key, "d", now, ttl).applied == 9  # held by c, still 9
    later = now + ttl + timedelta(seconds=1)  # c died holding it: taken over once expired
    assert ports.store.acquire_lease(key, "d", later, ttl) == type(first)(True, 9)


def test_what_a_release_left_is_taken_with_the_lease_once(ports: Ports) -> None:
    from eks_jit.server.domain.access import Access, Left, PolicyScope

    now, ttl = ports.clock.now(), timedelta(seconds=30)
    key = f"prod-eks#{ONCALL}"
    left = Left(Access(frozenset({"eks-jit:rollout-restart:payments"}), {"arn:p": PolicyScope.of(["payments"])}))
    assert ports.store.acquire_lease(key, "a", now, ttl).left is None  # nothing recorded yet
    ports.store.release_lease(key, "a", applied=1, left=left)
    taken = ports.store.acquire_lease(key, "b", now, ttl)
    assert (taken.acquired, taken.applied, taken.left) == (True, 1, left)
    assert ports.store.acquire_lease(key, "c", now, ttl).left is None  # a waiter gets no record
    later = now + ttl + timedelta(seconds=1)  # b died holding it: whoever takes over reads EKS
    assert ports.store.acquire_lease(key, "c", later, ttl).left is None
    ports.store.release_lease(key, "c", applied=2)  # a failed reconcile: no record
    assert ports.store.acquire_lease(key, "d", later, ttl).left is None
    ports.store.release_lease(key, "d", applied=3, left=Left(None))  # it deleted the entry
    assert ports.store.acquire_lease(key, "e", later, ttl).left == Left(None)


def test_an_extension_is_never_in_the_active_index(ports: Ports) -> None:
    now = ports.clock.now()
    ext = grant("x1", now).model_copy(update={"extends": "g1"})
    ports.store.create(ext, [event(ext, "requested")])
    activate(ports.store, ext, now + timedelta(minutes=5))
    assert ports.store.active_for(ONCALL, "prod-eks") == []
    ports.settle()
    assert list(ports.store.managed_principals()) == []


def test_by_status_orders_and_bounds(ports: Ports) -> None:
    now = ports.clock.now()
    for n, minutes in enumerate([30, 10, 20]):
        g = created(ports.store, f"a{n}", now + timedelta(seconds=n))
        activate(ports.store, g, now + timedelta(minutes=minutes))
    for n in range(3):
        created(ports.store, f"p{n}", now + timedelta(seconds=10 - n))
    ports.settle()
    active = ports.store.by_status(S.ACTIVE)
    assert ids(active) == ["a1", "a2", "a0"]  # by expires_at
    assert ids(ports.store.by_status(S.ACTIVE, before=now + timedelta(minutes=20))) == ["a1", "a2"]  # inclusive
    assert ids(ports.store.by_status(S.ACTIVE, before=now + timedelta(minutes=20) - timedelta(microseconds=1))) == [
        "a1"
    ]
    assert ids(ports.store.by_status(S.ACTIVE, newest_first=True, limit=2)) == ["a0", "a2"]
    assert ids(ports.store.by_status(S.PENDING_APPROVAL)) == ["p2", "p1", "p0"]  # by created_at
    assert ids(ports.store.by_status(S.PENDING_APPROVAL, limit=1)) == ["p2"]
    assert ids(ports.store.by_status(S.APPROVED)) == []


def test_created_between_reads_a_half_open_range_after_a_cursor(ports: Ports) -> None:
    now = ports.clock.now()
    made = []
    for n in range(5):
        g = created(ports.store, f"e{n}", now + timedelta(minutes=n))
        made.append(move(ports.store, g, S.DENIED, ended_at=g.created_at))
    ports.settle()
    since, until = now + timedelta(minutes=1), now + timedelta(minutes=4)
    assert ids(ports.store.created_between(S.DENIED, since, until)) == ["e1", "e2", "e3"]  # [since, until)
    assert ids(ports.store.created_between(S.DENIED, since, until, limit=2)) == ["e1", "e2"]
    cursor = (made[2].created_at, "e2")
    assert ids(ports.store.created_between(S.DENIED, since, until, after=cursor)) == ["e3"]
    assert ids(ports.store.created_between(S.DENIED, since, until, after=cursor, limit=1)) == ["e3"]
    assert ids(ports.store.created_between(S.EXPIRED, since, until)) == []
    with pytest.raises(ValueError):
        list(ports.store.created_between(S.ACTIVE, since, until))


def test_by_requester_is_newest_first_filtered_and_limited(ports: Ports) -> None:
    now = ports.clock.now()
    for n in range(4):
        g = created(ports.store, f"r{n}", now + timedelta(seconds=n))
        if n % 2:
            move(ports.store, g, S.DENIED)
    created(ports.store, "other", now, requester=BOB)
    ports.settle()
    assert ids(ports.store.by_requester(ONCALL)) == ["r3", "r2", "r1", "r0"]
    assert ids(ports.store.by_requester(ONCALL, S.DENIED)) == ["r3", "r1"]
    assert ids(ports.store.by_requester(ONCALL, limit=1)) == ["r3"]
    assert ids(ports.store.by_requester(ALICE)) == []


def test_leases_expire_and_are_released_by_their_owner_only(ports: Ports) -> None:
    now, ttl = ports.clock.now(), timedelta(seconds=30)
    key = f"prod-eks#{ONCALL}"
    assert ports.store.acquire_lease(key, "a", now, ttl).acquired
    assert not ports.store.acquire_lease(key, "b", now + timedelta(seconds=29), ttl).acquired
    assert not ports.store.acquire_lease(key, "a", now, ttl).acquired  # not re-entrant
    ports.store.release_lease(key, "b")  # not the owner: nothing happens
    assert not ports.store.acquire_lease(key, "b", now + timedelta(seconds=1), ttl).acquired
    assert ports.store.acquire_lease(f"prod-eks#{ALICE}", "b", now, ttl).acquired  # another key
    assert ports.store.acquire_lease(key, "b", now + timedelta(seconds=31), ttl).acquired  # a's expired
    ports.store.release_lease(key, "a")  # expired and taken over: fine, b keeps it
    assert not ports.store.acquire_lease(key, "c", now + timedelta(seconds=32), ttl).acquired
    ports.store.release_lease(key, "b")
    assert ports.store.acquire_lease(key, "c", now + timedelta(seconds=32), ttl).acquired
    ports.store.release_lease("staging-eks#" + ONCALL, "nobody")  # none held: nothing happens


def test_side_records_only_if_absent(ports: Ports) -> None:
    assert ports.store.get_side("g1", "token") is None
    assert ports.store.put_side("g1", "token", {"token": "one"}, only_if_absent=True)
    assert not ports.store.put_side("g1", "token", {"token": "two"}, only_if_absent=True)
    assert ports.store.get_side("g1", "token") == {"token": "one"}
    assert ports.store.put_side("g1", "token", {"token": "three"})  # plain put replaces
    assert ports.store.get_side("g1", "token") == {"token": "three"}
    assert ports.store.get_side("g1", "chat") is None
    with pytest.raises(GrantNotFound):
        ports.store.get("g1")  # a side record is not a grant


def test_gsi_reads_lag_until_settled() -> None:
    """DynamoDB's GSIs are eventually consistent; the in-memory store models it (moto does not)."""
    world = MemoryWorld(gsi_lag=True)
    store, now = world.ports.store, FakeClock().now()
    store.settle()
    g = created(store, "g1", now)
    assert store.get("g1") == g  # strongly consistent
    assert ids(store.by_status(S.PENDING_APPROVAL)) == []
    store.settle()
    assert ids(store.by_status(S.PENDING_APPROVAL)) == ["g1"]


# -- access entries --------------------------------------------------------------------------------


def test_access_entry_create_read_and_the_rules_of_create(ports: Ports) -> None:
    entries = ports.eks.cluster("prod-eks", session="contract")
    assert entries.read(ONCALL) is None
    entries.create(ONCALL, frozenset({"eks-jit:view:payments"}))
    entry = entries.read(ONCALL)
    assert entry is not None and entry.managed and entry.username_is_default
    assert entry.access.groups == frozenset({"eks-jit:view:payments"}) and dict(entry.access.policies) == {}
    with pytest.raises(UnmanagedAccessEntry):
        entries.create(ONCALL, frozenset())  # one entry per principal
    with pytest.raises(PrincipalRefused):
        entries.create(f"arn:aws:iam::{ACCOUNT}:role/does-not-exist", frozenset())
    with pytest.raises(PrincipalRefused):
        entries.create(f"arn:aws:sts::{ACCOUNT}:assumed-role/oncall-agent/session", frozenset())
    with pytest.raises(PrincipalRefused):
        entries.create(ALICE, frozenset({"system:masters"}))
    assert entries.read(ALICE) is None
    assert ONCALL in entries.principals()
    assert ports.eks.cluster("staging-eks", session="contract").read(ONCALL) is None  # per cluster


def test_a_wrong_path_is_another_principal(ports: Ports) -> None:
    entries = ports.eks.cluster("prod-eks", session="contract")
    wrong = ONCALL.replace("role/agents/", "role/")
    with pytest.raises(PrincipalRefused):
        entries.create(wrong, frozenset())


def test_policies_associate_replace_and_disassociate(ports: Ports) -> None:
    entries = ports.eks.cluster("prod-eks", session="contract")
    with pytest.raises(AccessApplyError):
        entries.associate(BOB, VIEW, PolicyScope.of(["payments"]))  # no entry
    entries.create(BOB, frozenset())
    entries.associate(BOB, VIEW, PolicyScope.of(["payments"]))
    entries.associate(BOB, EDIT, PolicyScope.cluster())
    entries.associate(BOB, VIEW, PolicyScope.of(["orders", "payments"]))  # replaces the scope
    entry = entries.read(BOB)
    assert entry is not None
    assert dict(entry.access.policies) == {EDIT: PolicyScope.cluster(), VIEW: PolicyScope.of(["orders", "payments"])}
    without = entries.read(BOB, with_policies=False)
    assert without is not None and dict(without.access.policies) == {}
    with pytest.raises(AccessApplyError):
        entries.associate(BOB, "arn:aws:eks::aws:cluster-access-policy/NoSuchPolicy", PolicyScope.cluster())
    with pytest.raises(AccessApplyError):
        entries.associate(BOB, "arn:aws:eks::aws:cluster-access-policy/AmazonEKSComputePolicy", PolicyScope.cluster())
    entries.disassociate(BOB, EDIT)
    entries.disassociate(BOB, EDIT)  # not associated: nothing
    entries.disassociate(ALICE, VIEW)  # no entry: nothing
    entry = entries.read(BOB)
    assert entry is not None and dict(entry.access.policies) == {VIEW: PolicyScope.of(["orders", "payments"])}


def test_delete_drops_the_policies_and_is_idempotent(ports: Ports) -> None:
    entries = ports.eks.cluster("prod-eks", session="contract")
    entries.create(ALICE, frozenset({"eks-jit:view:orders"}))
    entries.associate(ALICE, VIEW, PolicyScope.cluster())
    entries.delete(ALICE)
    assert entries.read(ALICE) is None and ALICE not in entries.principals()
    entries.delete(ALICE)  # gone already: nothing
    entries.create(ALICE, frozenset())
    entry = entries.read(ALICE)
    assert entry is not None and dict(entry.access.policies) == {}


def test_an_entry_made_outside_eks_jit_reads_as_unmanaged_and_blocks_create(ports: Ports) -> None:
    entries = ports.eks.cluster("prod-eks", session="contract")
    (creator,) = entries.principals()  # the cluster creator's, with cluster admin
    entry = entries.read(creator)
    assert entry is not None and not entry.managed
    assert dict(entry.access.policies) == {}  # an unmanaged entry's policies are not read
    ports.add_unmanaged("prod-eks", ALICE)
    entry = entries.read(ALICE)
    assert entry is not None and not entry.managed and entry.access.groups == frozenset()
    with pytest.raises(UnmanagedAccessEntry):
        entries.create(ALICE, frozenset({"eks-jit:view:orders"}))
    assert sorted(entries.principals()) == sorted([creator, ALICE])


# -- the revocation scheduler ----------------------------------------------------------------------


def test_schedule_replaces_and_cancel_says_whether_there_was_one(ports: Ports) -> None:
    now = ports.clock.now().replace(microsecond=0)
    name = ports.scheduler.schedule("g1", now + timedelta(minutes=5, microseconds=700_000))
    assert name == schedule_name("g1")
    assert ports.schedules() == {name: now + timedelta(minutes=5)}  # whole seconds
    ports.scheduler.schedule("g1", now + timedelta(minutes=9))  # again: the new time
    ports.scheduler.schedule("g2", now + timedelta(minutes=1))
    assert ports.schedules() == {name: now + timedelta(minutes=9), schedule_name("g2"): now + timedelta(minutes=1)}
    assert ports.scheduler.cancel("g1")
    assert not ports.scheduler.cancel("g1")
    assert list(ports.schedules()) == [schedule_name("g2")]
