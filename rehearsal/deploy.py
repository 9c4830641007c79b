"""The CDK CLI against the emulator: bootstrap, synth, deploy a stack, destroy; each bounded."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

from rehearsal import standins
from rehearsal.emulator import ACCOUNT, ROOT

CDK = str(ROOT / "node_modules" / ".bin" / "cdk")
BOOTSTRAP_TIMEOUT_S = 120
SYNTH_TIMEOUT_S = 180
# A custom resource that never answers keeps a real stack waiting for an hour; here a stack
# that is not done in this bound fails the rehearsal, naming what was still in progress.
DEPLOY_TIMEOUT_S = 120


class DeployError(RuntimeError):
    """A CDK CLI call failed or overran; the message names the stack and resource."""


@dataclasses.dataclass(frozen=True)
class Stack:
    """One stack of the cloud assembly: its name, region and template file."""

    name: str
    region: str
    template: Path


def stacks(assembly: Path) -> list[Stack]:
    """The assembly's stacks in deployment order (the manifest lists them dependency-sorted)."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    found = []
    for name, artifact in manifest["artifacts"].items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        region = artifact["environment"].rsplit("/", 1)[-1]
        found.append(Stack(name, region, assembly / artifact["properties"]["templateFile"]))
    return found


def _run(argv: list[str], *, cwd: Path, env: Mapping[str, str], log: Path, timeout: int) -> int:
    with log.open("a") as out:
        try:
            return subprocess.run(
                argv,
                cwd=cwd,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            return -1


def synth(out: Path, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `cdk synth` of the app into `out` (never ./cdk.out); the caller waits for it."""
    handle = log.open("ab")
    return subprocess.Popen(
        [CDK, "synth", "--quiet", "-o", str(out)],
        cwd=ROOT,
        env=dict(env),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def bootstrap(regions: list[str], *, workdir: Path, env: Mapping[str, str]) -> None:
    """`cdk bootstrap` each region, from a folder without cdk.json so the app is not synthesized."""
    log = workdir / "bootstrap.log"
    targets = [f"aws://{ACCOUNT}/{region}" for region in regions]
    if _run(
        [CDK, "bootstrap", *targets], cwd=workdir, env=env, log=log, timeout=BOOTSTRAP_TIMEOUT_S
    ):
        raise DeployError(f"cdk bootstrap {' '.join(targets)} failed; see {log}")


def _failed_resources(cloudformation: Any, stack: str) -> str:
    """The resources that failed or were still in progress, with CloudFormation's reasons."""
    try:
        events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    except Exception as err:  # noqa: BLE001 (a diagnosis must not hide the failure it explains)
        return f"(no stack events: {err})"
    latest: dict[str, tuple[str, str, str]] = {}
    for event in reversed(events):
        latest[event["LogicalResourceId"]] = (
            event["ResourceType"],
            event["ResourceStatus"],
            event.get("ResourceStatusReason", ""),
        )
    bad = [
        f"{logical} ({rtype}) {status}: {reason}".rstrip(": ")
        for logical, (rtype, status, reason) in latest.items()
        if logical != stack and not status.endswith("_COMPLETE")
    ]
    return "; ".join(bad) or "no resource failed (see the log)"


def deploy(stack: Stack, *, assembly: Path, workdir: Path, env: Mapping[str, str]) -> str:
    """Deploy one stack exclusively; the CLI's output. Cross-region outputs are resolved first."""
    cloudformation = boto3.client("cloudformation", region_name=stack.region)
    template = json.loads(stack.template.read_text())
    values = {}
    for producer, region, output in standins.cross_region_outputs(template, stack.region):
        described = boto3.client("cloudformation", region_name=region).describe_stacks(
            StackName=producer
        )["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        if output not in outputs:
            raise DeployError(f"{stack.name}: stack {producer} ({region}) has no output {output}")
        values[(producer, region, output)] = outputs[output]
    if values:
        stack.template.write_text(
            json.dumps(standins.resolve_cross_region(template, stack.region, values))
        )
    log = workdir / f"{stack.name}.log"
    log.write_text("")
    status = _run(
        [
            CDK,
            "deploy",
            "--app",
            str(assembly),
            stack.name,
            "--exclusively",
            "--require-approval",
            "never",
            "--progress",
            "events",
        ],
        cwd=workdir,
        env={**env, "AWS_REGION": stack.region},
        log=log,
        timeout=DEPLOY_TIMEOUT_S,
    )
    if status:
        why = "timed out" if status == -1 else f"failed (exit {status})"
        raise DeployError(
            f"{stack.name} {why}: {_failed_resources(cloudformation, stack.name)}; log {log}"
        )
    return log.read_text()


def destroy(*, assembly: Path, workdir: Path, env: Mapping[str, str]) -> None:
    """`cdk destroy --all --force` against the emulator."""
    log = workdir / "destroy.log"
    status = _run(
        [CDK, "destroy", "--app", str(assembly), "--all", "--force"],
        cwd=workdir,
        env=env,
        log=log,
        timeout=DEPLOY_TIMEOUT_S * 2,
    )
    if status:
        raise DeployError(f"cdk destroy failed (exit {status}); see {log}")
