"""`pipeline`: the cloud run on the Spot instance, from an S3 dataset version to an ECR image."""

from __future__ import annotations

import argparse

from training.aws import LocationError, SettingsError, configure_logging, new_run_id, utc_now
from training.cli.arguments import run_id_type, s3_dataset_uri
from training.cli.command import Command
from training.cli.console import error, output
from training.exit_codes import ExitCode, describe
from training.instance.imds import ImdsError
from training.instance.pipeline import run_pipeline
from training.instance.settings import PipelineSettings, RunRequest, Services

_EPILOG = """\
environment (set by the launch template's user data):
  REGISTRY_TABLE       the registry's DynamoDB table
  REPOSITORY_URI       ECR repository, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/repo
  BUILD_CONTEXT        the serving image's build context; the model is exported to its model/
  AWS_REGION           region of the table, bucket and repository
  MIN_ACCURACY         gate: minimum hold-out accuracy, in [0, 1]
  ACCURACY_TOLERANCE   gate: accuracy the model may lose against the live model, in [0, 1]
  TIME_LIMIT_MINUTES   the run stops (timed out) this long after it was launched
  DOCKER_PLATFORM      linux/arm64 or linux/amd64

""" + describe(
    {
        ExitCode.OK: "succeeded: the image is in ECR and the model recorded as a candidate",
        ExitCode.FAILED: "failed: AWS, Docker or instance error (the run's reason says which)",
        ExitCode.USAGE: "bad usage or a missing/malformed environment variable",
        ExitCode.INVALID_DATASET: "the dataset is invalid or its checksum does not match",
        ExitCode.REFUSED: "rejected by the quality gate: recorded, nothing built or pushed",
        ExitCode.INTERRUPTED: "interrupted by a Spot notice: nothing pushed after it",
        ExitCode.TIMED_OUT: "timed out",
    }
)


def _add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--dataset",
        type=s3_dataset_uri,
        metavar="S3URI",
        help="dataset version to train on: s3://<bucket>/datasets/<name>/<version>/data.csv",
    )
    source.add_argument(
        "--from-instance-tags",
        action="store_true",
        help="read the run id and dataset from this instance's RunId and DatasetUri tags "
        "(how the launcher starts it)",
    )
    parser.add_argument(
        "--run-id",
        type=run_id_type,
        metavar="ID",
        help="with --dataset: the run to execute, recorded by the launcher or created now "
        "(default: a new run id)",
    )
    parser.add_argument(
        "--shutdown",
        action="store_true",
        help="power the machine off when the run ends, whatever the outcome (default: off; "
        "the launch template's user data shuts the instance down itself)",
    )


def _run_pipeline(args: argparse.Namespace) -> int:
    if args.from_instance_tags and args.run_id:
        error("--run-id goes with --dataset; --from-instance-tags reads the RunId tag")
        return ExitCode.USAGE
    try:
        settings = PipelineSettings.from_env()
    except SettingsError as err:
        error(str(err))
        return ExitCode.USAGE
    configure_logging()
    services = connect_services(settings)
    try:
        if args.from_instance_tags:
            run_id, dataset_uri = services.imds.tag("RunId"), services.imds.tag("DatasetUri")
        else:
            run_id, dataset_uri = args.run_id or new_run_id(utc_now()), args.dataset
        outcome = run_pipeline(
            settings,
            RunRequest(run_id, dataset_uri, requested_by="python -m training pipeline"),
            registry=services.registry,
            s3=services.s3,
            ecr=services.ecr,
            ssm=services.ssm,
            docker=services.docker,
            imds=services.imds,
            clock=services.clock,
        )
    except (ImdsError, LocationError) as err:
        error(f"cannot start the run: {err}")
        return ExitCode.FAILED
    finally:
        if args.shutdown:
            services.host.shutdown()
    output(f"run {outcome.run_id}: {outcome.status}\n{outcome.reason}")
    return outcome.exit_code


def connect_services(settings: PipelineSettings) -> Services:
    """The pipeline's real services (a seam for tests)."""
    return Services.connect(settings)


COMMANDS: dict[str, Command] = {
    "pipeline": Command(
        description="Run one training run as the Spot instance does: mark the run running, read\n"
        "the dataset version from S3 (checking its stored SHA-256), validate, train, gate\n"
        "against the live model, export into $BUILD_CONTEXT/model, build the serving\n"
        "image and push it as <REPOSITORY_URI>:<dataset_version>-<model_version>. A\n"
        "Spot notice or the time limit stops it between steps (and kills a running\n"
        "docker command); every outcome is recorded on the run in the registry.",
        add_arguments=_add_pipeline_arguments,
        run=_run_pipeline,
        epilog=_EPILOG,
    ),
}
