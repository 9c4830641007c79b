"""Fixtures for the trainer's tests: the bundled iris rows and an emulated S3."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from mypy_boto3_s3 import S3Client

from training.dataset import bundled_iris_csv


@pytest.fixture
def iris_lines() -> list[str]:
    """The bundled iris CSV as lines: [0] is the header (file line 1), [n - 1] is line n."""
    return bundled_iris_csv().decode().splitlines()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Client]:
    """An S3 client on moto, with fake credentials so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(
            Bucket="data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield client
