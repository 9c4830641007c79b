"""`make rehearse`: deploy the whole app into MiniStack and drive the retraining loop through it.

Prints a line per stand-in and per check, and last `rehearsal: P/N checks pass`; exits 0 only
when every check passes. The emulator is stopped whatever happens.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rehearsal import checks, deploy, emulator, standins, teardown
from rehearsal.checks import CheckFailed, Context

CHECKS: tuple[tuple[str, Callable[[Context], str]], ...] = (
    ("v1 seed in the data lake", checks.seed_in_lake),
    ("upload starts the launcher, run recorded", checks.upload_starts_run),
    ("instance launched with the launch template", checks.instance_from_template),
    ("second upload of a version refused", checks.second_upload_refused),
    ("monitor closes the run when the instance ends", checks.monitor_closes_run),
    ("API without the origin key refused", checks.api_refuses_without_key),
    ("API with the origin key reaches the function", checks.api_reaches_function),
)


class Tally:
    """Counts checks and prints one line each."""

    def __init__(self) -> None:
        self.passed = 0
        self.total = 0

    def run(self, name: str, check: Callable[[], str]) -> bool:
        """Run one check; print `PASS name: detail` or `FAIL name: why`."""
        self.total += 1
        try:
            detail = check()
        except (CheckFailed, deploy.DeployError) as err:
            self._line(f"FAIL {name}: {err}")
            return False
        except Exception as err:  # noqa: BLE001 (an AWS error is a failed check, named)
            self._line(f"FAIL {name}: {type(err).__name__}: {err}")
            return False
        self.passed += 1
        self._line(f"PASS {name}: {detail}")
        return True

    def skip(self, name: str, why: str) -> None:
        """Count a check that could not run as failed."""
        self.total += 1
        self._line(f"FAIL {name}: not run ({why})")

    @staticmethod
    def _line(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def rehearse(workdir: Path, *, auth: bool) -> int:
    """The whole rehearsal in `workdir`; the process exit status."""
    started = time.monotonic()
    emulator.ensure_installed()
    tally = Tally()
    synth_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    synthesis = deploy.synth(workdir / "cdk.out", synth_env, workdir / "synth.log")
    try:
        with emulator.running(auth=auth, workdir=workdir) as endpoint:
            iam = "enforced (AUTH=true)" if auth else "not enforced"
            _say(f"emulator: MiniStack at {endpoint.url}, IAM {iam}")
            env = endpoint.client_env("eu-west-1")
            os.environ.update(env)  # boto3 in this process: every call goes to the emulator
            deploy.bootstrap(["eu-west-1", "us-east-1"], workdir=workdir, env=env)
            if synthesis.wait(timeout=deploy.SYNTH_TIMEOUT_S):
                raise deploy.DeployError(f"cdk synth failed; see {workdir / 'synth.log'}")
            assembly = workdir / "assembly"
            for line in standins.copy_assembly(
                workdir / "cdk.out", assembly, emulator.supported_types()
            ):
                _say(line)
            ctx = Context(
                url=endpoint.url, ca_bundle=endpoint.ca_bundle, env=env, region="eu-west-1"
            )
            _deploy_and_check(tally, ctx, assembly, workdir, env)
    except (
        deploy.DeployError,
        emulator.EmulatorError,
        standins.StandInHidesSupportedTypeError,
    ) as err:
        _say(f"rehearsal stopped: {err}")
        tally.total = max(tally.total, 1)
    finally:
        if synthesis.poll() is None:
            synthesis.kill()
            synthesis.wait()
    _say(
        f"rehearsal: {tally.passed}/{tally.total} checks pass ({time.monotonic() - started:.0f} s)"
    )
    return 0 if tally.passed == tally.total else 1


def _deploy_and_check(
    tally: Tally, ctx: Context, assembly: Path, workdir: Path, env: dict[str, str]
) -> None:
    """Deploy each stack in order, then run the checks; after a failed stack none runs."""
    stacks = deploy.stacks(assembly)
    deployed = True
    for stack in stacks:
        name = f"{stack.name} CREATE_COMPLETE"
        if deployed:
            deployed = tally.run(name, functools.partial(_deploy, stack, assembly, workdir, env))
        else:
            tally.skip(name, "an earlier stack did not deploy")
    last: tuple[tuple[str, Callable[[], str]], ...] = (
        (
            "no-change redeploy changes nothing",
            lambda: teardown.redeploy_unchanged(stacks, assembly, workdir, env),
        ),
        (
            "destroy keeps exactly what the README lists",
            lambda: teardown.destroy_keeps_retained(ctx, stacks, assembly, workdir, env),
        ),
    )
    bound: list[tuple[str, Callable[[], str]]] = [(n, functools.partial(c, ctx)) for n, c in CHECKS]
    for name, check in [*bound, *last]:
        if deployed:
            tally.run(name, check)
        else:
            tally.skip(name, "a stack did not deploy")


def _deploy(stack: deploy.Stack, assembly: Path, workdir: Path, env: dict[str, str]) -> str:
    deploy.deploy(stack, assembly=assembly, workdir=workdir, env=env)
    status = checks.stack_status(stack)
    if status != "CREATE_COMPLETE":
        raise CheckFailed(f"{stack.name} is {status}")
    return f"{stack.region}"


def main(argv: list[str] | None = None) -> int:
    """Parse the options and rehearse in a fresh temporary folder (kept with --keep)."""
    parser = argparse.ArgumentParser(prog="python -m rehearsal", description=__doc__)
    parser.add_argument("--no-auth", action="store_true", help="do not enforce IAM (AUTH=false)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, assembly)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="rehearsal-"))
    try:
        return rehearse(workdir, auth=not args.no_auth)
    finally:
        if args.keep:
            _say(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
