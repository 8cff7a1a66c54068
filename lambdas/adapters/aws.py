"""What every adapter shares: client construction with the SDK's retries, and the mapping of
AWS failures that retrying later may fix onto :class:`TransientAwsError`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..domain.errors import TransientAwsError

RETRIES = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10)

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "InternalServerError",
        "InternalServerException",
        "ServerException",
        "ServiceUnavailableException",
        "ServiceUnavailable",
    }
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def transient_errors(what: str) -> Iterator[None]:
    """Re-raise throttling, 5xx and connection failures (already retried by the SDK) as
    :class:`TransientAwsError`; anything else propagates unchanged for the adapter to map."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        mapped = as_transient(what, exc)
        if mapped is None:
            raise
        raise mapped from exc


def as_transient(what: str, exc: BaseException) -> TransientAwsError | None:
    """``exc`` as :class:`TransientAwsError` if retrying later may fix it, else None."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if error_code(exc) in TRANSIENT_CODES or status >= 500:
            return TransientAwsError(f"{what}: {error_code(exc) or status}")
        return None
    if isinstance(exc, BotoCoreError):
        return TransientAwsError(f"{what}: {type(exc).__name__}")
    return None


@cache
def client(service: str, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """One client per service/region/endpoint per process (clients are thread-safe)."""
    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint_url, config=RETRIES)
