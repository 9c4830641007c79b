"""The Spot notice and time-limit watch: a thread polls IMDS and the clock during a run."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from training.aws import Clock, iso, log
from training.instance.imds import ImdsError, InstanceMetadata
from training.registry import INTERRUPTED, TIMED_OUT

_log = logging.getLogger(__name__)

# IMDS publishes a Spot notice two minutes ahead; polling every 5 s leaves ~115 s to stop.
SPOT_POLL_SECONDS = 5.0


class StopError(Exception):
    """The run must stop now with `status` (interruption or time limit)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Watchdog:
    """Polls IMDS for a Spot notice and the clock for the deadline; sets `cancel` on either."""

    def __init__(
        self, imds: InstanceMetadata, *, deadline: datetime, clock: Clock, poll_seconds: float
    ) -> None:
        self.cancel = threading.Event()
        self.notice: dict[str, str] | None = None
        self.timed_out = False
        self._imds = imds
        self._deadline = deadline
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="spot-watcher", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=self._poll_seconds + 5)

    def _watch(self) -> None:
        while not self._done.wait(self._poll_seconds):
            self.check()

    def check(self) -> None:
        """Poll once; an IMDS hiccup is logged and the next poll tries again."""
        with self._lock:
            if self.cancel.is_set():
                return
            try:
                notice = self._imds.spot_instance_action()
            except ImdsError as err:
                log(_log, "cannot poll for a Spot notice", level=logging.WARNING, error=str(err))
                notice = None
            if notice:
                self.notice = notice
                self.cancel.set()
                log(_log, "Spot interruption notice", level=logging.WARNING, notice=notice)
            elif self._clock() >= self._deadline:
                self.timed_out = True
                self.cancel.set()

    def stop_reason(self, step: str) -> StopError | None:
        """Why the run must stop before or during `step`, if it must."""
        if self.notice is not None:
            return StopError(
                INTERRUPTED,
                f"Spot interruption notice during {step}: {self.notice.get('action', '?')} "
                f"at {self.notice.get('time', '?')}; nothing pushed after the notice",
            )
        if self.timed_out:
            return StopError(
                TIMED_OUT,
                f"time limit reached during {step} (deadline {iso(self._deadline)})",
            )
        return None

    def checkpoint(self, step: str) -> None:
        """Raise StopError when a notice is out or the time is up; called before every step."""
        self.check()
        stop = self.stop_reason(step)
        if stop is not None:
            raise stop
