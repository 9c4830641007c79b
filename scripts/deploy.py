"""`make deploy` and `make destroy`: the CDK CLI with what it needs around it.

deploy: bootstrap every region the app deploys to when CDKToolkit is missing there (the app
region and us-east-1, where CloudFront's alarms and WAF live), then `cdk deploy --all`.
destroy: ask for the stack prefix as confirmation, then `cdk destroy --all`; say what stays.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

ROOT = Path(__file__).resolve().parent.parent
CDK = ("npx", "--no-install", "cdk")
EDGE_REGION = "us-east-1"
RETAINED = (
    "the data-lake and access-log buckets (every dataset version)",
    "the model registry table (deletion protection on)",
    "the ECR repository of model images",
    "the CloudFront log bucket",
    "the SSM parameter naming the live image (promotion owns it)",
)
Runner = Callable[[Sequence[str]], int]


def run(argv: Sequence[str]) -> int:
    """Run a command in the repository, streaming its output; its exit status."""
    return subprocess.run(list(argv), cwd=ROOT, check=False).returncode


def app_settings() -> dict[str, Any]:
    """The CDK context from cdk.json (project, environment, region)."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def regions(context: dict[str, Any]) -> list[str]:
    """Regions the app deploys stacks to."""
    return sorted({context["region"], EDGE_REGION})


def missing_bootstrap(session: boto3.Session, wanted: list[str]) -> list[str]:
    """Regions without a CDKToolkit stack."""
    missing = []
    for region in wanted:
        cloudformation = session.client("cloudformation", region_name=region)
        try:
            cloudformation.describe_stacks(StackName="CDKToolkit")
        except ClientError as err:
            if "does not exist" not in str(err):
                raise
            missing.append(region)
    return missing


def deploy(session: boto3.Session, runner: Runner, extra: Sequence[str]) -> int:
    """Bootstrap what is missing, then deploy every stack."""
    context = app_settings()
    account = session.client("sts").get_caller_identity()["Account"]
    for region in missing_bootstrap(session, regions(context)):
        sys.stdout.write(f"bootstrapping aws://{account}/{region} (first deploy there)\n")
        status = runner([*CDK, "bootstrap", f"aws://{account}/{region}"])
        if status:
            return status
    return runner([*CDK, "deploy", "--all", "--require-approval", "broadening", *extra])


def destroy(runner: Runner, confirm: str | None, ask: Callable[[str], str]) -> int:
    """Delete the stacks after the operator types the stack prefix; list what is retained."""
    context = app_settings()
    prefix = f"{context['project_name']}-{context['environment']}"
    answer = confirm if confirm is not None else ask(f"Type {prefix} to delete its stacks: ")
    if answer.strip() != prefix:
        sys.stderr.write(f"not confirmed ({answer.strip()!r} is not {prefix!r}); nothing deleted\n")
        return 3
    status = runner([*CDK, "destroy", "--all", "--force"])
    if status == 0:
        sys.stdout.write("Deleted. Kept on purpose (remove by hand if you mean it):\n")
        sys.stdout.writelines(f"  - {item}\n" for item in RETAINED)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command and run it."""
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("deploy", help="bootstrap if needed, then cdk deploy --all")
    destroy_parser = commands.add_parser("destroy", help="cdk destroy --all, after confirmation")
    destroy_parser.add_argument(
        "--confirm", help="the stack prefix, to skip the prompt (e.g. in a script)"
    )
    args, extra = parser.parse_known_args(argv)
    try:
        if args.command == "deploy":
            return deploy(boto3.Session(), run, extra)
        return destroy(run, args.confirm, input)
    except (BotoCoreError, ClientError) as err:
        sys.stderr.write(f"AWS: {err} (are credentials for the target account set?)\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
