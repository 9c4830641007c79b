"""Operator commands (upload, retrain, registry) and the instance's entry point (pipeline)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from mypy_boto3_s3 import S3Client

import training.cli.pipeline as pipeline_command
import training.instance.pipeline as pipeline_module
from tests.training.fakes import TABLE, FakeImds, RecordingRunner, StepClock
from training.cli.main import main
from training.exit_codes import ExitCode
from training.instance.docker import DockerCli
from training.instance.settings import PipelineSettings, Services
from training.ml.dataset import bundled_iris_csv
from training.registry import Registry

KEY = "datasets/iris/v2/data.csv"
PREFIX = "iris-ml-dev"


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "iris.csv"
    path.write_bytes(bundled_iris_csv())
    return path


def deploy_outputs(outputs: dict[str, dict[str, str]]) -> None:
    """Stacks with these outputs on moto's CloudFormation, as `cdk deploy` leaves them."""
    cloudformation = boto3.client("cloudformation")
    for stack, values in outputs.items():
        template = {
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {key: {"Value": value} for key, value in values.items()},
        }
        cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))


# upload


def test_upload_validates_then_writes_a_new_immutable_version(
    s3: S3Client, csv_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["upload", "--dataset", str(csv_file), "--dataset-version", "v2", "--bucket", "data"]
    assert main(args) == 0
    out = capsys.readouterr().out
    data = bundled_iris_csv()
    assert out.startswith(
        f"uploaded s3://data/{KEY} (150 rows, sha256 {hashlib.sha256(data).hexdigest()}"
    )
    stored = s3.get_object(Bucket="data", Key=KEY, ChecksumMode="ENABLED")
    assert stored["Body"].read() == data
    assert stored["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert stored["ContentType"] == "text/csv"

    # The same version again is refused, and the stored object is unchanged.
    csv_file.write_bytes(data.replace(b"5.1,3.5", b"5.2,3.5", 1))
    assert main(args) == 7
    assert "already exists: dataset versions are immutable" in capsys.readouterr().err
    versions = s3.list_object_versions(Bucket="data", Prefix=KEY)["Versions"]
    assert len(versions) == 1


def test_upload_refuses_an_invalid_file_and_uploads_nothing(
    s3: S3Client, csv_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file.write_text("sepal_length,species\n1.0,setosa\n")
    args = ["upload", "--dataset", str(csv_file), "--dataset-version", "v2", "--bucket", "data"]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "missing column: petal_width" in err
    assert err.rstrip().endswith("nothing uploaded")
    assert "Contents" not in s3.list_objects_v2(Bucket="data")


def test_upload_finds_the_bucket_in_the_data_stack(
    s3: S3Client, csv_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy_outputs({f"{PREFIX}-data": {"DatasetBucketName": "data"}})
    assert (
        main(
            [
                "upload",
                "--dataset",
                str(csv_file),
                "--dataset-name",
                "flowers",
                "--dataset-version",
                "v9",
            ]
        )
        == 0
    )
    assert s3.head_object(Bucket="data", Key="datasets/flowers/v9/data.csv")["ContentLength"] > 0


def test_upload_without_a_deployed_stack_says_so(
    s3: S3Client, csv_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["upload", "--dataset", str(csv_file), "--dataset-version", "v2"]) == 1
    assert "cannot read stack iris-ml-dev-data" in capsys.readouterr().err


# retrain


@pytest.fixture
def launcher(s3: S3Client, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], Stubber]:
    """Deployed stacks on moto and a stubbed launcher function (moto's Lambda needs Docker)."""
    deploy_outputs(
        {
            f"{PREFIX}-data": {"DatasetBucketName": "data"},
            f"{PREFIX}-pipeline": {"LauncherFunctionName": "launcher-fn"},
        }
    )
    lambda_client = boto3.client("lambda")
    stubber = Stubber(lambda_client)
    real_client: Any = boto3.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        return lambda_client if service == "lambda" else real_client(service, *args, **kwargs)

    monkeypatch.setattr(boto3, "client", client)

    def answer(payload: dict[str, Any], *, error: bool = False) -> Stubber:
        body = json.dumps(payload).encode()
        response: dict[str, Any] = {
            "StatusCode": 200,
            "Payload": StreamingBody(io.BytesIO(body), len(body)),
        }
        if error:
            response["FunctionError"] = "Unhandled"
        request = {
            "FunctionName": "launcher-fn",
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(
                {
                    "dataset_uri": f"s3://data/{KEY}",
                    "requested_by": "arn:aws:sts::123456789012:user/moto",
                    "reason": "fresh flowers",
                }
            ).encode(),
        }
        stubber.add_response("invoke", response, request)
        stubber.activate()
        return stubber

    return answer


def test_retrain_invokes_the_launcher_as_the_caller(
    s3: S3Client, launcher: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket="data", Key=KEY, Body=bundled_iris_csv())
    stubber = launcher(
        {"run_id": "20261127T140501Z-1a2b3c4d", "instance_id": "i-0abc", "market": "spot"}
    )
    assert main(["retrain", "--dataset-version", "v2", "--reason", "fresh flowers"]) == 0
    stubber.assert_no_pending_responses()
    assert capsys.readouterr().out.startswith(
        "run 20261127T140501Z-1a2b3c4d started on i-0abc (spot)"
    )


def test_retrain_reports_a_launch_that_failed(
    s3: S3Client, launcher: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket="data", Key=KEY, Body=bundled_iris_csv())
    launcher(
        {
            "run_id": "20261127T140501Z-1a2b3c4d",
            "status": "failed",
            "reason": "no capacity for any choice",
        }
    )
    assert main(["retrain", "--dataset-version", "v2", "--reason", "fresh flowers"]) == 1
    assert capsys.readouterr().err == (
        "run 20261127T140501Z-1a2b3c4d failed: no capacity for any choice\n"
    )


def test_retrain_reports_a_launcher_crash(
    s3: S3Client, launcher: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket="data", Key=KEY, Body=bundled_iris_csv())
    launcher({"errorMessage": "Task timed out", "errorType": "Timeout"}, error=True)
    assert main(["retrain", "--dataset-version", "v2", "--reason", "fresh flowers"]) == 1
    assert "the launcher failed: Task timed out" in capsys.readouterr().err


def test_retrain_of_a_version_never_uploaded_asks_for_the_upload(
    launcher: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["retrain", "--dataset-version", "v2"]) == 3
    assert "upload it first with `python -m training upload" in capsys.readouterr().err


# registry


def test_registry_prints_pointers_models_and_runs(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.start_run(
        "20261127T140501Z-1a2b3c4d",
        dataset_uri=f"s3://data/{KEY}",
        dataset_name="iris",
        dataset_version="v2",
        trigger="manual",
    )
    registry.finish_run(
        "20261127T140501Z-1a2b3c4d",
        "rejected",
        "refused by the quality gate:\naccuracy 0.8 is below the minimum 0.9",
        details={"model_version": "0a1b2c3d4e5f", "metrics": {"accuracy": 0.8}},
    )
    deploy_outputs({f"{PREFIX}-pipeline": {"RegistryTableName": TABLE}})
    assert main(["registry", "--runs", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("live:     none\nrollback: none\n\nmodels (0):\n  (none)\n")
    assert "runs (newest 1):" in out
    row = next(line for line in out.splitlines() if "20261127T140501Z-1a2b3c4d" in line)
    assert row.split()[:6] == [
        "20261127T140501Z-1a2b3c4d",
        "rejected",
        "iris/v2",
        "-",
        "0a1b2c3d4e5f",
        "0.8000",
    ]
    assert row.endswith("refused by the quality gate: accuracy 0.8 is below the minimum 0.9")


# pipeline (the instance's entry point)


def test_pipeline_reads_its_run_from_the_instance_tags_and_shuts_down_only_when_asked(
    settings: PipelineSettings,
    registry: Registry,
    s3: S3Client,
    ecr: Any,
    clock: StepClock,
    runtime: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3.put_object(Bucket="data", Key=KEY, Body=bundled_iris_csv(), ChecksumAlgorithm="SHA256")
    for name, value in {
        "REGISTRY_TABLE": TABLE,
        "REPOSITORY_URI": settings.repository_uri,
        "BUILD_CONTEXT": str(settings.build_context),
        "RUNTIME_IMAGE_PARAMETER": settings.runtime_image_parameter,
        "AWS_REGION": "eu-west-1",
        "MIN_ACCURACY": "0.9",
        "ACCURACY_TOLERANCE": "0.02",
        "TIME_LIMIT_MINUTES": "60",
        "DOCKER_PLATFORM": "linux/arm64",
    }.items():
        monkeypatch.setenv(name, value)
    shutdowns: list[str] = []

    class Host:
        def shutdown(self) -> None:
            shutdowns.append("now")

    def connect(given: PipelineSettings) -> Services:
        assert given == settings
        imds = FakeImds(
            tags={"RunId": "20261127T140501Z-1a2b3c4d", "DatasetUri": f"s3://data/{KEY}"}
        )
        docker = DockerCli(run=RecordingRunner(registry=ecr))
        return Services(registry, s3, ecr, boto3.client("ssm"), docker, imds, Host(), clock)

    monkeypatch.setattr(pipeline_command, "connect_services", connect)

    assert main(["pipeline", "--from-instance-tags"]) == 0
    assert capsys.readouterr().out.startswith("run 20261127T140501Z-1a2b3c4d: succeeded\n")
    assert shutdowns == []
    # A second run of the same (now finished) run is refused, and --shutdown powers off anyway.
    assert main(["pipeline", "--from-instance-tags", "--shutdown"]) == 1
    assert shutdowns == ["now"]


def test_the_pipeline_exits_with_the_shared_table() -> None:
    """Each run status ends the process with its code from training.exit_codes, the one table."""
    assert pipeline_module.EXIT_CODES == {
        "succeeded": ExitCode.OK,
        "failed": ExitCode.FAILED,
        "rejected": ExitCode.REFUSED,
        "interrupted": ExitCode.INTERRUPTED,
        "timed_out": ExitCode.TIMED_OUT,
    }
    assert [int(code) for code in pipeline_module.EXIT_CODES.values()] == [0, 1, 4, 5, 6]


def test_pipeline_without_its_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REGISTRY_TABLE", raising=False)
    monkeypatch.delenv("REPOSITORY_URI", raising=False)
    assert main(["pipeline", "--dataset", f"s3://data/{KEY}"]) == 2
    assert "REPOSITORY_URI is not set" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "one of the arguments --dataset --from-instance-tags is required"),
        (["--dataset", "s3://data/iris.csv"], "is not a dataset version"),
        (["--dataset", f"s3://data/{KEY}", "--run-id", "42"], "'42' is not a run id"),
    ],
)
def test_pipeline_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pipeline", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("pipeline", ["--dataset", "--from-instance-tags", "--run-id", "--shutdown"]),
        (
            "upload",
            [
                "--dataset",
                "--dataset-name",
                "--dataset-version",
                "--bucket",
                "--stack-prefix",
                "--region",
                "--min-rows-per-class",
            ],
        ),
        (
            "retrain",
            ["--dataset-version", "--dataset-name", "--stack-prefix", "--region", "--reason"],
        ),
        ("registry", ["--stack-prefix", "--region", "--table", "--runs"]),
    ],
)
def test_help_explains_every_option_and_exit_code(
    command: str, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m training {command}")
    listed = [line.split()[0].rstrip(",") for line in out.splitlines() if line.startswith("  --")]
    assert listed == options
    assert "exit codes:" in out
