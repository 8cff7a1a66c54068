"""The grant table's shape, defined once: the CDK storage construct, local mode and the tests
all build the table from these constants, so they cannot drift.

Items (single table):
  grant         pk=GRANT#<id>              sk=GRANT
  event         pk=GRANT#<id>              sk=EVENT#<version:08d>   (append-only)
  access index  pk=ACCESS#<cluster>#<arn>  sk=GRANTS   grant_ids = string set of active grants,
                generation = count of changes to that set (both in the changing transaction)
  lease         pk=LEASE#<cluster>#<arn>   sk=LEASE    owner, until (epoch ms), applied, ttl
                (released by a put: owner "", until 0, applied = the access generation put in place)
  side record   pk=SIDE#<id>               sk=<kind>   task token, chat message, used link nonce
                (private to the workflow: never part of a grant, its events or the API)
  idempotency   pk=IDEMPOTENCY#<sha256>    sk=IDEMPOTENCY   the first answer to an Idempotency-Key
                (one per principal and key; ttl = 24 h after the answer, reaped by the table's TTL)
  command       pk=COMMAND#<grant id>      sk=<at, ISO UTC, microseconds>#<request id>   (append-only)
                one Kubernetes request the gateway saw under the grant (domain/recording.py, the
                session log): kind "command" and Command.to_json()'s fields; written once
                (PutItem if absent), never updated or deleted, no index key (in no GSI)

Key prefixes are part of the IAM design (infra/permissions.py): plain PutItem is allowed only on
LEASE#, SIDE#, IDEMPOTENCY# and (for the gateway function only) COMMAND# partitions, DeleteItem only on
IDEMPOTENCY# (the api function only); Query on the table only on GRANT# and COMMAND# (the api function);
GRANT# and ACCESS# items change only inside TransactWriteItems and are never deleted. IAM cannot
require the transaction's condition, so "events are never rewritten" rests on this code's
conditional writes (docs/threat-model.md, F8).
Indexes:
  gsi1 (by status)     gsi1pk=STATUS#<status>   gsi1sk=<expires_at|created_at>#<id>
                       gsi1pk=INDEX#principals  gsi1sk=<cluster>#<arn>  (access index items)
  gsi2 (by requester)  gsi2pk=REQUESTER#<arn>   gsi2sk=<created_at>#<id>
"""

from __future__ import annotations

from typing import Any

PK, SK = "pk", "sk"
GRANT_PREFIX, ACCESS_PREFIX, LEASE_PREFIX, SIDE_PREFIX = "GRANT#", "ACCESS#", "LEASE#", "SIDE#"
IDEMPOTENCY_PREFIX = "IDEMPOTENCY#"
COMMAND_PREFIX = "COMMAND#"  # the gateway's recording: its role may put these and no other item
GSI1, GSI2 = "gsi1", "gsi2"
INDEXES: dict[str, tuple[str, str]] = {GSI1: ("gsi1pk", "gsi1sk"), GSI2: ("gsi2pk", "gsi2sk")}
TTL_ATTRIBUTE = "ttl"


def create_table_kwargs(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for boto3 (local mode and tests)."""
    attributes = [PK, SK, *(k for pair in INDEXES.values() for k in pair)]
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        "KeySchema": [{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": SK, "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": name,
                "KeySchema": [{"AttributeName": h, "KeyType": "HASH"}, {"AttributeName": r, "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
            for name, (h, r) in INDEXES.items()
        ],
    }
