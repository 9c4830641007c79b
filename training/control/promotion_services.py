"""What promotion acts on and reports: settings, services, errors, results (stdlib + boto3)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3

from training.aws import StackOutputError, StackReader, error_reason, require_env, stack_outputs
from training.contract import DEPLOYMENT_ENDS, LIVE_ALIAS, Env, Output, Stack, stack_name
from training.registry import Deployment, Event, Model, Pointer, Registry

if TYPE_CHECKING:
    from botocore.waiter import Waiter
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_lambda import LambdaClient


# A rollback restores a model that served before: no canary, so it takes effect in seconds.
ALL_AT_ONCE = "CodeDeployDefault.LambdaAllAtOnce"


INVALIDATION_PATHS = ("/predict/", "/predict/*")


# Every deployment promotion starts carries this description prefix, so the watcher can tell
# one it has not recorded yet from deployments CodeDeploy starts itself.
DESCRIPTION_PREFIX = "model promotion: "


# A release (training/control/release.py) ships code or configuration with the live model: no
# pointer moves, so the registry keeps no deployment item for it, only audit events.
RELEASE_PREFIX = "serving release: "


RELEASE_SUCCEEDED, RELEASE_FAILED = "release-succeeded", "release-failed"


DESCRIPTION_LIMIT = 500


CODEDEPLOY_SOURCE = "aws.codedeploy"


SUCCESS, FAILURE, STOP = DEPLOYMENT_ENDS


# CodeDeploy's final deployment statuses, as the state-change event names them.
ENDED_STATES = {"Succeeded": SUCCESS, "Failed": FAILURE, "Stopped": STOP}


# Docker and OCI manifests and indexes: ask for the stored manifest as it is, so the retag
# keeps the digest (ECR converts a manifest to a media type the caller lists otherwise).
MANIFEST_MEDIA_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)


# Lambda takes seconds to a minute to optimise a new image; the promoter's timeout is 5 min.
UPDATE_DELAY_SECONDS = 2


UPDATE_MAX_ATTEMPTS = 120


class PromotionError(Exception):
    """Promotion or settlement could not finish; the message says what state AWS is in."""


class PromotionRefusedError(PromotionError):
    """A promotion refused before anything changed."""


class ModelNotFoundError(PromotionRefusedError):
    """The model is not in the registry."""


class NotPromotableError(PromotionRefusedError):
    """The model was rejected, failed, or has no registered image."""


class AlreadyLiveError(PromotionRefusedError):
    """The model is already the live one."""


class DeploymentInProgressError(PromotionRefusedError):
    """An earlier deployment to the live alias is still running."""


class NothingToRollBackError(PromotionRefusedError):
    """No rollback model is recorded and none was named."""


class EventError(ValueError):
    """The event is not one this module can read."""


class DeploymentNotRecordedError(PromotionError):
    """A deployment promotion started has ended before the registry recorded it."""


class CodeDeployApi(Protocol):
    """The part of a CodeDeploy client that promotion uses (boto3 has no stubs installed)."""

    def create_deployment(self, **request: Any) -> Mapping[str, Any]:
        """CodeDeploy's CreateDeployment."""
        ...

    def get_deployment(self, *, deploymentId: str) -> Mapping[str, Any]:  # noqa: N803 (boto3's name)
        """GetDeployment."""
        ...

    def list_deployments(self, **request: Any) -> Mapping[str, Any]:
        """ListDeployments."""
        ...

    def get_waiter(self, waiter_name: str) -> Waiter:
        """A waiter botocore builds from the service's waiters-2.json (`promote --wait`)."""
        ...


class ParameterStore(Protocol):
    """The part of an SSM client that reads and writes the live image parameter."""

    def get_parameter(self, *, Name: str) -> Mapping[str, Any]:  # noqa: N803 (boto3's name)
        """SSM's GetParameter."""
        ...

    def put_parameter(
        self,
        *,
        Name: str,  # noqa: N803 (boto3's names)
        Value: str,  # noqa: N803
        Type: str,  # noqa: N803
        Overwrite: bool,  # noqa: N803
    ) -> Mapping[str, Any]:
        """SSM's PutParameter."""
        ...


_ENVIRONMENT = {
    "registry_table": Env.REGISTRY_TABLE,
    "function_name": Env.FUNCTION_NAME,
    "alias_name": Env.ALIAS_NAME,
    "live_model_parameter": Env.LIVE_MODEL_PARAMETER,
    "codedeploy_application": Env.CODEDEPLOY_APPLICATION,
    "deployment_group": Env.DEPLOYMENT_GROUP,
    "distribution_id": Env.DISTRIBUTION_ID,
    "repository_name": Env.REPOSITORY_NAME,
}


@dataclass(frozen=True)
class PromotionSettings:
    """What promotion acts on: the registry, the serving function, its guard and its cache."""

    registry_table: str
    function_name: str
    alias_name: str
    live_model_parameter: str
    codedeploy_application: str
    deployment_group: str
    distribution_id: str
    repository_name: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PromotionSettings:
        """The settings the CDK sets on the promoter and the watcher; SettingsError names a gap."""
        env = os.environ if environ is None else environ
        return cls(**{field: require_env(env, name) for field, name in _ENVIRONMENT.items()})

    @classmethod
    def from_stacks(cls, cloudformation: StackReader, stack_prefix: str) -> PromotionSettings:
        """The settings of deployed stacks `<prefix>-api` and `<prefix>-pipeline` (the CLI's)."""
        api_stack = stack_name(stack_prefix, Stack.API)
        pipeline_stack = stack_name(stack_prefix, Stack.PIPELINE)
        api = stack_outputs(cloudformation, api_stack)
        pipeline = stack_outputs(cloudformation, pipeline_stack)

        def output(outputs: Mapping[str, str], stack: str, key: str) -> str:
            if key not in outputs:
                raise StackOutputError(f"stack {stack} has no output {key}")
            return outputs[key]

        repository_uri = output(pipeline, pipeline_stack, Output.REPOSITORY_URI)
        return cls(
            registry_table=output(pipeline, pipeline_stack, Output.REGISTRY_TABLE_NAME),
            function_name=output(api, api_stack, Output.FUNCTION_NAME),
            alias_name=LIVE_ALIAS,
            live_model_parameter=output(pipeline, pipeline_stack, Output.LIVE_MODEL_PARAMETER),
            codedeploy_application=output(api, api_stack, Output.CODEDEPLOY_APPLICATION),
            deployment_group=output(api, api_stack, Output.DEPLOYMENT_GROUP),
            distribution_id=output(api, api_stack, Output.DISTRIBUTION_ID),
            # <account>.dkr.ecr.<region>.amazonaws.com/<name>
            repository_name=repository_uri.partition("/")[2],
        )


@dataclass(frozen=True)
class PromotionServices:
    """The settings, the registry and the AWS clients promotion calls."""

    settings: PromotionSettings
    registry: Registry
    lambda_client: LambdaClient
    codedeploy: CodeDeployApi
    ssm: ParameterStore
    ecr: ECRClient
    cloudfront: CloudFrontClient
    update_delay_seconds: int = UPDATE_DELAY_SECONDS
    update_max_attempts: int = UPDATE_MAX_ATTEMPTS

    @classmethod
    def connect(
        cls, settings: PromotionSettings, *, actor: str, region: str | None = None
    ) -> PromotionServices:
        """Real clients in `region` (default: boto3's), with the registry writing as `actor`."""
        dynamodb = boto3.resource("dynamodb", region_name=region)
        return cls(
            settings=settings,
            registry=Registry(settings.registry_table, dynamodb=dynamodb, actor=actor),
            lambda_client=boto3.client("lambda", region_name=region),
            codedeploy=boto3.client("codedeploy", region_name=region),
            ssm=boto3.client("ssm", region_name=region),
            ecr=boto3.client("ecr", region_name=region),
            cloudfront=boto3.client("cloudfront", region_name=region),
        )


@dataclass(frozen=True)
class Promotion:
    """A deployment of a model to the live alias that promotion started and recorded."""

    type: str
    model_version: str
    previous_model_version: str | None
    deployment_id: str
    lambda_version: str
    previous_lambda_version: str
    image_uri: str
    deployment_config: str | None

    @classmethod
    def of(cls, deployment: Deployment) -> Promotion:
        """The promotion a recorded deployment describes."""
        return cls(
            type=deployment.type,
            model_version=deployment.model_version,
            previous_model_version=deployment.previous_model_version,
            deployment_id=deployment.deployment_id,
            lambda_version=deployment.lambda_version,
            previous_lambda_version=deployment.previous_lambda_version,
            image_uri=deployment.image_uri,
            deployment_config=deployment.deployment_config,
        )


@dataclass(frozen=True)
class Settlement:
    """What settle_deployment did: succeeded, failed, stopped, duplicate or ignored."""

    action: str
    deployment_id: str | None
    model_version: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class StatusReport:
    """The live and rollback models, every model, and the newest promotion events."""

    live: Pointer | None
    rollback: Pointer | None
    deployment: Deployment | None
    models: tuple[Model, ...]
    promotions: tuple[Event, ...]


def reason_of(err: BaseException) -> str:
    """A failure's reason for the registry: our own message, or the AWS error's."""
    return str(err) if isinstance(err, PromotionError) else error_reason(err)
