"""scripts/diagram.py: the picture is drawn from the synthesized app and says when it is stale."""

from __future__ import annotations

import copy
import json
import re
import struct
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sns as sns

from scripts import architecture, assembly, diagram
from stacks.application import BuiltApp, build
from tests.support import CLI_CONTEXT, TEST_ACCOUNT, cdk_json_context

REQUEST = [
    ("User", "CloudFront"),
    ("CloudFront", "API Gateway (HTTP API)"),
    ("API Gateway (HTTP API)", "Serving Lambda (container)"),
]
TRAINING = [
    ("Data lake (S3)", "Launcher Lambda"),
    ("Launcher Lambda", "Spot trainer"),
    ("Spot trainer", "ECR models"),
    ("ECR models", "Registrar Lambda"),
    ("Registrar Lambda", "Registry (DynamoDB)"),
    ("Registry (DynamoDB)", "Promoter / Watcher"),
    ("Promoter / Watcher", "Serving Lambda (container)"),
]


@pytest.fixture(scope="session")
def stacks(built: BuiltApp) -> tuple[assembly.StackTemplate, ...]:
    return assembly.load_assembly(Path(built.app.outdir))


@pytest.fixture(scope="session")
def model(stacks: tuple[assembly.StackTemplate, ...]) -> architecture.Model:
    return architecture.build_model(stacks)


def hops(model: architecture.Model, kind: str) -> list[tuple[str, str]]:
    return [(model.node(e.source).label, model.node(e.target).label) for e in model.path(kind)]


def edge(model: architecture.Model, source: str, target: str) -> architecture.Edge:
    labels = {n.ident: n.label for n in model.nodes}
    found = [e for e in model.edges if (labels[e.source], labels[e.target]) == (source, target)]
    assert len(found) == 1, f"{source} -> {target}: {found}"
    return found[0]


def test_the_committed_picture_is_current(model: architecture.Model) -> None:
    # Fails when the app's structure changed and the picture was not redrawn.
    drawn = diagram.read_fingerprint(diagram.OUTPUT)
    assert drawn == model.fingerprint(), "docs/architecture.png is stale: run make diagram"


def test_check_passes_on_the_committed_picture(
    built: BuiltApp, capsys: pytest.CaptureFixture[str]
) -> None:
    assert diagram.main(["--assembly", built.app.outdir, "--check"]) == 0
    assert "docs/architecture.png is current" in capsys.readouterr().out


def test_check_fails_on_a_stale_picture_then_drawing_fixes_it(
    built: BuiltApp, model: architecture.Model, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = tmp_path / "architecture.png"
    other = architecture.Model(model.stacks, model.nodes[1:], ())
    diagram.render(other, picture, title="another app")
    args = ["--assembly", built.app.outdir, "--output", str(picture)]

    assert diagram.main([*args, "--check"]) == 1
    assert "architecture.png is stale: run make diagram" in capsys.readouterr().err

    assert diagram.main(args) == 0
    assert diagram.main([*args, "--check"]) == 0


def test_a_missing_picture_is_stale(built: BuiltApp, tmp_path: Path) -> None:
    args = ["--assembly", built.app.outdir, "--output", str(tmp_path / "none.png"), "--check"]
    assert diagram.main(args) == 1


def test_request_path_user_cloudfront_api_gateway_lambda(model: architecture.Model) -> None:
    assert hops(model, "request") == REQUEST
    # Only the user's hop is not in a template; the others are references in it.
    assert [e.runtime for e in model.path("request")] == [True, False, False]


def test_training_path_from_the_data_lake_to_the_serving_lambda(model: architecture.Model) -> None:
    assert hops(model, "training") == TRAINING
    assert [e.step for e in model.path("training")] == list(range(1, 8))
    # Every hop is backed by a rule or a reference: e.g. T3's IAM grant to push to ECR.
    assert not any(e.runtime for e in model.path("training"))


def test_edges_come_from_rules_references_and_parameters(model: architecture.Model) -> None:
    assert edge(model, "Spot trainer", "Monitor Lambda").label == "EC2 Instance State-change"
    assert edge(model, "Every 10 minutes", "Monitor Lambda").kind == "event"
    assert edge(model, "ECR models", "Alarms (SNS)").label == "ECR Image Scan"
    assert edge(model, "Registrar Lambda", "Promoter / Watcher").label == "Model Registered"
    assert edge(model, "Registry (DynamoDB)", "Registry metrics Lambda").label == "stream"
    assert edge(model, "Image Builder AMI", "Spot trainer").label == "SSM parameter"
    assert edge(model, "Canary guard alarms \u00d73", "CodeDeploy canary").kind == "notify"
    assert edge(model, "Budget", "Alarms (SNS)").kind == "notify"


def test_nodes_are_the_meaningful_resources_with_human_names(model: architecture.Model) -> None:
    labels = {n.label for n in model.nodes}
    assert {
        "CloudFront",
        "API Gateway (HTTP API)",
        "Serving Lambda (container)",
        "Data lake (S3)",
        "Spot trainer",
        "Image Builder AMI",
        "ECR models",
        "Registry (DynamoDB)",
        "Registrar Lambda",
        "Launcher Lambda",
        "Promoter / Watcher",
        "Alarms (SNS)",
        "Dashboard",
        "Budget",
        "CodeDeploy canary",
        "VPC, no NAT",
    } <= labels
    hidden = re.compile(r"Role|Policy|Log|Permission|Metadata|Provider|AWS679|Queue|Key\b")
    assert [label for label in labels if hidden.search(label)] == []
    assert not any("Slack" in label for label in labels), "no Slack ids in cdk.json"
    assert {s.role for s in model.stacks} == {
        "data",
        "pipeline",
        "api",
        "cdn-monitoring",
        "observability",
    }


def test_alarm_boxes_count_their_alarms(
    model: architecture.Model, stacks: tuple[assembly.StackTemplate, ...]
) -> None:
    alarms = sum(1 for s in stacks for r in s.resources.values() if r["Type"].endswith("::Alarm"))
    counted = sum(n.members for n in model.nodes if n.kind == "alarm")
    assert counted == alarms
    assert all(n.label.endswith(f"\u00d7{n.members}") for n in model.nodes if n.kind == "alarm")


def test_slack_is_drawn_when_configured(stacks: tuple[assembly.StackTemplate, ...]) -> None:
    changed = [copy.deepcopy(dict(s.template)) for s in stacks]
    observability = next(t for t, s in zip(changed, stacks, strict=True) if "observ" in s.name)
    observability["Resources"]["Slack"] = {
        "Type": "AWS::Chatbot::SlackChannelConfiguration",
        "Properties": {"SnsTopicArns": [{"Ref": "AlarmsTopic3A2DFEBA"}]},
        "Metadata": {"aws:cdk:path": "iris-ml-dev-observability/Slack/Resource"},
    }
    with_slack = architecture.build_model(
        [assembly.StackTemplate(s.name, s.region, t) for s, t in zip(stacks, changed, strict=True)]
    )
    assert edge(with_slack, "Alarms (SNS)", "Slack (Chatbot)").kind == "notify"


def test_fingerprint_ignores_asset_hashes(stacks: tuple[assembly.StackTemplate, ...]) -> None:
    # Every asset hash (code zips, the serving image, the seed) replaced by another.
    text = json.dumps([dict(s.template) for s in stacks])
    hashes = set(re.findall(r"\b[0-9a-f]{64}\b", text))
    assert len(hashes) >= 3
    for old in hashes:
        text = text.replace(old, old[::-1])
    rehashed = [
        assembly.StackTemplate(s.name, s.region, t)
        for s, t in zip(stacks, json.loads(text), strict=True)
    ]
    assert (
        architecture.build_model(rehashed).fingerprint()
        == architecture.build_model(stacks).fingerprint()
    )


def test_fingerprint_changes_when_a_stack_gains_a_shown_resource(
    model: architecture.Model, tmp_path: Path
) -> None:
    app = cdk.App(context={**CLI_CONTEXT, **cdk_json_context()}, outdir=str(tmp_path))
    # No nag checks: the extra topic is bare on purpose.
    result = build(app, account=TEST_ACCOUNT, checks=False)
    sns.Topic(result.data, "Uploads")
    app.synth()
    grown = architecture.build_model(assembly.load_assembly(tmp_path))

    assert grown.fingerprint() != model.fingerprint()
    added = {(n.stack, n.label) for n in grown.nodes} - {(n.stack, n.label) for n in model.nodes}
    assert added == {("iris-ml-dev-data", "Uploads (SNS)")}


def test_picture_is_deterministic_and_carries_the_fingerprint(
    model: architecture.Model, tmp_path: Path
) -> None:
    """Graphviz draws the same bytes for the same model; the PNG names the model it shows."""
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    diagram.render(model, first, title="iris-ml-dev: architecture")
    diagram.render(model, second, title="iris-ml-dev: architecture")
    assert first.read_bytes() == second.read_bytes()
    width, height = struct.unpack(">II", first.read_bytes()[16:24])  # the IHDR chunk
    assert 1200 <= width <= 3200
    assert 1200 <= height <= 3200
    assert diagram.read_fingerprint(first) == model.fingerprint()


def test_the_paths_run_top_to_bottom_and_no_boxes_overlap(model: architecture.Model) -> None:
    """dot's own layout: each path hop goes down the page, and no two boxes share any area."""
    where = diagram.boxes(model, title="iris-ml-dev: architecture")
    assert set(where) == {n.ident for n in model.nodes}

    def top(ident: str) -> float:
        return where[ident][3]

    for kind in ("request", "training"):
        hops = model.path(kind)
        tops = [top(hops[0].source)] + [top(e.target) for e in hops]
        assert tops == sorted(tops, reverse=True), kind  # dot's y grows up the page
    boxes = list(where.values())
    overlaps = [
        (a, b)
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
    ]
    assert overlaps == []


def test_a_bad_config_value_stops_synthesis_with_its_rule(tmp_path: Path) -> None:
    with pytest.raises(assembly.SynthError, match="'waf_enabled'"):
        assembly.synthesize(tmp_path, {"waf_enabled": "maybe"})


def test_context_arguments_are_key_value_pairs() -> None:
    assert assembly.parse_context(["waf_enabled=true", "x= a=b"]) == {
        "waf_enabled": "true",
        "x": " a=b",
    }
    with pytest.raises(ValueError, match="expected key=value"):
        assembly.parse_context(["waf_enabled"])
