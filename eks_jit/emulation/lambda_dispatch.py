"""Run the project's real Lambda handlers when moto's Lambda is invoked.

moto without Docker only echoes an invocation's payload. Step Functions Lambda tasks (moto's
ASL interpreter) and local mode's scheduler invoke functions through moto's Lambda backend,
so this dispatcher, registered on that backend, maps function names to handler callables and
calls them in-process with a Lambda-like context. A handler's exception becomes Lambda's
function-error payload ``{"errorType": <class name>, "errorMessage": ...}``, which is what
Step Functions' Retry/Catch match on. ``Event`` invocations run on a background thread.
Unregistered functions keep moto's behaviour.

Handlers run on whichever thread invoked them (moto's Step Functions interpreter runs each
execution on threads of its own), so a caller that tears an emulated world down first waits
for :func:`in_flight` to reach zero: a handler still running would otherwise act on the
next world (it reads its dependencies when it runs).
"""

from __future__ import annotations

import functools
import json
import threading
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import LambdaSimpleBackend

Handler = Callable[[Any, Any], Any]
_HANDLERS: dict[str, Handler] = {}
_MARK = "_eks_jit_dispatch"
_RUNNING = [0]
_RUNNING_LOCK = threading.Lock()


class Context:
    """The parts of the Lambda context object that powertools reads."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def add_handler(function_name: str, handler: Handler) -> None:
    _HANDLERS[function_name] = handler


def _name(function_name: str) -> str:
    """``name``, ``name:qualifier`` or a function ARN -> the bare name."""
    if function_name.startswith("arn:"):
        return function_name.split(":")[6]
    return function_name.split(":")[0]


def in_flight() -> int:
    """How many handler invocations are running right now."""
    with _RUNNING_LOCK:
        return _RUNNING[0]


def call(function_name: str, event: Any) -> tuple[bytes, bool]:
    """Run the registered handler: (JSON payload, errored)."""
    handler = _HANDLERS[_name(function_name)]
    with _RUNNING_LOCK:
        _RUNNING[0] += 1
    try:
        return json.dumps(handler(event, Context(_name(function_name))), default=str).encode(), False
    except Exception as exc:
        error = {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc)[-3:],
        }
        return json.dumps(error).encode(), True
    finally:
        with _RUNNING_LOCK:
            _RUNNING[0] -= 1


def _dispatching(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> Any:
        if _name(function_name) not in _HANDLERS:
            return original(self, function_name, qualifier, body, headers, response_headers)
        event = json.loads(body) if body else {}
        if (headers or {}).get("x-amz-invocation-type") == "Event":
            threading.Thread(target=call, args=(function_name, event), daemon=True).start()
            return b""
        payload, errored = call(function_name, event)
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload

    setattr(invoke, _MARK, True)
    return invoke


def register() -> None:
    """Install the dispatcher on moto's Lambda backends (idempotent)."""
    for backend in (LambdaBackend, LambdaSimpleBackend):
        if not getattr(backend.invoke, _MARK, False):
            backend.invoke = _dispatching(backend.invoke)  # type: ignore[method-assign]
