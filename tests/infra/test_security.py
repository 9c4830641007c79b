"""Least privilege, acknowledgements with reasons, checkov skips with reasons, no secrets.

Everything is checked on two synthesized apps: the defaults, and one with every optional
part switched on (WAF, custom domain, Slack, e-mail, retrain schedule).
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from stacks.application import BuiltApp
from tests.infra.iam_allowlist import ALLOWED, Wildcard
from tests.support import ROOT, build_app

EVERYTHING_ON: dict[str, Any] = {
    "waf_enabled": True,
    "domain_name": "iris.example.com",
    "certificate_arn": (
        "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
    ),
    "hosted_zone_id": "Z0123456789ABC",
    "slack_workspace_id": "T0123456789",
    "slack_channel_id": "C0123456789",
    "alarm_email": "oncall@example.com",
    "retrain_every_days": 3,
}
# Rules whose findings carry an id: acknowledging the bare rule would hide every future finding.
RULES_WITH_FINDING_IDS = ("AwsSolutions-IAM4", "AwsSolutions-IAM5")
CREDENTIALS = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"(?i)aws.{0,20}secret.{0,20}['\"][0-9a-zA-Z/+]{40}['\"]"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "Slack token": re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[0-9A-Z]+/B[0-9A-Z]+/\w+"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
}


@pytest.fixture(scope="session")
def full(tmp_path_factory: pytest.TempPathFactory) -> BuiltApp:
    """The app with every optional part on, synthesized (nag packs included)."""
    app = build_app(tmp_path_factory.mktemp("cdk.out-full"), **EVERYTHING_ON)
    app.app.synth()
    return app


def templates_of(*apps: BuiltApp) -> Iterator[tuple[str, dict[str, Any]]]:
    """(stack name, template) of every stack of `apps`."""
    for app in apps:
        outdir = Path(app.app.outdir)
        for path in sorted(outdir.glob("*.template.json")):
            yield path.name.removesuffix(".template.json"), json.loads(path.read_text())


def render(value: Any) -> str:
    """A policy resource as text: intrinsics become <Logical.Attr>, pseudo params <AWS::X>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        [(name, arg)] = value.items()
        if name == "Ref":
            return f"<{arg}>"
        if name == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if name == "Fn::Join":
            return str(arg[0]).join(render(part) for part in arg[1])
        if name in ("Fn::GetStackOutput", "Fn::ImportValue"):
            return "<import>"
    return json.dumps(value, sort_keys=True)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every policy document a resource carries (identity and resource policies)."""
    kind, props = resource["Type"], resource.get("Properties", {})
    if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        yield props["PolicyDocument"]
    elif kind == "AWS::IAM::Role":
        for policy in props.get("Policies", []):
            yield policy["PolicyDocument"]
    elif kind == "AWS::KMS::Key":
        yield props["KeyPolicy"]
    elif kind in ("AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"):
        yield props["PolicyDocument"]
    elif kind == "AWS::ECR::Repository" and "RepositoryPolicyText" in props:
        yield props["RepositoryPolicyText"]


def template_wildcards(
    stack: str, template: dict[str, Any]
) -> Iterator[tuple[str, frozenset[str], str]]:
    """(where, actions, resource) of every Allow statement with a '*' in an action or resource."""
    for logical_id, resource in template["Resources"].items():
        path = resource.get("Metadata", {}).get("aws:cdk:path", f"{stack}/{logical_id}")
        for document in policy_documents(resource):
            for statement in _as_list(document["Statement"]):
                if statement["Effect"] != "Allow":
                    continue  # a Deny with a wildcard only narrows
                actions = frozenset(_as_list(statement.get("Action", [])))
                for rendered in map(render, _as_list(statement.get("Resource", []))):
                    if "*" in rendered or any("*" in a for a in actions):
                        yield path, actions, rendered


def wildcards(*apps: BuiltApp) -> Iterator[tuple[str, frozenset[str], str]]:
    """Wildcard statements of every stack of `apps`."""
    for stack, template in templates_of(*apps):
        yield from template_wildcards(stack, template)


def reviewed(path: str, actions: frozenset[str], resource: str) -> Wildcard | None:
    """The allow-list entry covering this statement, if any."""
    for entry in ALLOWED:
        if (
            fnmatch.fnmatchcase(path, entry.path)
            and actions == entry.actions
            and fnmatch.fnmatchcase(resource, entry.resource)
        ):
            return entry
    return None


def test_every_wildcard_is_on_the_reviewed_list(built: BuiltApp, full: BuiltApp) -> None:
    unreviewed = [
        f"{path}: {sorted(actions)} on {resource}"
        for path, actions, resource in wildcards(built, full)
        if reviewed(path, actions, resource) is None
    ]
    assert unreviewed == [], "add to tests/infra/iam_allowlist.py with a reason:\n" + "\n".join(
        unreviewed
    )


def test_the_reviewed_list_has_no_stale_entry_and_every_entry_has_a_reason(
    built: BuiltApp, full: BuiltApp
) -> None:
    used = {reviewed(*found) for found in wildcards(built, full)}
    for entry in ALLOWED:
        assert len(entry.reason) >= 40, entry
        assert entry in used, f"no statement needs this entry any more: {entry.path}"


def test_a_new_wildcard_is_caught(tmp_path: Path) -> None:
    app = build_app(tmp_path, checks=False)  # cdk-nag would refuse this app at synth
    role = iam.Role(app.data, "Careless", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    template = Template.from_stack(app.data).to_json()
    found = [w for w in template_wildcards("data", template) if reviewed(*w) is None]
    assert found == [("iris-ml-dev-data/Careless/DefaultPolicy/Resource", frozenset({"s3:*"}), "*")]


def test_every_acknowledgement_has_a_reason_and_a_finding_id(
    built: BuiltApp, full: BuiltApp
) -> None:
    count = 0
    for stack, template in templates_of(built, full):
        for logical_id, resource in template["Resources"].items():
            for ack in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                count += 1
                where = f"{stack}/{logical_id}: {ack['id']}"
                assert len(ack.get("reason", "")) >= 30, f"{where}: the reason is missing or thin"
                if ack["id"].startswith(RULES_WITH_FINDING_IDS):
                    assert "[" in ack["id"], f"{where}: acknowledge the finding id, not the rule"
    assert count >= 20  # the walk really found them


def test_every_checkov_skip_has_a_reason(built: BuiltApp, full: BuiltApp) -> None:
    count = 0
    for stack, template in templates_of(built, full):
        for logical_id, resource in template["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                count += 1
                assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (stack, logical_id, skip)
                assert len(skip.get("comment", "")) >= 40, (stack, logical_id, skip)
    assert count >= 50


def _repository_files() -> Iterator[Path]:
    """Files git tracks (or would track) in the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in listed:
        path = ROOT / name
        if path.is_file() and path.suffix not in {".png", ".npz", ".whl"}:
            yield path


def _credentials_in(text: str) -> list[str]:
    return [kind for kind, pattern in CREDENTIALS.items() if pattern.search(text)]


def test_no_credentials_in_the_repository() -> None:
    found = {}
    for path in _repository_files():
        kinds = _credentials_in(path.read_text(errors="replace"))
        if kinds:
            found[str(path.relative_to(ROOT))] = kinds
    assert found == {}


def test_no_credentials_or_origin_key_in_the_templates(built: BuiltApp, full: BuiltApp) -> None:
    for stack, template in templates_of(built, full):
        text = json.dumps(template)
        assert _credentials_in(text) == [], stack
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::SecretsManager::Secret":
                # Generated by Secrets Manager at deploy time; never a value in the template.
                assert "SecretString" not in resource["Properties"]
                assert "GenerateSecretString" in resource["Properties"]
        for header in re.findall(
            r'"HeaderName": "x-api-key", "HeaderValue": ("[^"]*"|\{.*?\}\]\]\})', text
        ):
            assert "resolve:secretsmanager" in header, stack


def test_the_scanner_would_see_a_credential() -> None:
    leaked = '{"aws_secret_access_key": "' + "A" * 40 + '", "id": "AKIA' + "B" * 16 + '"}'
    assert set(_credentials_in(leaked)) == {"AWS access key id", "AWS secret access key"}
