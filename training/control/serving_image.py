"""What a promotion moves: the Lambda version, the live-model parameter, the ECR tags, the cache."""

from __future__ import annotations

import logging

from botocore.exceptions import ClientError

from training.aws import error_code, log
from training.contract import LIVE_TAG, ROLLBACK_TAG
from training.control.promotion_services import (
    INVALIDATION_PATHS,
    MANIFEST_MEDIA_TYPES,
    PromotionError,
    PromotionServices,
)

_log = logging.getLogger(__name__)


def publish(services: PromotionServices, image_uri: str) -> str:
    """Point $LATEST at the image, publish it as a version, wait until that version is active.

    An update in progress (a deploy, an earlier promotion) makes UpdateFunctionCode fail with
    ResourceConflictException, so wait for it first; and CodeDeploy must not shift traffic to
    a version whose image Lambda is still optimising (State Pending), so wait for that after.
    """
    name = services.settings.function_name
    wait_for(services, "function_updated_v2", FunctionName=name)
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
    wait_for(
        services,
        "published_version_active",
        FunctionName=services.settings.function_name,
        Qualifier=version,
    )


def wait_for(services: PromotionServices, waiter: str, **request: str) -> None:
    """Wait on a Lambda waiter with promotion's delay and attempts."""
    services.lambda_client.get_waiter(waiter).wait(  # type: ignore[call-overload]
        **request,
        WaiterConfig={
            "Delay": services.update_delay_seconds,
            "MaxAttempts": services.update_max_attempts,
        },
    )


def live_parameter(services: PromotionServices) -> str:
    """The live model version the api stack checks a deploy against."""
    name = services.settings.live_model_parameter
    return str(services.ssm.get_parameter(Name=name)["Parameter"]["Value"])


def put_live_parameter(services: PromotionServices, model_version: str) -> None:
    """Point the live-model parameter at `model_version`."""
    services.ssm.put_parameter(
        Name=services.settings.live_model_parameter,
        Value=model_version,
        Type="String",
        Overwrite=True,
    )


def move_tags(services: PromotionServices, *, live: str | None, rollback: str | None) -> None:
    """Tag the live and rollback images; None leaves a tag where it is."""
    for tag, digest in ((LIVE_TAG, live), (ROLLBACK_TAG, rollback)):
        if digest is not None:
            tag_image(services, digest, tag)


def tag_image(services: PromotionServices, digest: str, tag: str) -> None:
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


def invalidate_cache(services: PromotionServices, deployment_id: str) -> None:
    """Drop cached predictions; the deployment id as caller reference makes a retry a no-op."""
    services.cloudfront.create_invalidation(
        DistributionId=services.settings.distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": len(INVALIDATION_PATHS), "Items": list(INVALIDATION_PATHS)},
            "CallerReference": deployment_id,
        },
    )


def restore_latest(services: PromotionServices) -> None:
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
        wait_for(services, "function_updated_v2", FunctionName=name)
        lambda_client.update_function_code(FunctionName=name, ImageUri=image)
        log(_log, "restored $LATEST", image=image, lambda_version=serving)
