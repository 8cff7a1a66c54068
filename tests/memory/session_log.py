"""The session log in memory, behaving as ``DynamoSessionLog`` does: the very items the adapter
writes (``command_to_item``: same keys, same size check), kept per grant partition in sort-key
order; a record with a key that exists is a :class:`Conflict` and changes nothing; pages of
``limit`` after a key, the next key only when a command follows."""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import Counter
from typing import Any

from eks_jit.server.adapters.session_log import command_from_item, command_to_item
from eks_jit.server.adapters.table import COMMAND_PREFIX
from eks_jit.server.domain.errors import Conflict
from eks_jit.server.domain.recording import Command, CommandOutcome


class MemorySessionLog:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, dict[str, Any]]] = {}  # pk -> sk -> item
        self._keys: dict[str, list[str]] = {}  # pk -> sorted sks

    def record(self, command: Command) -> None:
        item = command_to_item(command)
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        partition = self.items.setdefault(pk, {})
        if sk in partition:
            raise Conflict(f"command {command.key} of grant {command.grant_id} is already recorded")
        partition[sk] = item
        insort(self._keys.setdefault(pk, []), sk)

    def commands(
        self, grant_id: str, *, limit: int = 1000, after: str | None = None
    ) -> tuple[list[Command], str | None]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        pk = f"{COMMAND_PREFIX}{grant_id}"
        keys = self._keys.get(pk, [])
        start = bisect_right(keys, after) if after is not None else 0
        chosen = keys[start : start + limit]
        commands = [command_from_item(self.items[pk][k]) for k in chosen]
        more = start + limit < len(keys)
        return commands, (chosen[-1] if more else None)

    def count(self, grant_id: str) -> int:
        return len(self._keys.get(f"{COMMAND_PREFIX}{grant_id}", []))

    def outcomes(self, grant_id: str) -> dict[CommandOutcome, int]:
        partition = self.items.get(f"{COMMAND_PREFIX}{grant_id}", {})
        return dict(Counter(CommandOutcome(item["outcome"]["S"]) for item in partition.values()))

    def reset(self) -> None:
        self.items.clear()
        self._keys.clear()
