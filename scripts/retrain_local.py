"""`make retrain-local`: the retraining pipeline end to end against an in-process AWS emulation.

Starts moto's server on a free localhost port and points boto3 at it, creates the data bucket,
the registry table and the model repository, then runs the real code for two dataset versions:
v1 (the bundled iris data) is trained, registered and set live, so that v2 (v1 with one
measurement nudged: a new version and a new model) meets the quality gate against a live
model, as it would in AWS. Only two things are stand-ins: the image build (LocalBuild copies
the build context and digests it instead of running Docker) and the instance (a fixed fake
IMDS). Each push reaches the registrar as the ECR event EventBridge would deliver, built from
the recorded sample. Finally it prints the registry.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as `python scripts/retrain_local.py`: the training package sits in the repository root.
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from training.aws import DatasetLocation, configure_logging, iso, new_run_id, utc_now  # noqa: E402
from training.cli.datasets import upload_dataset  # noqa: E402
from training.cli.views import format_registry  # noqa: E402
from training.control import registrar  # noqa: E402
from training.instance.docker import LocalBuild  # noqa: E402
from training.instance.pipeline import run_pipeline  # noqa: E402
from training.instance.settings import PipelineSettings, RunOutcome, RunRequest  # noqa: E402
from training.ml.dataset import bundled_iris_csv, parse_dataset  # noqa: E402
from training.registry import Registry, create_table  # noqa: E402

REGION: Final = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
BUCKET = "iris-ml-local-data"
TABLE = "iris-ml-local-registry"
REPOSITORY = "iris-ml-local-models"
# The serving runtime a deploy would have shipped (a CDK asset in the bootstrap repository).
RUNTIME_REPOSITORY = f"cdk-hnb659fds-container-assets-{ACCOUNT}-{REGION}"
RUNTIME_PARAMETER = "/iris-ml-local/serving/runtime-image-uri"
SERVING = ROOT / "lambda_image"
PUSH_EVENT = ROOT / "tests" / "training" / "events" / "ecr_image_push.json"


class LocalInstance:
    """The instance metadata of a pretend on-demand trainer that is never interrupted."""

    def instance_id(self) -> str:
        """A fixed id."""
        return "i-0local0000000000"

    def instance_type(self) -> str:
        """A fixed type."""
        return "local"

    def lifecycle(self) -> str:
        """Not Spot: nothing will reclaim it."""
        return "on-demand"

    def tag(self, key: str) -> str:
        """Runs are passed explicitly, so no tag is ever read."""
        raise KeyError(key)

    def spot_instance_action(self) -> dict[str, str] | None:
        """Never a notice."""
        return None


def nudged_iris() -> bytes:
    """The bundled data with one petal width changed: a new dataset version and model."""
    lines = bundled_iris_csv().decode().splitlines()
    lines[1] = lines[1].replace(",0.2,setosa", ",0.3,setosa")
    return ("\n".join(lines) + "\n").encode()


def free_port() -> int:
    """A localhost TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables (and drop AWS_PROFILE) for the block, then restore them."""
    names = [*values, "AWS_PROFILE"]
    saved = {name: os.environ.get(name) for name in names}
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def build_context(work: Path) -> Path:
    """The serving image's build context as the trainer gets it: no model, no caches."""
    context = work / "build"
    shutil.copytree(
        SERVING, context, ignore=shutil.ignore_patterns("model", "__pycache__", "*.pyc")
    )
    return context


def deploy_serving_runtime() -> None:
    """What the api stack's deploy leaves for the trainer: the runtime image and its pointer."""
    ecr = boto3.client("ecr")
    ecr.create_repository(repositoryName=RUNTIME_REPOSITORY)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
    ecr.put_image(
        repositoryName=RUNTIME_REPOSITORY, imageManifest=json.dumps(manifest), imageTag="local"
    )
    uri = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{RUNTIME_REPOSITORY}:local"
    boto3.client("ssm").put_parameter(Name=RUNTIME_PARAMETER, Value=uri, Type="String")


def push_event(tag: str, digest: str) -> dict[str, Any]:
    """The ECR push event EventBridge delivers for `tag`, from the recorded sample."""
    event: dict[str, Any] = copy.deepcopy(json.loads(PUSH_EVENT.read_text()))
    event["detail"].update(
        {"repository-name": REPOSITORY, "image-tag": tag, "image-digest": digest}
    )
    event.update(id=str(uuid.uuid4()), account=ACCOUNT, region=REGION, time=iso(utc_now()))
    return event


def say(text: str) -> None:
    """Progress on stdout."""
    sys.stdout.write(f"==> {text}\n")
    sys.stdout.flush()


def retrain(version: str, data: bytes, *, registry: Registry, work: Path) -> RunOutcome:
    """Upload a dataset version, run the pipeline on it and register the pushed image."""
    s3 = boto3.client("s3")
    location = DatasetLocation(bucket=BUCKET, name="iris", version=version)
    dataset = parse_dataset(data, name="iris", version=version, source=location.uri)
    upload = upload_dataset(s3, location, dataset, data)
    say(f"uploaded {upload.uri} (sha256 {upload.sha256[:12]}..., S3 version {upload.version_id})")
    settings = PipelineSettings(
        registry_table=TABLE,
        repository_uri=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}",
        build_context=build_context(work / version),
        runtime_image_parameter=RUNTIME_PARAMETER,
        region=REGION,
        min_accuracy=0.9,
        accuracy_tolerance=0.02,
        time_limit_minutes=60,
        docker_platform="linux/arm64",
    )
    run_id = new_run_id(utc_now(), f"{upload.uri}?versionId={upload.version_id}")
    # What the launcher records when the upload event arrives.
    registry.start_run(
        run_id,
        dataset_uri=upload.uri,
        dataset_name="iris",
        dataset_version=version,
        trigger="s3-event",
        request_reason=f"PutObject of {upload.uri}",
    )
    outcome = run_pipeline(
        settings,
        RunRequest(run_id, upload.uri),
        registry=registry,
        s3=s3,
        ecr=boto3.client("ecr"),
        ssm=boto3.client("ssm"),
        docker=LocalBuild(work / "images", registry=boto3.client("ecr")),
        imds=LocalInstance(),
    )
    say(f"run {run_id}: {outcome.status}: {outcome.reason}")
    if outcome.image_tag and outcome.image_digest:
        answer = registrar.handler(push_event(outcome.image_tag, outcome.image_digest), None)
        say(f"registrar: {answer['status']} {answer.get('model_version')} {outcome.image_digest}")
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    """Run v1 then v2 through the pipeline on moto and print the registry; 0 when v2 passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="keep the local builds (build contexts with their models) here "
        "(default: a temporary directory, removed at the end)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every step as JSON")
    args = parser.parse_args(argv)
    configure_logging("INFO" if args.verbose else "WARNING")
    # moto's server logs every request at INFO; the steps are what matter here.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    work = args.out or Path(tempfile.mkdtemp(prefix="retrain-local-"))
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        with environment(
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 (moto's fake credentials)
            AWS_SESSION_TOKEN="testing",  # noqa: S106
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            REGISTRY_TABLE=TABLE,
            REPOSITORY_NAME=REPOSITORY,
            # The registrar's handler sets up logging from LOG_LEVEL, as in Lambda.
            LOG_LEVEL="INFO" if args.verbose else "WARNING",
        ):
            say(f"moto server on http://127.0.0.1:{port}")
            s3 = boto3.client("s3")
            s3.create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
            create_table(boto3.client("dynamodb"), TABLE)
            boto3.client("ecr").create_repository(
                repositoryName=REPOSITORY, imageTagMutability="IMMUTABLE"
            )
            deploy_serving_runtime()
            registry = Registry(TABLE, actor="retrain-local")
            first = retrain("v1", bundled_iris_csv(), registry=registry, work=work)
            if first.model_version is None or first.status != "succeeded":
                return first.exit_code or 1
            registry.set_live(first.model_version, expected_revision=0, reason="seed: v1 live")
            say(f"v1 model {first.model_version} set live: v2 is gated against it")
            second = retrain("v2", nudged_iris(), registry=registry, work=work)
            sys.stdout.write("\n" + format_registry(registry) + "\n")
            return second.exit_code
    finally:
        server.stop()
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    logging.captureWarnings(True)
    raise SystemExit(main())
