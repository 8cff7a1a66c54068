"""The grant store on DynamoDB (see ``table.py`` for the item layout).

Every status change is one ``TransactWriteItems``: the grant conditioned on the version that
was read, the event conditioned on not existing, and the principal's active-grant index
updated when the grant enters or leaves ``active``. A lost condition is a :class:`Conflict`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ..domain.access import Left
from ..domain.errors import Conflict, GrantNotFound, TransientAwsError
from ..domain.grant import Decision, Grant, GrantEvent, GrantStatus, RequestContext
from ..domain.holds import HeldCommand
from ..logic.ports import LeaseAttempt
from .aws import error_code, transient_errors
from .table import (
    ACCESS_PREFIX,
    GRANT_PREFIX,
    GSI1,
    GSI2,
    LEASE_PREFIX,
    PK,
    SIDE_PREFIX,
    SK,
    TTL_ATTRIBUTE,
)

_ser, _de = TypeSerializer(), TypeDeserializer()
PRINCIPAL_INDEX = "INDEX#principals"


def _dump(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in item.items() if v is not None and v != ""}


def _load(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _order_key(at: datetime) -> str:
    """A ``gsi1sk`` bound: the same ISO-8601 UTC form the items carry, so strings sort as times."""
    return at.astimezone(UTC).isoformat()


def grant_key(grant_id: str) -> dict[str, Any]:
    return _dump({PK: f"{GRANT_PREFIX}{grant_id}", SK: "GRANT"})


def access_key(principal: str, cluster: str) -> dict[str, Any]:
    return _dump({PK: f"{ACCESS_PREFIX}{cluster}#{principal}", SK: "GRANTS"})


def lease_key(principal: str, cluster: str) -> dict[str, Any]:
    return _dump({PK: f"{LEASE_PREFIX}{cluster}#{principal}", SK: "LEASE"})


def grant_to_item(grant: Grant) -> dict[str, Any]:
    order = grant.expires_at if grant.status is GrantStatus.ACTIVE and grant.expires_at else grant.created_at
    decision = grant.decision.model_dump(mode="json", exclude_defaults=True)
    return _dump(
        {
            PK: f"{GRANT_PREFIX}{grant.id}",
            SK: "GRANT",
            "kind": "grant",
            "id": grant.id,
            "requester": grant.requester,
            "cluster": grant.cluster,
            "namespaces": list(grant.namespaces),
            "scope": grant.scope,
            "reason": grant.reason,
            "duration_s": int(grant.duration.total_seconds()),
            "status": grant.status.value,
            "version": grant.version,
            "created_at": _ts(grant.created_at),
            "decision": decision,
            "approved_at": _ts(grant.approved_at),
            "approved_by": list(grant.approved_by) or None,
            "activated_at": _ts(grant.activated_at),
            "expires_at": _ts(grant.expires_at),
            "ended_at": _ts(grant.ended_at),
            "status_reason": grant.status_reason,
            "extends": grant.extends,
            "extended_by": list(grant.extended_by) or None,
            "context": grant.context.to_json() if grant.context else None,
            "session": grant.session,
            "command": grant.command.to_json() if grant.command else None,
            "gsi1pk": f"STATUS#{grant.status.value}",
            "gsi1sk": f"{_order_key(order)}#{grant.id}",
            "gsi2pk": f"REQUESTER#{grant.requester}",
            "gsi2sk": f"{_order_key(grant.created_at)}#{grant.id}",
        }
    )


def grant_from_item(raw: dict[str, Any]) -> Grant:
    item = _load(raw)
    return Grant(
        id=item["id"],
        requester=item["requester"],
        cluster=item["cluster"],
        namespaces=tuple(item.get("namespaces", ())),
        scope=item["scope"],
        reason=item.get("reason", ""),
        duration=timedelta(seconds=int(item["duration_s"])),
        status=GrantStatus(item["status"]),
        version=int(item["version"]),
        created_at=item["created_at"],
        decision=Decision.model_validate(item["decision"]),
        approved_at=item.get("approved_at"),
        approved_by=tuple(item.get("approved_by", ())),
        activated_at=item.get("activated_at"),
        expires_at=item.get("expires_at"),
        ended_at=item.get("ended_at"),
        status_reason=item.get("status_reason", ""),
        extends=item.get("extends"),
        extended_by=tuple(item.get("extended_by", ())),
        context=RequestContext.model_validate(item["context"]) if item.get("context") else None,  # older items: none
        session=item.get("session"),  # older items: none (every session)
        command=HeldCommand.model_validate(item["command"]) if item.get("command") else None,
    )


def event_to_item(event: GrantEvent) -> dict[str, Any]:
    return _dump(
        {
            PK: f"{GRANT_PREFIX}{event.grant_id}",
            SK: f"EVENT#{event.version:08d}",
            "kind": "event",
            "grant_id": event.grant_id,
            "version": event.version,
            "type": event.type,
            "at": event.at.isoformat(),
            "actor": event.actor,
            "detail": event.model_dump(mode="json")["detail"],
        }
    )


def event_from_item(raw: dict[str, Any]) -> GrantEvent:
    item = _load(raw)
    return GrantEvent(
        grant_id=item["grant_id"],
        version=int(item["version"]),
        type=item["type"],
        at=item["at"],
        actor=item["actor"],
        detail=_plain(item.get("detail", {})),
    )


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: give JSON-friendly ints/floats."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


class DynamoGrantStore:
    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self._table = table

    # -- writes ------------------------------------------------------------------------------

    def create(self, grant: Grant, events: list[GrantEvent]) -> None:
        items: list[dict[str, Any]] = [self._put_new(grant_to_item(grant))]
        items += [self._put_new(event_to_item(e)) for e in events]
        self._transact(items, f"create grant {grant.id}")

    def save(self, previous_version: int, grant: Grant, event: GrantEvent) -> None:
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": grant_to_item(grant),
                    "ConditionExpression": "#v = :v",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": _dump({":v": previous_version}),
                }
            },
            self._put_new(event_to_item(event)),
        ]
        if grant.extends is None:  # an extension is never in the principal's access index
            if event.detail.get("to") == GrantStatus.ACTIVE.value:
                items.append(self._index_update(grant, "ADD"))
            elif event.detail.get("from") == GrantStatus.ACTIVE.value:
                items.append(self._index_update(grant, "DELETE"))
        self._transact(items, f"save grant {grant.id} v{grant.version}")

    def _put_new(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}

    def _index_update(self, grant: Grant, op: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": access_key(grant.requester, grant.cluster),
                # generation: one more per change of the active set, in the same transaction (reconciler.py)
                "UpdateExpression": "SET principal_arn = :p, #c = :c, gsi1pk = :i, gsi1sk = :s "
                + ("ADD generation :one, grant_ids :g" if op == "ADD" else "ADD generation :one DELETE grant_ids :g"),
                "ExpressionAttributeNames": {"#c": "cluster"},
                "ExpressionAttributeValues": _dump(
                    {
                        ":p": grant.requester,
                        ":c": grant.cluster,
                        ":i": PRINCIPAL_INDEX,
                        ":s": f"{grant.cluster}#{grant.requester}",
                        ":g": {grant.id},
                        ":one": 1,
                    }
                ),
            }
        }

    def _transact(self, items: list[dict[str, Any]], what: str) -> None:
        try:
            with transient_errors(what):
                self._ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
                raise Conflict(f"{what}: another writer came first ({', '.join(reasons) or 'cancelled'})") from exc
            raise

    # -- reads -------------------------------------------------------------------------------

    def get(self, grant_id: str) -> Grant:
        with transient_errors(f"get grant {grant_id}"):
            found = self._ddb.get_item(TableName=self._table, Key=grant_key(grant_id), ConsistentRead=True)
        if "Item" not in found:
            raise GrantNotFound(f"no grant '{grant_id}'")
        return grant_from_item(found["Item"])

    def events(self, grant_id: str) -> list[GrantEvent]:
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
            ExpressionAttributeValues=_dump({":pk": f"{GRANT_PREFIX}{grant_id}", ":e": "EVENT#"}),
            ConsistentRead=True,
        )
        return [event_from_item(i) for i in items]

    def by_requester(self, requester: str, status: GrantStatus | None = None, limit: int = 50) -> list[Grant]:
        condition = {"FilterExpression": "#st = :st", "ExpressionAttributeNames": {"#st": "status"}} if status else {}
        values = {":r": f"REQUESTER#{requester}"} | ({":st": status.value} if status else {})
        items = self._query(
            page_size=limit,
            IndexName=GSI2,
            KeyConditionExpression="gsi2pk = :r",
            ExpressionAttributeValues=_dump(values),
            ScanIndexForward=False,
            **condition,
        )
        # Pages of ``limit``, read until ``limit`` grants match: the cost follows the answer, not the history.
        return [grant_from_item(i) for i in islice(items, limit)]

    def by_status(
        self,
        status: GrantStatus,
        before: datetime | None = None,
        *,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> Iterator[Grant]:
        condition, values = "gsi1pk = :s", {":s": f"STATUS#{status.value}"}
        if before is not None:
            condition += " AND gsi1sk <= :b"
            values[":b"] = f"{_order_key(before)}#~"  # "~" sorts after every id: expires_at == before counts
        items = self._query(
            page_size=limit,
            IndexName=GSI1,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=_dump(values),
            ScanIndexForward=not newest_first,
        )
        for item in islice(items, limit):
            yield grant_from_item(item)

    def created_between(
        self,
        status: GrantStatus,
        since: datetime,
        until: datetime,
        *,
        after: tuple[datetime, str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Grant]:
        """Ended grants in ``status`` created in [since, until), oldest first, strictly after the
        cursor (created_at, id), at most ``limit``. One key condition on ``gsi1sk`` (``created_at#id``
        once a grant has ended): DynamoDB reads only the range, so years of history cost nothing here."""
        if not status.is_terminal:
            raise ValueError(f"gsi1sk orders {status.value} grants by another time; read them with by_status")
        low = _order_key(since) if after is None else f"{_order_key(after[0])}#{after[1]}"
        values = {":s": f"STATUS#{status.value}", ":low": low, ":high": _order_key(until)}
        items = self._query(
            page_size=None if limit is None else limit + (after is not None),
            IndexName=GSI1,
            KeyConditionExpression="gsi1pk = :s AND gsi1sk BETWEEN :low AND :high",
            ExpressionAttributeValues=_dump(values),
        )
        # BETWEEN is inclusive: the cursor's own grant, listed on the page before, is skipped.
        found = (grant_from_item(i) for i in items if after is None or _load(i)["gsi1sk"] != low)
        yield from islice(found, limit)

    def active_for(self, principal: str, cluster: str) -> list[Grant]:
        return self.active_with_generation(principal, cluster)[0]

    def active_with_generation(self, principal: str, cluster: str) -> tuple[list[Grant], int]:
        index = self._access_index(principal, cluster)
        ids = sorted(index.get("grant_ids", set()))
        generation = int(index.get("generation", 0))
        if not ids:
            return [], generation
        grants = self._batch_get([grant_key(i) for i in ids])
        return [g for g in grants if g.status is GrantStatus.ACTIVE], generation

    def access_generation(self, principal: str, cluster: str) -> int:
        return int(self._access_index(principal, cluster).get("generation", 0))

    def _access_index(self, principal: str, cluster: str) -> dict[str, Any]:
        with transient_errors("read access index"):
            found = self._ddb.get_item(
                TableName=self._table, Key=access_key(principal, cluster), ConsistentRead=True
            ).get("Item")
        return _load(found) if found else {}

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[Grant]:
        """Consistent BatchGetItem in chunks of 100 (its limit), retrying unprocessed keys."""
        found: list[Grant] = []
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {self._table: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
            for _ in range(8):
                with transient_errors("read active grants"):
                    response = self._ddb.batch_get_item(RequestItems=pending)
                found += [grant_from_item(i) for i in response["Responses"].get(self._table, [])]
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise TransientAwsError("reading active grants: keys left unprocessed after 8 attempts")
        return found

    def managed_principals(self) -> Iterator[tuple[str, str]]:
        for item in self._query(
            IndexName=GSI1,
            KeyConditionExpression="gsi1pk = :i",
            ExpressionAttributeValues=_dump({":i": PRINCIPAL_INDEX}),
        ):
            plain = _load(item)
            yield plain["principal_arn"], plain["cluster"]

    def _query(self, page_size: int | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Items page by page; ``page_size`` (Query's ``Limit``) when the caller wants only a few,
        so DynamoDB examines about that many rather than a full 1 MB page."""
        paging = {"PaginationConfig": {"PageSize": page_size}} if page_size else {}
        with transient_errors("query grants"):
            pages = self._ddb.get_paginator("query").paginate(TableName=self._table, **kwargs, **paging)
            for page in pages:
                yield from page["Items"]

    # -- private records next to a grant --------------------------------------------------------

    def put_side(self, grant_id: str, kind: str, data: dict[str, str], *, only_if_absent: bool = False) -> bool:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": _dump({PK: f"{SIDE_PREFIX}{grant_id}", SK: kind, "kind": "side", "data": data}),
        }
        if only_if_absent:
            request["ConditionExpression"] = "attribute_not_exists(pk)"
        try:
            with transient_errors(f"store {kind} of {grant_id}"):
                self._ddb.put_item(**request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get_side(self, grant_id: str, kind: str) -> dict[str, str] | None:
        with transient_errors(f"read {kind} of {grant_id}"):
            found = self._ddb.get_item(
                TableName=self._table, Key=_dump({PK: f"{SIDE_PREFIX}{grant_id}", SK: kind}), ConsistentRead=True
            ).get("Item")
        return dict(_load(found)["data"]) if found else None

    # -- leases ------------------------------------------------------------------------------

    def acquire_lease(self, key: str, owner: str, now: datetime, ttl: timedelta) -> LeaseAttempt:
        cluster, principal = key.split("#", 1)
        until = now + ttl
        try:
            with transient_errors("acquire lease"):
                # An update, not a put: taking the lease leaves ``applied`` as the last release
                # recorded it, so a waiter learns it while the lease is held again; it takes
                # (removes) what that release recorded as left on the cluster.
                answer = self._ddb.update_item(
                    TableName=self._table,
                    Key=lease_key(principal, cluster),
                    UpdateExpression="SET #o = :o, #u = :u, #t = :t REMOVE #l",
                    ConditionExpression="attribute_not_exists(pk) OR #u < :now",
                    ExpressionAttributeNames={"#o": "owner", "#u": "until", "#t": TTL_ATTRIBUTE, "#l": "left"},
                    ExpressionAttributeValues=_dump(
                        {
                            ":o": owner,
                            ":u": int(until.timestamp() * 1000),
                            ":t": int(until.timestamp()) + 3600,
                            ":now": int(now.timestamp() * 1000),
                        }
                    ),
                    ReturnValues="ALL_OLD",  # the released lease: what was applied before
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",  # the held lease: the same, for a waiter
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return LeaseAttempt(False, _applied(exc.response.get("Item")))
            raise
        old = answer.get("Attributes")
        recorded = _load(old).get("left") if old else None
        return LeaseAttempt(True, _applied(old), Left.from_json(recorded) if recorded else None)

    def release_lease(self, key: str, owner: str, applied: int = 0, left: Left | None = None) -> None:
        """A released lease stays as an item (free: ``until`` 0) carrying the generation applied,
        so a waiter's next attempt learns it; the table's TTL reaps it a day later."""
        cluster, principal = key.split("#", 1)
        try:
            with transient_errors("release lease"):
                self._ddb.put_item(
                    TableName=self._table,
                    Item={
                        **lease_key(principal, cluster),
                        **_dump(
                            {
                                "owner": "",
                                "until": 0,
                                "applied": applied,
                                TTL_ATTRIBUTE: _epoch() + 86400,
                                **({"left": left.to_json()} if left is not None else {}),
                            }
                        ),
                    },
                    ConditionExpression="#o = :o",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues=_dump({":o": owner}),
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":  # expired and taken over: fine
                raise


def _applied(item: dict[str, Any] | None) -> int:
    """The generation a lease item records as applied (0 for a lease never released since)."""
    return int(_load(item).get("applied", 0)) if item else 0


def _epoch() -> int:
    """Seconds now, for the TTL attribute only (DynamoDB reaps by its own wall clock)."""
    return int(time.time())
