"""`registry`, `status` and `fetch-live`: read the model registry and what the API serves."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from training.aws import StackOutputError, error_reason, stack_output
from training.cli.arguments import add_stack_prefix, positive_int
from training.cli.cloud import failure
from training.cli.command import Command
from training.cli.console import accuracy_text, error, one_line, output, text_table
from training.cli.live_model import LiveModelError, fetch_live_model
from training.contract import Output, Stack, stack_name
from training.control.promotion import status
from training.control.promotion_services import StatusReport
from training.exit_codes import ExitCode, describe
from training.registry import (
    LIVE,
    PROMOTED,
    PROMOTION_FAILED,
    ROLLBACK,
    ROLLED_BACK,
    Deployment,
    Event,
    Model,
    Pointer,
    Registry,
    RegistryError,
)

DEFAULT_RUNS = 10
DEFAULT_PROMOTION_EVENTS = 10

_EPILOG = describe(
    {
        ExitCode.OK: "printed",
        ExitCode.FAILED: "the registry could not be read (AWS error, stack output missing)",
        ExitCode.USAGE: "bad usage",
    }
)
_FETCH_LIVE_EPILOG = describe(
    {
        ExitCode.OK: "written, or no model is live yet (the directory is left as it is)",
        ExitCode.FAILED: "the live model could not be fetched or does not match the registry",
        ExitCode.USAGE: "bad usage",
    }
)


def deployed_registry(args: argparse.Namespace, *, table: str | None = None) -> Registry:
    """The registry of the deployed stacks (the pipeline stack's output), read as the CLI."""
    name = table or stack_output(
        boto3.client("cloudformation", region_name=args.region),
        stack_name(args.stack_prefix, Stack.PIPELINE),
        Output.REGISTRY_TABLE_NAME,
    )
    return Registry(name, dynamodb=boto3.resource("dynamodb", region_name=args.region), actor="cli")


def _add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_prefix(parser)
    parser.add_argument(
        "--table",
        metavar="TABLE",
        help="registry table (default: the RegistryTableName output of <stack-prefix>-pipeline)",
    )
    parser.add_argument(
        "--runs",
        type=positive_int,
        default=DEFAULT_RUNS,
        metavar="N",
        help="how many of the newest runs to show (default: %(default)s)",
    )


def format_registry(registry: Registry, *, runs: int = DEFAULT_RUNS) -> str:
    """The pointers, every model and the newest runs as plain-text tables."""
    lines = []
    for name, pointer in (("live", registry.live()), ("rollback", registry.rollback())):
        if pointer is None:
            lines.append(f"{name + ':':<10}none")
        else:
            lines.append(
                f"{name + ':':<10}{pointer.model_version}  {pointer.image_digest or '-'}  "
                f"revision {pointer.revision}, {pointer.updated_at} by {pointer.updated_by}"
                + (f": {pointer.reason}" if pointer.reason else "")
            )
    models = registry.list_models()
    lines += ["", f"models ({len(models)}):"]
    lines += text_table(
        ["MODEL", "STATUS", "ACCURACY", "DATASET", "IMAGE TAG", "IMAGE DIGEST", "CREATED"],
        [
            [
                model.model_version,
                model.status or "-",
                accuracy_text(model.metrics),
                f"{model.dataset_name or '?'}/{model.dataset_version or '?'}",
                model.image_tag or "-",
                model.image_digest or "-",
                model.created_at or "-",
            ]
            for model in models
        ],
    )
    recent = registry.list_runs(runs)
    lines += ["", f"runs (newest {len(recent)}):"]
    lines += text_table(
        ["RUN", "STATUS", "DATASET", "INSTANCE", "MODEL", "ACCURACY", "REASON"],
        [
            [
                run.run_id,
                run.status,
                f"{run.dataset_name}/{run.dataset_version}",
                f"{run.instance_id or '-'} {run.market or ''}".strip(),
                run.model_version or "-",
                accuracy_text(run.metrics),
                one_line(run.reason),
            ]
            for run in recent
        ],
    )
    return "\n".join(lines)


def _run_registry(args: argparse.Namespace) -> int:
    try:
        text = format_registry(deployed_registry(args, table=args.table), runs=args.runs)
    except (ClientError, BotoCoreError, StackOutputError) as err:
        error(f"cannot read the registry: {error_reason(err)}")
        return ExitCode.FAILED
    output(text)
    return ExitCode.OK


def _add_status_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_prefix(parser)
    parser.add_argument(
        "--events",
        type=positive_int,
        default=DEFAULT_PROMOTION_EVENTS,
        metavar="N",
        help="how many of the newest promotion events to show (default: %(default)s)",
    )


def format_status(report: StatusReport) -> str:
    """What is live, what a rollback returns to, every model and the recent promotions."""
    models = {model.model_version: model for model in report.models}
    lines = [_pointer_line(LIVE, report.live, models)]
    if report.deployment is not None:
        lines.append(f"{'':10}{_deployment_line(report.deployment)}")
    lines += [
        _pointer_line(ROLLBACK, report.rollback, models),
        "",
        f"models ({len(report.models)}, newest first):",
    ]
    lines += text_table(
        ["MODEL", "STATUS", "ACCURACY", "DATASET", "IMAGE TAG", "CREATED", "REASON"],
        [
            [
                model.model_version,
                model.status or "-",
                accuracy_text(model.metrics),
                f"{model.dataset_name or '?'}/{model.dataset_version or '?'}",
                model.image_tag or "-",
                model.created_at or "-",
                one_line(model.status_reason, 80),
            ]
            for model in report.models
        ],
    )
    lines += ["", f"promotions (newest {len(report.promotions)}):"]
    lines += text_table(
        ["TIME", "EVENT", "MODEL", "LIVE MOVED", "DEPLOYMENT", "BY", "REASON"],
        [
            [
                event.time,
                event.type,
                event.model_version or "-",
                _live_moved(event),
                str((event.detail or {}).get("deployment_id") or "-"),
                event.actor,
                one_line(event.reason, 80),
            ]
            for event in report.promotions
        ],
    )
    return "\n".join(lines)


def _live_moved(event: Event) -> str:
    """How an event moved the live pointer: `<from> -> <to>`; "-" for one that did not."""
    if event.type not in (PROMOTED, ROLLED_BACK, PROMOTION_FAILED):
        return "-"
    detail = event.detail or {}
    # Registry.set_live's event (a seed) names only the model it points at.
    to = detail.get("to_version") or (
        None if event.type == PROMOTION_FAILED else event.model_version
    )
    return f"{detail.get('from_version') or 'none'} -> {to or 'none'}"


def _pointer_line(name: str, pointer: Pointer | None, models: Mapping[str, Model]) -> str:
    label = f"{name + ':':<10}"
    if pointer is None:
        if name == LIVE:
            return f"{label}none (the API serves the image the stack was deployed with)"
        return f"{label}none"
    model = models.get(pointer.model_version)
    return (
        f"{label}{pointer.model_version}  {(model.image_tag if model else None) or '-'}  "
        f"accuracy {accuracy_text(model.metrics if model else None)}  "
        f"revision {pointer.revision}, {pointer.updated_at} by {pointer.updated_by}"
        + (f": {one_line(pointer.reason)}" if pointer.reason else "")
    )


def _deployment_line(deployment: Deployment) -> str:
    line = (
        f"deployment {deployment.deployment_id} {deployment.status} ({deployment.type} by "
        f"{deployment.actor}; Lambda version {deployment.previous_lambda_version} -> "
        f"{deployment.lambda_version})"
    )
    return line + (f": {one_line(deployment.outcome)}" if deployment.outcome else "")


def _run_status(args: argparse.Namespace) -> int:
    try:
        text = format_status(status(deployed_registry(args), events=args.events))
    except (ClientError, BotoCoreError, StackOutputError, RegistryError) as err:
        error(f"cannot read the registry: {failure(err)}")
        return ExitCode.FAILED
    output(text)
    return ExitCode.OK


def _add_fetch_live_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_prefix(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("lambda_image/model"),
        metavar="DIR",
        help="where to write model.npz and metadata.json (default: %(default)s)",
    )


def _run_fetch_live(args: argparse.Namespace) -> int:
    try:
        ecr = boto3.client("ecr", region_name=args.region)
        fetched = fetch_live_model(deployed_registry(args), ecr, args.out)
    except (ClientError, BotoCoreError, StackOutputError, RegistryError, LiveModelError) as err:
        error(f"cannot fetch the live model: {failure(err)}")
        return ExitCode.FAILED
    if fetched is None:
        output(f"no model is live yet: {args.out} keeps its model (a first deploy ships it)")
    else:
        output(f"wrote live model {fetched.model_version} from {fetched.image} to {args.out}")
    return ExitCode.OK


COMMANDS: dict[str, Command] = {
    "registry": Command(
        description="Print the registry (docs/registry.md): the live and rollback pointers,\n"
        "every model with its status, accuracy, dataset and image, and the newest runs\n"
        "with where they ran and why they ended.",
        add_arguments=_add_registry_arguments,
        run=_run_registry,
        epilog=_EPILOG,
    ),
    "status": Command(
        description="Print what the API serves: the live model with its accuracy and image, the\n"
        "deployment that put it there (in progress, succeeded, failed), the model a\n"
        "rollback returns to, every model newest first with its status, and the newest\n"
        "promotion events: who promoted or rolled back what, when and why.",
        add_arguments=_add_status_arguments,
        run=_run_status,
        epilog=_EPILOG,
    ),
    "fetch-live": Command(
        description="Read the live model's files from the last layer of its image in ECR (no\n"
        "Docker), check them against the registry's model version and write them, so the\n"
        "next `cdk deploy` ships serving code and configuration with the live model. The\n"
        "api stack refuses a deploy whose lambda_image/model is not the live model.",
        add_arguments=_add_fetch_live_arguments,
        run=_run_fetch_live,
        epilog=_FETCH_LIVE_EPILOG,
    ),
}
