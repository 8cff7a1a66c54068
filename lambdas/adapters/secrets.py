"""Secrets Manager: JSON secrets (Slack bot token and signing secret, approval-link key), read
once per container and never logged."""

from __future__ import annotations

import json
from typing import Any

from lambdas.adapters.aws import transient_errors


class SecretsManagerSecrets:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._cache: dict[str, dict[str, str]] = {}

    def get(self, secret_id: str) -> dict[str, str]:
        if secret_id not in self._cache:
            with transient_errors("read secret"):
                value = self._client.get_secret_value(SecretId=secret_id)["SecretString"]
            self._cache[secret_id] = json.loads(value)
        return self._cache[secret_id]
