"""Builds the whole app: config from context -> the stacks (five, six with WAF) -> cdk-nag packs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks

from cdk_app.checkov import AppWideSkips
from cdk_app.config import AppConfig
from stacks.api_stack import ApiStack
from stacks.cdn_monitoring_stack import CdnMonitoringStack
from stacks.data_stack import DataStack
from stacks.edge_stack import EdgeStack
from stacks.observability_stack import ObservabilityStack
from stacks.pipeline_stack import PipelineStack
from training.contract import Stack, stack_name

# The serving image's build context; its Dockerfile copies the model from model/.
SERVING_DIR = Path(__file__).resolve().parent.parent / "lambda_image"
MODEL_FILES = ("model.npz", "metadata.json")


class ModelArtifactMissingError(FileNotFoundError):
    """The serving image would be built without a model; the message says how to make one."""


def require_model(serving_dir: Path) -> None:
    """Refuse to build an app whose serving image would have no model in it."""
    missing = [name for name in MODEL_FILES if not (serving_dir / "model" / name).is_file()]
    if missing:
        raise ModelArtifactMissingError(
            f"the serving image needs {serving_dir.name}/model/{missing[0]}, which is missing; "
            "run `make model` (`make synth` does it for you)"
        )


@dataclasses.dataclass(frozen=True)
class BuiltApp:
    """The app, its config, its stacks and the nag packs that check every synth."""

    app: cdk.App
    config: AppConfig
    data: DataStack
    pipeline: PipelineStack
    api: ApiStack
    observability: ObservabilityStack
    nag_packs: tuple[NagPack, ...]
    cdn_monitoring: CdnMonitoringStack | None = None
    edge: EdgeStack | None = None

    @property
    def stacks(self) -> tuple[cdk.Stack, ...]:
        """Every stack in deployment order (the us-east-1 ones included)."""
        edge = (self.edge,) if self.edge else ()
        monitoring = (self.cdn_monitoring,) if self.cdn_monitoring else ()
        return (self.data, self.pipeline, *edge, self.api, *monitoring, self.observability)


def build(
    app: cdk.App,
    *,
    account: str | None = None,
    serving_dir: Path = SERVING_DIR,
    checks: bool = True,
) -> BuiltApp:
    """Create and wire the stacks on `app` and attach the nag packs.

    Raises ConfigError for a bad context value and ModelArtifactMissingError without a model.
    `checks=False` leaves the nag packs off, for tools that inspect an app with findings.
    """
    config = AppConfig.from_context(app.node.get_all_context())
    require_model(serving_dir)
    env = cdk.Environment(account=account, region=config.region)
    prefix = config.stack_prefix
    # Production stacks hold the model registry and the data lake: deleting them by
    # accident must take a deliberate extra step.
    protect = config.environment == "prod"
    # Stack-level tags: CloudFormation copies them onto every resource it creates, which
    # makes them cost-allocation tags without tagging each construct.
    common: dict[str, Any] = {
        "env": env,
        "termination_protection": protect,
        "tags": {"project": config.project_name, "environment": config.environment},
    }

    data = DataStack(
        app,
        stack_name(prefix, Stack.DATA),
        config=config,
        **common,
        description="Iris ML data lake: versioned dataset storage.",
    )
    pipeline = PipelineStack(
        app,
        stack_name(prefix, Stack.PIPELINE),
        config=config,
        data=data,
        serving_dir=serving_dir,
        **common,
        description="Iris ML training pipeline: Spot trainer, ECR, model registry.",
    )
    # CloudFront's WAF lives in us-east-1: a stack there, referenced across regions.
    edge = (
        EdgeStack(
            app,
            stack_name(prefix, Stack.EDGE),
            config=config,
            **{**common, "env": cdk.Environment(account=account, region="us-east-1")},
            cross_region_references=True,
            description="Iris ML edge: the CloudFront WAF web ACL (us-east-1).",
        )
        if config.waf_enabled
        else None
    )
    api = ApiStack(
        app,
        stack_name(prefix, Stack.API),
        config=config,
        data=data,
        pipeline=pipeline,
        edge=edge,
        serving_dir=serving_dir,
        **common,
        cross_region_references=edge is not None,
        description="Iris ML serving API: CloudFront, API Gateway, container Lambda.",
    )
    # CloudFront publishes its metrics in us-east-1 only, so its alarms live there.
    cdn_monitoring = CdnMonitoringStack(
        app,
        stack_name(prefix, Stack.CDN_MONITORING),
        config=config,
        api=api,
        **{**common, "env": cdk.Environment(account=account, region="us-east-1")},
        cross_region_references=True,
        description="Iris ML CDN monitoring: CloudFront alarms and their topic (us-east-1).",
    )
    observability = ObservabilityStack(
        app,
        stack_name(prefix, Stack.OBSERVABILITY),
        config=config,
        api=api,
        pipeline=pipeline,
        cdn_monitoring=cdn_monitoring,
        cross_region_references=True,
        **common,
        description="Iris ML observability: dashboard, alarms, SNS and Slack.",
    )

    # cdk-nag 3 packs are policy-validation plugins: an error-level finding fails synth.
    cdk.Aspects.of(app).add(AppWideSkips())
    # Acknowledgements are written into each resource's template metadata for auditors.
    packs: tuple[NagPack, ...] = (
        AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True),
        ServerlessChecks(app, write_suppressions_to_cloud_formation=True),
    )
    if checks:
        cdk.Validations.of(app).add_plugins(*packs)
    return BuiltApp(app, config, data, pipeline, api, observability, packs, cdn_monitoring, edge)
