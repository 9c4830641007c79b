"""The synthesized app: its stacks, tags, protection, and cdk-nag wired to fail synth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from stacks.application import BuiltApp, ModelArtifactMissingError
from tests.support import ROOT, build_app, cdk_json_context


def test_stacks_with_names_from_config(built: BuiltApp) -> None:
    # The four app-region stacks, plus CloudFront's alarms in us-east-1 (where its metrics are).
    assert [(s.stack_name, s.region) for s in built.stacks] == [
        ("iris-ml-dev-data", "eu-west-1"),
        ("iris-ml-dev-pipeline", "eu-west-1"),
        ("iris-ml-dev-api", "eu-west-1"),
        ("iris-ml-dev-cdn-monitoring", "us-east-1"),
        ("iris-ml-dev-observability", "eu-west-1"),
    ]


def test_every_stack_writes_a_template(built: BuiltApp) -> None:
    outdir = Path(built.app.outdir)
    for stack in built.stacks:
        template = json.loads((outdir / stack.template_file).read_text())
        assert template["Description"].startswith("Iris ML ")


def test_nag_packs_report_no_finding(built: BuiltApp) -> None:
    assert [p.read_pack_name for p in built.nag_packs] == ["AwsSolutions", "Serverless"]
    for pack in built.nag_packs:
        report = pack.validate_scope(built.app)
        findings = [f"{v.rule_name}: {v.description}" for v in report.violations]
        assert findings == [], f"{pack.read_pack_name} findings: {findings}"


def test_a_finding_fails_synth(tmp_path: Path) -> None:
    result = build_app(tmp_path)
    s3.Bucket(result.data, "InsecureBucket")  # no SSL rule, no access logs
    with pytest.raises(RuntimeError, match="ValidationFailed") as excinfo:
        result.app.synth()
    assert "AwsSolutions-S10" in str(excinfo.value)


def test_stacks_are_tagged_for_cost_allocation(built: BuiltApp) -> None:
    assembly = built.app.synth()
    for stack in built.stacks:
        tags = assembly.get_stack_artifact(stack.artifact_id).tags
        assert tags == {"project": "iris-ml", "environment": "dev"}


def test_production_stacks_have_termination_protection(tmp_path: Path) -> None:
    prod = build_app(tmp_path, environment="prod")
    assert all(s.termination_protection for s in prod.stacks)
    assert prod.data.stack_name == "iris-ml-prod-data"
    assert prod.app.node.try_get_context("environment") == "prod"


def test_cdk_json_carries_recommended_feature_flags() -> None:
    context = cdk_json_context()
    assert context["@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"] is True
    assert context["@aws-cdk/aws-lambda:recognizeLayerVersion"] is True
    assert sum(1 for key in context if key.startswith("@aws-cdk")) >= 80


def test_entry_point_stops_with_one_line_naming_the_bad_key() -> None:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"log_retention_days": -5})}
    proc = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("config error: context key 'log_retention_days': -5")


def test_synth_is_deterministic(tmp_path: Path, built: BuiltApp) -> None:
    again = build_app(tmp_path)
    for first, second in zip(built.stacks, again.stacks, strict=True):
        assert Template.from_stack(first).to_json() == Template.from_stack(second).to_json()


def test_synth_refuses_a_serving_image_without_a_model(tmp_path: Path) -> None:
    serving = tmp_path / "lambda_image"
    (serving / "model").mkdir(parents=True)
    (serving / "model" / "metadata.json").write_text("{}")
    with pytest.raises(ModelArtifactMissingError, match=r"model/model\.npz.*run `make model`"):
        build_app(tmp_path / "out", serving_dir=serving)
