"""What a run on the Spot instance needs: its settings, its request, its services, its outcome."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from training.aws import Clock, SettingsError, env_fraction, env_int, require_env, utc_now
from training.contract import Env
from training.instance.docker import Docker, DockerCli
from training.instance.imds import Host, Imds, InstanceMetadata, SystemHost
from training.registry import Registry

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_s3 import S3Client

    from training.control.promotion_services import ParameterStore as SSMClient

PLATFORMS = ("linux/arm64", "linux/amd64")
MODEL_DIR = "model"
# lambda_image/model.Dockerfile: FROM the deployed serving runtime, then the model.
MODEL_DOCKERFILE = "model.Dockerfile"


@dataclass(frozen=True)
class PipelineSettings:
    """The trainer's settings, from the environment the launch template's user data sets."""

    registry_table: str
    repository_uri: str
    build_context: Path
    runtime_image_parameter: str
    region: str
    min_accuracy: float
    accuracy_tolerance: float
    time_limit_minutes: int
    docker_platform: str

    @property
    def repository_name(self) -> str:
        """The ECR repository's name (the URI's path)."""
        return self.repository_uri.partition("/")[2]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineSettings:
        """Parse and check the settings; SettingsError names the variable that is wrong."""
        env = os.environ if environ is None else environ
        repository_uri = require_env(env, Env.REPOSITORY_URI)
        host, _, name = repository_uri.partition("/")
        if ".dkr.ecr." not in host or not name or ":" in name or "@" in name:
            raise SettingsError(
                f"environment variable {Env.REPOSITORY_URI} must be an ECR repository URI like "
                f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/name, got {repository_uri!r}"
            )
        build_context = Path(require_env(env, Env.BUILD_CONTEXT))
        if not (build_context / MODEL_DOCKERFILE).is_file():
            raise SettingsError(
                f"environment variable {Env.BUILD_CONTEXT} must name the model image's build "
                f"context (a directory with {MODEL_DOCKERFILE}), got {str(build_context)!r}"
            )
        platform = require_env(env, Env.DOCKER_PLATFORM)
        if platform not in PLATFORMS:
            raise SettingsError(
                f"environment variable {Env.DOCKER_PLATFORM} must be one of "
                f"{', '.join(PLATFORMS)}, got {platform!r}"
            )
        return cls(
            registry_table=require_env(env, Env.REGISTRY_TABLE),
            repository_uri=repository_uri,
            build_context=build_context,
            runtime_image_parameter=require_env(env, Env.RUNTIME_IMAGE_PARAMETER),
            region=require_env(env, "AWS_REGION"),
            min_accuracy=env_fraction(env, Env.MIN_ACCURACY),
            accuracy_tolerance=env_fraction(env, Env.ACCURACY_TOLERANCE),
            time_limit_minutes=env_int(env, Env.TIME_LIMIT_MINUTES),
            docker_platform=platform,
        )


@dataclass(frozen=True)
class RunRequest:
    """Which run to execute on which dataset version."""

    run_id: str
    dataset_uri: str
    requested_by: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended (its recorded status and reason, the exit code) and what it produced."""

    run_id: str
    status: str
    exit_code: int
    reason: str
    model_version: str | None = None
    image_tag: str | None = None
    image_digest: str | None = None
    metrics: dict[str, Any] | None = None


@dataclass(frozen=True)
class Services:
    """What the pipeline talks to; `connect` builds the real ones on the instance."""

    registry: Registry
    s3: S3Client
    ecr: ECRClient
    ssm: SSMClient
    docker: Docker
    imds: InstanceMetadata
    host: Host
    clock: Clock = utc_now

    @classmethod
    def connect(cls, settings: PipelineSettings) -> Services:
        """AWS clients in the settings' region, the Docker CLI, IMDS and this host."""
        session = boto3.Session(region_name=settings.region)
        imds = Imds()
        return cls(
            registry=Registry(
                settings.registry_table,
                dynamodb=session.resource("dynamodb"),
                actor="trainer",
            ),
            s3=session.client("s3"),
            ecr=session.client("ecr"),
            ssm=session.client("ssm"),
            docker=DockerCli(),
            imds=imds,
            host=SystemHost(),
        )
