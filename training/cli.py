"""`python -m training`: the trainer's steps on a laptop, its cloud run, and operator commands.

Local: dataset, validate, train. Cloud: pipeline (on the Spot instance). Operator: upload a
dataset version, retrain on one, show the registry, see what is live, promote a model, roll
back. Results go to stdout, messages to stderr; each command's help lists its exit codes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from training.aws import (
    DatasetLocation,
    LocationError,
    SettingsError,
    StackOutputError,
    configure_logging,
    error_code,
    error_reason,
    new_run_id,
    stack_output,
    utc_now,
)
from training.contract import IDENTIFIER, MODEL_VERSION, RUN_ID, Output, Stack, stack_name
from training.control.promotion import promote, rollback, status
from training.control.promotion_services import (
    ALL_AT_ONCE,
    Promotion,
    PromotionError,
    PromotionRefusedError,
    PromotionServices,
    PromotionSettings,
    StatusReport,
)
from training.instance.imds import ImdsError
from training.instance.pipeline import EXIT_INTERRUPTED, EXIT_TIMED_OUT, run_pipeline
from training.instance.settings import PipelineSettings, RunRequest, Services
from training.live_model import LiveModelError, fetch_live_model
from training.ml.dataset import (
    FEATURES,
    Dataset,
    DatasetError,
    load_dataset,
    parse_dataset,
    read_source,
    write_bundled,
)
from training.ml.export import ExportError, export_info, export_model
from training.ml.gate import DEFAULT_MIN_ACCURACY, DEFAULT_TOLERANCE, check_gate, load_baseline
from training.ml.train import DEFAULT_SEED, DEFAULT_TEST_SIZE, MAX_SEED, train
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
    RegistryConflictError,
    RegistryError,
)

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INVALID_DATASET = 3
EXIT_REFUSED = 4
EXIT_EXISTS = 7
EXIT_PROMOTION_REFUSED = 8

DEFAULT_DATASET_OUT = Path("build/datasets/iris/v1/data.csv")
DEFAULT_MIN_ROWS_PER_CLASS = 10

_EPILOG = f"""\
exit codes:
  {EXIT_OK}  success
  {EXIT_FAILED}  the model could not be exported
  {EXIT_USAGE}  bad usage (unknown option, value out of range)
  {EXIT_INVALID_DATASET}  the dataset is invalid or cannot be read (every problem is listed)
  {EXIT_REFUSED}  the quality gate refused the model (nothing is written)
"""
_TOP_EPILOG = f"""\
exit codes:
  {EXIT_OK}  success
  {EXIT_FAILED}  failure (export, AWS or Docker error; the message says which)
  {EXIT_USAGE}  bad usage (unknown option, value out of range, missing setting)
  {EXIT_INVALID_DATASET}  the dataset is invalid or cannot be read (every problem is listed)
  {EXIT_REFUSED}  the quality gate refused the model (nothing is written or pushed)
  {EXIT_INTERRUPTED}  pipeline: Spot interruption notice (nothing pushed after it)
  {EXIT_TIMED_OUT}  pipeline: the run's time limit was reached
  {EXIT_EXISTS}  upload: that dataset version already exists (versions are immutable)
  {EXIT_PROMOTION_REFUSED}  promote/rollback: refused (unknown, rejected, failed, no image, already
     live, a deployment still running, or another promotion changed the live model)
"""
_PIPELINE_EPILOG = f"""\
environment (set by the launch template's user data):
  REGISTRY_TABLE       the registry's DynamoDB table
  REPOSITORY_URI       ECR repository, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/repo
  BUILD_CONTEXT        the serving image's build context; the model is exported to its model/
  AWS_REGION           region of the table, bucket and repository
  MIN_ACCURACY         gate: minimum hold-out accuracy, in [0, 1]
  ACCURACY_TOLERANCE   gate: accuracy the model may lose against the live model, in [0, 1]
  TIME_LIMIT_MINUTES   the run stops (timed out) this long after it was launched
  DOCKER_PLATFORM      linux/arm64 or linux/amd64

exit codes:
  {EXIT_OK}  succeeded: the image is in ECR and the model recorded as a candidate
  {EXIT_FAILED}  failed: AWS, Docker or instance error (the run's reason says which)
  {EXIT_USAGE}  bad usage or a missing/malformed environment variable
  {EXIT_INVALID_DATASET}  the dataset is invalid or its checksum does not match
  {EXIT_REFUSED}  rejected by the quality gate: recorded, nothing built or pushed
  {EXIT_INTERRUPTED}  interrupted by a Spot notice: nothing pushed after it
  {EXIT_TIMED_OUT}  timed out
"""
_UPLOAD_EPILOG = f"""\
exit codes:
  {EXIT_OK}  uploaded
  {EXIT_FAILED}  the upload failed (AWS error, stack output missing)
  {EXIT_USAGE}  bad usage
  {EXIT_INVALID_DATASET}  the dataset is invalid or cannot be read (nothing uploaded)
  {EXIT_EXISTS}  that dataset version already exists; upload under a new --version
"""
_RETRAIN_EPILOG = f"""\
exit codes:
  {EXIT_OK}  the run was started (its instance is launching)
  {EXIT_FAILED}  the launcher refused or failed (the reason is printed), or an AWS error
  {EXIT_USAGE}  bad usage
  {EXIT_INVALID_DATASET}  no such dataset version in the data bucket
"""
_REGISTRY_EPILOG = f"""\
exit codes:
  {EXIT_OK}  printed
  {EXIT_FAILED}  the registry could not be read (AWS error, stack output missing)
  {EXIT_USAGE}  bad usage
"""
_STATUS_EPILOG = _REGISTRY_EPILOG
_PROMOTE_EPILOG = f"""\
exit codes:
  {EXIT_OK}  the deployment started and is recorded (follow it with `status`)
  {EXIT_FAILED}  AWS error or stack output missing (the message says what state AWS is in)
  {EXIT_USAGE}  bad usage
  {EXIT_PROMOTION_REFUSED}  refused: the model is not in the registry, was rejected or failed, has
     no image yet, or is already live, or a deployment is still running (nothing
     changed); or another promotion moved the live model meanwhile (run status and
     retry; the message says whether a deployment had been started)
"""
_ROLLBACK_EPILOG = f"""\
exit codes:
  {EXIT_OK}  the deployment started and is recorded (follow it with `status`)
  {EXIT_FAILED}  AWS error or stack output missing (the message says what state AWS is in)
  {EXIT_USAGE}  bad usage
  {EXIT_PROMOTION_REFUSED}  refused: no rollback model is recorded and no --to was given, the model
     is not in the registry, was rejected or failed, has no image, or is already live,
     or a deployment is still running (nothing changed); or another promotion moved
     the live model meanwhile (run status and retry; the message says whether a
     deployment had been started)
"""


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line help, its description, its options and what it runs."""

    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str = _EPILOG


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the descriptions' line breaks (they hold examples and lists)."""


# Argument types: argparse turns their ArgumentTypeError into a usage error (exit 2).


def _unit_interval(text: str) -> float:
    """Parse a number in [0, 1]."""
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _open_unit_interval(text: str) -> float:
    """Parse a number strictly between 0 and 1."""
    value = _float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def _float(text: str) -> float:
    """Parse a finite float."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    """Parse an integer of at least 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _seed(text: str) -> int:
    """Parse an integer numpy accepts as a seed."""
    value = _int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, got {text}")
    return value


def _int(text: str) -> int:
    """Parse an integer."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _identifier(text: str) -> str:
    """Check a dataset name or version: it becomes part of an S3 key and an ECR tag."""
    if not IDENTIFIER.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return text


def _baseline(text: str) -> dict[str, Any]:
    """Load the baseline's metrics while parsing the arguments, so a bad file fails first."""
    try:
        return load_baseline(Path(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


# Subcommands.


def _add_dataset_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_DATASET_OUT,
        metavar="PATH",
        help="file to write; parent directories are created (default: %(default)s)",
    )


def _run_dataset(args: argparse.Namespace) -> int:
    try:
        path = write_bundled(args.out)
    except OSError as err:
        _error(f"cannot write {args.out}: {err.strerror or err}")
        return EXIT_FAILED
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _output(f"wrote {path} (sha256 {digest})")
    return EXIT_OK


def _add_dataset_source(parser: argparse.ArgumentParser) -> None:
    """Options that choose and check the dataset, shared by every command that reads one."""
    parser.add_argument(
        "--dataset",
        metavar="SRC",
        help="CSV to use: a local path or s3://bucket/key "
        "(default: the iris data bundled with scikit-learn)",
    )
    parser.add_argument(
        "--dataset-name",
        type=_identifier,
        metavar="NAME",
        help="dataset name recorded with the model (default: from a "
        ".../datasets/<name>/<version>/data.csv path, else iris)",
    )
    parser.add_argument(
        "--dataset-version",
        type=_identifier,
        metavar="VERSION",
        help="dataset version recorded with the model (default: from the path layout, v1 for "
        "the bundled data, else local-<first 12 hex digits of the file's sha256>)",
    )
    parser.add_argument(
        "--min-rows-per-class",
        type=_positive_int,
        default=DEFAULT_MIN_ROWS_PER_CLASS,
        metavar="N",
        help="refuse a dataset with fewer rows in any class (default: %(default)s)",
    )


def _load(args: argparse.Namespace) -> Dataset:
    """Load the dataset the arguments name (raises DatasetError)."""
    return load_dataset(
        args.dataset,
        name=args.dataset_name,
        version=args.dataset_version,
        min_rows_per_class=args.min_rows_per_class,
    )


def _run_validate(args: argparse.Namespace) -> int:
    try:
        dataset = _load(args)
    except DatasetError as err:
        _error(str(err))
        return EXIT_INVALID_DATASET
    _output(f"ok: {dataset.name}/{dataset.version}, {dataset.rows} rows, sha256 {dataset.sha256}")
    return EXIT_OK


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dataset_source(parser)
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory for model.npz and metadata.json; created if needed, and left untouched "
        "when the gate refuses the model",
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=DEFAULT_SEED,
        help="random seed of the train/test split (default: %(default)s)",
    )
    parser.add_argument(
        "--test-size",
        type=_open_unit_interval,
        default=DEFAULT_TEST_SIZE,
        metavar="FRACTION",
        help="fraction of the rows held out for evaluation, in (0, 1) (default: %(default)s)",
    )
    parser.add_argument(
        "--min-accuracy",
        type=_unit_interval,
        default=DEFAULT_MIN_ACCURACY,
        metavar="FRACTION",
        help="gate: refuse a model whose hold-out accuracy is below this, in [0, 1] "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--baseline",
        type=_baseline,
        metavar="FILE",
        help="gate: the current model's metadata.json or a metrics JSON with an accuracy; "
        "refuse a model worse than it by more than --tolerance (default: no baseline)",
    )
    parser.add_argument(
        "--tolerance",
        type=_unit_interval,
        default=DEFAULT_TOLERANCE,
        metavar="FRACTION",
        help="gate: accuracy the model may lose against --baseline, in [0, 1] "
        "(default: %(default)s)",
    )


def _run_train(args: argparse.Namespace) -> int:
    try:
        dataset = _load(args)
        result = train(dataset, seed=args.seed, test_size=args.test_size)
    except DatasetError as err:
        _error(str(err))
        return EXIT_INVALID_DATASET
    gate = check_gate(
        result.metrics,
        min_accuracy=args.min_accuracy,
        baseline=args.baseline,
        tolerance=args.tolerance,
    )
    if not gate.passed:
        reasons = "".join(f"\n  {reason}" for reason in gate.reasons)
        _error(f"refused by the quality gate; nothing written to {args.out}:{reasons}")
        return EXIT_REFUSED
    try:
        exported = export_model(
            result.estimator,
            args.out,
            feature_names=list(FEATURES),
            info=export_info(dataset, result, gate),
        )
    except ExportError as err:
        _error(f"cannot export the model: {err}")
        return EXIT_FAILED
    except OSError as err:
        _error(f"cannot write the model to {args.out}: {err.strerror or err}")
        return EXIT_FAILED
    _output(
        f"model {exported.model_version} trained on {dataset.name}/{dataset.version} "
        f"({result.training['n_train']} rows)\n"
        f"accuracy {result.metrics['accuracy']:.4f} on {result.training['n_test']} held-out rows; "
        "gate passed\n"
        f"wrote {exported.directory}"
    )
    return EXIT_OK


# Cloud and operator commands.

DEFAULT_STACK_PREFIX = "iris-ml-dev"
DEFAULT_RUNS = 10


def _s3_dataset_uri(text: str) -> str:
    """Check an s3:// URI follows the data lake's layout."""
    try:
        return DatasetLocation.parse(text).uri
    except LocationError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _run_id(text: str) -> str:
    """Check a run id's shape."""
    if not RUN_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a run id: expected <UTC yyyymmddThhmmssZ>-<8 hex>, "
            "e.g. 20261127T140501Z-1a2b3c4d"
        )
    return text


def _add_stack_prefix(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack-prefix",
        default=DEFAULT_STACK_PREFIX,
        metavar="PREFIX",
        help="<project>-<environment> of the deployed stacks, whose outputs name the bucket, "
        "table and functions (default: %(default)s)",
    )


def _add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--dataset",
        type=_s3_dataset_uri,
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
        type=_run_id,
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
        _error("--run-id goes with --dataset; --from-instance-tags reads the RunId tag")
        return EXIT_USAGE
    try:
        settings = PipelineSettings.from_env()
    except SettingsError as err:
        _error(str(err))
        return EXIT_USAGE
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
        _error(f"cannot start the run: {err}")
        return EXIT_FAILED
    finally:
        if args.shutdown:
            services.host.shutdown()
    _output(f"run {outcome.run_id}: {outcome.status}\n{outcome.reason}")
    return outcome.exit_code


def connect_services(settings: PipelineSettings) -> Services:
    """The pipeline's real services (a seam for tests)."""
    return Services.connect(settings)


def _add_upload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", type=Path, required=True, metavar="FILE", help="CSV file to upload"
    )
    parser.add_argument(
        "--name",
        type=_identifier,
        default="iris",
        help="dataset name, the key's <name> part (default: %(default)s)",
    )
    parser.add_argument(
        "--version",
        type=_identifier,
        required=True,
        help="dataset version, the key's <version> part; a version is never overwritten",
    )
    parser.add_argument(
        "--bucket",
        metavar="BUCKET",
        help="data bucket (default: the DatasetBucketName output of <stack-prefix>-data)",
    )
    _add_stack_prefix(parser)
    parser.add_argument(
        "--min-rows-per-class",
        type=_positive_int,
        default=DEFAULT_MIN_ROWS_PER_CLASS,
        metavar="N",
        help="refuse a dataset with fewer rows in any class (default: %(default)s)",
    )


@dataclass(frozen=True)
class Upload:
    """Where a dataset version was stored and what S3 recorded for it."""

    uri: str
    version_id: str | None
    sha256: str
    rows: int


class DatasetExistsError(Exception):
    """The dataset version is already in the bucket."""


def upload_dataset(
    s3: S3Client, location: DatasetLocation, dataset: Dataset, data: bytes
) -> Upload:
    """Store a validated dataset version; DatasetExistsError if the version exists.

    The write is conditional (If-None-Match: *), so a version is never overwritten, and it
    carries the SHA-256 of the validated bytes, so S3 refuses anything else.
    """
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    try:
        response = s3.put_object(
            Bucket=location.bucket,
            Key=location.key,
            Body=data,
            IfNoneMatch="*",
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=checksum,
            ContentType="text/csv",
        )
    except ClientError as err:
        # 412 when the object exists; 409 when another upload of it is in flight.
        if error_code(err) in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise DatasetExistsError(
                f"{location.uri} already exists: dataset versions are immutable, so upload "
                "under a new --version"
            ) from err
        raise
    return Upload(location.uri, response.get("VersionId"), dataset.sha256, dataset.rows)


def _run_upload(args: argparse.Namespace) -> int:
    source = str(args.dataset)
    try:
        data = read_source(source)
        dataset = parse_dataset(
            data,
            name=args.name,
            version=args.version,
            source=source,
            min_rows_per_class=args.min_rows_per_class,
        )
    except DatasetError as err:
        _error(f"{err}\nnothing uploaded")
        return EXIT_INVALID_DATASET
    try:
        bucket = args.bucket or stack_output(
            boto3.client("cloudformation"),
            stack_name(args.stack_prefix, Stack.DATA),
            Output.DATASET_BUCKET_NAME,
        )
        location = DatasetLocation(bucket=bucket, name=args.name, version=args.version)
        upload = upload_dataset(boto3.client("s3"), location, dataset, data)
    except DatasetExistsError as err:
        _error(str(err))
        return EXIT_EXISTS
    except (ClientError, BotoCoreError, StackOutputError) as err:
        _error(f"cannot upload {source}: {error_reason(err)}")
        return EXIT_FAILED
    _output(
        f"uploaded {upload.uri} ({upload.rows} rows, sha256 {upload.sha256}, "
        f"S3 version {upload.version_id or 'none'})\n"
        "the upload event starts a training run; follow it with `python -m training registry`"
    )
    return EXIT_OK


def _add_retrain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset-version",
        type=_identifier,
        required=True,
        metavar="VERSION",
        help="dataset version to train on (already uploaded)",
    )
    parser.add_argument(
        "--dataset-name",
        type=_identifier,
        default="iris",
        metavar="NAME",
        help="dataset name (default: %(default)s)",
    )
    _add_stack_prefix(parser)
    parser.add_argument("--reason", metavar="TEXT", help="why, recorded with the run's start event")


def request_retrain(
    *,
    cloudformation: Any,
    s3: S3Client,
    sts: Any,
    lambda_client: LambdaClient,
    stack_prefix: str,
    name: str,
    version: str,
    reason: str | None,
) -> dict[str, Any]:
    """Ask the launcher for a run on an uploaded dataset version; return its answer."""
    bucket = stack_output(
        cloudformation, stack_name(stack_prefix, Stack.DATA), Output.DATASET_BUCKET_NAME
    )
    function = stack_output(
        cloudformation, stack_name(stack_prefix, Stack.PIPELINE), Output.LAUNCHER_FUNCTION_NAME
    )
    location = DatasetLocation(bucket=bucket, name=name, version=version)
    try:
        s3.head_object(Bucket=bucket, Key=location.key)
    except ClientError as err:
        if error_code(err) in ("404", "NoSuchKey", "NotFound"):
            raise DatasetError(
                location.uri,
                [
                    f"no dataset at {location.uri}; upload it first with `python -m training "
                    f"upload --dataset FILE --name {name} --version {version}`"
                ],
            ) from err
        raise
    payload = {
        "dataset_uri": location.uri,
        "requested_by": str(sts.get_caller_identity()["Arn"]),
        "reason": reason or "manual retrain",
    }
    response = lambda_client.invoke(
        FunctionName=function,
        InvocationType="RequestResponse",
        Payload=json.dumps(payload).encode(),
    )
    answer = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        message = answer.get("errorMessage") if isinstance(answer, dict) else answer
        return {"status": "error", "reason": f"the launcher failed: {message}"}
    if not isinstance(answer, dict):
        return {"status": "error", "reason": f"unexpected launcher answer: {answer!r}"}
    return answer


def _run_retrain(args: argparse.Namespace) -> int:
    try:
        answer = request_retrain(
            cloudformation=boto3.client("cloudformation"),
            s3=boto3.client("s3"),
            sts=boto3.client("sts"),
            lambda_client=boto3.client("lambda"),
            stack_prefix=args.stack_prefix,
            name=args.dataset_name,
            version=args.dataset_version,
            reason=args.reason,
        )
    except DatasetError as err:
        _error(str(err))
        return EXIT_INVALID_DATASET
    except (ClientError, BotoCoreError, StackOutputError) as err:
        _error(f"cannot request a run: {error_reason(err)}")
        return EXIT_FAILED
    if "instance_id" in answer and "status" not in answer:
        _output(
            f"run {answer['run_id']} started on {answer['instance_id']} ({answer['market']})\n"
            "follow it with `python -m training registry`"
        )
        return EXIT_OK
    run = f"run {answer['run_id']} " if answer.get("run_id") else ""
    _error(f"{run}{answer.get('status', 'error')}: {answer.get('reason', answer)}")
    return EXIT_FAILED


def _add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    _add_stack_prefix(parser)
    parser.add_argument(
        "--table",
        metavar="TABLE",
        help="registry table (default: the RegistryTableName output of <stack-prefix>-pipeline)",
    )
    parser.add_argument(
        "--runs",
        type=_positive_int,
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
    lines += _table(
        ["MODEL", "STATUS", "ACCURACY", "DATASET", "IMAGE TAG", "IMAGE DIGEST", "CREATED"],
        [
            [
                model.model_version,
                model.status or "-",
                _accuracy(model.metrics),
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
    lines += _table(
        ["RUN", "STATUS", "DATASET", "INSTANCE", "MODEL", "ACCURACY", "REASON"],
        [
            [
                run.run_id,
                run.status,
                f"{run.dataset_name}/{run.dataset_version}",
                f"{run.instance_id or '-'} {run.market or ''}".strip(),
                run.model_version or "-",
                _accuracy(run.metrics),
                _one_line(run.reason),
            ]
            for run in recent
        ],
    )
    return "\n".join(lines)


def _accuracy(metrics: Mapping[str, Any] | None) -> str:
    value = (metrics or {}).get("accuracy")
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def _one_line(text: str | None, limit: int = 100) -> str:
    """A reason on one line, cut to fit a table row."""
    flat = " ".join((text or "-").split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart; "(none)" for no rows."""
    if not rows:
        return ["  (none)"]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]


def _run_registry(args: argparse.Namespace) -> int:
    try:
        table = args.table or stack_output(
            boto3.client("cloudformation"),
            stack_name(args.stack_prefix, Stack.PIPELINE),
            Output.REGISTRY_TABLE_NAME,
        )
        text = format_registry(Registry(table, actor="cli"), runs=args.runs)
    except (ClientError, BotoCoreError, StackOutputError) as err:
        _error(f"cannot read the registry: {error_reason(err)}")
        return EXIT_FAILED
    _output(text)
    return EXIT_OK


DEFAULT_PROMOTION_EVENTS = 10


def _model_version(text: str) -> str:
    """Check a model version's shape: 12 lower-case hex digits."""
    if not MODEL_VERSION.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a model version: expected 12 lower-case hex digits, e.g. "
            "0a1b2c3d4e5f (`python -m training status` lists them)"
        )
    return text


def _add_status_arguments(parser: argparse.ArgumentParser) -> None:
    _add_stack_prefix(parser)
    parser.add_argument(
        "--events",
        type=_positive_int,
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
    lines += _table(
        ["MODEL", "STATUS", "ACCURACY", "DATASET", "IMAGE TAG", "CREATED", "REASON"],
        [
            [
                model.model_version,
                model.status or "-",
                _accuracy(model.metrics),
                f"{model.dataset_name or '?'}/{model.dataset_version or '?'}",
                model.image_tag or "-",
                model.created_at or "-",
                _one_line(model.status_reason, 80),
            ]
            for model in report.models
        ],
    )
    lines += ["", f"promotions (newest {len(report.promotions)}):"]
    lines += _table(
        ["TIME", "EVENT", "MODEL", "LIVE MOVED", "DEPLOYMENT", "BY", "REASON"],
        [
            [
                event.time,
                event.type,
                event.model_version or "-",
                _live_moved(event),
                str((event.detail or {}).get("deployment_id") or "-"),
                event.actor,
                _one_line(event.reason, 80),
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
        f"accuracy {_accuracy(model.metrics if model else None)}  "
        f"revision {pointer.revision}, {pointer.updated_at} by {pointer.updated_by}"
        + (f": {_one_line(pointer.reason)}" if pointer.reason else "")
    )


def _deployment_line(deployment: Deployment) -> str:
    line = (
        f"deployment {deployment.deployment_id} {deployment.status} ({deployment.type} by "
        f"{deployment.actor}; Lambda version {deployment.previous_lambda_version} -> "
        f"{deployment.lambda_version})"
    )
    return line + (f": {_one_line(deployment.outcome)}" if deployment.outcome else "")


def _run_status(args: argparse.Namespace) -> int:
    try:
        table = stack_output(
            boto3.client("cloudformation"),
            stack_name(args.stack_prefix, Stack.PIPELINE),
            Output.REGISTRY_TABLE_NAME,
        )
        text = format_status(status(Registry(table, actor="cli"), events=args.events))
    except (ClientError, BotoCoreError, StackOutputError, RegistryError) as err:
        _error(f"cannot read the registry: {_failure(err)}")
        return EXIT_FAILED
    _output(text)
    return EXIT_OK


def _add_fetch_live_arguments(parser: argparse.ArgumentParser) -> None:
    _add_stack_prefix(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("lambda_image/model"),
        metavar="DIR",
        help="where to write model.npz and metadata.json (default: %(default)s)",
    )


def _run_fetch_live(args: argparse.Namespace) -> int:
    try:
        table = stack_output(
            boto3.client("cloudformation"),
            stack_name(args.stack_prefix, Stack.PIPELINE),
            Output.REGISTRY_TABLE_NAME,
        )
        fetched = fetch_live_model(Registry(table, actor="cli"), boto3.client("ecr"), args.out)
    except (ClientError, BotoCoreError, StackOutputError, RegistryError, LiveModelError) as err:
        _error(f"cannot fetch the live model: {_failure(err)}")
        return EXIT_FAILED
    if fetched is None:
        _output(f"no model is live yet: {args.out} keeps its model (a first deploy ships it)")
    else:
        _output(f"wrote live model {fetched.model_version} from {fetched.image} to {args.out}")
    return EXIT_OK


def _add_promote_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--version",
        type=_model_version,
        required=True,
        metavar="V",
        help="model version to make live (12 hex digits, as `status` lists them)",
    )
    parser.add_argument(
        "--reason",
        metavar="TEXT",
        default="manual promotion",
        help="why, recorded with the promotion (default: %(default)s)",
    )
    _add_stack_prefix(parser)


def _add_rollback_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to",
        type=_model_version,
        metavar="V",
        help="model version to return to (default: the rollback model `status` shows)",
    )
    parser.add_argument(
        "--reason",
        metavar="TEXT",
        default="manual rollback",
        help="why, recorded with the rollback (default: %(default)s)",
    )
    _add_stack_prefix(parser)


def connect_promotion(stack_prefix: str) -> PromotionServices:
    """Promotion services for the deployed stacks, acting as the caller (STS identity ARN)."""
    settings = PromotionSettings.from_stacks(boto3.client("cloudformation"), stack_prefix)
    actor = str(boto3.client("sts").get_caller_identity()["Arn"])
    return PromotionServices.connect(settings, actor=actor)


def _run_promote(args: argparse.Namespace) -> int:
    return _run_promotion(
        lambda services: promote(
            args.version,
            actor=services.registry.actor,
            reason=args.reason,
            services=services,
        ),
        stack_prefix=args.stack_prefix,
    )


def _run_rollback(args: argparse.Namespace) -> int:
    return _run_promotion(
        lambda services: rollback(
            to=args.to, actor=services.registry.actor, reason=args.reason, services=services
        ),
        stack_prefix=args.stack_prefix,
    )


def _run_promotion(start: Callable[[PromotionServices], Promotion], *, stack_prefix: str) -> int:
    """Connect, start the promotion or rollback, and report it."""
    try:
        promotion = start(connect_promotion(stack_prefix))
    except (PromotionRefusedError, RegistryConflictError) as err:
        _error(f"refused: {err}")
        return EXIT_PROMOTION_REFUSED
    except (ClientError, BotoCoreError, StackOutputError, PromotionError, RegistryError) as err:
        _error(f"failed: {_failure(err)}")
        return EXIT_FAILED
    verb = "rolling back to" if promotion.type == ROLLED_BACK else "promoting"
    how = (
        "all at once"
        if promotion.deployment_config == ALL_AT_ONCE
        else promotion.deployment_config or "by the deployment group's canary"
    )
    _output(
        f"{verb} {promotion.model_version}: CodeDeploy deployment {promotion.deployment_id} "
        f"shifts the live alias from Lambda version {promotion.previous_lambda_version} to "
        f"{promotion.lambda_version} ({how})\n"
        f"rollback model: {promotion.previous_model_version or 'none'}\n"
        "CodeDeploy moves the alias back by itself if a guard alarm fires; follow it with "
        "`python -m training status`"
    )
    return EXIT_OK


def _failure(err: BaseException) -> str:
    """An error's one-line reason: ours carry their message, AWS's their code and message."""
    if isinstance(err, PromotionError | RegistryError | StackOutputError):
        return str(err)
    return error_reason(err)


# A new subcommand is one more entry here.
COMMANDS: dict[str, Command] = {
    "dataset": Command(
        help="write the bundled iris data as the project's canonical CSV",
        description="Write the iris data that scikit-learn ships (no download) as the project's\n"
        "canonical CSV, then print its path, row count and sha256. Upload it to\n"
        "s3://<bucket>/datasets/iris/v1/data.csv to train the cloud model on it.",
        add_arguments=_add_dataset_out,
        run=_run_dataset,
    ),
    "validate": Command(
        help="check a dataset and report every problem in it",
        description="Check a dataset's columns, values, labels and class sizes and print\n"
        "'ok: <name>/<version>, <rows> rows, sha256 <hex>'. An invalid dataset prints\n"
        f"every problem to stderr and exits {EXIT_INVALID_DATASET}.",
        add_arguments=_add_dataset_source,
        run=_run_validate,
    ),
    "train": Command(
        help="train, evaluate and gate a model, then export it",
        description="Validate the dataset, fit the KNN classifier on a seeded stratified split,\n"
        "score it on the held-out rows and apply the quality gate. A model that\n"
        "passes is written to --out as model.npz and metadata.json\n"
        "(docs/model-artifact.md); a refused model writes nothing and exits "
        f"{EXIT_REFUSED}.\n"
        "The same data and seed give a byte-identical model.npz.",
        add_arguments=_add_train_arguments,
        run=_run_train,
    ),
    "pipeline": Command(
        help="the cloud run: S3 dataset -> train -> gate -> image in ECR (on the instance)",
        description="Run one training run as the Spot instance does: mark the run running, read\n"
        "the dataset version from S3 (checking its stored SHA-256), validate, train, gate\n"
        "against the live model, export into $BUILD_CONTEXT/model, build the serving\n"
        "image and push it as <REPOSITORY_URI>:<dataset_version>-<model_version>. A\n"
        "Spot notice or the time limit stops it between steps (and kills a running\n"
        "docker command); every outcome is recorded on the run in the registry.",
        add_arguments=_add_pipeline_arguments,
        run=_run_pipeline,
        epilog=_PIPELINE_EPILOG,
    ),
    "upload": Command(
        help="validate a dataset file and store it as a new, immutable dataset version",
        description="Validate a CSV locally (every problem is listed), then store it at\n"
        "s3://<bucket>/datasets/<name>/<version>/data.csv with a conditional write, so an\n"
        "existing version is never overwritten, and its SHA-256, which S3 verifies. The\n"
        "upload event starts a training run.",
        add_arguments=_add_upload_arguments,
        run=_run_upload,
        epilog=_UPLOAD_EPILOG,
    ),
    "retrain": Command(
        help="start a training run on an uploaded dataset version",
        description="Invoke the launcher function (from the pipeline stack's outputs) for\n"
        "s3://<bucket>/datasets/<name>/<version>/data.csv and print the run id and\n"
        "instance, or why no instance was started. Your identity (STS) is recorded\n"
        "as requested_by.",
        add_arguments=_add_retrain_arguments,
        run=_run_retrain,
        epilog=_RETRAIN_EPILOG,
    ),
    "registry": Command(
        help="show the live and rollback models, every model and the recent runs",
        description="Print the registry (docs/registry.md): the live and rollback pointers,\n"
        "every model with its status, accuracy, dataset and image, and the newest runs\n"
        "with where they ran and why they ended.",
        add_arguments=_add_registry_arguments,
        run=_run_registry,
        epilog=_REGISTRY_EPILOG,
    ),
    "status": Command(
        help="show the live and rollback models, every model and the recent promotions",
        description="Print what the API serves: the live model with its accuracy and image, the\n"
        "deployment that put it there (in progress, succeeded, failed), the model a\n"
        "rollback returns to, every model newest first with its status, and the newest\n"
        "promotion events: who promoted or rolled back what, when and why.",
        add_arguments=_add_status_arguments,
        run=_run_status,
        epilog=_STATUS_EPILOG,
    ),
    "fetch-live": Command(
        help="write the registry's live model into lambda_image/model (make deploy runs it)",
        description="Read the live model's files from the last layer of its image in ECR (no\n"
        "Docker), check them against the registry's model version and write them, so the\n"
        "next `cdk deploy` ships serving code and configuration with the live model. The\n"
        "api stack refuses a deploy whose lambda_image/model is not the live model.",
        add_arguments=_add_fetch_live_arguments,
        run=_run_fetch_live,
    ),
    "promote": Command(
        help="make a registered model live through the CodeDeploy canary",
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
        help="return the API to the rollback model (or --to a model), all at once",
        description="Deploy the rollback model (the one live before the current one) or the\n"
        f"model --to names, as promote does but with {ALL_AT_ONCE},\n"
        "so it takes effect in seconds. The model rolled back from becomes the rollback\n"
        "model. Refused, changing nothing, when there is no rollback model and no --to, or\n"
        "for a model that is unknown, rejected, failed, without an image, or already live.",
        add_arguments=_add_rollback_arguments,
        run=_run_rollback,
        epilog=_ROLLBACK_EPILOG,
    ),
}


def build_parser(commands: Mapping[str, Command] = COMMANDS) -> argparse.ArgumentParser:
    """Build the `python -m training` parser with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the iris classifier: dataset -> validate -> train -> evaluate -> "
        "gate -> export.",
        epilog=_TOP_EPILOG,
        formatter_class=_HelpFormatter,
    )
    subparsers = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    for name, command in commands.items():
        subparser = subparsers.add_parser(
            name,
            help=command.help,
            description=command.description,
            epilog=command.epilog,
            formatter_class=_HelpFormatter,
        )
        command.add_arguments(subparser)
        subparser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `python -m training` with `argv` (default: sys.argv[1:]); return the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        # argparse exits on --help (0) and on bad usage (2); callers get the code back.
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


def _output(text: str) -> None:
    sys.stdout.write(text + "\n")


def _error(text: str) -> None:
    sys.stderr.write(text + "\n")
