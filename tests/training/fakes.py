"""Test doubles for the trainer: instance metadata, a docker command runner, a clock, events."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from training.control.promotion_services import PromotionServices, PromotionSettings
from training.instance.docker import CommandCancelledError, CommandError, CommandResult
from training.instance.imds import ImdsError
from training.registry import CANDIDATE, ImageRecord, ModelRecord, Registry

TABLE = "registry"
REPOSITORY = "iris-models"
ACCOUNT = "123456789012"
EVENTS = Path(__file__).resolve().parent / "events"
START = datetime(2026, 11, 27, 14, 5, 1, tzinfo=UTC)
PUSH_DIGEST = "sha256:" + "d1" * 32


def load_event(name: str, **detail: Any) -> dict[str, Any]:
    """A recorded EventBridge event from tests/training/events, with `detail` keys replaced."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event["detail"].update({key.replace("_", "-"): value for key, value in detail.items()})
    return copy.deepcopy(event)


def load_sample(name: str, **detail: Any) -> dict[str, Any]:
    """A recorded event from tests/training/events with `detail` keys replaced as given."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event["detail"].update(detail)
    return event


class StepClock:
    """A clock that stands still until `advance` moves it (thread-safe reads)."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class FakeImds:
    """Instance metadata of a fake instance; `notice` appears once `notice_when()` is true."""

    instance: str = "i-0123456789abcdef0"
    type_: str = "m7g.large"
    life_cycle: str = "spot"
    tags: dict[str, str] = field(default_factory=dict)
    notice: dict[str, str] | None = None
    notice_when: Callable[[], bool] = lambda: True
    polls: int = 0
    fail: bool = False

    def instance_id(self) -> str:
        self._maybe_fail()
        return self.instance

    def instance_type(self) -> str:
        self._maybe_fail()
        return self.type_

    def lifecycle(self) -> str:
        self._maybe_fail()
        return self.life_cycle

    def tag(self, key: str) -> str:
        if key not in self.tags:
            raise ImdsError(f"instance tag {key} not found")
        return self.tags[key]

    def spot_instance_action(self) -> dict[str, str] | None:
        self.polls += 1
        if self.notice is not None and self.notice_when():
            return dict(self.notice)
        return None

    def _maybe_fail(self) -> None:
        if self.fail:
            raise ImdsError("cannot reach IMDS at http://169.254.169.254: timed out")


NOTICE = {"action": "terminate", "time": "2026-11-27T14:07:01Z"}


@dataclass
class Call:
    """One recorded command."""

    argv: list[str]
    stdin: bytes | None
    cancel: threading.Event | None


@dataclass
class RecordingRunner:
    """Records every command line; answers `docker push` with a digest like Docker does.

    `block` names subcommands (argv[1]) that run until cancelled (at most 5 s, then fail);
    `fail` names subcommands that exit non-zero; `on_call` runs before each answer.
    """

    calls: list[Call] = field(default_factory=list)
    digest: str = PUSH_DIGEST
    block: tuple[str, ...] = ()
    fail: tuple[str, ...] = ()
    on_call: Callable[[list[str]], None] | None = None
    # Where a push lands (moto's ECR), and the manifest media type the "registry" stores.
    registry: Any = None
    media_type: str = "application/vnd.docker.distribution.manifest.v2+json"

    def __call__(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> CommandResult:
        args = list(argv)
        self.calls.append(Call(args, stdin, cancel))
        if self.on_call is not None:
            self.on_call(args)
        if args[1] in self.fail:
            raise CommandError(f"docker {args[1]} exited with 1: no space left on device")
        if args[1] in self.block:
            if cancel is None or not cancel.wait(timeout=5):
                raise AssertionError(f"docker {args[1]} was never cancelled")
            raise CommandCancelledError(f"docker {args[1]} was stopped: cancelled")
        stdout = ""
        if args[1] == "push":
            tag = args[2].rsplit(":", 1)[1]
            if self.registry is not None:
                repository = args[2].rsplit(":", 1)[0].partition("/")[2]
                body = {**json.loads(manifest(tag)), "mediaType": self.media_type}
                self.registry.put_image(
                    repositoryName=repository, imageManifest=json.dumps(body), imageTag=tag
                )
            stdout = (
                "The push refers to repository [...]\n"
                f"5f70bf18a086: Pushed\n{tag}: digest: {self.digest} size: 1780\n"
            )
        return CommandResult(tuple(args), 0, stdout, "")

    @property
    def argvs(self) -> list[list[str]]:
        return [call.argv for call in self.calls]

    def subcommands(self) -> list[str]:
        return [argv[1] for argv in self.argvs]


# Promotion: the deployed serving stack's names, and a world of moto services around them.

FUNCTION = "iris-ml-dev-api-ServingFunction"
ALIAS = "live"
LIVE_PARAMETER = "/iris-ml-dev/serving/live-model-version"
APPLICATION = "iris-ml-dev-api-PromotionApplication"
GROUP = "iris-ml-dev-api-PromotionCanary"
DISTRIBUTION = "E2QWRUHAPOMQZL"
REPOSITORY_URI = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/{REPOSITORY}"
# The image CloudFormation deployed first: a CDK asset, in CDK's own repository.
BOOTSTRAP_IMAGE = (
    f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/cdk-hnb659fds-container-assets-"
    f"{ACCOUNT}-eu-west-1:0f3e5d3b8c1a"
)
# The serving runtime the api stack's last deploy shipped: a CDK asset in the bootstrap repository.
RUNTIME_REPOSITORY = f"cdk-hnb659fds-container-assets-{ACCOUNT}-eu-west-1"
RUNTIME_PARAMETER = "/iris-ml-dev/serving/runtime-image-uri"
V1, V2, V3 = "111111111111", "222222222222", "333333333333"
# The model the first deploy baked into BOOTSTRAP_IMAGE (the live-model parameter's seed).
SEED_MODEL = "d0b97dd6ede2"
PROMOTION_ENV = {
    "REGISTRY_TABLE": TABLE,
    "FUNCTION_NAME": FUNCTION,
    "ALIAS_NAME": ALIAS,
    "LIVE_MODEL_PARAMETER": LIVE_PARAMETER,
    "CODEDEPLOY_APPLICATION": APPLICATION,
    "DEPLOYMENT_GROUP": GROUP,
    "DISTRIBUTION_ID": DISTRIBUTION,
    "REPOSITORY_NAME": REPOSITORY,
}
STACK_OUTPUTS = {
    "iris-ml-dev-api": {
        "FunctionName": FUNCTION,
        "DistributionId": DISTRIBUTION,
        "CodeDeployApplication": APPLICATION,
        "DeploymentGroup": GROUP,
        "Url": "https://d111111abcdef8.cloudfront.net",
    },
    "iris-ml-dev-pipeline": {
        "RegistryTableName": TABLE,
        "RepositoryUri": REPOSITORY_URI,
        "LiveModelParameter": LIVE_PARAMETER,
    },
}

Calls = list[tuple[str, dict[str, Any]]]


def deploy_outputs(outputs: dict[str, dict[str, str]]) -> None:
    """Stacks with these outputs on moto's CloudFormation, as `cdk deploy` leaves them."""
    cloudformation = boto3.client("cloudformation")
    for stack, values in outputs.items():
        template = {
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {key: {"Value": value} for key, value in values.items()},
        }
        cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))


def record_calls(calls: Calls, *clients: Any) -> Calls:
    """Append (operation, parameters) of every call the clients make to `calls`."""

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, copy.deepcopy(params)))

    for client in clients:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"provide-client-params.{service}", record)
    return calls


def manifest(seed: str) -> str:
    """An OCI image manifest whose (moto-computed) digest differs for every seed."""
    layer = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + "0" * 64,
                "size": 1,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer,
                    "size": 1,
                }
            ],
        }
    )


def appspec(current: str, target: str) -> dict[str, Any]:
    """The AppSpec a deployment from Lambda version `current` to `target` must carry."""
    return {
        "version": 0.0,
        "Resources": [
            {
                FUNCTION: {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": FUNCTION,
                        "Alias": ALIAS,
                        "CurrentVersion": current,
                        "TargetVersion": target,
                    },
                }
            }
        ],
    }


@dataclass
class PromotionWorld:
    """The serving stack on moto (function, alias, parameter, repository) plus stubbed
    CodeDeploy and CloudFront, the registry, and a record of every AWS call promotion makes.
    """

    registry: Registry
    clock: StepClock
    services: PromotionServices
    codedeploy: Stubber
    cloudfront: Stubber
    calls: Calls
    digests: dict[str, str] = field(default_factory=dict)

    def uri(self, model_version: str) -> str:
        return f"{REPOSITORY_URI}@{self.digests[model_version]}"

    def add_model(
        self,
        model_version: str,
        dataset_version: str,
        *,
        status: str = CANDIDATE,
        accuracy: float = 0.9667,
        register: bool = True,
    ) -> None:
        """A model the trainer recorded, its image pushed and (unless not `register`) registered."""
        tag = f"{dataset_version}-{model_version}"
        self.registry.record_model(
            ModelRecord(
                model_version=model_version,
                status=status,
                status_reason=f"{status} by the quality gate",
                run_id=f"20261127T140501Z-{model_version[:8]}",
                dataset_name="iris",
                dataset_version=dataset_version,
                dataset_uri=f"s3://data/datasets/iris/{dataset_version}/data.csv",
                dataset_sha256="e" * 64,
                metrics={"accuracy": accuracy},
                gate={"passed": status == CANDIDATE},
                image_tag=tag,
            )
        )
        pushed = self.services.ecr.put_image(
            repositoryName=REPOSITORY, imageManifest=manifest(model_version), imageTag=tag
        )
        self.digests[model_version] = pushed["image"]["imageId"]["imageDigest"]
        if register:
            self.registry.register_image(
                ImageRecord(
                    model_version=model_version,
                    dataset_version=dataset_version,
                    image_tag=tag,
                    image_digest=self.digests[model_version],
                    image_uri=self.uri(model_version),
                    repository=REPOSITORY,
                )
            )
        self.clock.advance(seconds=1)

    def connected(self, settings: PromotionSettings, *, actor: str) -> PromotionServices:
        """What PromotionServices.connect hands the CLI: the world's clients, writing as `actor`."""
        registry = Registry(
            settings.registry_table,
            dynamodb=boto3.resource("dynamodb"),
            actor=actor,
            clock=self.clock,
        )
        return dataclasses.replace(self.services, settings=settings, registry=registry)

    def seed_live(self, model_version: str) -> None:
        """Make a model live as a settled promotion leaves it: alias, registry, parameter, tag."""
        services = self.services
        version = services.lambda_client.update_function_code(
            FunctionName=FUNCTION, ImageUri=self.uri(model_version), Publish=True
        )["Version"]
        services.lambda_client.update_alias(
            FunctionName=FUNCTION, Name=ALIAS, FunctionVersion=version
        )
        self.registry.set_live(model_version, expected_revision=0, reason="seed")
        services.registry._client.update_item(
            TableName=TABLE,
            Key={"pk": "MODEL", "sk": model_version},
            UpdateExpression="SET #status = :live",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":live": "live"},
        )
        services.ssm.put_parameter(
            Name=LIVE_PARAMETER, Value=model_version, Type="String", Overwrite=True
        )
        services.ecr.put_image(
            repositoryName=REPOSITORY,
            imageManifest=manifest(model_version),
            imageTag="live",
        )
        self.clock.advance(seconds=1)
        self.calls.clear()

    def expect_deployment(
        self,
        deployment_id: str,
        *,
        current: str,
        target: str,
        description: str,
        config: str | None = None,
        rollback: bool = False,
    ) -> None:
        """CodeDeploy answers one CreateDeployment with these exact parameters."""
        expected: dict[str, Any] = {
            "applicationName": APPLICATION,
            "deploymentGroupName": GROUP,
            "revision": {
                "revisionType": "AppSpecContent",
                # Compared parsed, from the recorded call: JSON text may order keys freely.
                "appSpecContent": {"content": ANY},
            },
            "description": description,
        }
        if config is not None:
            expected["deploymentConfigName"] = config
        if rollback:
            # A rollback must not be stopped by the guard alarms that usually called for it.
            expected["overrideAlarmConfiguration"] = {"enabled": False, "alarms": []}
            expected["autoRollbackConfiguration"] = {"enabled": False}
        self.codedeploy.add_response("create_deployment", {"deploymentId": deployment_id}, expected)

    def expect_get_deployment(
        self,
        deployment_id: str,
        status: str,
        *,
        description: str = "model promotion: promoted",
        error: dict[str, str] | None = None,
        rollback_message: str | None = None,
    ) -> None:
        """CodeDeploy answers one GetDeployment of `deployment_id`."""
        info: dict[str, Any] = {
            "applicationName": APPLICATION,
            "deploymentGroupName": GROUP,
            "deploymentId": deployment_id,
            "status": status,
            "description": description,
        }
        if error is not None:
            info["errorInformation"] = error
        if rollback_message is not None:
            info["rollbackInfo"] = {"rollbackMessage": rollback_message}
        self.codedeploy.add_response(
            "get_deployment", {"deploymentInfo": info}, {"deploymentId": deployment_id}
        )

    def expect_invalidation(self, deployment_id: str) -> None:
        """CloudFront answers one CreateInvalidation of the prediction paths."""
        batch = {
            "Paths": {"Quantity": 2, "Items": ["/predict/", "/predict/*"]},
            "CallerReference": deployment_id,
        }
        self.cloudfront.add_response(
            "create_invalidation",
            {
                "Location": f"https://cloudfront.amazonaws.com/2020-05-31/distribution/{DISTRIBUTION}/invalidation/I1",
                "Invalidation": {
                    "Id": "I1",
                    "Status": "InProgress",
                    "CreateTime": START,
                    "InvalidationBatch": batch,
                },
            },
            {"DistributionId": DISTRIBUTION, "InvalidationBatch": batch},
        )

    def calls_to(self, *operations: str) -> Calls:
        """The recorded calls of these operations, in order."""
        return [(name, params) for name, params in self.calls if name in operations]

    def appspec_of(self, call: int = 0) -> dict[str, Any]:
        """The AppSpec of the `call`-th CreateDeployment, parsed."""
        deployments = self.calls_to("CreateDeployment")
        content: str = deployments[call][1]["revision"]["appSpecContent"]["content"]
        parsed: dict[str, Any] = json.loads(content)
        return parsed

    def tags(self) -> dict[str, str]:
        """Which digest carries `live` and which `rollback` in the repository."""
        found: dict[str, str] = {}
        for image in self.services.ecr.describe_images(repositoryName=REPOSITORY)["imageDetails"]:
            for tag in image.get("imageTags", []):
                if tag in ("live", "rollback"):
                    found[tag] = image["imageDigest"]
        return found

    def parameter(self) -> str:
        return str(self.services.ssm.get_parameter(Name=LIVE_PARAMETER)["Parameter"]["Value"])

    def status_of(self, model_version: str) -> str | None:
        model = self.registry.get_model(model_version)
        assert model is not None
        return model.status

    def verify(self) -> None:
        """Every stubbed CodeDeploy and CloudFront answer was asked for."""
        self.codedeploy.assert_no_pending_responses()
        self.cloudfront.assert_no_pending_responses()


# The registry package's modules: a handler that imports the registry loads them all.
REGISTRY_MODULES = [
    "training.registry",
    "training.registry.deployments",
    "training.registry.items",
    "training.registry.models",
    "training.registry.promotions",
    "training.registry.records",
    "training.registry.runs",
    "training.registry.table",
]


def training_modules_imported(imports: str, *, blocked: Sequence[str]) -> list[str]:
    """The `training` modules a fresh interpreter loads for `import <imports>`, `blocked` absent.

    The Lambda runtime has boto3 but neither numpy, scikit-learn nor the mypy stubs: blocking
    them proves a handler never needs them.
    """
    code = (
        "import sys\n"
        f"for name in {tuple(blocked)!r}:\n"
        "    sys.modules[name] = None\n"
        f"import {imports}\n"
        "import json\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('training'))))\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    modules: list[str] = json.loads(result.stdout)
    return modules


# IAM: the action of an API call is `<service prefix>:<operation name>` for these services
# (Service Authorization Reference); every call promotion makes is checked against the roles.
API_OPERATIONS = {
    "lambda": {
        "GetAlias",
        "GetFunction",
        "GetFunctionConfiguration",
        "UpdateFunctionCode",
        "PublishVersion",
    },
    "codedeploy": {"CreateDeployment", "ListDeployments", "GetDeployment"},
    "ssm": {"GetParameter", "PutParameter"},
    "ecr": {"BatchGetImage", "PutImage", "DescribeImages"},
    "cloudfront": {"CreateInvalidation"},
}


def iam_actions(calls: Calls) -> set[str]:
    """The IAM actions of the recorded calls."""
    return {
        f"{prefix}:{operation}"
        for operation, _ in calls
        for prefix, operations in API_OPERATIONS.items()
        if operation in operations
    }


def granted_actions(template: Any, role_logical_id_prefix: str) -> set[str]:
    """Every action the policies attached to roles whose logical id starts with the prefix."""
    actions: set[str] = set()
    for resource in template.find_resources("AWS::IAM::Policy").values():
        if role_logical_id_prefix not in json.dumps(resource["Properties"]["Roles"]):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            action = statement["Action"]
            actions.update([action] if isinstance(action, str) else action)
    return actions
