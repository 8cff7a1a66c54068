"""The session log on DynamoDB: one item per recorded Kubernetes request, in the grant table.

  pk=COMMAND#<grant id>   sk=<Command.key>   (``<at, ISO UTC, microseconds>#<request id>``)

The sort key orders a grant's commands by arrival, so the transcript is one Query of one
partition. An item is written once (``attribute_not_exists(pk)``: a second record with the same
key is a :class:`Conflict`, never an overwrite) and is never updated or deleted. It carries no
index attribute, so it appears in no GSI: listings by status or requester never meet it.

Size: :class:`Command` bounds every text field (``domain/recording.py``, ``MAX_RECORD_CHARS``), so
an item is at most about 64 KB of UTF-8, far under DynamoDB's 400 KB; :func:`command_to_item`
checks it anyway, so a future field without a bound fails here, loudly, not in DynamoDB.

Counting (``count``) is a Query with ``Select=COUNT``: DynamoDB still reads the items (read units by
their size), but sends none back. The audit's ``commands``, ``blocked`` and ``held`` columns come from
``outcomes``: the same Query projecting only ``outcome`` (the same read units; a few bytes per item
sent back). Both read eventually consistent, at half the read units: an auditor's count of a grant
that is still active moves anyway.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from botocore.exceptions import ClientError

from ..domain.errors import Conflict
from ..domain.recording import Command, CommandOutcome
from .aws import error_code, transient_errors
from .dynamodb import _dump, _load, _plain
from .table import COMMAND_PREFIX, PK, SK

MAX_ITEM_BYTES = 400 * 1024  # DynamoDB's item size limit: attribute names and values, UTF-8


def command_to_item(command: Command) -> dict[str, Any]:
    item = _dump({PK: f"{COMMAND_PREFIX}{command.grant_id}", SK: command.key, "kind": "command", **command.to_json()})
    size = item_size(item)
    if size > MAX_ITEM_BYTES:  # cannot happen while Command bounds its fields; a new field must too
        raise ValueError(f"command {command.key} of grant {command.grant_id} is {size} bytes, over 400 KB")
    return item


def command_from_item(raw: dict[str, Any]) -> Command:
    item = _plain(_load(raw))
    data = {k: v for k, v in item.items() if k not in (PK, SK, "kind")}
    # ``_dump`` leaves out None and "": give them back
    return Command.from_json({"session": None, "query": "", **data})


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it, for the string, number and boolean attributes a command
    has: name plus value, in UTF-8 bytes (numbers: their digits, a safe over-estimate)."""
    size = 0
    for name, value in item.items():
        (kind, text), *_ = value.items()
        size += len(name.encode()) + (1 if kind == "BOOL" else len(str(text).encode()))
    return size


class DynamoSessionLog:
    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table

    def record(self, command: Command) -> None:
        try:
            with transient_errors(f"record command of grant {command.grant_id}"):
                self._ddb.put_item(
                    TableName=self._table,
                    Item=command_to_item(command),
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise Conflict(f"command {command.key} of grant {command.grant_id} is already recorded") from exc
            raise

    def commands(
        self, grant_id: str, *, limit: int = 1000, after: str | None = None
    ) -> tuple[list[Command], str | None]:
        """Up to ``limit`` commands after the key ``after``, read strongly consistent; one more is
        read to know whether the page is the last (so a page that ends at the last command has no
        next key, as ``/v1/audit``'s pages). DynamoDB may end a page early (1 MB): read on."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        condition, values = "pk = :pk", {":pk": f"{COMMAND_PREFIX}{grant_id}"}
        if after is not None:
            condition += " AND sk > :after"
            values[":after"] = after
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": _dump(values),
            "ConsistentRead": True,
        }
        found: list[dict[str, Any]] = []
        while len(found) <= limit:
            with transient_errors(f"read commands of grant {grant_id}"):
                page = self._ddb.query(**request, Limit=limit + 1 - len(found))
            found += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        commands = [command_from_item(i) for i in found[:limit]]
        return commands, (commands[-1].key if len(found) > limit else None)

    def count(self, grant_id: str) -> int:
        return sum(int(page["Count"]) for page in self._partition(grant_id, Select="COUNT"))

    def outcomes(self, grant_id: str) -> dict[CommandOutcome, int]:
        pages = self._partition(grant_id, ProjectionExpression="#o", ExpressionAttributeNames={"#o": "outcome"})
        return dict(Counter(CommandOutcome(item["outcome"]["S"]) for page in pages for item in page["Items"]))

    def _partition(self, grant_id: str, **read: Any) -> list[dict[str, Any]]:
        """Every page of one Query of the grant's partition, read eventually consistent (module doc)."""
        with transient_errors(f"count commands of grant {grant_id}"):
            return list(
                self._ddb.get_paginator("query").paginate(
                    TableName=self._table,
                    KeyConditionExpression="pk = :pk",
                    ExpressionAttributeValues=_dump({":pk": f"{COMMAND_PREFIX}{grant_id}"}),
                    **read,
                )
            )
