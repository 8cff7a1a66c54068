"""What every adapter shares: client construction with the SDK's retries, and the mapping of
AWS failures that retrying later may fix onto :class:`TransientAwsError`."""

from __future__ import annotations

import threading
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


# One boto3 session per process. A session holds botocore's loader, which parses the endpoint
# rules and each service's model once; a session per client parsed them again for every client
# (five clients in a fresh interpreter: 760 ms with a session each, 305 ms from one; docs/performance.md).
# Sessions are not thread-safe, so clients are made under a lock (local mode serves requests on
# threads); the clients themselves are.
_session: boto3.session.Session | None = None
_making = threading.RLock()


def session() -> boto3.session.Session:
    global _session
    with _making:
        if _session is None:
            _session = boto3.session.Session()
        return _session


@cache
def client(service: str, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """One client per service/region/endpoint per process (clients are thread-safe)."""
    with _making:
        return session().client(service, region_name=region, endpoint_url=endpoint_url, config=RETRIES)


def client_with(service: str, region: str, endpoint_url: str | None, credentials: dict[str, str]) -> Any:
    """A client signing with ``credentials`` (an STS ``Credentials`` answer), from the shared
    session: another account's role, without loading the service model again."""
    with _making:
        return session().client(
            service,
            region_name=region,
            endpoint_url=endpoint_url,
            config=RETRIES,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )


class LazyClient:
    """The client of ``service``, made on its first use. A function builds all its adapters at
    once (lambdas/bootstrap.py) but loads the model, about 30 ms each, only of the services it
    calls: the api's auto-approved request never touches Step Functions or Secrets Manager."""

    def __init__(self, service: str, region: str | None = None, endpoint_url: str | None = None) -> None:
        self._args = (service, region, endpoint_url)

    def __getattr__(self, name: str) -> Any:
        return getattr(client(*self._args), name)
