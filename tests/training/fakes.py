"""Test doubles for the trainer: instance metadata, a docker command runner, a clock, events."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from training.docker import CommandCancelledError, CommandError, CommandResult
from training.imds import ImdsError

TABLE = "registry"
REPOSITORY = "iris-models"
ACCOUNT = "123456789012"
EVENTS = Path(__file__).resolve().parent / "events"
START = datetime(2026, 11, 27, 14, 5, 1, tzinfo=UTC)
PUSH_DIGEST = "sha256:" + "d1" * 32


def load_event(name: str, **detail: Any) -> dict[str, Any]:
    """A recorded EventBridge event from tests/training/events, with `detail` keys replaced."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event["detail"].update({key.replace("_", "-"): value for key, value in detail.items()})
    return copy.deepcopy(event)


class StepClock:
    """A clock that stands still until `advance` moves it (thread-safe reads)."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class FakeImds:
    """Instance metadata of a fake instance; `notice` appears once `notice_when()` is true."""

    instance: str = "i-0123456789abcdef0"
    type_: str = "m7g.large"
    life_cycle: str = "spot"
    tags: dict[str, str] = field(default_factory=dict)
    notice: dict[str, str] | None = None
    notice_when: Callable[[], bool] = lambda: True
    polls: int = 0
    fail: bool = False

    def instance_id(self) -> str:
        self._maybe_fail()
        return self.instance

    def instance_type(self) -> str:
        self._maybe_fail()
        return self.type_

    def lifecycle(self) -> str:
        self._maybe_fail()
        return self.life_cycle

    def tag(self, key: str) -> str:
        if key not in self.tags:
            raise ImdsError(f"instance tag {key} not found")
        return self.tags[key]

    def spot_instance_action(self) -> dict[str, str] | None:
        self.polls += 1
        if self.notice is not None and self.notice_when():
            return dict(self.notice)
        return None

    def _maybe_fail(self) -> None:
        if self.fail:
            raise ImdsError("cannot reach IMDS at http://169.254.169.254: timed out")


NOTICE = {"action": "terminate", "time": "2026-11-27T14:07:01Z"}


@dataclass
class Call:
    """One recorded command."""

    argv: list[str]
    stdin: bytes | None
    cancel: threading.Event | None


@dataclass
class RecordingRunner:
    """Records every command line; answers `docker push` with a digest like Docker does.

    `block` names subcommands (argv[1]) that run until cancelled (at most 5 s, then fail);
    `fail` names subcommands that exit non-zero; `on_call` runs before each answer.
    """

    calls: list[Call] = field(default_factory=list)
    digest: str = PUSH_DIGEST
    block: tuple[str, ...] = ()
    fail: tuple[str, ...] = ()
    on_call: Callable[[list[str]], None] | None = None

    def __call__(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> CommandResult:
        args = list(argv)
        self.calls.append(Call(args, stdin, cancel))
        if self.on_call is not None:
            self.on_call(args)
        if args[1] in self.fail:
            raise CommandError(f"docker {args[1]} exited with 1: no space left on device")
        if args[1] in self.block:
            if cancel is None or not cancel.wait(timeout=5):
                raise AssertionError(f"docker {args[1]} was never cancelled")
            raise CommandCancelledError(f"docker {args[1]} was stopped: cancelled")
        stdout = ""
        if args[1] == "push":
            tag = args[2].rsplit(":", 1)[1]
            stdout = (
                "The push refers to repository [...]\n"
                f"5f70bf18a086: Pushed\n{tag}: digest: {self.digest} size: 1780\n"
            )
        return CommandResult(tuple(args), 0, stdout, "")

    @property
    def argvs(self) -> list[list[str]]:
        return [call.argv for call in self.calls]

    def subcommands(self) -> list[str]:
        return [argv[1] for argv in self.argvs]
