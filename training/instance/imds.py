"""The instance the trainer runs on: IMDSv2 metadata (urllib only) and the host's shutdown.

Both sit behind small interfaces so the pipeline runs anywhere: tests pass fakes, and nothing
but `python -m training pipeline --shutdown` on an instance ever powers a machine off.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Protocol

DEFAULT_ENDPOINT = "http://169.254.169.254"
# IMDS answers in milliseconds; a short timeout makes "not on EC2" fail fast.
DEFAULT_TIMEOUT = 2.0
TOKEN_TTL_SECONDS = 21600
# Renew the token well before IMDS expires it.
_TOKEN_MARGIN_SECONDS = 60
_NOT_FOUND = 404
_UNAUTHORIZED = 401
SHUTDOWN_COMMAND = ("/sbin/shutdown", "-h", "now")


class ImdsError(RuntimeError):
    """The instance metadata service could not be reached or refused a request."""


class InstanceMetadata(Protocol):
    """What the trainer reads about its instance."""

    def instance_id(self) -> str:
        """The instance id (i-...)."""
        ...

    def instance_type(self) -> str:
        """The instance type (m7g.large, ...)."""
        ...

    def lifecycle(self) -> str:
        """`spot` or `on-demand`."""
        ...

    def tag(self, key: str) -> str:
        """The value of an instance tag."""
        ...

    def spot_instance_action(self) -> dict[str, str] | None:
        """The pending Spot interruption ({"action": ..., "time": ...}), or None."""
        ...


class Imds:
    """An IMDSv2 client: one session token (PUT), then GETs that carry it."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        token_ttl: int = TOKEN_TTL_SECONDS,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.token_ttl = token_ttl
        self._token: str | None = None
        self._token_expires = 0.0
        # The Spot watcher thread and the pipeline share the client.
        self._lock = threading.Lock()

    def instance_id(self) -> str:
        """The instance id."""
        return self._require("meta-data/instance-id")

    def instance_type(self) -> str:
        """The instance type."""
        return self._require("meta-data/instance-type")

    def lifecycle(self) -> str:
        """`spot` or `on-demand` (IMDS also says `scheduled`, which bills as on-demand)."""
        value = self._require("meta-data/instance-life-cycle")
        return "spot" if value == "spot" else "on-demand"

    def tag(self, key: str) -> str:
        """An instance tag; IMDS shows tags only when the launch template allows it."""
        value = self.get(f"meta-data/tags/instance/{key}")
        if value is None:
            raise ImdsError(
                f"instance tag {key} not found in the instance metadata: is the tag set and "
                "InstanceMetadataTags enabled in the launch template's metadata options?"
            )
        return value

    def spot_instance_action(self) -> dict[str, str] | None:
        """The Spot interruption notice; IMDS answers 404 until there is one."""
        text = self.get("meta-data/spot/instance-action")
        if text is None:
            return None
        try:
            notice = json.loads(text)
        except ValueError as err:
            raise ImdsError(f"spot/instance-action is not JSON: {text[:200]!r}") from err
        return {str(key): str(value) for key, value in notice.items()}

    def get(self, path: str) -> str | None:
        """The text at `/latest/<path>`, or None when IMDS answers 404."""
        for attempt in range(2):
            request = urllib.request.Request(  # noqa: S310 (a fixed http endpoint)
                f"{self.endpoint}/latest/{path}",
                headers={"X-aws-ec2-metadata-token": self._session_token()},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    return bytes(response.read()).decode()
            except urllib.error.HTTPError as err:
                if err.code == _NOT_FOUND:
                    return None
                if err.code == _UNAUTHORIZED and attempt == 0:
                    # The token expired early (IMDS restarted): fetch a new one once.
                    with self._lock:
                        self._token = None
                    continue
                raise ImdsError(f"IMDS GET /latest/{path} answered HTTP {err.code}") from err
            except (urllib.error.URLError, OSError) as err:
                raise ImdsError(f"cannot reach IMDS at {self.endpoint}: {err}") from err
        raise ImdsError(f"IMDS GET /latest/{path} refused a fresh token")

    def _require(self, path: str) -> str:
        """The text at `path`; ImdsError when it does not exist."""
        value = self.get(path)
        if value is None:
            raise ImdsError(f"IMDS has no /latest/{path}")
        return value

    def _session_token(self) -> str:
        """The session token, fetched with PUT /latest/api/token when missing or expiring."""
        with self._lock:
            if self._token is not None and time.monotonic() < self._token_expires:
                return self._token
            request = urllib.request.Request(  # noqa: S310 (a fixed http endpoint)
                f"{self.endpoint}/latest/api/token",
                method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(self.token_ttl)},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    token = bytes(response.read()).decode()
            except urllib.error.HTTPError as err:
                raise ImdsError(f"IMDS refused a session token: HTTP {err.code}") from err
            except (urllib.error.URLError, OSError) as err:
                raise ImdsError(f"cannot reach IMDS at {self.endpoint}: {err}") from err
            self._token = token
            self._token_expires = time.monotonic() + self.token_ttl - _TOKEN_MARGIN_SECONDS
            return token


class Host(Protocol):
    """The machine the trainer runs on."""

    def shutdown(self) -> None:
        """Power the machine off."""
        ...


class SystemHost:
    """This machine: `shutdown -h now` (on the trainer, shutdown terminates the instance)."""

    def shutdown(self) -> None:
        """Power off now."""
        subprocess.run(SHUTDOWN_COMMAND, check=True, timeout=60)
