"""moto's DynamoDB under concurrent callers behaves as DynamoDB does (eks_jit/emulation/dynamodb_atomic.py)."""

from __future__ import annotations

import sys
import threading

import boto3
from moto import mock_aws


def test_reads_racing_writes_never_fail() -> None:
    # moto answers an index Query or a Scan by iterating the table's dicts; a concurrent put
    # that adds a partition made the read raise "dictionary changed size during iteration" (a CI run of
    # test_idempotent_requests failed that way). DynamoDB never fails a read for that.
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-g",
                    "KeySchema": [
                        {"AttributeName": "g", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        errors: list[BaseException] = []
        done = threading.Event()

        def write() -> None:
            try:
                for n in range(400):
                    client.put_item(TableName="t", Item={"pk": {"S": f"p{n}"}, "sk": {"S": "s"}, "g": {"S": "g"}})
            finally:
                done.set()

        def read() -> None:
            while not done.is_set():
                try:
                    client.query(
                        TableName="t",
                        IndexName="by-g",
                        KeyConditionExpression="g = :g",
                        ExpressionAttributeValues={":g": {"S": "g"}},
                    )
                    client.scan(TableName="t")
                except Exception as exc:
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=write), threading.Thread(target=read), threading.Thread(target=read)]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as a loaded CI machine does, and more
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            sys.setswitchinterval(interval)
        assert errors == []
        count = client.scan(TableName="t", Select="COUNT")["Count"]
        assert count == 400
