"""The trainer's cloud run on moto: every outcome, what it records and which docker commands ran."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from mypy_boto3_ecr import ECRClient
from mypy_boto3_s3 import S3Client

import training.instance.pipeline as pipeline_module
from tests.training.fakes import (
    NOTICE,
    PUSH_DIGEST,
    REPOSITORY,
    FakeImds,
    RecordingRunner,
    StepClock,
    load_event,
)
from training.aws import SettingsError
from training.control.registrar import RegistrarSettings, register
from training.instance.docker import DockerCli
from training.instance.pipeline import run_pipeline
from training.instance.settings import PipelineSettings, RunOutcome, RunRequest
from training.ml.dataset import bundled_iris_csv
from training.ml.export import METADATA_FILE, MODEL_FILE
from training.registry import ImageRecord, ModelRecord, Registry

RUN_ID = "20261127T140501Z-1a2b3c4d"
URI = "s3://data/datasets/iris/v2/data.csv"
KEY = "datasets/iris/v2/data.csv"
REGISTRY_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
REPOSITORY_URI = f"{REGISTRY_HOST}/{REPOSITORY}"
LIVE_VERSION = "00000000000a"


def perturbed_iris() -> bytes:
    """The bundled iris data with one row's petal width nudged: a genuinely new version."""
    lines = bundled_iris_csv().decode().splitlines()
    lines[1] = lines[1].replace(",0.2,setosa", ",0.3,setosa")
    return ("\n".join(lines) + "\n").encode()


DATA = perturbed_iris()


def noisy_iris() -> bytes:
    """Iris with every 7th versicolor/virginica label swapped: hold-out accuracy about 0.87."""
    lines = bundled_iris_csv().decode().splitlines()
    swap = {"versicolor": "virginica", "virginica": "versicolor"}
    for i in range(51, len(lines), 7):
        features, _, label = lines[i].rpartition(",")
        lines[i] = f"{features},{swap[label]}"
    return ("\n".join(lines) + "\n").encode()


def upload(s3: S3Client, data: bytes = DATA, *, checksum: bool = True, key: str = KEY) -> str:
    """Store a dataset version as `python -m training upload` does; return its S3 version id."""
    extra: dict[str, Any] = {}
    if checksum:
        extra = {
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        }
    response = s3.put_object(Bucket="data", Key=key, Body=data, IfNoneMatch="*", **extra)
    return response["VersionId"]


@dataclass
class Harness:
    """Everything a pipeline run touches, on moto and fakes."""

    settings: PipelineSettings
    registry: Registry
    s3: S3Client
    ecr: ECRClient
    imds: FakeImds
    runner: RecordingRunner
    clock: StepClock
    build_context: Path
    runtime: str

    def start(self, run_id: str = RUN_ID) -> None:
        """Record the run as the launcher does."""
        self.registry.start_run(
            run_id, dataset_uri=URI, dataset_name="iris", dataset_version="v2", trigger="s3-event"
        )

    def run(
        self, run_id: str = RUN_ID, *, poll: float = 0.01, s3: S3Client | None = None
    ) -> RunOutcome:
        return run_pipeline(
            self.settings,
            RunRequest(run_id, URI),
            registry=self.registry,
            s3=s3 or self.s3,
            ecr=self.ecr,
            ssm=boto3.client("ssm"),
            docker=DockerCli(run=self.runner),
            imds=self.imds,
            clock=self.clock,
            spot_poll_seconds=poll,
        )

    def seed_live(self, accuracy: float) -> None:
        """A live model with this accuracy, as promotion would leave it."""
        self.registry.record_model(
            ModelRecord(
                model_version=LIVE_VERSION,
                status="candidate",
                status_reason="seeded",
                run_id="20261101T000000Z-00000000",
                dataset_name="iris",
                dataset_version="v1",
                dataset_uri="s3://data/datasets/iris/v1/data.csv",
                dataset_sha256="0" * 64,
                metrics={"accuracy": accuracy},
                gate={"passed": True},
                image_tag=f"v1-{LIVE_VERSION}",
            )
        )
        self.registry.register_image(
            ImageRecord(
                model_version=LIVE_VERSION,
                dataset_version="v1",
                image_tag=f"v1-{LIVE_VERSION}",
                image_digest="sha256:" + "11" * 32,
                image_uri=f"{REPOSITORY_URI}@sha256:{'11' * 32}",
                repository=REPOSITORY,
            )
        )
        self.registry.set_live(LIVE_VERSION, expected_revision=0, reason="seed")


@pytest.fixture
def harness(
    settings: PipelineSettings,
    registry: Registry,
    s3: S3Client,
    ecr: ECRClient,
    imds: FakeImds,
    runner: RecordingRunner,
    clock: StepClock,
    build_context: Path,
    runtime: str,
) -> Harness:
    runner.registry = ecr
    return Harness(settings, registry, s3, ecr, imds, runner, clock, build_context, runtime)


def run_of(harness: Harness, run_id: str = RUN_ID) -> Any:
    run = harness.registry.get_run(run_id)
    assert run is not None
    return run


# The whole way through.


def test_a_new_dataset_version_becomes_a_registered_image(harness: Harness) -> None:
    version_id = upload(harness.s3)
    harness.start()

    outcome = harness.run()

    assert (outcome.status, outcome.exit_code) == ("succeeded", 0)
    model_version = outcome.model_version
    assert model_version is not None
    tag = f"v2-{model_version}"
    image = f"{REPOSITORY_URI}:{tag}"
    assert harness.runner.argvs == [
        ["docker", "login", "--username", "AWS", "--password-stdin", REGISTRY_HOST],
        # FROM the deployed serving runtime, pinned by digest: no base image from the public
        # registry, no package index, the runtime `cdk deploy` shipped byte for byte.
        [
            "docker",
            "build",
            "--platform",
            "linux/arm64",
            "-f",
            str(harness.build_context / "model.Dockerfile"),
            "--build-arg",
            f"SERVING_RUNTIME={harness.runtime}",
            "-t",
            image,
            str(harness.build_context),
        ],
        ["docker", "push", image],
    ]
    assert harness.runner.calls[0].stdin == b"123456789012-auth-token"
    assert (outcome.image_tag, outcome.image_digest) == (tag, PUSH_DIGEST)

    metadata = json.loads((harness.build_context / "model" / METADATA_FILE).read_text())
    assert metadata["model_version"] == model_version
    assert metadata["dataset"]["source"] == URI
    assert (harness.build_context / "model" / MODEL_FILE).is_file()

    run = run_of(harness)
    assert run.status == "succeeded"
    assert (run.instance_id, run.instance_type, run.market) == (
        "i-0123456789abcdef0",
        "m7g.large",
        "spot",
    )
    assert run.dataset_sha256 == hashlib.sha256(DATA).hexdigest()
    assert run.dataset_s3_version_id == version_id
    assert (run.model_version, run.image_tag) == (model_version, tag)
    assert run.metrics == metadata["metrics"]

    # ECR reports the push; the registrar completes the model.
    event = load_event("ecr_image_push", image_tag=tag, image_digest=PUSH_DIGEST)
    answer = register(event, RegistrarSettings("registry", REPOSITORY), registry=harness.registry)
    assert answer["status"] == "registered"
    model = harness.registry.get_model(model_version)
    assert model is not None
    assert (model.status, model.dataset_version, model.image_tag) == ("candidate", "v2", tag)
    assert model.image_digest == PUSH_DIGEST
    assert model.image_uri == f"{REPOSITORY_URI}@{PUSH_DIGEST}"
    assert model.metrics == metadata["metrics"]
    assert model.dataset_s3_version_id == version_id
    assert model.gate is not None
    assert model.gate["passed"] is True
    assert harness.registry.live() is None


def test_a_manual_run_without_a_launcher_record_is_created(harness: Harness) -> None:
    upload(harness.s3)
    outcome = harness.run("20261127T150000Z-0000abcd")
    assert outcome.status == "succeeded"
    run = run_of(harness, "20261127T150000Z-0000abcd")
    assert (run.trigger, run.status) == ("manual", "succeeded")


def test_a_rerun_reuses_the_image_already_in_ecr(harness: Harness) -> None:
    upload(harness.s3)
    first = harness.run("20261127T150000Z-00000001")
    # The first run's push put the image in (moto's) ECR.
    pushed = harness.ecr.describe_images(
        repositoryName=REPOSITORY, imageIds=[{"imageTag": f"v2-{first.model_version}"}]
    )["imageDetails"][0]["imageDigest"]
    harness.runner.calls.clear()

    second = harness.run("20261127T150000Z-00000002")

    assert second.status == "succeeded"
    assert harness.runner.calls == []
    assert second.image_digest == pushed
    assert second.model_version == first.model_version


# The dataset's checksum.


def test_an_object_without_a_sha256_checksum_is_accepted_with_the_computed_one(
    harness: Harness,
) -> None:
    upload(harness.s3, checksum=False)
    outcome = harness.run()
    assert outcome.status == "succeeded"
    assert run_of(harness).dataset_sha256 == hashlib.sha256(DATA).hexdigest()


@pytest.mark.fault
def test_a_checksum_mismatch_fails_the_run_before_anything_is_built(harness: Harness) -> None:
    harness.start()
    stored = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    s3 = boto3.client("s3")
    with Stubber(s3) as stubber:
        stubber.add_response(
            "get_object",
            {
                "Body": StreamingBody(io.BytesIO(DATA), len(DATA)),
                "ChecksumSHA256": stored,
                "ChecksumType": "FULL_OBJECT",
                "VersionId": "v-1",
            },
            {"Bucket": "data", "Key": KEY, "ChecksumMode": "ENABLED"},
        )
        outcome = harness.run(s3=s3)
    assert (outcome.status, outcome.exit_code) == ("failed", 3)
    assert f"S3 stored {stored}" in outcome.reason
    assert harness.runner.calls == []
    assert run_of(harness).dataset_sha256 == hashlib.sha256(DATA).hexdigest()


# Bad data and the quality gate: recorded, nothing built or pushed, live untouched.


def _nan(lines: list[str]) -> list[str]:
    lines[5] = "5.0,nan,1.4,0.2,setosa"
    return lines


def _no_virginica(lines: list[str]) -> list[str]:
    return [line for line in lines if not line.endswith(",virginica")]


def _wrong_columns(lines: list[str]) -> list[str]:
    lines[0] = lines[0].replace("petal_width", "petal_wid")
    return lines


@pytest.mark.parametrize(
    ("break_data", "problem"),
    [
        (_nan, "line 6: sepal_width is 'nan', not a finite number"),
        (_no_virginica, "class virginica is missing"),
        (_wrong_columns, "missing column: petal_width"),
    ],
)
@pytest.mark.fault
def test_a_bad_dataset_fails_the_run_with_every_problem(
    harness: Harness, break_data: Any, problem: str
) -> None:
    harness.seed_live(0.95)
    live = harness.registry.live()
    data = ("\n".join(break_data(DATA.decode().splitlines())) + "\n").encode()
    upload(harness.s3, data)
    harness.start()

    outcome = harness.run()

    assert (outcome.status, outcome.exit_code) == ("failed", 3)
    assert problem in outcome.reason
    assert run_of(harness).reason == outcome.reason
    assert harness.runner.calls == []
    assert not (harness.build_context / "model").exists()
    assert harness.registry.live() == live


@pytest.mark.parametrize(
    ("live_accuracy", "min_accuracy", "tolerance", "reason"),
    [
        (1.0, 0.5, 0.0, "worse than the baseline's 1.00 by more than the tolerance 0.00"),
        (None, 0.9, 0.02, "accuracy 0.8667 is below the minimum 0.90"),
    ],
)
@pytest.mark.fault
def test_a_model_the_gate_refuses_is_recorded_rejected_and_never_built(
    harness: Harness,
    live_accuracy: float | None,
    min_accuracy: float,
    tolerance: float,
    reason: str,
) -> None:
    if live_accuracy is not None:
        harness.seed_live(live_accuracy)
    live = harness.registry.live()
    harness.settings = replace(
        harness.settings, min_accuracy=min_accuracy, accuracy_tolerance=tolerance
    )
    upload(harness.s3, noisy_iris())
    harness.start()

    outcome = harness.run()

    assert (outcome.status, outcome.exit_code) == ("rejected", 4)
    assert reason in outcome.reason
    assert harness.runner.calls == []
    assert not (harness.build_context / "model").exists()
    assert harness.registry.live() == live
    model = harness.registry.get_model(outcome.model_version or "")
    assert model is not None
    assert (model.status, model.image_tag, model.image_digest) == ("rejected", None, None)
    assert model.metrics == run_of(harness).metrics
    assert model.metrics is not None
    assert model.gate is not None
    assert model.gate["passed"] is False
    assert model.gate["baseline_accuracy"] == live_accuracy


# Interruptions and the time limit.


@pytest.mark.fault
def test_a_spot_notice_during_the_build_kills_it_and_nothing_is_pushed(
    harness: Harness,
) -> None:
    upload(harness.s3)
    harness.start()
    harness.runner.block = ("build",)
    harness.imds.notice = NOTICE
    harness.imds.notice_when = lambda: "build" in harness.runner.subcommands()

    outcome = harness.run()

    assert (outcome.status, outcome.exit_code) == ("interrupted", 5)
    assert "docker build" in outcome.reason
    assert "terminate at 2026-11-27T14:07:01Z" in outcome.reason
    assert harness.runner.subcommands() == ["login", "build"]
    assert harness.runner.calls[1].cancel is not None
    assert harness.runner.calls[1].cancel.is_set()
    run = run_of(harness)
    assert (run.status, run.image_tag) == ("interrupted", None)
    assert run.model_version == outcome.model_version


@pytest.mark.fault
def test_a_spot_notice_between_steps_stops_before_the_next_step(harness: Harness) -> None:
    upload(harness.s3)
    harness.start()
    harness.imds.notice = NOTICE
    # The watcher thread sleeps longer than the run: only the checkpoints poll, one per step
    # (download, validate, train, ...), so the third poll is the one before training.
    harness.imds.notice_when = lambda: harness.imds.polls >= 3

    outcome = harness.run(poll=60)

    assert outcome.status == "interrupted"
    assert "during train" in outcome.reason
    assert harness.runner.calls == []
    assert run_of(harness).model_version is None


@pytest.mark.fault
def test_the_time_limit_stops_a_running_build(harness: Harness) -> None:
    upload(harness.s3)
    harness.start()
    harness.runner.block = ("build",)

    def overrun(argv: list[str]) -> None:
        if argv[1] == "build":
            harness.clock.advance(minutes=61)

    harness.runner.on_call = overrun

    outcome = harness.run()

    assert (outcome.status, outcome.exit_code) == ("timed_out", 6)
    assert "time limit reached during docker build" in outcome.reason
    assert "push" not in harness.runner.subcommands()


# Errors from AWS, Docker and the registry.


@pytest.mark.fault
def test_a_missing_dataset_object_fails_the_run_with_s3s_reason(harness: Harness) -> None:
    harness.start()
    outcome = harness.run()
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert outcome.reason.startswith(f"download failed: cannot read {URI}: NoSuchKey")
    assert harness.runner.calls == []


@pytest.mark.fault
def test_an_ecr_error_fails_the_run_with_ecrs_reason(harness: Harness) -> None:
    upload(harness.s3)
    harness.start()
    harness.ecr.delete_repository(repositoryName=REPOSITORY)
    outcome = harness.run()
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert outcome.reason.startswith("image lookup failed: RepositoryNotFoundException")
    assert harness.runner.calls == []


@pytest.mark.fault
def test_a_failed_push_fails_the_run_with_dockers_message(harness: Harness) -> None:
    upload(harness.s3)
    harness.start()
    harness.runner.fail = ("push",)
    outcome = harness.run()
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert "docker push failed" in outcome.reason
    assert "no space left on device" in outcome.reason


@pytest.mark.fault
def test_unreadable_instance_metadata_fails_the_run(harness: Harness) -> None:
    harness.start()
    harness.imds.fail = True
    outcome = harness.run()
    assert outcome.status == "failed"
    assert outcome.reason.startswith("cannot read the instance metadata: cannot reach IMDS")


@pytest.mark.fault
def test_an_unexpected_error_is_recorded_then_raised(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(harness.s3)
    harness.start()

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(pipeline_module, "train", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        harness.run()
    run = run_of(harness)
    assert (run.status, run.reason) == (
        "failed",
        "train failed unexpectedly: RuntimeError: out of memory",
    )


@pytest.mark.fault
def test_a_run_the_monitor_ended_meanwhile_keeps_that_ending_and_the_model(
    harness: Harness,
) -> None:
    upload(harness.s3)
    harness.start()

    def monitor_gives_up(argv: list[str]) -> None:
        if argv[1] == "push":
            harness.registry.finish_run(RUN_ID, "timed_out", "monitor: past the time limit")

    harness.runner.on_call = monitor_gives_up

    outcome = harness.run()

    assert (outcome.status, outcome.exit_code) == ("timed_out", 6)
    assert outcome.reason == "monitor: past the time limit"
    model = harness.registry.get_model(outcome.model_version or "")
    assert model is not None
    assert model.status == "candidate"


def test_a_finished_run_is_not_run_again(harness: Harness) -> None:
    harness.start()
    harness.registry.finish_run(RUN_ID, "failed", "launch failed")
    outcome = harness.run()
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert outcome.reason == f"run {RUN_ID} already ended as failed"
    assert run_of(harness).reason == "launch failed"
    assert harness.imds.polls == 0


# Settings.


def _environ(build_context: Path) -> dict[str, str]:
    return {
        "REGISTRY_TABLE": "registry",
        "REPOSITORY_URI": REPOSITORY_URI,
        "BUILD_CONTEXT": str(build_context),
        "RUNTIME_IMAGE_PARAMETER": "/iris-ml-dev/serving/runtime-image-uri",
        "AWS_REGION": "eu-west-1",
        "MIN_ACCURACY": "0.9",
        "ACCURACY_TOLERANCE": "0.02",
        "TIME_LIMIT_MINUTES": "60",
        "DOCKER_PLATFORM": "linux/amd64",
    }


def test_settings_come_from_the_environment(build_context: Path) -> None:
    settings = PipelineSettings.from_env(_environ(build_context))
    assert settings.repository_name == REPOSITORY
    assert (settings.min_accuracy, settings.time_limit_minutes) == (0.9, 60)
    assert settings.docker_platform == "linux/amd64"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("REGISTRY_TABLE", None, "REGISTRY_TABLE is not set"),
        ("REPOSITORY_URI", "iris-models", "REPOSITORY_URI must be an ECR repository URI"),
        ("BUILD_CONTEXT", "/nonexistent", "BUILD_CONTEXT must name the model image's"),
        ("MIN_ACCURACY", "1.5", "MIN_ACCURACY must be a number in [0, 1]"),
        ("ACCURACY_TOLERANCE", "", "ACCURACY_TOLERANCE is not set"),
        ("TIME_LIMIT_MINUTES", "soon", "TIME_LIMIT_MINUTES must be an integer"),
        ("DOCKER_PLATFORM", "linux/s390x", "DOCKER_PLATFORM must be one of"),
        ("AWS_REGION", None, "AWS_REGION is not set"),
    ],
)
def test_a_bad_setting_names_its_variable(
    build_context: Path, name: str, value: str | None, message: str
) -> None:
    environ = _environ(build_context)
    if value is None:
        del environ[name]
    else:
        environ[name] = value
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        PipelineSettings.from_env(environ)


# What the trainer pushes must be an image Lambda runs, built on the deployed runtime.


def test_an_image_index_is_refused_before_it_is_registered(harness: Harness) -> None:
    """Lambda accepts only a single-image manifest, not an image index (manifest list).

    AWS Lambda, "Create a Lambda function using a container image"
    (https://docs.aws.amazon.com/lambda/latest/dg/images-create.html): container images must
    use the Docker image manifest V2 schema 2 or the OCI image manifest; buildx with the
    containerd store adds provenance attestations and pushes an OCI image index instead
    (https://docs.docker.com/build/metadata/attestations/#attestation-storage).
    """
    upload(harness.s3)
    harness.start()
    harness.runner.media_type = "application/vnd.oci.image.index.v1+json"
    outcome = harness.run()
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert outcome.reason.startswith("manifest check failed: ECR stored v2-")
    assert "application/vnd.oci.image.index.v1+json" in outcome.reason
    assert "BUILDX_NO_DEFAULT_ATTESTATIONS=1" in outcome.reason
    # A model image Lambda would refuse is never recorded as a candidate.
    model = harness.registry.get_model(str(outcome.model_version))
    assert model is None or model.status != "candidate"


def test_without_a_deployed_serving_runtime_the_run_fails_saying_what_to_deploy(
    harness: Harness,
) -> None:
    upload(harness.s3)
    harness.start()
    boto3.client("ssm").delete_parameter(Name=harness.settings.runtime_image_parameter)
    outcome = harness.run()
    assert outcome.status == "failed"
    assert outcome.reason == (
        "serving runtime lookup failed: SSM parameter /iris-ml-dev/serving/runtime-image-uri is "
        "missing: deploy the api stack (make deploy), whose serving runtime every model image "
        "is built on"
    )
    assert "build" not in harness.runner.subcommands()


@pytest.mark.fault
def test_a_registry_error_before_the_run_is_running_is_recorded_as_its_end(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An AWS error in the first steps ends the run with its real cause, not "instance ended"."""
    upload(harness.s3)
    harness.start()

    def throttled(*_: Any, **__: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
            "UpdateItem",
        )

    monkeypatch.setattr(harness.registry, "mark_running", throttled)
    outcome = harness.run()
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    run = run_of(harness)
    assert run.status == "failed"
    assert run.reason == (
        "could not start the run: ProvisionedThroughputExceededException: slow down"
    )
