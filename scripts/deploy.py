"""`make deploy` and `make destroy`: the CDK CLI with what it needs around it.

deploy: run the preflight checks (scripts/preflight.py) and stop on a blocker; write the
registry's live model into lambda_image/model (the api stack refuses any other, so a deploy ships
code and configuration, never the laptop's model); bootstrap every region the app deploys to
whose CDK bootstrap is missing or too old (the app region and us-east-1, where CloudFront's
alarms and WAF live), then `cdk deploy --all`.
destroy: ask for the stack prefix as confirmation, then `cdk destroy --all`; say what stays.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as `python scripts/deploy.py`: the app's packages sit in the repository root.
    sys.path.insert(0, str(ROOT))

from cdk_app.config import AppConfig  # noqa: E402
from scripts import preflight  # noqa: E402
from training.aws import stack_output  # noqa: E402
from training.cli.datasets import request_retrain  # noqa: E402
from training.cli.live_model import LiveModelError, fetch_live_model  # noqa: E402
from training.contract import Output, Stack, stack_name  # noqa: E402
from training.registry import Registry  # noqa: E402

CDK = ("npx", "--no-install", "cdk")
RETAINED = (
    "the data-lake and access-log buckets (every dataset version)",
    "the model registry table (deletion protection on)",
    "the ECR repository of model images",
    "the CloudFront log bucket",
    "the SSM parameter naming the live model (promotion owns it)",
)
Runner = Callable[[Sequence[str]], int]


def run(argv: Sequence[str]) -> int:
    """Run a command in the repository, streaming its output; its exit status."""
    return subprocess.run(list(argv), cwd=ROOT, check=False).returncode


Preflight = Callable[[boto3.Session, Sequence[str]], preflight.Report]
LiveModel = Callable[[boto3.Session, Sequence[str]], str]
MODEL_DIR = ROOT / "lambda_image" / "model"
# The dataset version the data stack seeds on its first deploy (stacks/data_stack.py).
SEED_DATASET = ("iris", "v1")


def _registry(session: boto3.Session, cloudformation: Any, config: AppConfig) -> Registry:
    """The deployed pipeline stack's model registry, writing as `deploy`."""
    pipeline = stack_name(config.stack_prefix, Stack.PIPELINE)
    table = stack_output(cloudformation, pipeline, Output.REGISTRY_TABLE_NAME)
    dynamodb = session.resource("dynamodb", region_name=config.region)
    return Registry(table, dynamodb=dynamodb, actor="deploy")


def live_model(session: boto3.Session, cdk_args: Sequence[str]) -> str:
    """Write the registry's live model into lambda_image/model; say what was done."""
    config = preflight.load_config(preflight.context_pairs(cdk_args))
    cloudformation = session.client("cloudformation", region_name=config.region)
    pipeline = f"{config.stack_prefix}-pipeline"
    try:
        cloudformation.describe_stacks(StackName=pipeline)
    except ClientError as err:
        if "does not exist" not in str(err):
            raise
        return f"live model: none yet ({pipeline} is not deployed); the first deploy ships " + (
            "lambda_image/model"
        )
    registry = _registry(session, cloudformation, config)
    fetched = fetch_live_model(
        registry, session.client("ecr", region_name=config.region), MODEL_DIR
    )
    if fetched is None:
        return "live model: none promoted yet; lambda_image/model keeps the first deploy's model"
    return f"live model: {fetched.model_version} from {fetched.image} -> lambda_image/model"


def first_model(session: boto3.Session, cdk_args: Sequence[str]) -> str:
    """After a first deploy, train the seeded dataset so that a registered model goes live.

    The data stack seeds v1 before the pipeline's S3 rule exists, so no upload event starts a
    run; until a run registers a model the registry is empty and the API serves the image the
    deploy built. The run's model is promoted through the canary when the registrar records it.
    """
    config = preflight.load_config(preflight.context_pairs(cdk_args))
    cloudformation = session.client("cloudformation", region_name=config.region)
    registry = _registry(session, cloudformation, config)
    if registry.live() is not None or registry.list_runs(limit=1):
        return "first model: not needed (the registry has runs or a live model)"
    answer = request_retrain(
        cloudformation=cloudformation,
        s3=session.client("s3", region_name=config.region),
        sts=session.client("sts", region_name=config.region),
        lambda_client=session.client("lambda", region_name=config.region),
        stack_prefix=config.stack_prefix,
        name=SEED_DATASET[0],
        version=SEED_DATASET[1],
        reason="first deploy: train the seeded dataset so a registered model goes live",
    )
    if "instance_id" not in answer:
        return f"first model: the launcher answered {answer}; run `make retrain DATASET=v1`"
    return (
        f"first model: run {answer['run_id']} on {answer['instance_id']} trains the seeded "
        "dataset; its model goes live through the canary once registered (make status)"
    )


def deploy(
    session: boto3.Session,
    runner: Runner,
    extra: Sequence[str],
    *,
    checks: Preflight = preflight.before_deploy,
    fetch: LiveModel = live_model,
    after: LiveModel = first_model,
) -> int:
    """Run the preflight checks, fetch the live model, bootstrap, deploy, then a first model."""
    report = checks(session, extra)
    sys.stdout.write(report.text())
    if report.blocked:
        sys.stderr.write("preflight found blockers (above); nothing was deployed\n")
        return 1
    sys.stdout.write(fetch(session, extra) + "\n")
    for region in report.bootstrap:
        sys.stdout.write(f"bootstrapping aws://{report.account}/{region}\n")
        status = runner([*CDK, "bootstrap", f"aws://{report.account}/{region}"])
        if status:
            return status
    status = runner([*CDK, "deploy", "--all", "--require-approval", "broadening", *extra])
    if status == 0:
        sys.stdout.write(after(session, extra) + "\n")
    return status


def destroy(runner: Runner, confirm: str | None, ask: Callable[[str], str]) -> int:
    """Delete the stacks after the operator types the stack prefix; list what is retained."""
    prefix = AppConfig.from_cdk_json().stack_prefix
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
    except LiveModelError as err:
        sys.stderr.write(f"cannot fetch the live model, nothing was deployed: {err}\n")
        return 1
    except ValueError as err:  # a bad -c value or cdk.json key (ConfigError)
        sys.stderr.write(f"config error: {err}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
