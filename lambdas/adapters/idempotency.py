"""Idempotency records on the grant table, through powertools' idempotency utility.

One record per (principal, ``Idempotency-Key``)::

  pk=IDEMPOTENCY#v1#<sha256 of {"key", "scope"}>   sk=IDEMPOTENCY
  record_status   INPROGRESS | COMPLETED
  request_hash    sha256 of the request (operation and body): another request with the key is refused
  answer          the first answer, JSON ({"status", "body"})
  in_flight_until epoch ms: an INPROGRESS record older than this is a dead attempt, and is taken over
  ttl             epoch s: the end of the window; the table's TTL reaps the record after it

The scope (the caller's principal ARN) is part of the hashed key, so two principals' records
never meet: the same key from another caller is another record, not a reuse of this one.

powertools keeps the answer only when the function returns; when it raises, powertools deletes
the record and the error propagates, so a retry runs again. Answers that recorded something
(a policy denial records a denied grant) must therefore be returned, not raised: the HTTP edge
(``lambdas/api/idempotent.py``) does that.

Clock: powertools reads the wall clock, not ``deps.clock``, in five places (3.37.0):
``BasePersistenceLayer._get_expiry_timestamp`` and ``save_inprogress`` (the window's end and the
in-flight deadline), ``DynamoDBPersistenceLayer._put_record`` (``:now`` in the put's condition),
``DataRecord.is_expired`` and ``IdempotencyHandler._handle_for_status``. All five compare wall
time with wall time, as DynamoDB's TTL does, so a shifted process clock (faketime) shifts them
together; a test that moves ``deps.clock`` does not move the window, and one that needs the
window to end ages the record itself (docs/testing.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.base import IdempotencyHandler
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyInconsistentStateError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import DynamoDBPersistenceLayer

from ..domain.errors import IdempotencyInProgress, IdempotencyKeyReused
from ..observability import logger
from .aws import as_transient
from .table import IDEMPOTENCY_PREFIX, PK, SK, TTL_ATTRIBUTE

VERSION = "v1"  # of the hashed key's shape: a change starts new records instead of misreading old ones
RECORD_SK = "IDEMPOTENCY"


class _GrantTableRecords(DynamoDBPersistenceLayer):
    """powertools' DynamoDB layer on the grant table's composite key: each record in its own
    ``IDEMPOTENCY#`` partition (IAM's ``dynamodb:LeadingKeys`` scopes them), not powertools'
    default of one shared partition per function."""

    def _get_key(self, idempotency_key: str) -> dict[str, Any]:
        return {PK: {"S": IDEMPOTENCY_PREFIX + idempotency_key}, SK: {"S": RECORD_SK}}


class _Remaining:
    """What powertools asks a Lambda context for: how long the first attempt may still run."""

    def __init__(self, in_flight: timedelta) -> None:
        self._ms = max(1, int(in_flight.total_seconds() * 1000))

    def get_remaining_time_in_millis(self) -> int:
        return self._ms


class DynamoIdempotency:
    def __init__(self, ddb: Any, table: str, *, window: timedelta) -> None:
        self._ddb = ddb
        self._table = table
        self._window = window
        self._records: _GrantTableRecords | None = None  # built on first use: only the api function keeps any

    def _store(self) -> _GrantTableRecords:
        if self._records is None:
            self._records = _GrantTableRecords(
                table_name=self._table,
                boto3_client=self._ddb,
                key_attr=PK,
                expiry_attr=TTL_ATTRIBUTE,
                in_progress_expiry_attr="in_flight_until",
                status_attr="record_status",
                data_attr="answer",
                validation_key_attr="request_hash",
            )
        return self._records

    def once(
        self,
        scope: str,
        key: str,
        request: dict[str, Any],
        answer: Callable[[], dict[str, Any]],
        *,
        in_flight: timedelta,
    ) -> tuple[dict[str, Any], bool]:
        computed: list[dict[str, Any]] = []

        def first_answer() -> dict[str, Any]:
            computed.append(answer())
            return computed[0]

        config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="request",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=int(self._window.total_seconds()),
            hash_function="sha256",
            lambda_context=cast(Any, _Remaining(in_flight)),
        )
        handler = IdempotencyHandler(
            function=first_answer,
            function_payload={"key": {"scope": scope, "key": key}, "request": request},
            config=config,
            persistence_store=self._store(),
            key_prefix=VERSION,
            function_args=(),
            function_kwargs={},
        )
        try:
            stored = handler.handle()
        except IdempotencyValidationError:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different request: nothing was done; "
                "send a new key for a new request"
            ) from None
        except (IdempotencyAlreadyInProgressError, IdempotencyInconsistentStateError):
            raise IdempotencyInProgress(
                "the first request with this Idempotency-Key is still being answered: retry with the same key"
            ) from None
        except IdempotencyPersistenceLayerError as exc:
            if computed:
                # The request was done and answered; only marking its record complete failed. Answer
                # it: a retry meets the record in flight (409, retryable) until ``in_flight`` ends,
                # then runs again under the same grant id and resumes the grant it finds.
                logger.warning("idempotency record not completed", extra={"error": str(exc)})
                return computed[0], False
            raise _translated(exc) from exc
        return cast(dict[str, Any], stored), not computed


def _translated(exc: IdempotencyPersistenceLayerError) -> Exception:
    """powertools wraps every failure of its store: a throttle or an outage underneath is
    :class:`TransientAwsError` (503, retryable), as the other adapters map it; anything else stays."""
    return (as_transient("idempotency record", exc.__cause__) if exc.__cause__ else None) or exc
