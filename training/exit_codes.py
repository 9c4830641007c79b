"""Exit codes of `python -m training`: one table for every subcommand and the trainer's run."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a `python -m training` process ended with; scripts and the instance branch on it."""

    OK = 0
    FAILED = 1
    USAGE = 2
    INVALID_DATASET = 3
    REFUSED = 4
    INTERRUPTED = 5
    TIMED_OUT = 6
    EXISTS = 7
    PROMOTION_REFUSED = 8
    DEPLOYMENT_FAILED = 9


# The top-level help prints this table; each subcommand's help says what its codes mean for it.
MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.FAILED: "failure (export, AWS or Docker error; the message says which)",
    ExitCode.USAGE: "bad usage (unknown option, value out of range, missing setting)",
    ExitCode.INVALID_DATASET: "the dataset is invalid or cannot be read (every problem is listed)",
    ExitCode.REFUSED: "the quality gate refused the model (nothing is written or pushed)",
    ExitCode.INTERRUPTED: "pipeline: Spot interruption notice (nothing pushed after it)",
    ExitCode.TIMED_OUT: "pipeline: the run's time limit was reached",
    ExitCode.EXISTS: "upload: that dataset version already exists (versions are immutable)",
    ExitCode.PROMOTION_REFUSED: "promote/rollback: refused (unknown, rejected, failed, no image, "
    "already\n     live, a deployment still running, or another promotion changed the live model)",
    ExitCode.DEPLOYMENT_FAILED: "promote/rollback --wait: the deployment failed or was stopped "
    "(after a\n     promotion, CodeDeploy moves the alias back by itself)",
}


def describe(codes: dict[ExitCode, str] | None = None) -> str:
    """An `exit codes:` help section: each code with what it means (default: the whole table)."""
    lines = ["exit codes:"]
    lines += [f"  {int(code)}  {meaning}" for code, meaning in (codes or MEANINGS).items()]
    return "\n".join(lines) + "\n"
