"""Secrets Manager: JSON secrets (Slack bot token and signing secret, approval-link key), cached
for a few minutes per container (so a put or rotated value is picked up without a redeploy) and
never logged."""

from __future__ import annotations

import json
import time
from typing import Any

from .aws import transient_errors


class SecretsManagerSecrets:
    def __init__(self, client: Any, ttl: float = 300.0) -> None:
        self._client = client
        self._ttl = ttl
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}

    def get(self, secret_id: str) -> dict[str, str]:
        cached = self._cache.get(secret_id)
        if cached is None or time.monotonic() - cached[0] > self._ttl:
            with transient_errors("read secret"):
                value = self._client.get_secret_value(SecretId=secret_id)["SecretString"]
            cached = (time.monotonic(), json.loads(value))
            self._cache[secret_id] = cached
        return cached[1]
