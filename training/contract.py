"""Every name the CDK app and the runtime code both spell, spelled once (standard library only).

The CDK app, the control-plane Lambdas, the Spot instance run and the CLI import these; a value
written on one side and read on the other lives nowhere else, so a rename cannot split them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

# The data lake: one object per dataset version, s3://<bucket>/datasets/<name>/<version>/data.csv.
DATASETS_PREFIX: Final = "datasets/"
DATASET_FILE: Final = "data.csv"

# Names and versions become S3 keys and ECR tags: letters, digits, '.', '_', '-', at most 64.
IDENTIFIER: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# A model version is the first 12 hex digits of the model file's SHA-256.
MODEL_VERSION: Final = re.compile(r"[0-9a-f]{12}")
RUN_ID: Final = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")
# `<dataset_version>-<model_version>`: the version may hold dashes, so the model version is the
# last dash-separated part.
IMAGE_TAG: Final = re.compile(
    rf"(?P<dataset_version>{IDENTIFIER.pattern})-(?P<model_version>{MODEL_VERSION.pattern})"
)

# The serving function's alias CodeDeploy shifts, and the ECR tags of the live and rollback
# images (kept mutable and never expired by the lifecycle policy).
LIVE_ALIAS: Final = "live"
LIVE_TAG: Final = "live"
ROLLBACK_TAG: Final = "rollback"

# The registrar's event on the default bus, which the promoter's rule matches.
REGISTRY_EVENT_SOURCE: Final = "iris-ml.registry"
MODEL_REGISTERED: Final = "Model Registered"
# AWS's detail types of the events rules match and handlers check (the services' spelling).
OBJECT_CREATED: Final = "Object Created"
INSTANCE_STATE_CHANGE: Final = "EC2 Instance State-change Notification"
ECR_IMAGE_ACTION: Final = "ECR Image Action"
ALARM_STATE_CHANGE: Final = "CloudWatch Alarm State Change"
DEPLOYMENT_STATE_CHANGE: Final = "CodeDeploy Deployment State-change Notification"
DEPLOYMENT_ENDS: Final = ("SUCCESS", "FAILURE", "STOP")
# The registry's audit events: their item key, and the types the stream's readers pick out.
EVENT_PK: Final = "EVENT"
RUN_FINISHED: Final = "run-finished"
PROMOTED: Final = "promoted"
ROLLED_BACK: Final = "rolled-back"
RELEASED: Final = "released"
DEPLOYMENT_SUCCEEDED: Final = "deployment-succeeded"
PROMOTION_FAILED: Final = "promotion-failed"
# Events that are news (the stream filter and the enricher agree on these).
NEWS_EVENTS: Final = (RUN_FINISHED, PROMOTED, ROLLED_BACK, RELEASED)

# CloudFront sends the origin key in this header; the secret holds it under this JSON field.
ORIGIN_HEADER: Final = "x-origin-key"
ORIGIN_KEY_FIELD: Final = "key"
# The Slack rollback button's Lambda payload names who pressed it under this key.
REQUESTED_BY: Final = "by"
# The runbook, repository-relative: the project publishes no docs site, so a message names the
# file and anchor to open in the checkout or the repository browser, not a URL that may not exist.
DEFAULT_RUNBOOK: Final = "docs/runbook.md"
ALARMS_SECTION: Final = "alarms-what-they-mean-first-three-things-to-check"
# CloudWatch metrics: the serving app's, the registry metrics' (as service `pipeline`).
METRICS_NAMESPACE: Final = "IrisML"
PIPELINE_SERVICE: Final = "pipeline"


def dataset_key(name: str, version: str) -> str:
    """The object key of a dataset version."""
    return f"{DATASETS_PREFIX}{name}/{version}/{DATASET_FILE}"


# The version the data stack seeds the lake with: a file here, laid out as in the lake, byte for
# byte what `make model` trains on (tests/infra/test_data_stack.py holds them equal).
SEED_DATASET: Final = Path(__file__).resolve().parent / dataset_key("iris", "v1")


def runbook_anchor(alarm_id: str) -> str:
    """The runbook anchor of an alarm, from its construct id (`Api5xxRate` -> `api5xxrate`)."""
    # The five dead-letter alarms share one row of the runbook's table.
    if alarm_id.endswith("DeadLetters"):
        return "deadletters"
    return alarm_id.lower()


class Env:
    """Environment variable names: the constructs set them, the runtime code reads them."""

    REGISTRY_TABLE: Final = "REGISTRY_TABLE"
    REPOSITORY_NAME: Final = "REPOSITORY_NAME"
    DATASET_BUCKET: Final = "DATASET_BUCKET"
    TIME_LIMIT_MINUTES: Final = "TIME_LIMIT_MINUTES"
    # The launcher.
    LAUNCH_TEMPLATE_ID: Final = "LAUNCH_TEMPLATE_ID"
    ON_DEMAND_LAUNCH_TEMPLATE_ID: Final = "ON_DEMAND_LAUNCH_TEMPLATE_ID"
    SUBNET_IDS: Final = "SUBNET_IDS"
    INSTANCE_TYPES: Final = "INSTANCE_TYPES"
    ON_DEMAND_FALLBACK: Final = "ON_DEMAND_FALLBACK"
    # The run on the Spot instance (exported by its user data).
    REPOSITORY_URI: Final = "REPOSITORY_URI"
    BUILD_CONTEXT: Final = "BUILD_CONTEXT"
    RUNTIME_IMAGE_PARAMETER: Final = "RUNTIME_IMAGE_PARAMETER"
    DOCKER_PLATFORM: Final = "DOCKER_PLATFORM"
    MIN_ACCURACY: Final = "MIN_ACCURACY"
    ACCURACY_TOLERANCE: Final = "ACCURACY_TOLERANCE"
    # Promotion, release and rollback.
    FUNCTION_NAME: Final = "FUNCTION_NAME"
    ALIAS_NAME: Final = "ALIAS_NAME"
    LIVE_MODEL_PARAMETER: Final = "LIVE_MODEL_PARAMETER"
    CODEDEPLOY_APPLICATION: Final = "CODEDEPLOY_APPLICATION"
    DEPLOYMENT_GROUP: Final = "DEPLOYMENT_GROUP"
    DISTRIBUTION_ID: Final = "DISTRIBUTION_ID"
    # The alert enricher.
    TOPIC_ARN: Final = "TOPIC_ARN"
    DASHBOARD_NAME: Final = "DASHBOARD_NAME"
    ALARM_RUNBOOK: Final = "ALARM_RUNBOOK"  # JSON list of [alarm name, runbook anchor]
    RUNBOOK_URL: Final = "RUNBOOK_URL"
    # The origin authorizer.
    ORIGIN_SECRET_ARN: Final = "ORIGIN_SECRET_ARN"  # noqa: S105 - the variable's name, not a secret
    METRICS_NAMESPACE: Final = "METRICS_NAMESPACE"


class Stack:
    """Stack names after the prefix: `<project>-<environment>-<suffix>`."""

    DATA: Final = "data"
    PIPELINE: Final = "pipeline"
    EDGE: Final = "edge"
    API: Final = "api"
    CDN_MONITORING: Final = "cdn-monitoring"
    OBSERVABILITY: Final = "observability"


def stack_name(prefix: str, suffix: str) -> str:
    """The CloudFormation name of one of the app's stacks."""
    return f"{prefix}-{suffix}"


class Output:
    """Stack output keys: the stacks declare them, the CLI, scripts and rehearsal read them."""

    DATASET_BUCKET_NAME: Final = "DatasetBucketName"
    SEEDED_DATASET: Final = "SeededDataset"
    LAUNCHER_FUNCTION_NAME: Final = "LauncherFunctionName"
    REGISTRY_TABLE_NAME: Final = "RegistryTableName"
    REPOSITORY_URI: Final = "RepositoryUri"
    TRAINER_AMI_PARAMETER: Final = "TrainerAmiParameter"
    LIVE_MODEL_PARAMETER: Final = "LiveModelParameter"
    URL: Final = "Url"
    API_ID: Final = "ApiId"
    FUNCTION_NAME: Final = "FunctionName"
    DISTRIBUTION_ID: Final = "DistributionId"
    RUNTIME_IMAGE_PARAMETER: Final = "RuntimeImageParameter"
    CODEDEPLOY_APPLICATION: Final = "CodeDeployApplication"
    DEPLOYMENT_GROUP: Final = "DeploymentGroup"
    ALARM_TOPIC_ARN: Final = "AlarmTopicArn"
