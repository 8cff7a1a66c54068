"""Make moto's DynamoDB writes atomic, as DynamoDB's are.

DynamoDB evaluates a condition and applies the write as one step, and a transaction is
all-or-nothing against concurrent writers. moto checks and writes in Python with no lock, so
two threads (tests, or local mode's threaded server) could both pass the same condition. One
process-wide lock around moto's write operations restores DynamoDB's guarantee. Reads take the
same lock: moto answers a Query or Scan by iterating the dicts a concurrent write changes, which
raises "dictionary changed size during iteration" (DynamoDB never fails a read that way).
Idempotent.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_LOCK = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_READS = ("get_item", "batch_get_item", "query", "scan", "transact_get_items")
_MARK = "_eks_jit_atomic"


def _atomic(original: Any) -> Any:
    @functools.wraps(original)
    def atomic(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(self, *args, **kwargs)

    setattr(atomic, _MARK, True)
    return atomic


def register() -> None:
    for name in (*_WRITES, *_READS):
        original = getattr(DynamoDBBackend, name, None)
        if original is not None and not getattr(original, _MARK, False):
            setattr(DynamoDBBackend, name, _atomic(original))
