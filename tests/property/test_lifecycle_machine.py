"""Stateful property test: random interleavings of everything that can happen to grants, with
faults injected at AWS calls, against the real logic, adapters and moto.

Rules: requests (auto-approved, manual, denied, malformed; the on-call agent, another agent and
two humans of config/example), approvals and denials by allowed and disallowed approvers, the
approval workflow's steps (notify, activate, expire, fail), cancel, revoke, extend, the one-time
schedule firing on time, late, early, twice, after a failed delivery or never, sweeper runs
(on its rate as the clock advances, and extra ones), and clock advances. Each operation may
carry a fault plan (tests/property/faults.py): throttling, 5xx or a read timeout at its Nth AWS
call (before AWS acts, or after with the answer lost; once, or as an outage of that service),
or the function dying there and the model carrying on from the state it left.

Invariants, after every step:
- access: for every principal no fault touched since the last fault-free sweep (and for all of
  them right after one), each managed access entry equals the union
  (``eks_jit.server.domain.access``) of that principal's active grants, and every active grant's
  access is there; the cluster creator's entry is never touched;
- time: no grant is active past ``expires_at`` once a fault-free sweep ran at or after it, so
  with the sweeper on its rate nothing outlives its window by more than one period;
- record: every grant's events are versions 1..N with N its version; every status change is
  exactly one event whose from/to chain runs from ``pending_approval`` to the current status
  along the lifecycle table; events are never lost or rewritten; the access index lists
  exactly the active grants; a refused request writes nothing;
- bounds: no grant's window exceeds the policy maximum of the decisions that shaped it.
And after particular steps: an operation that answers normally although a fault struck has left
the access right (or its grant says ``cleanup_pending``); a schedule that fires in its minute
ends the grant at ``expires_at`` exactly; a fault-free sweep leaves no approved grant past the
activation grace and no request past its approval timeout; with no fault armed, nothing fails
but on a lease a faulted operation may still hold.

And at the end of every example that passed: a fault-free sweep once every lease has run out,
after which no grant may be leaked (access in place for a grant no longer active, or an active
grant without its access) and no event lost or rewritten; both are counted and printed.

``make test`` runs a bounded number of examples (derandomized); ``make soak`` runs many
(``EKS_JIT_SOAK_EXAMPLES``, ``EKS_JIT_SOAK_STEPS``) and prints what was survived. The same class
runs on the in-memory ports in ``tests/memory/test_lifecycle_in_memory.py`` (faults at the port
boundary), which is how ``make soak`` reaches 10,000 lifecycles.
"""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from moto import mock_aws

from eks_jit.server.adapters.scheduler import schedule_name
from eks_jit.server.domain import approvals as approval_rules
from eks_jit.server.domain.access import Access, access_of, union_of
from eks_jit.server.domain.errors import (
    Busy,
    DomainError,
    Forbidden,
    GrantNotFound,
    InvalidRequest,
    InvalidTransition,
    PolicyDenied,
)
from eks_jit.server.domain.grant import EVENT_OF_ACTION, TRANSITIONS, Grant, GrantStatus
from eks_jit.server.logic import approvals
from eks_jit.server.logic.lifecycle import on_schedule
from eks_jit.server.logic.ports import Timing
from eks_jit.server.logic.queries import revoke_grant
from eks_jit.server.logic.requesting import AccessRequest, request_extension, request_grant
from eks_jit.server.logic.sweeper import SweepReport, sweep
from eks_jit.server.observability import logger
from tests.conftest import MOTO_CONFIG, quiesce
from tests.property.faults import KINDS, FaultPlan, LambdaDied
from tests.property.world import Execution, FakeWorkflow, World
from tests.support import ACCOUNT, ADMIN, ALICE, BOB, ONCALL, OTHER_AGENT, FakeClock

SOAK_EXAMPLES = int(os.environ.get("EKS_JIT_SOAK_EXAMPLES", "0"))
SOAK_STEPS = int(os.environ.get("EKS_JIT_SOAK_STEPS", "60"))
PERIOD = timedelta(minutes=1)  # the sweeper's rate
TIMING = Timing(lease_attempts=2, lease_backoff=0.001)  # single-threaded: a held lease is a dead holder's
PRINCIPALS = (ONCALL, OTHER_AGENT, ALICE, BOB)
CALLERS = (*PRINCIPALS, ADMIN, f"arn:aws:iam::{ACCOUNT}:role/unregistered")
REFUSALS = (
    InvalidRequest,
    PolicyDenied,
    Forbidden,
    GrantNotFound,
    InvalidTransition,
    approval_rules.NotAllowedToDecide,
    approval_rules.AlreadyVoted,
)
RETRIED_BY_WORKFLOW = ("TransientAwsError", "Busy", "Conflict")  # statemachines/approval.asl.json
STATUS_EVENTS = frozenset(EVENT_OF_ACTION.values())
S = GrantStatus

# (requester, cluster, namespace, scope): what config/example's policies make of them
REQUESTS = (
    (ONCALL, "prod-eks", "payments", "rollout-restart"),  # auto, <= 15m
    (ONCALL, "prod-eks", "payments", "rollout-restart"),  # (the on-call story: more often)
    (ONCALL, "prod-eks", "payments", "view"),  # auto
    (ONCALL, "staging-eks", "payments", "rollout-restart"),  # auto
    (ONCALL, "prod-eks", "payments", "edit"),  # one payments approver, <= 1h
    (ONCALL, "prod-eks", "payments", "edit"),
    (ALICE, "staging-eks", None, "cluster-view"),  # auto, cluster-wide
    (BOB, "staging-eks", "orders", "view"),  # auto, <= 4h
    (ALICE, "prod-eks", "orders", "admin"),  # one payments approver (bob), <= 2h
    (BOB, "prod-eks", "payments", "edit"),  # one payments approver (alice)
    (ONCALL, "prod-eks", "orders", "view"),  # policy denies (recorded)
    (OTHER_AGENT, "prod-eks", "payments", "view"),  # policy denies
    (ONCALL, "staging-eks", None, "cluster-view"),  # forbidden: agents never cluster-wide
    (ONCALL, "nope-eks", "payments", "view"),  # bad input: unknown cluster
    (ONCALL, "prod-eks", "kube-system", "view"),  # bad input: unregistered namespace
)
DURATIONS = (120, 150, 300, 300, 600, 900, 900, 1800, 3600, 60, 50_000)  # seconds; 60 too short, 50 000 too long

STATS: Counter[str] = Counter()

PLANS = st.builds(
    FaultPlan, kind=st.sampled_from(KINDS), at=st.integers(0, 24), after=st.booleans(), sticky=st.booleans()
)
faults_st = st.integers(0, 2).flatmap(lambda n: PLANS if n == 2 else st.none())  # a third of operations


def pick(data: Any, preferred: list[str], everything: list[str], label: str) -> str:
    """Mostly a grant in the state the rule wants; sometimes any grant (the refusals)."""
    pool = preferred if preferred and data.draw(st.integers(0, 4), label=f"{label} in state") else everything
    return str(data.draw(st.sampled_from(pool), label=label))


class LifecycleMachine(RuleBasedStateMachine):
    world: World  # set by the test before the machine runs

    @initialize()
    def fresh_world(self) -> None:
        self.world.reset()
        self.world.ids.reset()
        self.faults = self.world.faults
        self.clock = FakeClock()
        self.workflow = FakeWorkflow(self.faults, self.clock)
        self.deps = replace(self.world.base, clock=self.clock, workflow=self.workflow, timing=TIMING, chat=None)
        self.order: list[str] = []  # grant ids in the order first seen
        self.dirty: set[str] = set()  # principals a fault touched since the last fault-free sweep
        self.last_clean_sweep: datetime | None = None
        self.last_tick_clean = True
        self.next_tick = self.clock.now().replace(second=0) + PERIOD
        self.lease_risk: dict[str, datetime] = {}  # principal -> last fault in an operation on it
        self.undelivered: set[str] = set()  # schedule deliveries whose revoke invocation failed
        first = self.world.snapshot()
        self.creator = dict(first.unmanaged)
        self.creator_principals = {principal for principal, _ in first.unmanaged}
        self.seen_events: dict[tuple[str, str], Any] = {}
        self.snap = first
        self.snap_fresh = True  # self.snap is what the table holds now
        self.full_check = True  # also read the entries of dirty principals and the creator's
        STATS["examples"] += 1

    # -- helpers --------------------------------------------------------------------------------

    def grants(self, *statuses: GrantStatus, parents_only: bool = False) -> list[str]:
        found = [
            g
            for g in self.order
            if (not statuses or self.snap.grants[g].status in statuses)
            and not (parents_only and self.snap.grants[g].extends)
        ]
        return found

    def requester(self, grant_id: str) -> str:
        return self.snap.grants[grant_id].requester

    def run(self, what: str, principals: set[str], call: Callable[[], Any], plan: FaultPlan | None) -> Any:
        """One invocation of the system under test, with ``plan`` armed. Returns its result, or
        the DomainError/LambdaDied it ended with."""
        before = self.snap.durable if self.snap_fresh else self.world.snapshot(with_entries=False).durable
        self.snap_fresh = False
        started = self.clock.now()
        result: Any
        with self.faults.armed(plan):
            try:
                result = call()
            except (DomainError, LambdaDied) as exc:
                result = exc
            fired = self.faults.fired
        STATS["operations"] += 1
        if fired is not None:
            STATS[f"faults during {what}"] += 1
            for principal in principals:  # a dead function, or a failed release, may hold its lease
                self.lease_risk[principal] = self.clock.now()
            if isinstance(result, Exception) or what == "sweep":
                self.dirty |= principals  # failed: a retry, or the sweeper, finishes the job
            else:
                self.answered_despite(what, fired, principals - self.dirty, started)
            return result
        if isinstance(result, LambdaDied):
            raise AssertionError(f"{what}: died with no fault armed") from result
        if isinstance(result, REFUSALS):
            STATS[f"refused: {result.code}"] += 1
            after = self.world.snapshot(with_entries=False).durable
            if isinstance(result, PolicyDenied):
                added = {k[0] for k in set(after) - set(before)}
                assert {k: v for k, v in after.items() if k[0] not in added} == before, f"{what}: denial rewrote"
                assert added == {f"GRANT#{result.details['grant_id']}"}, f"{what}: denial wrote {added}"
            else:
                assert after == before, f"{what} refused with {result.code} but changed the table"
        elif isinstance(result, DomainError):
            # With no fault armed, the only failure allowed is a lease a dead function still holds.
            assert isinstance(result, Busy) and self.lease_may_be_held(principals), (
                f"{what}: {result.code}: {result.message}"
            )
            self.dirty |= principals
        return result

    def answered_despite(self, what: str, fired: Any, principals: set[str], started: datetime) -> None:
        """An operation that answered normally although a fault struck (it retried, or the fault
        hit something best-effort) must have left the access right: an answer of "revoked" with
        the access still there is the failure mode of TEAM #398. The one admitted exception is
        a grant that says so itself with a ``cleanup_pending`` event (fail-closed activation whose
        cleanup failed: the sweeper removes it)."""
        snap = self.world.snapshot()
        problems = self.access_problems(snap, principals)
        if not problems:
            return
        admitted = [
            g
            for g, events in snap.events.items()
            if snap.grants[g].requester in principals
            and any(e.type == "cleanup_pending" and e.at >= started for e in events)
        ]
        assert admitted, f"{what} answered normally after {fired.plan.describe()} at {fired.operation}: {problems}"
        STATS["fail-closed with cleanup_pending"] += 1
        self.dirty |= principals

    def lease_may_be_held(self, principals: set[str]) -> bool:
        """A fault in an operation on one of ``principals`` within the lease's TTL: the lease it
        took may still be held (its holder died, or releasing it failed)."""
        now = self.clock.now()
        return any(p in self.lease_risk and now <= self.lease_risk[p] + TIMING.lease_ttl for p in principals)

    def sweep(self, plan: FaultPlan | None) -> None:
        self.full_check = True
        result = self.run("sweep", set(PRINCIPALS), lambda: sweep(self.deps), plan)
        clean = isinstance(result, SweepReport) and self.faults.fired is None
        self.last_tick_clean = clean
        STATS["sweeps"] += 1
        if not clean:
            return
        assert isinstance(result, SweepReport)
        STATS["fault-free sweeps"] += 1
        self.last_clean_sweep = self.clock.now()
        still: set[str] = set()
        for error in result.errors:
            held = re.search(r"another reconcile of (\S+) on", error)
            assert held and self.lease_may_be_held({held.group(1)}), f"a fault-free sweep reported {error!r}"
            still.add(held.group(1))
        self.dirty = still
        now = self.clock.now()
        snap = self.world.snapshot(with_entries=False)
        for grant in snap.grants.values():
            if grant.requester in still:
                continue
            if grant.status is S.APPROVED:
                assert (grant.approved_at or grant.created_at) + TIMING.activation_grace > now, (
                    f"{grant.id} still approved after a fault-free sweep"
                )
            timeout = grant.decision.approval_timeout
            if grant.status is S.PENDING_APPROVAL and timeout is not None:
                assert grant.created_at + timeout > now, f"{grant.id} pending past its approval timeout"

    def advance(self, to: datetime, plan: FaultPlan | None) -> None:
        """Move the clock to ``to``; the sweeper's rate fires at the last period boundary crossed
        (one run stands for the collapsed ones: nothing else happens in between)."""
        if to >= self.next_tick:
            periods = int((to - self.next_tick) / PERIOD)
            boundary = self.next_tick + periods * PERIOD
            self.clock.set(boundary)
            self.next_tick = boundary + PERIOD
            self.sweep(plan)
        self.clock.set(to)

    def catch_up(self, plan: FaultPlan | None) -> None:
        """After a step that let time pass (the revoke path waits): run the missed rate tick."""
        if self.clock.now() >= self.next_tick:
            periods = int((self.clock.now() - self.next_tick) / PERIOD)
            self.next_tick += (periods + 1) * PERIOD
            self.sweep(plan)

    # -- rules: requests and decisions ------------------------------------------------------------

    @rule(template=st.sampled_from(REQUESTS), seconds=st.sampled_from(DURATIONS), plan=faults_st)
    def request(self, template: tuple[str, str, str | None, str], seconds: int, plan: FaultPlan | None) -> None:
        requester, cluster, namespace, scope = template
        req = AccessRequest(requester, cluster, namespace, scope, timedelta(seconds=seconds), "property test")
        result = self.run("request", {requester}, lambda: request_grant(self.deps, req), plan)
        if isinstance(result, Grant):
            STATS[f"requested -> {result.status.value}"] += 1

    @rule(
        scope=st.sampled_from(["rollout-restart", "view"]),
        seconds=st.sampled_from([120, 180, 300, 600, 900]),
        plan=faults_st,
    )
    def on_call_request(self, scope: str, seconds: int, plan: FaultPlan | None) -> None:
        """The story the system exists for, weighted up: auto-approved, active in one call."""
        self.request((ONCALL, "prod-eks", "payments", scope), seconds, plan)

    @precondition(lambda self: bool(self.order))
    @rule(
        data=st.data(),
        approver=st.sampled_from((ALICE, BOB, ALICE, BOB, *CALLERS)),  # the payments approvers, mostly
        verdict=st.sampled_from(["approve", "approve", "deny"]),
        plan=faults_st,
    )
    def decide(self, data: Any, approver: str, verdict: str, plan: FaultPlan | None) -> None:
        gid = pick(data, self.grants(S.PENDING_APPROVAL), self.order, "grant to decide")
        result = self.run(
            f"{verdict} by {approver.rsplit('/', 1)[-1]}",
            {self.requester(gid)},
            lambda: approvals.decide(self.deps, gid, approver, verdict, comment="", via="api"),
            plan,
        )
        if isinstance(result, Grant):
            STATS[f"decided -> {result.status.value}"] += 1

    @precondition(lambda self: bool(self.order))
    @rule(data=st.data(), own=st.booleans(), plan=faults_st)
    def cancel(self, data: Any, own: bool, plan: FaultPlan | None) -> None:
        gid = pick(data, self.grants(S.PENDING_APPROVAL), self.order, "grant to cancel")
        who = self.requester(gid) if own else data.draw(st.sampled_from(CALLERS), label="canceller")
        self.run("cancel", {self.requester(gid)}, lambda: approvals.cancel(self.deps, gid, who), plan)

    @precondition(lambda self: any(e.state != "closed" for e in self.workflow.executions.values()))
    @rule(data=st.data(), plan=faults_st)
    def workflow_step(self, data: Any, plan: FaultPlan | None) -> None:
        """What the approval workflow's Lambda steps do next for one execution."""
        open_ = [g for g, e in self.workflow.executions.items() if e.state != "closed"]
        if not open_:
            return
        gid = str(data.draw(st.sampled_from(sorted(open_, key=self.order.index)), label="execution"))
        execution: Execution = self.workflow.executions[gid]
        principals = {self.requester(gid)}
        if execution.state == "waiting" and not execution.notified:

            def notify_then_wait() -> object:  # NotifyApprovers, then WaitForDecision keeps the token
                notified = approvals.notify(self.deps, gid)
                return approvals.workflow_step(self.deps, "await", gid, task_token=f"token:{gid}", notified=notified)

            result = self.run("notify", principals, notify_then_wait, plan)
            if not isinstance(result, Exception):
                execution.notified = True
            elif type(result).__name__ not in ("TransientAwsError", "Conflict"):
                execution.state = "failing"
        elif execution.state == "waiting":
            if self.clock.now() < execution.started + execution.timeout:
                return  # still waiting for a decision
            execution.state = "closed"  # States.Timeout -> ExpireRequest (retried until it works)
            self.run(
                "expire_request", principals, lambda: approvals.workflow_step(self.deps, "expire_request", gid), plan
            )
        elif execution.state == "resumed" and execution.outcome == "approved":
            result = self.run(
                "activate step", principals, lambda: approvals.workflow_step(self.deps, "activate", gid), plan
            )
            if not isinstance(result, Exception):
                execution.state = "closed"
            elif type(result).__name__ not in RETRIED_BY_WORKFLOW:
                execution.state = "failing"
        elif execution.state == "resumed":
            execution.state = "closed"  # denied or cancelled: the Closed state, no Lambda
        elif execution.state == "failing":
            result = self.run(
                "fail step", principals, lambda: approvals.workflow_step(self.deps, "fail", gid, "injected"), plan
            )
            if not isinstance(result, Exception):
                execution.state = "closed"

    # -- rules: the end of a grant ------------------------------------------------------------------

    @precondition(lambda self: bool(self.order))
    @rule(data=st.data(), who=st.sampled_from(["requester", "requester", "admin", "other"]), plan=faults_st)
    def revoke(self, data: Any, who: str, plan: FaultPlan | None) -> None:
        gid = pick(data, self.grants(S.ACTIVE, parents_only=True), self.order, "grant to revoke")
        owner = self.requester(gid)
        caller = {"requester": owner, "admin": ADMIN, "other": OTHER_AGENT if owner != OTHER_AGENT else BOB}[who]
        self.run(f"revoke by {who}", {owner}, lambda: revoke_grant(self.deps, caller, gid, "done"), plan)

    @precondition(lambda self: bool(self.order))
    @rule(data=st.data(), seconds=st.sampled_from([60, 300, 900, 1800, 7200]), plan=faults_st)
    def extend(self, data: Any, seconds: int, plan: FaultPlan | None) -> None:
        gid = pick(data, self.grants(S.ACTIVE, parents_only=True), self.order, "grant to extend")
        owner = self.requester(gid)
        result = self.run(
            "extend",
            {owner},
            lambda: request_extension(self.deps, owner, gid, timedelta(seconds=seconds), "more time"),
            plan,
        )
        if isinstance(result, Grant):
            STATS[f"extension -> {result.status.value}"] += 1

    @precondition(lambda self: bool(self.order))
    @rule(
        data=st.data(),
        mode=st.sampled_from(["on_time", "on_time", "late", "early", "twice", "redelivery"]),
        plan=faults_st,
        tick=faults_st,
    )
    def fire_schedule(self, data: Any, mode: str, plan: FaultPlan | None, tick: FaultPlan | None) -> None:
        """EventBridge Scheduler invokes the revoke path (deleting the one-time schedule first)."""
        names = {n.removeprefix("eks-jit-") for n in self.world.schedules()}
        if mode == "redelivery":
            pool = sorted(self.undelivered or set(self.order))  # a retry, or a stray duplicate
        else:
            pool = [g for g in self.order if g in names]
        if not pool:
            return
        gid = str(data.draw(st.sampled_from(pool), label="schedule of"))
        due = self.world.schedule_time(schedule_name(gid))
        if mode in ("on_time", "twice") and due is not None:
            self.advance(max(self.clock.now(), due + timedelta(seconds=data.draw(st.integers(0, 59)))), tick)
        elif mode == "late" and due is not None:
            self.advance(max(self.clock.now(), due + timedelta(seconds=data.draw(st.integers(60, 900)))), tick)
        self.world.delete_schedule(schedule_name(gid))  # ActionAfterCompletion: DELETE
        for delivery in range(2 if mode == "twice" else 1):
            self.undelivered.discard(gid)
            before, fired_at = self.world.snapshot(with_entries=False).grants[gid], self.clock.now()
            result = self.run(
                f"schedule fired ({mode})", {self.requester(gid)}, lambda: on_schedule(self.deps, gid), plan
            )
            if isinstance(result, Exception):
                self.undelivered.add(gid)  # Scheduler retries the invocation
            elif self.faults.fired is None and delivery == 0 and mode in ("on_time", "twice"):
                self.ends_on_the_second(before, fired_at, result)
            plan = None
        self.catch_up(tick)

    def ends_on_the_second(self, before: Grant, fired_at: datetime, after: Grant) -> None:
        """A schedule that fires in its minute (up to 119 s early) ends the grant at ``expires_at``
        exactly: the revoke path waits out the rest (docs/decisions.md, "Bounding the revocation lag")."""
        if before.status is not S.ACTIVE or before.expires_at is None or before.extends is not None:
            return
        if not timedelta(0) <= before.expires_at - fired_at <= TIMING.max_wait:
            return  # fired far too early (an extension moved the end): it sets the alarm again
        assert after.status is S.EXPIRED and after.ended_at == before.expires_at, (
            f"{after.id}: fired {fired_at}, due {before.expires_at}, now {after.status} at {after.ended_at}"
        )
        STATS["expired on the second by the schedule"] += 1

    @rule(data=st.data())
    def lose_schedule(self, data: Any) -> None:
        """A schedule that never fires (deleted, or its target broken): only the sweeper is left."""
        names = set(self.world.schedules())
        scheduled = [g for g in self.order if schedule_name(g) in names]
        if scheduled:
            self.world.delete_schedule(schedule_name(data.draw(st.sampled_from(scheduled), label="lost schedule of")))
            STATS["schedules lost"] += 1

    # -- rules: time and the backstop --------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 10, 30, 59, 61, 90, 150, 300, 900, 1900, 3700]), tick=faults_st)
    def advance_clock(self, seconds: int, tick: FaultPlan | None) -> None:
        self.advance(self.clock.now() + timedelta(seconds=seconds), tick)

    @rule(plan=faults_st)
    def extra_sweep(self, plan: FaultPlan | None) -> None:
        self.sweep(plan)

    # -- invariants ---------------------------------------------------------------------------------

    @invariant()
    def everything_holds(self) -> None:
        skip = frozenset() if self.full_check else frozenset(self.dirty | set(self.creator_principals))
        snap = self.world.snapshot(skip=skip)
        self.snap, self.snap_fresh = snap, True
        known = set(self.order)
        self.order += sorted((g for g in snap.grants if g not in known), key=lambda g: snap.grants[g].created_at)
        self.records_only_grow(snap)
        for grant in snap.grants.values():
            self.history_is_complete(grant, snap)
            self.window_within_policy(grant, snap)
            self.nothing_active_past_the_sweeper(grant)
        self.index_lists_the_active_grants(snap)
        self.access_matches_the_active_grants(snap)

    def records_only_grow(self, snap: Any) -> None:
        for key, item in self.seen_events.items():
            assert snap.event_items.get(key) == item, f"event {key} was lost or rewritten"
        self.seen_events = dict(snap.event_items)

    def history_is_complete(self, grant: Grant, snap: Any) -> None:
        events = snap.events.get(grant.id, [])
        assert [e.version for e in events] == list(range(1, grant.version + 1)), (
            f"{grant.id}: event versions {[e.version for e in events]} for grant version {grant.version}"
        )
        assert events[0].type == "requested"
        status = S.PENDING_APPROVAL
        for event in events[1:]:
            if event.type not in STATUS_EVENTS:
                continue
            action = next(a for a, t in EVENT_OF_ACTION.items() if t == event.type)
            assert event.detail.get("from") == status.value, f"{grant.id}: {event.type} from {event.detail}"
            assert TRANSITIONS.get((status, action)) is not None, f"{grant.id}: {status} cannot be {event.type}"
            status = TRANSITIONS[(status, action)]
            assert event.detail.get("to") == status.value, f"{grant.id}: {event.type} to {event.detail}"
        assert status is grant.status, f"{grant.id}: events end in {status}, the grant is {grant.status}"

    def window_within_policy(self, grant: Grant, snap: Any) -> None:
        if grant.activated_at is None or grant.expires_at is None or grant.extends is not None:
            return
        shaping = [grant.decision] + [
            g.decision for g in snap.grants.values() if g.extends == grant.id and g.activated_at is not None
        ]
        limits = [d.max_duration for d in shaping if d.max_duration is not None]
        window = grant.expires_at - grant.activated_at
        assert window <= self.deps.catalog.settings.max_duration, f"{grant.id}: window {window}"
        assert not limits or window <= max(limits), (
            f"{grant.id}: window {window} exceeds every policy maximum that shaped it ({max(limits)})"
        )

    def nothing_active_past_the_sweeper(self, grant: Grant) -> None:
        if grant.status is not S.ACTIVE or grant.expires_at is None:
            return
        if self.last_clean_sweep is not None:
            assert grant.expires_at > self.last_clean_sweep, (
                f"{grant.id} still active: expired at {grant.expires_at}, a fault-free sweep ran at "
                f"{self.last_clean_sweep}"
            )
        if self.last_tick_clean and self.last_clean_sweep is not None:
            assert self.clock.now() - grant.expires_at < PERIOD, f"{grant.id} active past expiry + one period"

    def index_lists_the_active_grants(self, snap: Any) -> None:
        expected: dict[tuple[str, str], set[str]] = {}
        for g in snap.grants.values():
            if g.status is S.ACTIVE and g.extends is None:
                expected.setdefault((g.requester, g.cluster), set()).add(g.id)
        for key in set(expected) | set(snap.index):
            assert set(snap.index.get(key, ())) == expected.get(key, set()), f"access index of {key}"

    def access_matches_the_active_grants(self, snap: Any) -> None:
        if self.full_check:  # after every sweep (the only code that looks at every entry)
            assert snap.unmanaged == self.creator, "an access entry eks-jit does not manage was changed"
            self.full_check = False
        problems = self.access_problems(snap, set(PRINCIPALS) - self.dirty)
        assert not problems, "; ".join(problems)

    def access_problems(self, snap: Any, principals: set[str]) -> list[str]:
        """Where the managed entries of ``principals`` differ from the union of their active grants."""
        desired: dict[tuple[str, str], Access] = {}
        scopes = self.deps.catalog.scopes
        for g in snap.grants.values():
            if g.justifies_access():
                key = (g.requester, g.cluster)
                desired[key] = union_of([desired.get(key, Access()), access_of(g.scope, scopes[g.scope], g.namespaces)])
        problems = []
        for key in sorted(set(desired) | set(snap.entries)):
            if key[0] not in principals:
                continue
            want, have = desired.get(key), snap.entries.get(key)
            if want is None or want.is_empty:
                if have is not None:
                    problems.append(f"{key}: access {have.describe()} that no active grant justifies")
            elif have is None:
                problems.append(f"{key}: active grants need {want.describe()}, there is no entry")
            elif have.groups != want.groups or dict(have.policies) != dict(want.policies):
                problems.append(f"{key}: entry {have.describe()} but active grants justify {want.describe()}")
        return problems

    def teardown(self) -> None:
        snap = getattr(self, "snap", None)
        if snap is None:
            return
        for grant in snap.grants.values():
            STATS["grants"] += 1
            if grant.activated_at is not None and grant.status.is_terminal:
                STATS["lifecycles (active -> ended)"] += 1
            STATS[f"final {grant.status.value}"] += 1
        if sys.exc_info()[1] is None:  # the example passed: end it with the backstop's last word
            self.final_sweep()

    def final_sweep(self) -> None:
        """After the last step: let every lease a dead function may hold run out, run one
        fault-free sweep, then count what is still wrong: leaked grants (access in place for a
        grant no longer active, or an active grant without its access) and events lost or
        rewritten. Both must be 0."""
        self.clock.advance(TIMING.lease_ttl + timedelta(seconds=1))
        self.sweep(None)
        snap = self.world.snapshot()
        lost = [key for key, item in self.seen_events.items() if snap.event_items.get(key) != item]
        leaked = self.leaked_grants(snap)
        STATS["final sweeps"] += 1
        STATS["leaked grants"] += len(leaked)
        STATS["events lost or rewritten"] += len(lost)
        assert not leaked, f"after the final fault-free sweep: {leaked}"
        assert not lost, f"events lost or rewritten: {lost}"
        assert snap.unmanaged == self.creator, "an access entry eks-jit does not manage was changed"

    def leaked_grants(self, snap: Any) -> list[str]:
        """Grants whose access is wrong: an active one whose access is not all in its entry, or
        one no longer active whose groups or policies are still there beyond what the active
        grants of its principal justify."""
        scopes = self.deps.catalog.scopes
        desired: dict[tuple[str, str], Access] = {}
        for g in snap.grants.values():
            if g.justifies_access():
                key = (g.requester, g.cluster)
                desired[key] = union_of([desired.get(key, Access()), access_of(g.scope, scopes[g.scope], g.namespaces)])
        leaked = []
        for g in snap.grants.values():
            if g.extends is not None or g.activated_at is None:
                continue
            key = (g.requester, g.cluster)
            mine, have = access_of(g.scope, scopes[g.scope], g.namespaces), snap.entries.get(key, Access())
            want = desired.get(key, Access())
            if g.justifies_access():
                if union_of([have, mine]) != have:
                    leaked.append(f"{g.id} is active without its access {mine.describe()}")
            elif mine.groups & (have.groups - want.groups) or any(
                arn in have.policies and have.policies[arn] != want.policies.get(arn) for arn in mine.policies
            ):
                leaked.append(f"{g.id} is {g.status.value} but {have.describe()} is still in place")
        return leaked


@pytest.fixture(scope="module")
def machine_world() -> Iterator[World]:
    level = logger.log_level
    logger.setLevel("CRITICAL")  # thousands of operations: their logs are noise here
    with mock_aws(config=MOTO_CONFIG):
        built = World()
        built.faults.install()
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(uuid, "uuid4", built.ids)  # grant ids and lease owners: same run, same ids
                yield built
        finally:
            built.faults.uninstall()
            quiesce(built.resources)  # no execution of this world runs on into the next tests
            logger.setLevel(level)


def machine_settings() -> settings:
    if SOAK_EXAMPLES:
        return settings(
            max_examples=SOAK_EXAMPLES,
            stateful_step_count=SOAK_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            print_blob=True,
        )
    return settings(
        max_examples=int(os.environ.get("EKS_JIT_PROPERTY_EXAMPLES", "25")),
        stateful_step_count=30,
        deadline=None,
        derandomize=True,  # the same examples on every CI run; `make soak` explores at random
        suppress_health_check=list(HealthCheck),
        database=None,
        print_blob=True,
    )


def test_grant_lifecycles_survive_random_interleavings_and_faults(machine_world: World) -> None:
    LifecycleMachine.world = machine_world
    STATS.clear()
    machine_world.faults.injected.clear()
    started = time.monotonic()
    try:
        run_state_machine_as_test(LifecycleMachine, settings=machine_settings())
    finally:
        summary(machine_world, "moto", time.monotonic() - started)


def summary(world: Any, name: str, seconds: float) -> None:
    """What a run survived; ``world`` is this module's World or tests/memory's MemoryWorld."""
    injected = world.faults.injected
    lifecycles = STATS["lifecycles (active -> ended)"]
    print(
        f"\nlifecycle machine on {name}: {lifecycles} lifecycles in {seconds:.1f} s "
        f"({lifecycles / max(seconds, 1e-9):.2f} lifecycles/s), {STATS['examples']} examples, "
        f"{STATS['operations']} operations, "
        f"{STATS['grants']} grants, {STATS['lifecycles (active -> ended)']} lifecycles (active -> ended), "
        f"{sum(injected.values())} injected faults survived ("
        + ", ".join(f"{k} {v}" for k, v in sorted(injected.items()))
        + f"), {STATS['sweeps']} sweeps ({STATS['fault-free sweeps']} fault-free), "
        f"leaked grants {STATS['leaked grants']}, events lost or rewritten {STATS['events lost or rewritten']}"
    )
    for key, value in sorted(STATS.items()):
        print(f"  {key}: {value}")
