"""Fixtures for the trainer's tests: the bundled iris rows and emulated AWS services (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from mypy_boto3_dynamodb import DynamoDBServiceResource
from mypy_boto3_ec2 import EC2Client
from mypy_boto3_ecr import ECRClient
from mypy_boto3_s3 import S3Client

from tests.training.fakes import (
    ALIAS,
    BOOTSTRAP_IMAGE,
    FUNCTION,
    LIVE_PARAMETER,
    PROMOTION_ENV,
    REPOSITORY,
    RUNTIME_PARAMETER,
    RUNTIME_REPOSITORY,
    SEED_MODEL,
    TABLE,
    FakeImds,
    PromotionWorld,
    RecordingRunner,
    StepClock,
    record_calls,
)
from training.control.promotion_services import PromotionServices, PromotionSettings
from training.instance.settings import PipelineSettings
from training.ml.dataset import bundled_iris_csv
from training.registry import Registry, create_table

REGION: Final = "eu-west-1"


@pytest.fixture
def iris_lines() -> list[str]:
    """The bundled iris CSV as lines: [0] is the header (file line 1), [n - 1] is line n."""
    return bundled_iris_csv().decode().splitlines()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every AWS call, with fake credentials so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    # Keep boto3's default session between tests: a fresh one re-reads every service model
    # (~0.4 s a test). The credentials it caches are the fake ones set above.
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        yield


@pytest.fixture
def s3(aws: None) -> S3Client:
    """An S3 client on moto with an empty, versioned bucket `data`."""
    client = boto3.client("s3")
    client.create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": REGION})
    client.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
    return client


@pytest.fixture
def dynamodb(aws: None) -> DynamoDBServiceResource:
    """A DynamoDB resource on moto holding an empty registry table."""
    resource = boto3.resource("dynamodb")
    create_table(resource.meta.client, TABLE)
    return resource


@pytest.fixture
def clock() -> StepClock:
    """A clock at 2026-11-27T14:05:01Z that moves only when a test moves it."""
    return StepClock()


@pytest.fixture
def registry(dynamodb: DynamoDBServiceResource, clock: StepClock) -> Registry:
    """The registry on the moto table, on the test clock."""
    return Registry(TABLE, dynamodb=dynamodb, actor="test", clock=clock)


@pytest.fixture
def ecr(aws: None) -> ECRClient:
    """An ECR client on moto with the (immutable-tag) model repository."""
    client = boto3.client("ecr")
    client.create_repository(repositoryName=REPOSITORY, imageTagMutability="IMMUTABLE")
    return client


@pytest.fixture
def runtime(ecr: ECRClient) -> str:
    """The serving runtime image on moto, and the SSM parameter naming it; its URI by digest."""
    ecr.create_repository(repositoryName=RUNTIME_REPOSITORY)
    manifest = '{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}'
    digest = ecr.put_image(
        repositoryName=RUNTIME_REPOSITORY, imageManifest=manifest, imageTag="bb64778edee2"
    )["image"]["imageId"]["imageDigest"]
    uri = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{RUNTIME_REPOSITORY}"
    boto3.client("ssm").put_parameter(
        Name=RUNTIME_PARAMETER, Value=f"{uri}:bb64778edee2", Type="String"
    )
    return f"{uri}@{digest}"


@pytest.fixture
def ec2(aws: None) -> EC2Client:
    """An EC2 client on moto."""
    return boto3.client("ec2")


@pytest.fixture
def imds() -> FakeImds:
    """Instance metadata of a Spot instance with no interruption notice."""
    return FakeImds()


@pytest.fixture
def runner() -> RecordingRunner:
    """A command runner that records docker command lines and answers like Docker."""
    return RecordingRunner()


@pytest.fixture
def build_context(tmp_path: Path) -> Path:
    """A model image's build context as the trainer gets it: model.Dockerfile alone."""
    context = tmp_path / "build"
    context.mkdir(parents=True)
    (context / "model.Dockerfile").write_text(
        "ARG SERVING_RUNTIME\nFROM ${SERVING_RUNTIME}\nCOPY model/ ${LAMBDA_TASK_ROOT}/model/\n"
    )
    return context


@pytest.fixture
def settings(build_context: Path) -> PipelineSettings:
    """Pipeline settings as the launch template's user data sets them."""
    return PipelineSettings.from_env(
        {
            "REGISTRY_TABLE": TABLE,
            "REPOSITORY_URI": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}",
            "BUILD_CONTEXT": str(build_context),
            "RUNTIME_IMAGE_PARAMETER": RUNTIME_PARAMETER,
            "AWS_REGION": REGION,
            "MIN_ACCURACY": "0.9",
            "ACCURACY_TOLERANCE": "0.02",
            "TIME_LIMIT_MINUTES": "60",
            "DOCKER_PLATFORM": "linux/arm64",
        }
    )


@pytest.fixture
def world(registry: Registry, clock: StepClock) -> Iterator[PromotionWorld]:
    """The serving stack as CloudFormation leaves it, on moto, with stubbed CodeDeploy/CloudFront.

    The function's version 1 runs the bootstrap image behind the `live` alias, the live image
    parameter names that image, and the model repository keeps tags immutable except `live` and
    `rollback`. Every call promotion makes is recorded in `world.calls`.
    """
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="serving", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lambda_client = boto3.client("lambda")
    lambda_client.create_function(
        FunctionName=FUNCTION,
        Role=role,
        Code={"ImageUri": BOOTSTRAP_IMAGE},
        PackageType="Image",
        Publish=True,
    )
    lambda_client.create_alias(FunctionName=FUNCTION, Name=ALIAS, FunctionVersion="1")
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=LIVE_PARAMETER, Value=SEED_MODEL, Type="String")
    ecr = boto3.client("ecr")
    ecr.create_repository(
        repositoryName=REPOSITORY,
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[
            {"filterType": "WILDCARD", "filter": "live"},
            {"filterType": "WILDCARD", "filter": "rollback"},
        ],
    )
    codedeploy = boto3.client("codedeploy")
    cloudfront = boto3.client("cloudfront")
    services = PromotionServices(
        settings=PromotionSettings.from_env(PROMOTION_ENV),
        registry=registry,
        lambda_client=lambda_client,
        codedeploy=codedeploy,
        ssm=ssm,
        ecr=ecr,
        cloudfront=cloudfront,
        update_delay_seconds=1,
        update_max_attempts=3,
    )
    calls = record_calls([], lambda_client, codedeploy, ssm, ecr, cloudfront)
    with Stubber(codedeploy) as codedeploy_stub, Stubber(cloudfront) as cloudfront_stub:
        yield PromotionWorld(
            registry=registry,
            clock=clock,
            services=services,
            codedeploy=codedeploy_stub,
            cloudfront=cloudfront_stub,
            calls=calls,
        )
