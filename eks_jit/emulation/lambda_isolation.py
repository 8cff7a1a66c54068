"""One invocation per Lambda environment, even when local mode runs many in one process.

Lambda runs one invocation at a time in each execution environment, so powertools' event
handler keeps the invocation it is resolving on the *class*: ``resolve`` assigns
``BaseRouter.current_event`` and ``BaseRouter.lambda_context``, and the matched route and its
arguments go into the resolver's ``context`` dict, cleared after each invocation
(aws-lambda-powertools 3.x, ``event_handler/api_gateway.py``). Local mode's API gateway and the
race tests call the real api handler from several threads of one process, where two concurrent
invocations would read each other's event: a request handled with another caller's identity,
body or Idempotency-Key (the burst in ``bench/load.py`` revoked a grant twice that way: one
agent was answered with another's grant). :func:`register` makes those three attributes per
thread, as each thread stands for its own environment (``context`` per thread and per
resolver), and builds a route's middleware stack once under a lock (powertools builds it on the
route's first call, unguarded: two first calls at once left a broken stack). Idempotent; nothing
changes for a single thread.
"""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools.event_handler import api_gateway

PER_INVOCATION = ("current_event", "lambda_context")
_local = threading.local()
_building = threading.Lock()


class _PerThreadContext:
    """A resolver's ``context`` dict: one per (thread, resolver), made empty on a thread's first use."""

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        contexts = _local.__dict__.setdefault("contexts", {})
        return contexts.setdefault(id(obj), {})

    def __set__(self, obj: Any, value: Any) -> None:
        _local.__dict__.setdefault("contexts", {})[id(obj)] = value


class _PerThread:
    """A data descriptor whose value is the calling thread's own."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        try:
            return getattr(_local, self._name)
        except AttributeError:
            raise AttributeError(self._name) from None

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(_local, self._name, value)


_Base = type(api_gateway.BaseRouter)


class _PerThreadRouterType(_Base):  # type: ignore[misc, valid-type]
    """``BaseRouter.current_event = ...`` (class assignment) lands in the descriptor, not the class."""

    current_event = _PerThread("current_event")
    lambda_context = _PerThread("lambda_context")


def _build_once(original: Any) -> Any:
    def build(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _building:
            if self._middleware_stack_built:  # another thread's first call built it meanwhile
                return None
            return original(self, *args, **kwargs)

    build.__wrapped__ = original  # type: ignore[attr-defined]
    return build


def register() -> None:
    router: Any = api_gateway.BaseRouter
    if isinstance(router, _PerThreadRouterType):
        return
    route: Any = api_gateway.Route
    route._build_middleware_stack = _build_once(route._build_middleware_stack)
    for name in PER_INVOCATION:
        # instances (``app.current_event``) find this in the class dict; the class itself, once
        # its type is switched below, finds the type's descriptor first
        type.__setattr__(router, name, _PerThread(name))
    type.__setattr__(router, "context", _PerThreadContext())
    router.__class__ = _PerThreadRouterType
