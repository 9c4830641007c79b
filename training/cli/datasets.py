"""`upload` and `retrain`: store a new dataset version in the data lake, start a run on one."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from training.aws import DatasetLocation, StackOutputError, error_code, error_reason, stack_output
from training.cli.arguments import (
    add_dataset_name,
    add_min_rows_per_class,
    add_stack_prefix,
    identifier,
)
from training.cli.command import Command
from training.cli.console import error, output
from training.contract import Output, Stack, stack_name
from training.exit_codes import ExitCode, describe
from training.ml.dataset import Dataset, DatasetError, parse_dataset, read_source

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

_UPLOAD_EPILOG = describe(
    {
        ExitCode.OK: "uploaded",
        ExitCode.FAILED: "the upload failed (AWS error, stack output missing)",
        ExitCode.USAGE: "bad usage",
        ExitCode.INVALID_DATASET: "the dataset is invalid or cannot be read (nothing uploaded)",
        ExitCode.EXISTS: "that dataset version already exists; upload under a new "
        "--dataset-version",
    }
)
_RETRAIN_EPILOG = describe(
    {
        ExitCode.OK: "the run was started (its instance is launching)",
        ExitCode.FAILED: "the launcher refused or failed (the reason is printed), or an AWS error",
        ExitCode.USAGE: "bad usage",
        ExitCode.INVALID_DATASET: "no such dataset version in the data bucket",
    }
)


def _add_upload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", type=Path, required=True, metavar="FILE", help="CSV file to upload"
    )
    add_dataset_name(parser)
    parser.add_argument(
        "--dataset-version",
        type=identifier,
        required=True,
        metavar="VERSION",
        help="dataset version, the key's <version> part; a version is never overwritten",
    )
    parser.add_argument(
        "--bucket",
        metavar="BUCKET",
        help="data bucket (default: the DatasetBucketName output of <stack-prefix>-data)",
    )
    add_stack_prefix(parser)
    add_min_rows_per_class(parser)


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
                "under a new --dataset-version"
            ) from err
        raise
    return Upload(location.uri, response.get("VersionId"), dataset.sha256, dataset.rows)


def _run_upload(args: argparse.Namespace) -> int:
    source = str(args.dataset)
    try:
        data = read_source(source)
        dataset = parse_dataset(
            data,
            name=args.dataset_name,
            version=args.dataset_version,
            source=source,
            min_rows_per_class=args.min_rows_per_class,
        )
    except DatasetError as err:
        error(f"{err}\nnothing uploaded")
        return ExitCode.INVALID_DATASET
    try:
        bucket = args.bucket or stack_output(
            boto3.client("cloudformation", region_name=args.region),
            stack_name(args.stack_prefix, Stack.DATA),
            Output.DATASET_BUCKET_NAME,
        )
        location = DatasetLocation(
            bucket=bucket, name=args.dataset_name, version=args.dataset_version
        )
        upload = upload_dataset(
            boto3.client("s3", region_name=args.region), location, dataset, data
        )
    except DatasetExistsError as err:
        error(str(err))
        return ExitCode.EXISTS
    except (ClientError, BotoCoreError, StackOutputError) as err:
        error(f"cannot upload {source}: {error_reason(err)}")
        return ExitCode.FAILED
    output(
        f"uploaded {upload.uri} ({upload.rows} rows, sha256 {upload.sha256}, "
        f"S3 version {upload.version_id or 'none'})\n"
        "the upload event starts a training run; follow it with `python -m training registry`"
    )
    return ExitCode.OK


def _add_retrain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset-version",
        type=identifier,
        required=True,
        metavar="VERSION",
        help="dataset version to train on (already uploaded)",
    )
    add_dataset_name(parser)
    add_stack_prefix(parser)
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
                    f"upload --dataset FILE --dataset-name {name} --dataset-version {version}`"
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
            cloudformation=boto3.client("cloudformation", region_name=args.region),
            s3=boto3.client("s3", region_name=args.region),
            sts=boto3.client("sts", region_name=args.region),
            lambda_client=boto3.client("lambda", region_name=args.region),
            stack_prefix=args.stack_prefix,
            name=args.dataset_name,
            version=args.dataset_version,
            reason=args.reason,
        )
    except DatasetError as err:
        error(str(err))
        return ExitCode.INVALID_DATASET
    except (ClientError, BotoCoreError, StackOutputError) as err:
        error(f"cannot request a run: {error_reason(err)}")
        return ExitCode.FAILED
    if "instance_id" in answer and "status" not in answer:
        output(
            f"run {answer['run_id']} started on {answer['instance_id']} ({answer['market']})\n"
            "follow it with `python -m training registry`"
        )
        return ExitCode.OK
    run = f"run {answer['run_id']} " if answer.get("run_id") else ""
    error(f"{run}{answer.get('status', 'error')}: {answer.get('reason', answer)}")
    return ExitCode.FAILED


COMMANDS: dict[str, Command] = {
    "upload": Command(
        description="Validate a CSV locally (every problem is listed), then store it at\n"
        "s3://<bucket>/datasets/<name>/<version>/data.csv with a conditional write, so an\n"
        "existing version is never overwritten, and its SHA-256, which S3 verifies. The\n"
        "upload event starts a training run.",
        add_arguments=_add_upload_arguments,
        run=_run_upload,
        epilog=_UPLOAD_EPILOG,
    ),
    "retrain": Command(
        description="Invoke the launcher function (from the pipeline stack's outputs) for\n"
        "s3://<bucket>/datasets/<name>/<version>/data.csv and print the run id and\n"
        "instance, or why no instance was started. Your identity (STS) is recorded\n"
        "as requested_by.",
        add_arguments=_add_retrain_arguments,
        run=_run_retrain,
        epilog=_RETRAIN_EPILOG,
    ),
}
