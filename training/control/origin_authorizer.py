"""The origin lock's Lambda authorizer: API Gateway admits a request only with CloudFront's key.

CloudFront sends the key in the `x-origin-key` header of every origin request. API Gateway
refuses a request without that header itself (401, the identity source is missing) and asks
this function about the rest (AWS docs: http-api-lambda-authorizer). It answers with the
simple response `{"isAuthorized": bool}`; API Gateway caches the answer per header value, so
this runs about once per key every few minutes, not once per request.

It accepts the secret's AWSCURRENT and AWSPREVIOUS values, so a rotation never refuses the key
CloudFront's edges still send (docs/runbook.md). Runs in a Lambda: stdlib + boto3 only.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError

from training.aws import configure_logging, error_code, log, require_env
from training.contract import ORIGIN_HEADER, ORIGIN_KEY_FIELD, Env

# How long a read of the secret is trusted: a key removed from AWSPREVIOUS stops working
# within this plus API Gateway's cache TTL.
REFRESH_SECONDS = 300
STAGES = ("AWSCURRENT", "AWSPREVIOUS")

_log = logging.getLogger(__name__)


class Keys:
    """The accepted key values, read from Secrets Manager and kept for REFRESH_SECONDS."""

    def __init__(
        self,
        secret_arn: str,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_arn = secret_arn
        self._client = client
        self._clock = clock
        self._values: tuple[str, ...] = ()
        self._read_at: float | None = None

    def values(self) -> tuple[str, ...]:
        """The keys to accept now, read again when the last read is too old."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= REFRESH_SECONDS:
            self._values = self._read()
            self._read_at = now
        return self._values

    def _read(self) -> tuple[str, ...]:
        client = self._client or boto3.client("secretsmanager")
        found = []
        for stage in STAGES:
            try:
                secret = client.get_secret_value(SecretId=self._secret_arn, VersionStage=stage)
            except ClientError as err:
                # A secret never rotated has no AWSPREVIOUS version.
                if stage != "AWSCURRENT" and error_code(err) == "ResourceNotFoundException":
                    continue
                raise
            value = json.loads(secret["SecretString"]).get(ORIGIN_KEY_FIELD)
            if isinstance(value, str) and value:
                found.append(value)
        return tuple(found)


def authorized(headers: Mapping[str, str] | None, keys: tuple[str, ...]) -> bool:
    """Whether the request carries one of the keys (compared in constant time)."""
    offered = (headers or {}).get(ORIGIN_HEADER, "")
    return bool(offered) and any(
        hmac.compare_digest(offered.encode(), key.encode()) for key in keys
    )


_keys: Keys | None = None


def handler(event: Mapping[str, Any], context: object) -> dict[str, bool]:
    """Lambda entry point: an HTTP API REQUEST authorizer, payload 2.0, simple response."""
    global _keys  # noqa: PLW0603 - one cache per execution environment, by design
    configure_logging()
    if _keys is None:
        _keys = Keys(require_env(os.environ, Env.ORIGIN_SECRET_ARN))
    allowed = authorized(event.get("headers"), _keys.values())
    if not allowed:
        # Never the offered value: a wrong key in the logs would be a key given away.
        log(_log, "origin key refused", level=logging.WARNING, route=event.get("routeKey"))
    return {"isAuthorized": allowed}
