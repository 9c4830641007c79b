"""AWS's rules that decide whether a real deploy succeeds, each held against the templates.

Templates, moto and stubs agree with each other by construction; these tests encode the rules
AWS documents and none of them enforce. Each docstring names the rule and where AWS states it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.application import SERVING_DIR, BuiltApp
from tests.support import ROOT, build_app

LIVE_MODEL_PARAMETER = "/iris-ml-dev/serving/live-model-version"
_DYNAMIC_SSM = re.compile(r"\{\{resolve:ssm:([^}:]+)(?::\d+)?\}\}")


def _created_parameters(template: dict[str, Any]) -> set[str]:
    """SSM parameter names a template creates: AWS::SSM::Parameter and putParameter calls."""
    names: set[str] = set()
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::SSM::Parameter" and isinstance(props.get("Name"), str):
            names.add(props["Name"])
        text = json.dumps(props)
        if resource["Type"] == "Custom::AWS" and "putParameter" in text:
            names.update(re.findall(r'\\"Name\\":\\"(/[^\\]+)\\"', text))
    return names


def _read_at_change_set(template: dict[str, Any]) -> set[str]:
    """Parameter names CloudFormation resolves when it creates the change set."""
    text = json.dumps(template.get("Resources", {}))
    names = set(_DYNAMIC_SSM.findall(text))
    for parameter in template.get("Parameters", {}).values():
        if str(parameter.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
            names.add(str(parameter["Default"]))
    # The CDK bootstrap stack creates its own version parameter, before any app stack.
    return {name for name in names if not name.startswith("/cdk-bootstrap/")}


def _templates(built: BuiltApp) -> list[tuple[str, dict[str, Any]]]:
    return [(stack.stack_name, Template.from_stack(stack).to_json()) for stack in built.stacks]


def test_no_stack_reads_a_parameter_that_it_or_a_later_stack_creates(built: BuiltApp) -> None:
    """Rule 1: `ssm` dynamic references and SSM parameter types resolve at change-set creation.

    AWS CloudFormation User Guide, "Get a plaintext value from Systems Manager Parameter Store"
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/dynamic-references-ssm.html):
    the value used is the one the change set shows, i.e. it is read when the change set is
    created, before any resource of the stack exists; "Specify existing resources at runtime
    with CloudFormation-supplied parameter types" (https://docs.aws.amazon.com/
    AWSCloudFormation/latest/UserGuide/cloudformation-supplied-parameter-types.html) likewise
    resolves SSM parameter types for each stack operation (the API's Parameter.ResolvedValue).
    So a parameter must exist before the stack that reads it: created by an earlier stack.
    """
    stacks = _templates(built)
    created_by = {name: i for i, (_, t) in enumerate(stacks) for name in _created_parameters(t)}
    for i, (stack, template) in enumerate(stacks):
        for name in _read_at_change_set(template):
            assert name in created_by, f"{stack} reads {name}, which no stack of the app creates"
            assert created_by[name] < i, (
                f"{stack} reads {name} at change-set creation, but {stacks[created_by[name]][0]} "
                "creates it (the same stack or a later one)"
            )
    # The api stack does read the live model version, created by the pipeline stack.
    names = [name for name, _ in stacks]
    assert names.index(built.pipeline.stack_name) < names.index(built.api.stack_name)
    assert LIVE_MODEL_PARAMETER in _read_at_change_set(Template.from_stack(built.api).to_json())


def test_the_model_repository_lets_lambda_pull_its_images(templates: dict[str, Template]) -> None:
    """Rule 2: Lambda pulls a same-account image through the repository policy.

    AWS Lambda Developer Guide, "Create a Lambda function using a container image", Amazon ECR
    permissions (https://docs.aws.amazon.com/lambda/latest/dg/images-create.html): for a
    same-account image the repository policy must allow `lambda.amazonaws.com`
    ecr:BatchGetImage and ecr:GetDownloadUrlForLayer, or else the caller of CreateFunction /
    UpdateFunctionCode needs ecr:SetRepositoryPolicy and ecr:GetRepositoryPolicy so Lambda can
    add them; the promoter (least privilege) has neither, so the policy is declared.
    """
    [repository] = templates["pipeline"].find_resources("AWS::ECR::Repository").values()
    statements = repository["Properties"]["RepositoryPolicyText"]["Statement"]
    [pull] = [s for s in statements if s.get("Principal") == {"Service": "lambda.amazonaws.com"}]
    assert pull["Effect"] == "Allow"
    assert sorted(pull["Action"]) == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    conditions = pull["Condition"]
    assert conditions["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    source = json.dumps(conditions["ArnLike"]["aws:SourceArn"])
    # Generated function names start with the stack name: only the api stack's functions.
    assert "function:iris-ml-dev-api-*" in source


def test_no_function_reserves_concurrency_by_default(built: BuiltApp) -> None:
    """Rule 3: new accounts have a concurrency quota of 10 and 100 must stay unreserved.

    AWS Lambda Developer Guide, "Configuring reserved concurrency"
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html): Lambda keeps
    at least 100 concurrent executions unreserved, so in an account whose quota is 10 any
    reservation fails; `make preflight` checks a configured one against the account's quota.
    """
    for _, template in _templates(built):
        for logical_id, resource in template.get("Resources", {}).items():
            if resource["Type"] == "AWS::Lambda::Function":
                props = resource["Properties"]
                assert "ReservedConcurrentExecutions" not in props, logical_id


def test_a_reservation_stays_available_as_a_setting(tmp_path: Path) -> None:
    built = build_app(tmp_path, reserved_concurrency=5, launcher_reserved_concurrency=1)
    reserved = sorted(
        resource["Properties"]["ReservedConcurrentExecutions"]
        for stack in (built.api, built.pipeline)
        for resource in Template.from_stack(stack).find_resources("AWS::Lambda::Function").values()
        if "ReservedConcurrentExecutions" in resource["Properties"]
    )
    assert reserved == [1, 5]


def test_the_cdk_cli_pushes_asset_images_as_single_manifests() -> None:
    """Rule 5: Lambda runs single-image manifests; buildx attestations make an image index.

    AWS Lambda Developer Guide, "Create a Lambda function using a container image"
    (https://docs.aws.amazon.com/lambda/latest/dg/images-create.html): Lambda supports the
    Docker image manifest V2 schema 2 and OCI image specifications, not manifest lists; and
    Docker, "Attestation storage" (https://docs.docker.com/build/metadata/attestations/): with
    attestations an image is stored as an index. The pinned CDK CLI (package-lock.json) builds
    assets with BUILDX_NO_DEFAULT_ATTESTATIONS=1; a CLI without it would push an index.
    """
    cli = (ROOT / "node_modules" / "aws-cdk" / "lib" / "index.js").read_text()
    assert 'BUILDX_NO_DEFAULT_ATTESTATIONS: "1"' in cli


def test_the_trainer_pushes_single_manifests(templates: dict[str, Template]) -> None:
    """Rule 5, trainer side: its user data turns buildx's default attestations off."""
    [template] = (
        templates["pipeline"]
        .find_resources(
            "AWS::EC2::LaunchTemplate",
            {
                "Properties": {
                    "LaunchTemplateData": {"InstanceMarketOptions": {"MarketType": "spot"}}
                }
            },
        )
        .values()
    )
    user_data = json.dumps(template["Properties"]["LaunchTemplateData"]["UserData"])
    assert "export BUILDX_NO_DEFAULT_ATTESTATIONS=1" in user_data
    assert "export RUNTIME_IMAGE_PARAMETER=/iris-ml-dev/serving/runtime-image-uri" in user_data


def _release(template: Template) -> dict[str, Any]:
    [release] = template.find_resources("Custom::ServingRelease").values()
    props: dict[str, Any] = release["Properties"]
    return props


def _version_id(template: Template) -> str:
    [version_id] = template.find_resources("AWS::Lambda::Version")
    return str(version_id)


def _rule(template: Template) -> dict[str, Any]:
    [rule] = [r for k, r in template.to_json()["Rules"].items() if k.startswith("LiveModelGuard")]
    return dict(rule)


def _assert_released_through_the_canary(before: Template, after: Template) -> None:
    """A new version, the release resource shifting `live` to it, the same model and alias."""
    assert _version_id(before) != _version_id(after)
    assert _release(after)["TargetVersion"] == {"Fn::GetAtt": [_version_id(after), "Version"]}
    for template in (before, after):
        [alias] = template.find_resources("AWS::Lambda::Alias").values()
        assert alias["Properties"]["FunctionVersion"] == "1"  # CloudFormation never moves it
        assert "CodeDeployLambdaAliasUpdate" in alias["UpdatePolicy"]
    # The model it serves is the one the registry marks live, checked before anything changes.
    assert _release(after)["ModelVersion"] == _release(before)["ModelVersion"]
    assert _rule(after) == _rule(before)


def test_a_memory_change_reaches_live_traffic_through_the_canary(
    built: BuiltApp, tmp_path: Path
) -> None:
    """Rule 6: a configuration change deployed by `cdk deploy` moves `live` by canary.

    CloudFormation never moves the alias (version 1 for ever); a changed function publishes
    a new version (AWS::Lambda::Version) and the release resource shifts `live` to it with the
    promotion's CodeDeploy group (docs/promotion.md).
    """
    again = build_app(tmp_path, lambda_memory_mb=2048)
    _assert_released_through_the_canary(
        Template.from_stack(built.api), Template.from_stack(again.api)
    )


def test_a_serving_code_change_reaches_live_traffic_through_the_canary(
    built: BuiltApp, tmp_path: Path
) -> None:
    """Rule 6: a change to lambda_image/app/ does the same, and keeps the live model."""
    changed = tmp_path / "lambda_image"
    shutil.copytree(SERVING_DIR, changed, ignore=shutil.ignore_patterns("__pycache__"))
    main = changed / "app" / "main.py"
    main.write_text(main.read_text() + "\n# a change\n")
    again = build_app(tmp_path / "out", serving_dir=changed)
    before, after = Template.from_stack(built.api), Template.from_stack(again.api)
    _assert_released_through_the_canary(before, after)
    assert _release(before)["ImageUri"] != _release(after)["ImageUri"]


def test_a_deploy_whose_model_is_not_live_is_refused_before_anything_changes(
    templates: dict[str, Template],
) -> None:
    """Rule 6: a plain `cdk deploy` never swaps the live model for the laptop's.

    AWS CloudFormation User Guide, "Rules" (https://docs.aws.amazon.com/AWSCloudFormation/
    latest/UserGuide/rules-section-structure.html): rules are evaluated when a change set is
    created; a failed assertion stops the create or update with its AssertDescription, before
    any resource changes. The rule compares the live-model SSM parameter (an SSM parameter
    type, resolved for each stack operation: cloudformation-supplied-parameter-types.html) with
    the model baked into the image asset; the CDK's own CheckBootstrapVersion rule relies on
    the same pair to check the bootstrap version at every deploy.
    """
    api = templates["api"].to_json()
    rule = _rule(templates["api"])
    [assertion] = rule["Assertions"]
    parameter, baked = assertion["Assert"]["Fn::Equals"]
    definition = api["Parameters"][parameter["Ref"]]
    assert definition == {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": LIVE_MODEL_PARAMETER,
        "Description": definition["Description"],
    }
    metadata = json.loads((SERVING_DIR / "model" / "metadata.json").read_text())
    assert baked == metadata["model_version"]
    assert "make deploy" in assertion["AssertDescription"]
    # The pipeline stack seeds it once with the first deploy's model and leaves it to promotion.
    seed = [
        r
        for r in templates["pipeline"].find_resources("Custom::AWS").values()
        if LIVE_MODEL_PARAMETER in json.dumps(r)
    ]
    [pointer] = seed
    create = json.dumps(pointer["Properties"]["Create"])
    assert '\\"Overwrite\\":false' in create
    assert "ParameterAlreadyExists" in create
    assert baked in create


@pytest.mark.parametrize("architecture", ["arm64", "x86_64"])
def test_the_serving_image_is_built_for_the_functions_cpu(
    architecture: str, tmp_path: Path
) -> None:
    """Rule 9: the asset's platform matches the function's architecture, for both settings.

    A Lambda function runs images of its own instruction set only (AWS Lambda Developer Guide,
    "Lambda instruction set architectures", https://docs.aws.amazon.com/lambda/latest/dg/
    foundation-arch.html); through jsii `Architecture.ARM_64 == Architecture.ARM_64` is False,
    which once built linux/amd64 images for arm64 functions.
    """
    extra: dict[str, Any] = (
        {} if architecture == "arm64" else {"trainer_instance_types": "c7i.large"}
    )
    built = build_app(tmp_path, checks=False, architecture=architecture, **extra)
    built.app.synth()
    manifest = json.loads((tmp_path / f"{built.api.stack_name}.assets.json").read_text())
    [image] = manifest["dockerImages"].values()
    [fn] = (
        r
        for r in Template.from_stack(built.api).find_resources("AWS::Lambda::Function").values()
        if r["Properties"].get("PackageType") == "Image"
    )
    platform = {"arm64": "linux/arm64", "x86_64": "linux/amd64"}[architecture]
    assert image["source"]["platform"] == platform
    assert fn["Properties"]["Architectures"] == [architecture]


def test_no_jsii_object_is_compared_with_equals() -> None:
    """Rule 9: jsii hands out a new proxy per access, so `==` on its enums is always False."""
    member = r"\b(?:lambda_|ecr_assets|ec2|cdk)\.[A-Z]\w*\.[A-Z][A-Z_0-9]*\b(?!\.)"
    pattern = re.compile(rf"(?:[!=]=\s*{member})|(?:{member}\s*[!=]=)")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("cdk_app", "stacks")
        for path in (ROOT / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == []
