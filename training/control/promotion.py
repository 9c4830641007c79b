"""Promotion: a registered model reaches the `live` alias through CodeDeploy, and back out.

`promote` publishes a Lambda version with the model's image, starts a CodeDeploy deployment
that shifts the `live` alias to it (a canary that CodeDeploy rolls back by itself when a guard
alarm fires), records the move in the registry in one conditional transaction, then points the
live-model SSM parameter (which the api stack checks, so a later `cdk deploy` cannot ship
another model) and the ECR tags `live` and `rollback` at the new images. `rollback` does the
same for the rollback model, all at once and with the guard alarms off (they are usually why
one rolls back). `settle_deployment` records how a deployment ended: success invalidates
CloudFront's cached predictions; failure puts the registry, the parameter and the tags back
where they were, since CodeDeploy has already moved the alias back.

The Lambda handlers import this module: standard library and boto3 only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from training.aws import (
    StackOutputError,
    StackReader,
    error_code,
    error_reason,
    log,
    require_env,
    stack_outputs,
)
from training.contract import (
    DEPLOYMENT_ENDS,
    DEPLOYMENT_STATE_CHANGE,
    LIVE_ALIAS,
    LIVE_TAG,
    ROLLBACK_TAG,
    Env,
    Output,
    Stack,
    stack_name,
)
from training.registry import (
    DEPLOYED,
    FAILED,
    LIVE,
    PROMOTED,
    REJECTED,
    ROLLED_BACK,
    STOPPED,
    Deployment,
    Event,
    Model,
    Pointer,
    PromotionRecord,
    Registry,
    RegistryConflictError,
    RegistryError,
)

if TYPE_CHECKING:
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
_DESCRIPTION_LIMIT = 500

CODEDEPLOY_SOURCE = "aws.codedeploy"
SUCCESS, FAILURE, STOP = DEPLOYMENT_ENDS
# CodeDeploy's final deployment statuses, as the state-change event names them.
_ENDED = {"Succeeded": SUCCESS, "Failed": FAILURE, "Stopped": STOP}
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

_log = logging.getLogger(__name__)


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
    def connect(cls, settings: PromotionSettings, *, actor: str) -> PromotionServices:
        """Real clients, with the registry writing as `actor`."""
        return cls(
            settings=settings,
            registry=Registry(settings.registry_table, actor=actor),
            lambda_client=boto3.client("lambda"),
            codedeploy=boto3.client("codedeploy"),
            ssm=boto3.client("ssm"),
            ecr=boto3.client("ecr"),
            cloudfront=boto3.client("cloudfront"),
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


def promote(
    model_version: str,
    *,
    actor: str,
    reason: str,
    services: PromotionServices,
    deployment_config: str | None = None,
) -> Promotion:
    """Deploy a registered model to the live alias through CodeDeploy and record it.

    Refuses (PromotionRefusedError, before any AWS call) a model that is unknown, rejected,
    failed, without an image, or already live. `deployment_config` overrides the deployment
    group's configuration (its canary).
    """
    return _promote(
        model_version,
        type_=PROMOTED,
        actor=actor,
        reason=reason,
        services=services,
        deployment_config=deployment_config,
    )


def rollback(
    *, to: str | None = None, actor: str, reason: str, services: PromotionServices
) -> Promotion:
    """Deploy the rollback model (or the model `to`) to the live alias, all at once."""
    target = to
    if target is None:
        pointer = services.registry.rollback()
        if pointer is None:
            raise NothingToRollBackError(
                "no rollback model is recorded (no model was live before the current one); "
                "name the model to return to with --to VERSION"
            )
        target = pointer.model_version
    return _promote(
        target,
        type_=ROLLED_BACK,
        actor=actor,
        reason=reason,
        services=services,
        deployment_config=ALL_AT_ONCE,
    )


def _promote(
    model_version: str,
    *,
    type_: str,
    actor: str,
    reason: str,
    services: PromotionServices,
    deployment_config: str | None,
) -> Promotion:
    """A promotion or a rollback: refusals, publish, deploy, record, then parameter and tags."""
    settings, registry = services.settings, services.registry
    model = _promotable(registry, model_version)
    live, revision = registry.pointer_and_revision(LIVE)
    _refuse_if_live(live, revision, model_version)
    if live is not None and live.deployment_id is not None:
        pending = registry.get_deployment(live.deployment_id)
        if pending is not None and not pending.settled:
            _settle_pending(pending, services, actor=actor)
            live, revision = registry.pointer_and_revision(LIVE)
            _refuse_if_live(live, revision, model_version)
    # Only a failed first promotion needs it: then no model's image was live before.
    previous_parameter = None
    if live is None:
        previous_parameter = _parameter(services)
    image_uri, digest = str(model.image_uri), str(model.image_digest)

    # From here until the registry records the deployment, a failure leaves the registry as it
    # was and the error propagates. AWS is then safe: a published Lambda version that nothing
    # routes to and $LATEST on the new image, which the API never invokes (API Gateway calls
    # the alias, and only CodeDeploy moves the alias).
    target_version = publish(services, image_uri)
    current_version = services.lambda_client.get_alias(
        FunctionName=settings.function_name, Name=settings.alias_name
    )["FunctionVersion"]
    if current_version == target_version:
        named = live.model_version if live is not None else "no model"
        raise PromotionError(
            f"the {settings.alias_name} alias already routes to Lambda version {target_version} "
            f"with image {image_uri}, yet the registry names {named} as live; nothing was "
            "deployed: run make status and reconcile the registry with the alias"
        )
    # Publishing took a while: give up before starting a deployment if another promotion
    # moved the live pointer meanwhile (the transaction below still guards the last window).
    if registry.pointer_and_revision(LIVE)[1] != revision:
        raise RegistryConflictError(
            f"another promotion changed the live model while Lambda version {target_version} of "
            f"{model_version} was being published; nothing was deployed; run make status and retry"
        )
    request = deployment_request(
        settings,
        current_version=current_version,
        target_version=target_version,
        description=f"{DESCRIPTION_PREFIX}{type_} {model_version} by {actor}: {reason}",
    )
    if deployment_config is not None:
        request["deploymentConfigName"] = deployment_config
    if type_ == ROLLED_BACK:
        # The guard alarms are usually in ALARM when someone rolls back; polling them would stop
        # the rollback and revert it. CodeDeploy documents this override for exactly that case
        # (it needs codedeploy:UpdateDeploymentGroup), and automatic rollback goes off too: it
        # would return to the version being rolled away from.
        request["overrideAlarmConfiguration"] = {"enabled": False, "alarms": []}
        request["autoRollbackConfiguration"] = {"enabled": False}
    deployment_id = str(services.codedeploy.create_deployment(**request)["deploymentId"])
    log(
        _log,
        "deployment started",
        deployment_id=deployment_id,
        model_version=model_version,
        lambda_version=target_version,
        previous_lambda_version=current_version,
        deployment_config=deployment_config,
    )

    try:
        deployment = registry.record_promotion(
            PromotionRecord(
                type=type_,
                model_version=model_version,
                expected_live=live,
                expected_revision=revision,
                deployment_id=deployment_id,
                lambda_version=target_version,
                previous_lambda_version=current_version,
                actor=actor,
                reason=reason,
                deployment_config=deployment_config,
                previous_parameter_value=previous_parameter,
            )
        )
    except (RegistryError, ClientError, BotoCoreError) as err:
        # The deployment is running and the registry does not know it: only a person can
        # decide whether it should finish. The watcher refuses its end event (dead-letter
        # queue) rather than guess.
        message = (
            f"{error_reason(err) if not isinstance(err, RegistryError) else err}. CodeDeploy "
            f"deployment {deployment_id} (Lambda version {current_version} -> {target_version}) "
            f"is running but not recorded: stop it with `aws deploy stop-deployment "
            f"--deployment-id {deployment_id} --auto-rollback-enabled`, then run make status"
        )
        if isinstance(err, RegistryConflictError):
            raise RegistryConflictError(message) from err
        raise PromotionError(message) from err

    try:
        _put_parameter(services, model_version)
        _move_tags(services, live=digest, rollback=None if live is None else live.image_digest)
    except (ClientError, BotoCoreError, PromotionError) as err:
        raise PromotionError(
            f"deployment {deployment_id} of {model_version} started and is recorded, but the "
            f"live model parameter or the ECR tags could not follow: {_reason(err)}; the "
            "watcher sets them again when the deployment succeeds"
        ) from err
    return Promotion.of(deployment)


def deployment_request(
    settings: PromotionSettings, *, current_version: str, target_version: str, description: str
) -> dict[str, Any]:
    """CreateDeployment's request: shift the alias in the deployment group, by its canary."""
    content = appspec(settings, current_version=current_version, target_version=target_version)
    return {
        "applicationName": settings.codedeploy_application,
        "deploymentGroupName": settings.deployment_group,
        "revision": {
            "revisionType": "AppSpecContent",
            "appSpecContent": {"content": json.dumps(content)},
        },
        "description": description[:_DESCRIPTION_LIMIT],
    }


def appspec(
    settings: PromotionSettings, *, current_version: str, target_version: str
) -> dict[str, Any]:
    """The AppSpec that shifts the live alias from one Lambda version to another."""
    return {
        "version": 0.0,
        "Resources": [
            {
                settings.function_name: {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": settings.function_name,
                        "Alias": settings.alias_name,
                        "CurrentVersion": current_version,
                        "TargetVersion": target_version,
                    },
                }
            }
        ],
    }


def _promotable(registry: Registry, model_version: str) -> Model:
    """The model, if it may go live; PromotionRefusedError saying why not otherwise."""
    model = registry.get_model(model_version)
    if model is None:
        raise ModelNotFoundError(
            f"model {model_version} is not in the registry; `python -m training status` lists "
            "the models"
        )
    if model.status in (REJECTED, FAILED):
        raise NotPromotableError(
            f"model {model_version} is {model.status} and cannot go live: "
            f"{model.status_reason or 'no reason recorded'}"
        )
    if model.image_digest is None or model.image_uri is None:
        raise NotPromotableError(
            f"model {model_version} has no registered image yet (the registrar records it when "
            "ECR reports the push); nothing to deploy"
        )
    return model


def _refuse_if_live(live: Pointer | None, revision: int, model_version: str) -> None:
    if live is not None and live.model_version == model_version:
        raise AlreadyLiveError(
            f"model {model_version} is already live (live pointer revision {revision}, "
            f"deployment {live.deployment_id or 'none'}); nothing to do"
        )


def _settle_pending(pending: Deployment, services: PromotionServices, *, actor: str) -> None:
    """Settle the last deployment if CodeDeploy has ended it; refuse while it runs.

    CodeDeploy delivers its state-change events best effort, so a lost one must not block every
    later promotion. The cache is left to the new deployment's settlement, which invalidates it.
    """
    info = _deployment_info(services, pending.deployment_id)
    state = _ENDED.get(str(info.get("status")))
    if state is None:
        raise DeploymentInProgressError(
            f"deployment {pending.deployment_id} of model {pending.model_version} is "
            f"{info.get('status')}; CodeDeploy runs one deployment at a time: wait for it to end "
            "(make status) and retry"
        )
    log(
        _log,
        "settling an ended deployment whose event was not processed",
        deployment_id=pending.deployment_id,
        state=state,
    )
    _settle(pending, state, services, info=info, actor=actor, invalidate=False)


def publish(services: PromotionServices, image_uri: str) -> str:
    """Point $LATEST at the image, publish it as a version, wait until that version is active.

    An update in progress (a deploy, an earlier promotion) makes UpdateFunctionCode fail with
    ResourceConflictException, so wait for it first; and CodeDeploy must not shift traffic to
    a version whose image Lambda is still optimising (State Pending), so wait for that after.
    """
    name = services.settings.function_name
    _wait(services, "function_updated_v2", FunctionName=name)
    response = services.lambda_client.update_function_code(
        FunctionName=name, ImageUri=image_uri, Publish=True
    )
    version = str(response.get("Version", ""))
    if not version.isdigit():
        raise PromotionError(
            f"Lambda did not publish a version of {name} for {image_uri} (got {version!r}); "
            "nothing was deployed"
        )
    wait_until_active(services, version)
    return version


def wait_until_active(services: PromotionServices, version: str) -> None:
    """Wait until the published `version` itself is Active (its image optimised)."""
    _wait(
        services,
        "published_version_active",
        FunctionName=services.settings.function_name,
        Qualifier=version,
    )


def _wait(services: PromotionServices, waiter: str, **request: str) -> None:
    services.lambda_client.get_waiter(waiter).wait(  # type: ignore[call-overload]
        **request,
        WaiterConfig={
            "Delay": services.update_delay_seconds,
            "MaxAttempts": services.update_max_attempts,
        },
    )


def _parameter(services: PromotionServices) -> str:
    """The live model version the api stack checks a deploy against."""
    name = services.settings.live_model_parameter
    return str(services.ssm.get_parameter(Name=name)["Parameter"]["Value"])


def _put_parameter(services: PromotionServices, model_version: str) -> None:
    services.ssm.put_parameter(
        Name=services.settings.live_model_parameter,
        Value=model_version,
        Type="String",
        Overwrite=True,
    )


def _move_tags(services: PromotionServices, *, live: str | None, rollback: str | None) -> None:
    """Tag the live and rollback images; None leaves a tag where it is."""
    for tag, digest in ((LIVE_TAG, live), (ROLLBACK_TAG, rollback)):
        if digest is not None:
            _tag_image(services, digest, tag)


def _tag_image(services: PromotionServices, digest: str, tag: str) -> None:
    """Put `tag` on the image `digest` (a retag: the same manifest under another tag)."""
    repository = services.settings.repository_name
    response = services.ecr.batch_get_image(
        repositoryName=repository,
        imageIds=[{"imageDigest": digest}],
        acceptedMediaTypes=list(MANIFEST_MEDIA_TYPES),
    )
    images = response.get("images", [])
    if not images or "imageManifest" not in images[0]:
        failures = "; ".join(
            f"{failure.get('failureCode')}: {failure.get('failureReason')}"
            for failure in response.get("failures", [])
        )
        raise PromotionError(
            f"image {digest} is not in repository {repository}, so it cannot be tagged {tag}"
            + (f" ({failures})" if failures else "")
        )
    image = images[0]
    try:
        if "imageManifestMediaType" in image:
            services.ecr.put_image(
                repositoryName=repository,
                imageManifest=image["imageManifest"],
                imageManifestMediaType=image["imageManifestMediaType"],
                imageTag=tag,
                imageDigest=digest,
            )
        else:
            services.ecr.put_image(
                repositoryName=repository,
                imageManifest=image["imageManifest"],
                imageTag=tag,
                imageDigest=digest,
            )
    except ClientError as err:
        # The tag is already on this very image: nothing to move.
        if error_code(err) != "ImageAlreadyExistsException":
            raise


def _invalidate(services: PromotionServices, deployment_id: str) -> None:
    """Drop cached predictions; the deployment id as caller reference makes a retry a no-op."""
    services.cloudfront.create_invalidation(
        DistributionId=services.settings.distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": len(INVALIDATION_PATHS), "Items": list(INVALIDATION_PATHS)},
            "CallerReference": deployment_id,
        },
    )


def settle_deployment(
    event: Mapping[str, Any], services: PromotionServices, *, actor: str = "watcher"
) -> Settlement:
    """Record the end of a deployment from its CodeDeploy state-change event.

    SUCCESS invalidates the cached predictions. FAILURE or STOP (CodeDeploy has moved the
    alias back) puts the registry, the live image parameter and the ECR tags back as they were
    before the deployment, and invalidates too: the canary's answers may be cached. A
    duplicate event changes nothing; another application's deployment is ignored.
    """
    detail = event.get("detail")
    if (
        event.get("source") != CODEDEPLOY_SOURCE
        or event.get("detail-type") != DEPLOYMENT_STATE_CHANGE
        or not isinstance(detail, Mapping)
    ):
        raise EventError(
            f"not a CodeDeploy deployment state change: source {event.get('source')!r}, "
            f"detail-type {event.get('detail-type')!r}"
        )
    deployment_id, state = detail.get("deploymentId"), detail.get("state")
    if not isinstance(deployment_id, str) or not deployment_id:
        raise EventError(f"event {event.get('id')} names no deployment")
    settings = services.settings
    ours = (settings.codedeploy_application, settings.deployment_group)
    theirs = (detail.get("application"), detail.get("deploymentGroup"))
    if theirs != ours:
        return Settlement(
            "ignored",
            deployment_id,
            reason=f"deployment of {theirs[0]}/{theirs[1]}, not of {ours[0]}/{ours[1]}",
        )
    if state not in (SUCCESS, FAILURE, STOP):
        return Settlement("ignored", deployment_id, reason=f"state {state} is not an end")
    deployment = services.registry.get_deployment(deployment_id)
    if deployment is None:
        info = _deployment_info(services, deployment_id)
        if str(info.get("description", "")).startswith(RELEASE_PREFIX):
            return _settle_release(deployment_id, state, services, info=info)
        if str(info.get("description", "")).startswith(DESCRIPTION_PREFIX):
            raise DeploymentNotRecordedError(
                f"deployment {deployment_id} was started by promotion but is not in the "
                "registry (the promoter may not have recorded it yet, or failed to): retried, "
                "then left in the dead-letter queue for a person to reconcile with make status"
            )
        return Settlement(
            "ignored",
            deployment_id,
            reason="not a deployment promotion started (CodeDeploy's own, or someone else's)",
        )
    if deployment.settled:
        return Settlement(
            "duplicate",
            deployment_id,
            deployment.model_version,
            f"already settled as {deployment.status}",
        )
    info = {} if state == SUCCESS else _deployment_info(services, deployment_id)
    return _settle(deployment, state, services, info=info, actor=actor, invalidate=True)


def _settle_release(
    deployment_id: str, state: str, services: PromotionServices, *, info: Mapping[str, Any]
) -> Settlement:
    """A release ended: drop cached answers (the canary's may be cached) and record the outcome.

    The model did not change, so no pointer, parameter or tag moves; on failure CodeDeploy has
    already routed the alias back to the version that served before.
    """
    _invalidate(services, deployment_id)
    if state == SUCCESS:
        type_, reason = RELEASE_SUCCEEDED, f"release deployment {deployment_id} succeeded"
    else:
        type_, reason = RELEASE_FAILED, failure_reason(deployment_id, state, info)
    services.registry.append_event(type_, reason=reason, detail={"deployment_id": deployment_id})
    log(_log, "release settled", deployment_id=deployment_id, state=state, reason=reason)
    return Settlement(type_, deployment_id, reason=reason)


def _settle(
    deployment: Deployment,
    state: str,
    services: PromotionServices,
    *,
    info: Mapping[str, Any],
    actor: str,
    invalidate: bool,
) -> Settlement:
    """Make AWS and the registry agree with how `deployment` ended.

    AWS first, the registry last: every AWS step is idempotent and the registry write is
    conditional, so a retry after a partial failure finishes the job and a duplicate, which
    finds the deployment settled, does nothing.
    """
    registry, deployment_id = services.registry, deployment.deployment_id
    if state == SUCCESS:
        if invalidate:
            _invalidate(services, deployment_id)
        # The promoter sets these right after recording the deployment; setting them again
        # repairs a promoter that failed in between.
        _put_parameter(services, deployment.model_version)
        _move_tags(
            services, live=deployment.image_digest, rollback=deployment.previous_image_digest
        )
        reason = (
            f"CodeDeploy deployment {deployment_id} succeeded: Lambda version "
            f"{deployment.lambda_version} serves all traffic"
        )
        recorded, changed = registry.record_deployment_success(
            deployment_id,
            actor=actor,
            reason=reason,
            detail={"lambda_version": deployment.lambda_version, "invalidated": invalidate},
        )
        action = DEPLOYED
    else:
        reason = failure_reason(deployment_id, state, info)
        # CodeDeploy has already routed the alias back to the previous version.
        _restore_latest(services)
        previous = deployment.previous_model_version or deployment.previous_parameter_value
        if previous is not None:
            _put_parameter(services, previous)
        # After a failed first promotion no image of this repository was live before, so
        # `live` stays on the failed image (ECR cannot untag without deleting).
        _move_tags(
            services,
            live=deployment.previous_image_digest,
            rollback=deployment.previous_rollback_image_digest,
        )
        if invalidate:
            _invalidate(services, deployment_id)
        status = FAILED if state == FAILURE else STOPPED
        recorded, changed = registry.record_deployment_failure(
            deployment_id,
            status=status,
            actor=actor,
            reason=reason,
            detail={
                "lambda_version": deployment.lambda_version,
                "previous_lambda_version": deployment.previous_lambda_version,
                "invalidated": invalidate,
            },
        )
        action = status
    settlement = Settlement(
        action if changed else "duplicate",
        deployment_id,
        recorded.model_version,
        reason if changed else f"already settled as {recorded.status}",
    )
    log(
        _log,
        "deployment settled" if changed else "deployment already settled",
        deployment_id=deployment_id,
        state=state,
        action=settlement.action,
        model_version=recorded.model_version,
        previous_model_version=recorded.previous_model_version,
        reason=settlement.reason,
    )
    return settlement


def _restore_latest(services: PromotionServices) -> None:
    """Point $LATEST back at the image the alias serves again after a failed deployment.

    CloudFormation publishes its versions from $LATEST; left on the failed model's image, the
    next configuration-only `cdk deploy` would publish that model again.
    """
    name, alias = services.settings.function_name, services.settings.alias_name
    lambda_client = services.lambda_client
    serving = lambda_client.get_alias(FunctionName=name, Name=alias)["FunctionVersion"]
    image = lambda_client.get_function(FunctionName=name, Qualifier=serving)["Code"].get("ImageUri")
    latest = lambda_client.get_function(FunctionName=name)["Code"].get("ImageUri")
    if image and image != latest:
        _wait(services, "function_updated_v2", FunctionName=name)
        lambda_client.update_function_code(FunctionName=name, ImageUri=image)
        log(_log, "restored $LATEST", image=image, lambda_version=serving)


def failure_reason(deployment_id: str, state: str, info: Mapping[str, Any]) -> str:
    """Why a deployment did not succeed, from GetDeployment's errorInformation and rollbackInfo."""
    verb = "failed" if state == FAILURE else "was stopped"
    parts = [f"CodeDeploy deployment {deployment_id} {verb}"]
    error = info.get("errorInformation") or {}
    if error:
        parts.append(f"{error.get('code', 'error')}: {error.get('message', '')}".rstrip(": "))
    rollback_message = (info.get("rollbackInfo") or {}).get("rollbackMessage")
    if rollback_message:
        parts.append(f"rollback: {rollback_message}")
    return "; ".join(parts)


def _deployment_info(services: PromotionServices, deployment_id: str) -> Mapping[str, Any]:
    info: Mapping[str, Any] = services.codedeploy.get_deployment(deploymentId=deployment_id)[
        "deploymentInfo"
    ]
    return info


def _reason(err: BaseException) -> str:
    return str(err) if isinstance(err, PromotionError) else error_reason(err)


def status(registry: Registry, *, events: int = 10) -> StatusReport:
    """The live and rollback pointers, every model newest first, the newest promotion events."""
    live = registry.live()
    deployment = (
        registry.get_deployment(live.deployment_id)
        if live is not None and live.deployment_id is not None
        else None
    )
    return StatusReport(
        live=live,
        rollback=registry.rollback(),
        deployment=deployment,
        models=tuple(registry.list_models()),
        promotions=tuple(registry.promotion_events(events)),
    )
