"""The grant store in memory, behaving as ``DynamoGrantStore`` on DynamoDB does.

It keeps the very items the adapter writes (``grant_to_item``, ``event_to_item``, the access
index, leases, side records: DynamoDB's typed JSON, same keys and attributes), so what a
snapshot of the table shows is the same in both worlds, and applies the adapter's conditions:

- ``create``/``save``: one transaction; every condition is checked before anything is written
  (a lost one is :class:`Conflict`, nothing written), the grant conditioned on its version, each
  event on not existing, the access index ``ADD``/``DELETE`` of a string set (an emptied set is
  removed, the item stays: ``managed_principals`` remembers every principal ever indexed);
- reads the adapter makes strongly consistent (``get``, ``events``, ``active_for``,
  ``get_side``, the lease conditions) see every write at once;
- reads through a GSI (``by_status``, ``by_requester``, ``created_between``,
  ``managed_principals``) are eventually consistent in DynamoDB. With ``gsi_lag`` on they see
  the table as it was when :meth:`settle` last ran: the world settles before each invocation,
  so an invocation does not see its own writes in a GSI (DynamoDB propagates within about a
  second, but promises no bound), and everything written before it started.

Items are never changed in place (each write stores a new dict): a snapshot may share them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from eks_jit.server.adapters.dynamodb import (
    PRINCIPAL_INDEX,
    _dump,
    _load,
    _order_key,
    event_from_item,
    event_to_item,
    grant_from_item,
    grant_to_item,
)
from eks_jit.server.adapters.table import ACCESS_PREFIX, GRANT_PREFIX, INDEXES, LEASE_PREFIX, SIDE_PREFIX, TTL_ATTRIBUTE
from eks_jit.server.domain.access import Left
from eks_jit.server.domain.errors import Conflict, GrantNotFound
from eks_jit.server.domain.grant import Grant, GrantEvent, GrantStatus
from eks_jit.server.logic.ports import LeaseAttempt

Key = tuple[str, str]
Item = dict[str, Any]


def _key(item: Item) -> Key:
    return item["pk"]["S"], item["sk"]["S"]


def _s(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


class MemoryGrantStore:
    def __init__(self, *, gsi_lag: bool = False) -> None:
        self.gsi_lag = gsi_lag
        self.items: dict[Key, Item] = {}
        self._gsi: dict[Key, Item] = {}  # what the GSIs show (== items unless gsi_lag)
        self._pending: dict[Key, Item | None] = {}

    def reset(self) -> None:
        self.items.clear()
        self._gsi.clear()
        self._pending.clear()

    def settle(self) -> None:
        """GSI propagation catches up with the table."""
        for key, item in self._pending.items():
            if item is None:
                self._gsi.pop(key, None)
            else:
                self._gsi[key] = item
        self._pending.clear()

    def _write(self, key: Key, item: Item | None) -> None:
        if item is None:
            self.items.pop(key, None)
        else:
            self.items[key] = item
        if self.gsi_lag:
            self._pending[key] = item
        elif item is None:
            self._gsi.pop(key, None)
        else:
            self._gsi[key] = item

    # -- writes ------------------------------------------------------------------------------

    def create(self, grant: Grant, events: list[GrantEvent]) -> None:
        puts = [grant_to_item(grant), *(event_to_item(e) for e in events)]
        reasons = ["ConditionalCheckFailed" if _key(i) in self.items else "None" for i in puts]
        self._transact(puts, reasons, f"create grant {grant.id}")

    def save(self, previous_version: int, grant: Grant, event: GrantEvent) -> None:
        grant_item, event_item = grant_to_item(grant), event_to_item(event)
        stored = self.items.get(_key(grant_item))
        reasons = [
            "None"
            if stored is not None and int(stored["version"]["N"]) == previous_version
            else "ConditionalCheckFailed",
            "ConditionalCheckFailed" if _key(event_item) in self.items else "None",
        ]
        puts = [grant_item, event_item]
        if grant.extends is None:  # an extension is never in the principal's access index
            if event.detail.get("to") == GrantStatus.ACTIVE.value:
                puts.append(self._index_update(grant, add=True))
                reasons.append("None")
            elif event.detail.get("from") == GrantStatus.ACTIVE.value:
                puts.append(self._index_update(grant, add=False))
                reasons.append("None")
        self._transact(puts, reasons, f"save grant {grant.id} v{grant.version}")

    def _index_update(self, grant: Grant, *, add: bool) -> Item:
        key = (f"{ACCESS_PREFIX}{grant.cluster}#{grant.requester}", "GRANTS")
        before = self.items.get(key, {})
        ids = set(before.get("grant_ids", {}).get("SS", []))
        ids = ids | {grant.id} if add else ids - {grant.id}
        item = {k: v for k, v in before.items() if k != "grant_ids"} | _dump(
            {
                "pk": key[0],
                "sk": key[1],
                "principal_arn": grant.requester,
                "cluster": grant.cluster,
                "gsi1pk": PRINCIPAL_INDEX,
                "gsi1sk": f"{grant.cluster}#{grant.requester}",
            }
        )
        if ids:  # DELETE of the last element removes the attribute; the item stays
            item["grant_ids"] = {"SS": sorted(ids)}
        item["generation"] = {"N": str(int(before.get("generation", {}).get("N", "0")) + 1)}  # ADD generation :one
        return item

    def _transact(self, puts: list[Item], reasons: list[str], what: str) -> None:
        if any(r != "None" for r in reasons):
            raise Conflict(f"{what}: another writer came first ({', '.join(reasons)})")
        for item in puts:
            self._write(_key(item), item)

    # -- reads -------------------------------------------------------------------------------

    def get(self, grant_id: str) -> Grant:
        found = self.items.get((f"{GRANT_PREFIX}{grant_id}", "GRANT"))
        if found is None:
            raise GrantNotFound(f"no grant '{grant_id}'")
        return grant_from_item(found)

    def events(self, grant_id: str) -> list[GrantEvent]:
        pk = f"{GRANT_PREFIX}{grant_id}"
        found = sorted((k, i) for k, i in self.items.items() if k[0] == pk and k[1].startswith("EVENT#"))
        return [event_from_item(i) for _, i in found]

    def _index(self, index: str, pk: str, *, descending: bool = False) -> list[Item]:
        hash_key, range_key = INDEXES[index]
        found = [i for i in self._gsi.values() if _s(i, hash_key) == pk and range_key in i]
        return sorted(found, key=lambda i: str(i[range_key]["S"]), reverse=descending)

    def by_requester(self, requester: str, status: GrantStatus | None = None, limit: int = 50) -> list[Grant]:
        items = self._index("gsi2", f"REQUESTER#{requester}", descending=True)
        matching = (i for i in items if status is None or _s(i, "status") == status.value)
        return [grant_from_item(i) for i in islice(matching, limit)]

    def by_status(
        self,
        status: GrantStatus,
        before: datetime | None = None,
        *,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> Iterator[Grant]:
        items = self._index("gsi1", f"STATUS#{status.value}", descending=newest_first)
        if before is not None:
            bound = f"{_order_key(before)}#~"
            items = [i for i in items if i["gsi1sk"]["S"] <= bound]
        return iter([grant_from_item(i) for i in islice(items, limit)])

    def created_between(
        self,
        status: GrantStatus,
        since: datetime,
        until: datetime,
        *,
        after: tuple[datetime, str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Grant]:
        if not status.is_terminal:
            raise ValueError(f"gsi1sk orders {status.value} grants by another time; read them with by_status")
        low = _order_key(since) if after is None else f"{_order_key(after[0])}#{after[1]}"
        high = _order_key(until)
        items = [
            i
            for i in self._index("gsi1", f"STATUS#{status.value}")
            if low <= i["gsi1sk"]["S"] <= high and (after is None or i["gsi1sk"]["S"] != low)
        ]
        return iter([grant_from_item(i) for i in islice(items, limit)])

    def active_for(self, principal: str, cluster: str) -> list[Grant]:
        return self.active_with_generation(principal, cluster)[0]

    def active_with_generation(self, principal: str, cluster: str) -> tuple[list[Grant], int]:
        found = self.items.get((f"{ACCESS_PREFIX}{cluster}#{principal}", "GRANTS"))
        ids = sorted(found.get("grant_ids", {}).get("SS", [])) if found else []
        grants = [self.items.get((f"{GRANT_PREFIX}{i}", "GRANT")) for i in ids]
        decoded = [grant_from_item(g) for g in grants if g is not None]
        return [g for g in decoded if g.status is GrantStatus.ACTIVE], self._generation(principal, cluster)

    def access_generation(self, principal: str, cluster: str) -> int:
        return self._generation(principal, cluster)

    def _generation(self, principal: str, cluster: str) -> int:
        found = self.items.get((f"{ACCESS_PREFIX}{cluster}#{principal}", "GRANTS")) or {}
        return int(found.get("generation", {}).get("N", "0"))

    def managed_principals(self) -> Iterator[tuple[str, str]]:
        return iter(
            [(str(_s(i, "principal_arn")), str(_s(i, "cluster"))) for i in self._index("gsi1", PRINCIPAL_INDEX)]
        )

    # -- private records next to a grant --------------------------------------------------------

    def put_side(self, grant_id: str, kind: str, data: dict[str, str], *, only_if_absent: bool = False) -> bool:
        key = (f"{SIDE_PREFIX}{grant_id}", kind)
        if only_if_absent and key in self.items:
            return False
        self._write(key, _dump({"pk": key[0], "sk": key[1], "kind": "side", "data": data}))
        return True

    def get_side(self, grant_id: str, kind: str) -> dict[str, str] | None:
        found = self.items.get((f"{SIDE_PREFIX}{grant_id}", kind))
        return dict(_load(found)["data"]) if found else None

    # -- leases ------------------------------------------------------------------------------

    def acquire_lease(self, key: str, owner: str, now: datetime, ttl: timedelta) -> LeaseAttempt:
        cluster, principal = key.split("#", 1)
        item_key = (f"{LEASE_PREFIX}{cluster}#{principal}", "LEASE")
        held = self.items.get(item_key)
        recorded = int(held.get("applied", {}).get("N", "0")) if held else 0  # ALL_OLD, either way
        now_ms = int(now.timestamp() * 1000)
        if held is not None and not int(held["until"]["N"]) < now_ms:
            return LeaseAttempt(False, recorded)
        until = now + ttl
        taken = _dump(
            {
                "pk": item_key[0],
                "sk": item_key[1],
                "owner": owner,
                "until": int(until.timestamp() * 1000),
                TTL_ATTRIBUTE: int(until.timestamp()) + 3600,
            }
        )
        kept = {k: v for k, v in (held or {}).items() if k != "left"}  # REMOVE left
        self._write(item_key, {**kept, **taken})  # an update: ``applied`` stays as recorded
        left = held.get("left") if held else None
        return LeaseAttempt(True, recorded, Left.from_json(left["S"]) if left else None)

    def release_lease(self, key: str, owner: str, applied: int = 0, left: Left | None = None) -> None:
        cluster, principal = key.split("#", 1)
        item_key = (f"{LEASE_PREFIX}{cluster}#{principal}", "LEASE")
        held = self.items.get(item_key)
        if held is not None and held["owner"]["S"] == owner:  # expired and taken over: fine
            released = {"pk": item_key[0], "sk": item_key[1], "owner": "", "until": 0, "applied": applied}
            if left is not None:
                released["left"] = left.to_json()
            self._write(item_key, _dump(released))
