"""The stand-in rewriting on small templates: what is replaced, what is left alone."""

import json
from pathlib import Path
from typing import Any

import pytest

from rehearsal import standins


def template(**resources: Any) -> dict[str, Any]:
    return {"Resources": resources, "Outputs": {}}


def test_supported_resource_is_left_alone() -> None:
    bucket = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Ref": "AWS::NoValue"}}}
    rewritten, changes = standins.apply(template(Bucket=bucket))
    assert changes == []
    assert rewritten["Resources"]["Bucket"] == bucket


def test_codedeploy_becomes_placeholder_and_its_refs_literals() -> None:
    tpl = template(
        App={"Type": "AWS::CodeDeploy::Application"},
        Group={
            "Type": "AWS::CodeDeploy::DeploymentGroup",
            "Properties": {"ApplicationName": {"Ref": "App"}},
        },
        Alias={
            "Type": "AWS::Lambda::Alias",
            "Properties": {"Name": "live"},
            "UpdatePolicy": {"CodeDeployLambdaAliasUpdate": {"ApplicationName": {"Ref": "App"}}},
        },
        Fn={
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Environment": {
                    "Variables": {
                        "GROUP": {"Ref": "Group"},
                        "ARN": {
                            "Fn::Sub": "arn:aws:codedeploy:r:a:deploymentgroup:${App}/${Group}"
                        },
                        "ATT": {"Fn::GetAtt": ["Group", "Arn"]},
                    }
                },
            },
        },
    )
    rewritten, changes = standins.apply(tpl)
    resources = rewritten["Resources"]
    assert {lid for lid, _, _ in changes} == {"App", "Group"}
    assert resources["App"] == {"Type": standins.PLACEHOLDER}
    assert "UpdatePolicy" not in resources["Alias"]
    env = resources["Fn"]["Properties"]["Environment"]["Variables"]
    assert env["GROUP"] == "rehearsal-standin-Group"
    assert env["ARN"] == {
        "Fn::Sub": "arn:aws:codedeploy:r:a:deploymentgroup:"
        "rehearsal-standin-App/rehearsal-standin-Group"
    }
    assert env["ATT"] == "rehearsal-standin-Group-Arn"


def test_image_builder_image_becomes_the_parameter_its_distribution_writes() -> None:
    tpl = template(
        Dist={
            "Type": "AWS::ImageBuilder::DistributionConfiguration",
            "Properties": {
                "Distributions": [{"SsmParameterConfigurations": [{"ParameterName": "/p/ami"}]}]
            },
        },
        Image={
            "Type": "AWS::ImageBuilder::Image",
            "Properties": {"DistributionConfigurationArn": {"Fn::GetAtt": ["Dist", "Arn"]}},
        },
    )
    rewritten, _ = standins.apply(tpl)
    assert rewritten["Resources"]["Image"] == {
        "Type": "AWS::SSM::Parameter",
        "Properties": {"Name": "/p/ami", "Type": "String", "Value": standins.STANDIN_AMI},
    }
    assert rewritten["Resources"]["Dist"] == {"Type": standins.PLACEHOLDER}


def test_only_metric_math_alarms_are_replaced() -> None:
    single = {"Type": "AWS::CloudWatch::Alarm", "Properties": {"MetricName": "Errors"}}
    math = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {"Metrics": [{"Id": "e", "Expression": "a + b"}, {"Id": "a"}]},
    }
    rewritten, changes = standins.apply(template(Single=single, Math=math))
    assert [lid for lid, _, _ in changes] == ["Math"]
    assert rewritten["Resources"]["Single"] == single


def test_image_function_becomes_zip_function_with_same_role_and_environment() -> None:
    fn = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"ImageUri": "x.dkr.ecr/repo:tag"},
            "PackageType": "Image",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Environment": {"Variables": {"A": "1"}},
        },
    }
    zip_fn = {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Code": {"ZipFile": "x"}, "Handler": "a.b"},
    }
    rewritten, changes = standins.apply(template(Serving=fn, Other=zip_fn))
    assert [lid for lid, _, _ in changes] == ["Serving"]
    props = rewritten["Resources"]["Serving"]["Properties"]
    assert "PackageType" not in props
    assert props["Code"] == {"ZipFile": standins.STANDIN_HANDLER}
    assert props["Role"] == {"Fn::GetAtt": ["Role", "Arn"]}
    assert props["Environment"] == {"Variables": {"A": "1"}}
    assert rewritten["Resources"]["Other"] == zip_fn


def test_a_policy_naming_a_secret_by_ref_names_its_arn_pattern_instead() -> None:
    """CloudFormation: Ref of AWS::SecretsManager::Secret is the ARN; MiniStack's is the name."""
    other = {"Action": "logs:PutLogEvents", "Effect": "Allow", "Resource": {"Ref": "Logs"}}
    secret = {
        "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
        "Effect": "Allow",
        "Resource": {"Ref": "Secret"},
    }
    policy = {
        "Type": "AWS::IAM::Policy",
        "Properties": {"PolicyDocument": {"Statement": [other, secret]}},
    }
    plain = {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [other]}}}
    rewritten, changes = standins.apply(template(Reader=policy, Writer=plain))
    assert [lid for lid, _, _ in changes] == ["Reader"]
    statements = rewritten["Resources"]["Reader"]["Properties"]["PolicyDocument"]["Statement"]
    assert statements[0] == other
    assert statements[1]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
        ":secret:${Secret}-*"
    }
    assert rewritten["Resources"]["Writer"] == plain


def test_cross_region_outputs_resolved_same_region_kept() -> None:
    tpl = template(
        Policy={
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "Far": {
                    "Fn::GetStackOutput": {
                        "StackName": "s",
                        "Region": "us-east-1",
                        "OutputName": "O",
                    }
                },
                "Near": {
                    "Fn::GetStackOutput": {
                        "StackName": "t",
                        "Region": "eu-west-1",
                        "OutputName": "P",
                    }
                },
            },
        }
    )
    assert list(standins.cross_region_outputs(tpl, "eu-west-1")) == [("s", "us-east-1", "O")]
    resolved = standins.resolve_cross_region(tpl, "eu-west-1", {("s", "us-east-1", "O"): "arn:x"})
    props = resolved["Resources"]["Policy"]["Properties"]
    assert props["Far"] == "arn:x"
    assert props["Near"] == tpl["Resources"]["Policy"]["Properties"]["Near"]


def test_every_standin_has_a_reason() -> None:
    for standin in (*standins.STANDINS, standins.CROSS_REGION, standins.IMAGE_ASSET):
        assert standin.name
        assert len(standin.reason) > 20


def write_assembly(folder: Path, resources: dict[str, Any]) -> None:
    folder.mkdir()
    (folder / "app.template.json").write_text(json.dumps(template(**resources)))
    (folder / "app.assets.json").write_text(
        json.dumps({"files": {}, "dockerImages": {"abc123": {}}})
    )


def test_copy_assembly_rewrites_the_copy_and_says_what_it_replaced(tmp_path: Path) -> None:
    source = tmp_path / "cdk.out"
    fn = {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"ImageUri": "u"}}}
    write_assembly(source, {"Budget": {"Type": "AWS::Budgets::Budget"}, "Serving": fn})
    lines = standins.copy_assembly(source, tmp_path / "copy", supported={"AWS::Lambda::Function"})
    assert json.loads((source / "app.template.json").read_text())["Resources"]["Budget"][
        "Type"
    ] == ("AWS::Budgets::Budget"), "the original assembly is never touched"
    copied = json.loads((tmp_path / "copy" / "app.template.json").read_text())
    assert copied["Resources"]["Budget"] == {"Type": standins.PLACEHOLDER}
    assert json.loads((tmp_path / "copy" / "app.assets.json").read_text()) == {"files": {}}
    assert any("app/Budget (AWS::Budgets::Budget)" in line for line in lines)
    assert any("Docker image asset" in line for line in lines)


def test_a_type_the_emulator_supports_is_never_stood_in(tmp_path: Path) -> None:
    source = tmp_path / "cdk.out"
    write_assembly(source, {"Budget": {"Type": "AWS::Budgets::Budget"}})
    with pytest.raises(standins.StandInHidesSupportedTypeError, match="app/Budget"):
        standins.copy_assembly(source, tmp_path / "copy", supported={"AWS::Budgets::Budget"})
