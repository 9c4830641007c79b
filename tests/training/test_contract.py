"""The contract: the names the CDK app and the runtime code share, each spelled once."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

from lambda_image.app import environment as serving
from tests.training.fakes import training_modules_imported
from training import contract
from training.contract import Env, Output, Stack

ROOT = Path(__file__).resolve().parents[2]
# Where the shared names are spelled: the contract, and the serving image's own environment.
# The image is built from lambda_image/ alone, so its namespace is written there too and
# test_the_app_and_the_pipeline_share_a_namespace keeps the two equal.
CONTRACTS = {"training/contract.py", "lambda_image/app/environment.py"}
# Values equal to a contract name by coincidence, not by meaning: (file, value) -> why.
COINCIDENCES = {
    # CloudWatch's own dimension names (AWS/Lambda FunctionName, AWS/ApiGateway ApiId,
    # AWS/CloudFront DistributionId), not stack outputs.
    ("cdk_app/constructs/observability/serving_alarms.py", "FunctionName"),
    ("cdk_app/constructs/serving/http_api.py", "ApiId"),
    ("cdk_app/constructs/observability/cdn_alarms.py", "DistributionId"),
    ("cdk_app/constructs/observability/dashboard.py", "DistributionId"),
    # The CLI module `training.cli.datasets` is named in the command table, not a key prefix.
    ("training/cli/main.py", "datasets"),
    # Lambda's ListFunctions response field.
    ("scripts/preflight_checks.py", "FunctionName"),
}


def shared_values() -> set[str]:
    """The contract's distinctive string values: environment names, outputs, event names."""
    values = {v for k, v in vars(Env).items() if k.isupper()}
    values |= {v for k, v in vars(Output).items() if k.isupper()}
    values |= {
        contract.DATASETS_PREFIX,
        contract.DATASETS_PREFIX.rstrip("/"),
        contract.DATASET_FILE,
        contract.REGISTRY_EVENT_SOURCE,
        contract.MODEL_REGISTERED,
        contract.OBJECT_CREATED,
        contract.INSTANCE_STATE_CHANGE,
        contract.ECR_IMAGE_ACTION,
        contract.ALARM_STATE_CHANGE,
        contract.DEPLOYMENT_STATE_CHANGE,
        contract.ORIGIN_HEADER,
        contract.DEFAULT_RUNBOOK,
        contract.ALARMS_SECTION,
        contract.METRICS_NAMESPACE,
        contract.IDENTIFIER.pattern,
        contract.MODEL_VERSION.pattern,
        contract.RUN_ID.pattern,
    }
    # The serving function's variables, spelled in the image's own module.
    values |= {v for k, v in vars(serving).items() if k.isupper() and not k.startswith("DEFAULT")}
    return values


def string_literals(path: Path) -> set[str]:
    """Every string constant in a module, f-string parts included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def python_files() -> list[Path]:
    """The tracked Python files outside tests/."""
    listed = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / name for name in listed if not name.startswith("tests/")]


def test_each_shared_value_is_spelled_only_in_the_contract() -> None:
    """A name both sides use is a literal in training/contract.py and nowhere else."""
    values = shared_values()
    repeated = sorted(
        (str(path.relative_to(ROOT)), value)
        for path in python_files()
        if str(path.relative_to(ROOT)) not in CONTRACTS
        for value in string_literals(path) & values
        if (str(path.relative_to(ROOT)), value) not in COINCIDENCES
    )
    assert repeated == []


def test_the_check_catches_a_repeated_name(tmp_path: Path) -> None:
    """The scan itself: a module spelling an environment name is found."""
    module = tmp_path / "handler.py"
    module.write_text('import os\ntable = os.environ["REGISTRY_TABLE"]\n')
    assert string_literals(module) & shared_values() == {"REGISTRY_TABLE"}


def test_the_contract_imports_only_the_standard_library() -> None:
    """Every runtime imports it, the CDK app too: it must load with boto3 and numpy absent."""
    modules = training_modules_imported(
        "training.contract", blocked=("boto3", "botocore", "numpy", "sklearn", "aws_cdk")
    )
    assert modules == ["training", "training.contract"]


def test_the_cdk_app_imports_only_the_contract_from_training() -> None:
    """The app deploys the Lambda code; it reads shared names, never a handler's module."""
    imported = set()
    for folder in ("cdk_app", "stacks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("training"):
                    imported.add(node.module)
                elif isinstance(node, ast.Import):
                    imported |= {a.name for a in node.names if a.name.startswith("training")}
    assert imported <= {"training", "training.contract"}, imported


def test_the_app_and_the_pipeline_share_a_namespace() -> None:
    """The dashboard reads serving and pipeline metrics from one CloudWatch namespace."""
    assert serving.DEFAULT_NAMESPACE == contract.METRICS_NAMESPACE


def test_stack_names_follow_the_prefix() -> None:
    """The CLI and the scripts find a stack by the same name the app gives it."""
    assert contract.stack_name("iris-ml-dev", Stack.PIPELINE) == "iris-ml-dev-pipeline"
    assert contract.dataset_key("iris", "v2") == "datasets/iris/v2/data.csv"
