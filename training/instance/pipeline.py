"""The trainer's cloud run: S3 dataset -> validate -> train -> gate -> export -> image in ECR.

Runs on the Spot instance (`python -m training pipeline`). Between every step it checks for a
Spot interruption notice and the time limit; a watcher thread polls IMDS meanwhile and stops
a running docker command, so nothing is pushed once a notice is out. Every outcome ends the run
in the registry with a reason and maps to an exit code.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from training.aws import (
    Clock,
    DatasetLocation,
    LocationError,
    error_code,
    error_reason,
    image_tag,
    log,
    parse_iso,
    utc_now,
)
from training.exit_codes import ExitCode
from training.instance.docker import (
    SINGLE_IMAGE_MANIFESTS,
    CommandCancelledError,
    CommandError,
    Docker,
    ecr_login,
)
from training.instance.imds import ImdsError, InstanceMetadata
from training.instance.settings import (
    MODEL_DIR,
    MODEL_DOCKERFILE,
    PipelineSettings,
    RunOutcome,
    RunRequest,
)
from training.instance.watchdog import SPOT_POLL_SECONDS, StopError, Watchdog
from training.ml.dataset import FEATURES, Dataset, DatasetError, parse_dataset
from training.ml.export import ExportError, export_info, export_model, model_version_of
from training.ml.gate import GateResult, check_gate
from training.ml.train import TrainResult, train
from training.registry import (
    CANDIDATE,
    FAILED,
    INTERRUPTED,
    REJECTED,
    SUCCEEDED,
    TIMED_OUT,
    ModelRecord,
    Registry,
    RegistryError,
)

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_s3 import S3Client

    from training.control.promotion_services import ParameterStore as SSMClient

# The run's status decides the process's exit code (the user data logs it; ExitCode's table).
EXIT_CODES = {
    SUCCEEDED: ExitCode.OK,
    FAILED: ExitCode.FAILED,
    REJECTED: ExitCode.REFUSED,
    INTERRUPTED: ExitCode.INTERRUPTED,
    TIMED_OUT: ExitCode.TIMED_OUT,
}

_log = logging.getLogger(__name__)


class _StepError(Exception):
    """A step failed for a reason worth recording as is."""


@dataclass
class _Pipeline:
    """One run's state while its steps execute."""

    settings: PipelineSettings
    request: RunRequest
    registry: Registry
    s3: S3Client
    ecr: ECRClient
    ssm: SSMClient
    docker: Docker
    imds: InstanceMetadata
    clock: Clock
    poll_seconds: float
    step: str = "start"
    # Recorded on the run when it finishes, as far as the run got.
    details: dict[str, Any] = field(default_factory=dict)
    digest: str | None = None

    def run(self) -> RunOutcome:
        try:
            prepared = self._prepare()
        except (RegistryError, ClientError, BotoCoreError) as err:
            return self._failed_to_start(err)
        if isinstance(prepared, RunOutcome):
            return prepared
        location, deadline = prepared
        with Watchdog(
            self.imds, deadline=deadline, clock=self.clock, poll_seconds=self.poll_seconds
        ) as watchdog:
            try:
                return self._steps(location, watchdog)
            except Exception as err:
                known = self._known_failure(err, watchdog)
                if known is None:
                    # Recorded, then re-raised so the traceback reaches the instance's log.
                    self._finish(FAILED, f"{self.step} failed unexpectedly: {error_reason(err)}")
                    raise
                status, reason, exit_code = known
                return self._finish(status, reason, exit_code=exit_code)

    def _prepare(self) -> tuple[DatasetLocation, datetime] | RunOutcome:
        """Create or check the run and mark it running; its location and deadline, or why not."""
        existing = self.registry.get_run(self.request.run_id)
        try:
            location = DatasetLocation.parse(self.request.dataset_uri)
        except LocationError as err:
            if existing is None:
                raise
            return self._finish(FAILED, str(err))
        if existing is None:
            self.registry.start_run(
                self.request.run_id,
                dataset_uri=location.uri,
                dataset_name=location.name,
                dataset_version=location.version,
                trigger="manual",
                requested_by=self.request.requested_by,
            )
        elif existing.terminal or existing.dataset_uri != location.uri:
            # Not ours to change: report and leave the record as it is.
            reason = (
                f"run {existing.run_id} already ended as {existing.status}"
                if existing.terminal
                else f"run {existing.run_id} is for {existing.dataset_uri}, not {location.uri}"
            )
            log(_log, "refusing to run", level=logging.ERROR, run_id=existing.run_id, reason=reason)
            return RunOutcome(existing.run_id, existing.status, ExitCode.FAILED, reason)
        try:
            instance = (self.imds.instance_id(), self.imds.instance_type(), self.imds.lifecycle())
        except ImdsError as err:
            return self._finish(FAILED, f"cannot read the instance metadata: {err}")
        run = self.registry.mark_running(
            self.request.run_id,
            instance_id=instance[0],
            instance_type=instance[1],
            market=instance[2],
        )
        limit = timedelta(minutes=self.settings.time_limit_minutes)
        return location, parse_iso(run.started_at) + limit

    def _known_failure(
        self, err: Exception, watchdog: Watchdog
    ) -> tuple[str, str, int | None] | None:
        """(status, reason, exit code) for an expected way of failing; None for a bug."""
        if isinstance(err, CommandCancelledError):
            # Killed by the watchdog (a notice or the deadline), or by something else.
            err = watchdog.stop_reason(self.step) or _StepError(str(err))
        if isinstance(err, StopError):
            return err.status, err.reason, None
        if isinstance(err, DatasetError):
            return FAILED, str(err), ExitCode.INVALID_DATASET
        if isinstance(err, ClientError | BotoCoreError):
            return FAILED, f"{self.step} failed: {error_reason(err)}", None
        if isinstance(err, _StepError | CommandError | ExportError | ImdsError | OSError):
            return FAILED, f"{self.step} failed: {err}", None
        return None

    def _steps(self, location: DatasetLocation, watchdog: Watchdog) -> RunOutcome:
        self._enter("download", watchdog)
        data = self._download(location)
        self._enter("validate", watchdog)
        dataset = parse_dataset(
            data, name=location.name, version=location.version, source=location.uri
        )
        self._enter("train", watchdog)
        result = train(dataset)
        model_version = model_version_of(result)
        self.details.update(model_version=model_version, metrics=result.metrics)
        self._enter("gate", watchdog)
        gate = check_gate(
            result.metrics,
            min_accuracy=self.settings.min_accuracy,
            baseline=self._baseline(),
            tolerance=self.settings.accuracy_tolerance,
        )
        if not gate.passed:
            reason = "refused by the quality gate: " + "; ".join(gate.reasons)
            self.registry.record_model(
                self._model(
                    location=location,
                    dataset=dataset,
                    result=result,
                    gate=gate,
                    model_version=model_version,
                    status=REJECTED,
                    reason=reason,
                )
            )
            return self._finish(REJECTED, reason)
        self._enter("export", watchdog)
        exported = export_model(
            result.estimator,
            self.settings.build_context / MODEL_DIR,
            feature_names=list(FEATURES),
            info=export_info(dataset, result, gate),
        )
        if exported.model_version != model_version:
            raise _StepError(
                f"the export is model {exported.model_version}, the trained one {model_version}"
            )
        tag = image_tag(location.version, model_version)
        image = f"{self.settings.repository_uri}:{tag}"
        self._enter("image lookup", watchdog)
        self.digest = self._existing_image(tag)
        if self.digest is None:
            self._enter("serving runtime lookup", watchdog)
            runtime = self._serving_runtime()
            self._enter("ECR login", watchdog)
            ecr_login(self.ecr, self.docker, cancel=watchdog.cancel)
            self._enter("docker build", watchdog)
            self.docker.build(
                self.settings.build_context,
                image,
                self.settings.docker_platform,
                dockerfile=MODEL_DOCKERFILE,
                build_args={"SERVING_RUNTIME": runtime},
                cancel=watchdog.cancel,
            )
            self._enter("docker push", watchdog)
            self.digest = self.docker.push(image, cancel=watchdog.cancel)
            self._enter("manifest check", watchdog)
            self._require_single_manifest(tag)
        else:
            log(_log, "image exists; not rebuilt", run_id=self.request.run_id, image=image)
        self.details["image_tag"] = tag
        accuracy = result.metrics["accuracy"]
        self.registry.record_model(
            self._model(
                location=location,
                dataset=dataset,
                result=result,
                gate=gate,
                model_version=model_version,
                status=CANDIDATE,
                reason=f"passed the quality gate with accuracy {accuracy:.4f}",
                tag=tag,
            )
        )
        return self._finish(
            SUCCEEDED, f"passed the quality gate with accuracy {accuracy:.4f}; image {tag}"
        )

    def _enter(self, step: str, watchdog: Watchdog) -> None:
        """Start `step` unless a Spot notice is out or the time is up."""
        watchdog.checkpoint(step)
        self.step = step
        log(_log, f"step: {step}", run_id=self.request.run_id, step=step)

    def _download(self, location: DatasetLocation) -> bytes:
        """The dataset's bytes, checked against the SHA-256 checksum S3 stored with them."""
        try:
            response = self.s3.get_object(
                Bucket=location.bucket, Key=location.key, ChecksumMode="ENABLED"
            )
            data = response["Body"].read()
        except (ClientError, BotoCoreError) as err:
            raise _StepError(f"cannot read {location.uri}: {error_reason(err)}") from err
        digest = hashlib.sha256(data)
        self.details.update(
            dataset_sha256=digest.hexdigest(), dataset_s3_version_id=response.get("VersionId")
        )
        stored = response.get("ChecksumSHA256")
        # A multipart upload's checksum is a checksum of part checksums ("...-<parts>"): it
        # cannot be compared with the object's digest.
        if stored and response.get("ChecksumType") != "COMPOSITE" and "-" not in stored:
            computed = base64.b64encode(digest.digest()).decode()
            if stored != computed:
                raise DatasetError(
                    location.uri,
                    [
                        f"the bytes read have SHA-256 {computed} but S3 stored {stored} for "
                        "them: the object is corrupt or was read incompletely"
                    ],
                )
        else:
            log(
                _log,
                "no full-object SHA-256 stored with the dataset; recording the computed one",
                run_id=self.request.run_id,
                dataset_sha256=digest.hexdigest(),
            )
        return bytes(data)

    def _baseline(self) -> dict[str, Any] | None:
        """The live model's metrics; None before the first promotion."""
        live = self.registry.live()
        if live is None:
            return None
        model = self.registry.get_model(live.model_version)
        accuracy = None if model is None or not model.metrics else model.metrics.get("accuracy")
        if model is None or not isinstance(accuracy, int | float):
            raise _StepError(
                f"the live pointer names model {live.model_version}, which has no recorded "
                "accuracy to compare with"
            )
        return model.metrics

    def _serving_runtime(self) -> str:
        """The serving runtime `cdk deploy` shipped, pinned by digest (`repo@sha256:...`)."""
        name = self.settings.runtime_image_parameter
        try:
            uri = self.ssm.get_parameter(Name=name)["Parameter"]["Value"]
        except ClientError as err:
            if error_code(err) == "ParameterNotFound":
                raise _StepError(
                    f"SSM parameter {name} is missing: deploy the api stack (make deploy), "
                    "whose serving runtime every model image is built on"
                ) from err
            raise
        repository, _, tag = uri.rpartition("/")[2].partition(":")
        if not tag:
            raise _StepError(f"SSM parameter {name} holds {uri!r}, not an image URI with a tag")
        details = self.ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])[
            "imageDetails"
        ]
        if not details:
            raise _StepError(f"the serving runtime {uri} is not in ECR")
        digest = details[0]["imageDigest"]
        pinned = f"{uri.rsplit(':', 1)[0]}@{digest}"
        log(_log, "serving runtime", run_id=self.request.run_id, image=pinned)
        return pinned

    def _require_single_manifest(self, tag: str) -> None:
        """Refuse (fail the run) an image Lambda would refuse: an index, not one manifest."""
        details = self.ecr.describe_images(
            repositoryName=self.settings.repository_name, imageIds=[{"imageTag": tag}]
        )["imageDetails"]
        media_type = details[0].get("imageManifestMediaType") if details else None
        if media_type not in SINGLE_IMAGE_MANIFESTS:
            raise _StepError(
                f"ECR stored {tag} as {media_type or 'an unknown manifest type'}, which Lambda "
                "does not run (it needs one image manifest): build with "
                "BUILDX_NO_DEFAULT_ATTESTATIONS=1 (or --provenance=false) and one --platform"
            )

    def _failed_to_start(self, err: Exception) -> RunOutcome:
        """Record why the run could not start (best effort: the registry may be the cause)."""
        reason = f"could not start the run: {error_reason(err)}"
        log(
            _log,
            "run failed to start",
            level=logging.ERROR,
            run_id=self.request.run_id,
            reason=reason,
        )
        try:
            return self._finish(FAILED, reason)
        except (RegistryError, ClientError, BotoCoreError) as again:
            log(
                _log,
                "could not record the failure either",
                level=logging.ERROR,
                run_id=self.request.run_id,
                error=error_reason(again),
            )
            return RunOutcome(self.request.run_id, FAILED, ExitCode.FAILED, reason)

    def _existing_image(self, tag: str) -> str | None:
        """The digest of an image already pushed under `tag` (a re-run), else None."""
        try:
            details = self.ecr.describe_images(
                repositoryName=self.settings.repository_name, imageIds=[{"imageTag": tag}]
            )["imageDetails"]
        except ClientError as err:
            if error_code(err) == "ImageNotFoundException":
                return None
            raise
        return details[0]["imageDigest"] if details else None

    def _model(
        self,
        *,
        location: DatasetLocation,
        dataset: Dataset,
        result: TrainResult,
        gate: GateResult,
        model_version: str,
        status: str,
        reason: str,
        tag: str | None = None,
    ) -> ModelRecord:
        return ModelRecord(
            model_version=model_version,
            status=status,
            status_reason=reason,
            run_id=self.request.run_id,
            dataset_name=dataset.name,
            dataset_version=dataset.version,
            dataset_uri=location.uri,
            dataset_sha256=dataset.sha256,
            dataset_s3_version_id=self.details.get("dataset_s3_version_id"),
            metrics=result.metrics,
            gate=gate.as_dict(),
            image_tag=tag,
        )

    def _finish(self, status: str, reason: str, *, exit_code: int | None = None) -> RunOutcome:
        """End the run; when something else ended it first, report what it recorded."""
        run, changed = self.registry.finish_run(
            self.request.run_id, status, reason, details=self.details
        )
        if changed:
            code = EXIT_CODES[status] if exit_code is None else exit_code
        else:
            log(
                _log,
                "the run had already ended",
                level=logging.WARNING,
                run_id=run.run_id,
                status=run.status,
            )
            code = EXIT_CODES.get(run.status, ExitCode.FAILED)
        log(_log, "run finished", run_id=run.run_id, status=run.status, reason=run.reason)
        return RunOutcome(
            run_id=run.run_id,
            status=run.status,
            exit_code=code,
            reason=run.reason or reason,
            model_version=self.details.get("model_version"),
            image_tag=self.details.get("image_tag"),
            image_digest=self.digest,
            metrics=self.details.get("metrics"),
        )


def run_pipeline(
    settings: PipelineSettings,
    request: RunRequest,
    *,
    registry: Registry,
    s3: S3Client,
    ecr: ECRClient,
    ssm: SSMClient,
    docker: Docker,
    imds: InstanceMetadata,
    clock: Clock = utc_now,
    spot_poll_seconds: float = SPOT_POLL_SECONDS,
) -> RunOutcome:
    """Run one training run end to end and record how it ended.

    Expected failures (bad data, AWS or Docker errors) end the run `failed` and return; an
    unexpected exception is recorded the same way, then re-raised.
    """
    return _Pipeline(
        settings=settings,
        request=request,
        registry=registry,
        s3=s3,
        ecr=ecr,
        ssm=ssm,
        docker=docker,
        imds=imds,
        clock=clock,
        poll_seconds=spot_poll_seconds,
    ).run()
