"""Fault injection at the port boundary, for the in-memory world.

The same :class:`~tests.property.faults.FaultPlan` and counting as at the botocore boundary
(``tests/property/faults.py``), one level up: the Nth *port call* of an operation fails before
it acts or after it acted with the answer lost, as the adapters would report it. Every adapter
wraps its AWS calls in ``transient_errors``, so throttling (once the SDK's retries are spent),
a 5xx and a read timeout all reach the logic as :class:`TransientAwsError`; a crash is
:class:`LambdaDied` from that call on. ``sticky`` takes the port's service down for the rest of
the operation.

One port call may be several AWS calls on moto (``active_for`` is GetItem + BatchGetItem, a
read of an entry is DescribeAccessEntry + ListAssociatedAccessPolicies): the moto machine
can fail between those, this one cannot; each is still all or nothing at the port, which is
what the logic sees of an adapter that failed half-way through a read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from eks_jit.server.domain.errors import TransientAwsError
from tests.property.faults import FaultPlan, Faults, Fired, LambdaDied

__all__ = ["PortFaults", "faulty"]

_MESSAGES = {"throttle": "ThrottlingException", "5xx": "InternalFailure", "timeout": "ReadTimeoutError"}


class PortFaults(Faults):
    """:class:`Faults`, striking with the domain errors the adapters raise; ``on_operation`` runs
    as each operation is armed (the world lets GSI propagation catch up there)."""

    def __init__(self, on_operation: Callable[[], None] = lambda: None) -> None:
        super().__init__()
        self.on_operation = on_operation

    def install(self) -> None:  # nothing to patch: the ports are wrapped instead (faulty)
        pass

    def uninstall(self) -> None:
        pass

    @contextmanager
    def armed(self, plan: FaultPlan | None) -> Iterator[None]:
        self.on_operation()
        with super().armed(plan):
            yield

    def _strike(self, plan: FaultPlan, service: str, operation: str) -> None:
        if self.fired is None:
            self.fired = Fired(plan, service, operation)
            self.injected[plan.kind] += 1
        if plan.kind == "crash":
            self.dead = True
            raise LambdaDied(f"died {'after' if plan.after else 'before'} {service}:{operation}")
        if plan.sticky:
            self._outage = service
        raise TransientAwsError(f"{service}:{operation}: {_MESSAGES[plan.kind]} (injected)")


class _Faulty:
    """Every public method of ``target`` through ``faults`` as one call of ``service``; an
    iterator answer is read in full inside the call (so a fault "after" comes after all of it)."""

    def __init__(self, target: Any, service: str, faults: Faults, wrap: dict[str, str] | None = None) -> None:
        self._target = target
        self._service = service
        self._faults = faults
        self._wrap = wrap or {}  # method -> service whose object it returns (wrapped, no call itself)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)
        if name.startswith("_") or not callable(method):
            return method
        if name in self._wrap:
            return lambda *a, **kw: _Faulty(method(*a, **kw), self._wrap[name], self._faults)

        def call(*args: Any, **kwargs: Any) -> Any:
            def run() -> Any:
                result = method(*args, **kwargs)
                return list(result) if isinstance(result, Iterator) else result

            result = self._faults.through(self._service, name, run)
            return iter(result) if isinstance(result, list) and name in _ITERATORS else result

        return call


_ITERATORS = frozenset({"by_status", "created_between", "managed_principals"})


def faulty(target: Any, service: str, faults: Faults, wrap: dict[str, str] | None = None) -> Any:
    return _Faulty(target, service, faults, wrap)
