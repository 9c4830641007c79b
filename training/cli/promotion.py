"""`promote` and `rollback`: move the API to a registered model through CodeDeploy."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from training.aws import StackOutputError
from training.cli.arguments import add_stack_prefix, model_version_type
from training.cli.canary import FAILED, SUCCEEDED, wait_for_deployment
from training.cli.cloud import failure
from training.cli.command import Command
from training.cli.console import error, output
from training.control.promotion import promote, rollback
from training.control.promotion_services import (
    ALL_AT_ONCE,
    CodeDeployApi,
    Promotion,
    PromotionError,
    PromotionRefusedError,
    PromotionServices,
    PromotionSettings,
)
from training.exit_codes import ExitCode, describe
from training.registry import ROLLED_BACK, RegistryConflictError, RegistryError

_STARTED = {
    ExitCode.OK: "the deployment started and is recorded (follow it with `status`); with --wait,\n"
    "     CodeDeploy also ended it with success",
    ExitCode.FAILED: "AWS error or stack output missing (the message says what state AWS is in);\n"
    "     with --wait, also: no end seen in time, or an AWS error while waiting (the\n"
    "     deployment may still be running)",
    ExitCode.USAGE: "bad usage",
}
_PROMOTE_EPILOG = describe(
    {
        **_STARTED,
        ExitCode.PROMOTION_REFUSED: "refused: the model is not in the registry, was rejected "
        "or failed, has\n     no image yet, or is already live, or a deployment is still "
        "running (nothing\n     changed); or another promotion moved the live model meanwhile "
        "(run status and\n     retry; the message says whether a deployment had been started)",
        ExitCode.DEPLOYMENT_FAILED: "--wait: the canary failed or was stopped; CodeDeploy "
        "moves the alias\n     back by itself (its reason is printed)",
    }
)
_ROLLBACK_EPILOG = describe(
    {
        **_STARTED,
        ExitCode.PROMOTION_REFUSED: "refused: no rollback model is recorded and no "
        "--model-version was\n     given, the model is not in the registry, was rejected or "
        "failed, has no\n     image, or is already live, or a deployment is still running "
        "(nothing\n     changed); or another promotion moved the live model meanwhile (run "
        "status\n     and retry; the message says whether a deployment had been started)",
        ExitCode.DEPLOYMENT_FAILED: "--wait: the rollback's deployment failed or was stopped "
        "(CodeDeploy's\n     reason is printed; automatic rollback is off for a rollback)",
    }
)


def _add_promote_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-version",
        type=model_version_type,
        required=True,
        metavar="V",
        help="model version to make live (12 hex digits, as `status` lists them)",
    )
    _add_move_options(parser, "promotion", how_long="the canary's bake time: minutes")


def _add_rollback_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-version",
        type=model_version_type,
        metavar="V",
        help="model version to return to (default: the rollback model `status` shows)",
    )
    _add_move_options(parser, "rollback", how_long="all at once: seconds")


def _add_move_options(parser: argparse.ArgumentParser, kind: str, *, how_long: str) -> None:
    """--reason, --wait and the stacks' options, shared by promote and rollback."""
    parser.add_argument(
        "--reason",
        metavar="TEXT",
        default=f"manual {kind}",
        help=f"why, recorded with the {kind} (default: %(default)s)",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help=f"wait until CodeDeploy ends the deployment ({how_long}) and exit with its outcome",
    )
    add_stack_prefix(parser)


def connect_promotion(args: argparse.Namespace) -> PromotionServices:
    """Promotion services for the deployed stacks, acting as the caller (STS identity ARN)."""
    cloudformation = boto3.client("cloudformation", region_name=args.region)
    settings = PromotionSettings.from_stacks(cloudformation, args.stack_prefix)
    actor = str(boto3.client("sts", region_name=args.region).get_caller_identity()["Arn"])
    return PromotionServices.connect(settings, actor=actor, region=args.region)


def _run_promote(args: argparse.Namespace) -> int:
    return _run_promotion(
        lambda services: promote(
            args.model_version,
            actor=services.registry.actor,
            reason=args.reason,
            services=services,
        ),
        args,
        wait=args.wait,
    )


def _run_rollback(args: argparse.Namespace) -> int:
    return _run_promotion(
        lambda services: rollback(
            to=args.model_version,
            actor=services.registry.actor,
            reason=args.reason,
            services=services,
        ),
        args,
        wait=args.wait,
    )


def _run_promotion(
    start: Callable[[PromotionServices], Promotion], args: argparse.Namespace, *, wait: bool
) -> int:
    """Connect, start the promotion or rollback, report it, and with `wait` follow it."""
    try:
        services = connect_promotion(args)
        promotion = start(services)
    except (PromotionRefusedError, RegistryConflictError) as err:
        error(f"refused: {err}")
        return ExitCode.PROMOTION_REFUSED
    except (ClientError, BotoCoreError, StackOutputError, PromotionError, RegistryError) as err:
        error(f"failed: {failure(err)}")
        return ExitCode.FAILED
    verb = "rolling back to" if promotion.type == ROLLED_BACK else "promoting"
    how = (
        "all at once"
        if promotion.deployment_config == ALL_AT_ONCE
        else promotion.deployment_config or "by the deployment group's canary"
    )
    output(
        f"{verb} {promotion.model_version}: CodeDeploy deployment {promotion.deployment_id} "
        f"shifts the live alias from Lambda version {promotion.previous_lambda_version} to "
        f"{promotion.lambda_version} ({how})\n"
        f"rollback model: {promotion.previous_model_version or 'none'}\n"
        "CodeDeploy moves the alias back by itself if a guard alarm fires; follow it with "
        "`python -m training status`"
    )
    if not wait:
        return ExitCode.OK
    return _follow(services.codedeploy, promotion)


def _follow(codedeploy: CodeDeployApi, promotion: Promotion) -> int:
    """Wait for the deployment to end and report how: 0 succeeded, 9 failed, 1 unknown."""
    deployment = promotion.deployment_id
    output(f"waiting for CodeDeploy to end deployment {deployment} ...")
    outcome = wait_for_deployment(codedeploy, deployment)
    if outcome.result == SUCCEEDED:
        output(
            f"deployment {deployment} succeeded: the live alias serves Lambda version "
            f"{promotion.lambda_version} ({promotion.model_version})"
        )
        return ExitCode.OK
    if outcome.result == FAILED:
        verb = "failed" if outcome.status == "Failed" else "was stopped"
        # The deployment group rolls back failed and stopped deployments, but a rollback turns
        # that off for its own deployment (training/control/promotion.py): nothing moves it back.
        after = (
            "automatic rollback is off for a rollback: the alias may serve either version"
            if promotion.type == ROLLED_BACK
            else "CodeDeploy moves the alias back to Lambda version "
            f"{promotion.previous_lambda_version}"
        )
        error(
            f"deployment {deployment} {verb}: {outcome.reason}\n{after}; the watcher puts the "
            "registry back (follow it with `python -m training status`)"
        )
        return ExitCode.DEPLOYMENT_FAILED
    error(
        f"stopped waiting for deployment {deployment}: {outcome.problem}\n"
        "it may still be running; follow it with `python -m training status`"
    )
    return ExitCode.FAILED


COMMANDS: dict[str, Command] = {
    "promote": Command(
        description="Deploy a registered model to the API: publish a Lambda version with its\n"
        "image, start a CodeDeploy deployment that shifts the live alias by the deployment\n"
        "group's canary (CodeDeploy rolls back by itself when a guard alarm fires), record\n"
        "the move in the registry, and point the live model parameter and the ECR tags\n"
        "live/rollback at it. The model that was live becomes the rollback model. Your\n"
        "identity (STS) is recorded as the actor. Refused, changing nothing, for a model\n"
        "that is unknown, rejected, failed, without an image, or already live.",
        add_arguments=_add_promote_arguments,
        run=_run_promote,
        epilog=_PROMOTE_EPILOG,
    ),
    "rollback": Command(
        description="Deploy the rollback model (the one live before the current one) or the\n"
        f"model --model-version names, as promote does but with {ALL_AT_ONCE},\n"
        "so it takes effect in seconds. The model rolled back from becomes the rollback\n"
        "model. Refused, changing nothing, when there is no rollback model and no\n"
        "--model-version, or for a model that is unknown, rejected, failed, without an\n"
        "image, or already live.",
        add_arguments=_add_rollback_arguments,
        run=_run_rollback,
        epilog=_ROLLBACK_EPILOG,
    ),
}
