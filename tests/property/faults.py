"""Fault injection at the AWS API boundary, for the property tests.

Every AWS call any adapter makes goes through ``botocore.client.BaseClient._make_api_call``
(paginators included), so that is where a :class:`Faults` plan strikes, whichever client an
adapter built: the Nth call of one logic function fails *before* it reaches AWS (nothing
happened) or *after* (AWS applied it, the answer was lost), as

- ``throttle``: ``ThrottlingException`` once the SDK's own retries are spent,
- ``5xx``: an ``InternalFailure`` with HTTP 500,
- ``timeout``: botocore's ``ReadTimeoutError``,
- ``crash``: :class:`LambdaDied`, and every later call of that invocation dies too (the process
  is gone: no ``finally`` gets another AWS call through, so a lease it held stays held).

A ``sticky`` transient fault is an outage: every later call to the same service fails alike.
Calls made while no plan is armed (the invariant checks) pass untouched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import botocore.client
from botocore.exceptions import ClientError, ReadTimeoutError

KINDS = ("throttle", "5xx", "timeout", "crash")


class LambdaDied(Exception):
    """The function's process ended between two AWS calls (timeout, out of memory, host lost).

    Deliberately not a DomainError: no ``except DomainError`` in the logic may swallow it."""


@dataclass(frozen=True)
class FaultPlan:
    kind: str  # one of KINDS
    at: int  # index of the AWS call (0-based, within one armed operation) that fails
    after: bool = False  # the call reached AWS and was applied; only its answer is lost
    sticky: bool = False  # transient kinds: the service stays down for the rest of the operation

    def describe(self) -> str:
        when = "after" if self.after else "before"
        return f"{self.kind}{' outage' if self.sticky else ''} {when} call #{self.at}"


@dataclass
class Fired:
    plan: FaultPlan
    service: str
    operation: str


class Faults:
    """Arms one :class:`FaultPlan` at a time around one operation of the system under test."""

    def __init__(self) -> None:
        self.plan: FaultPlan | None = None
        self.calls = 0
        self.fired: Fired | None = None
        self.dead = False
        self._outage: str | None = None
        self.injected: Counter[str] = Counter()  # kind -> how many times a plan fired
        self._original: Any = None

    # -- installation (once per test) ------------------------------------------------------------

    def install(self) -> None:
        original = botocore.client.BaseClient._make_api_call
        faults = self

        def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            return faults.through(service, operation, lambda: original(client, operation, params))

        self._original = original
        botocore.client.BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            botocore.client.BaseClient._make_api_call = self._original  # type: ignore[method-assign]
            self._original = None

    # -- one operation -----------------------------------------------------------------------------

    @contextmanager
    def armed(self, plan: FaultPlan | None) -> Iterator[None]:
        self.plan, self.calls, self.fired, self.dead, self._outage = plan, 0, None, False, None
        try:
            yield
        finally:
            self.plan, self._outage, self.dead = None, None, False

    def through(self, service: str, operation: str, call: Callable[[], Any]) -> Any:
        """Run one AWS call (``call``) under the armed plan."""
        plan = self.plan
        if plan is None:
            return call()
        index = self.calls
        self.calls += 1
        if self.dead:
            raise LambdaDied(f"the function is gone (before {service}:{operation})")
        hit = index == plan.at or (self._outage == service)
        if hit and not plan.after:
            self._strike(plan, service, operation)
        result = call()
        if hit and plan.after:
            self._strike(plan, service, operation)
        return result

    def _strike(self, plan: FaultPlan, service: str, operation: str) -> None:
        if self.fired is None:
            self.fired = Fired(plan, service, operation)
            self.injected[plan.kind] += 1
        if plan.kind == "crash":
            self.dead = True
            raise LambdaDied(f"died {'after' if plan.after else 'before'} {service}:{operation}")
        if plan.sticky:
            self._outage = service
        if plan.kind == "timeout":
            raise ReadTimeoutError(endpoint_url=f"https://{service}.eu-west-1.amazonaws.com/")
        code, status = ("ThrottlingException", 400) if plan.kind == "throttle" else ("InternalFailure", 500)
        raise ClientError(
            {
                "Error": {"Code": code, "Message": f"injected {plan.kind}"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            operation,
        )
