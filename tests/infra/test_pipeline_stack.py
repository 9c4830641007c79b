"""Pipeline stack: repository, registry, AMI pipeline, Spot trainer, triggers, registrar."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template

from cdk_app.constructs.training.trainer_image import component_document
from stacks.application import BuiltApp
from tests.support import build_app


def only(template: Template, type_: str, props: dict[str, Any] | None = None) -> dict[str, Any]:
    """The single resource of `type_` (matching `props`)."""
    found = template.find_resources(type_, {"Properties": props} if props else None)
    assert len(found) == 1, f"{len(found)} {type_} resources match"
    [resource] = found.values()
    result: dict[str, Any] = resource
    return result


def statements(template: Template, role_fragment: str) -> list[dict[str, Any]]:
    """Every policy statement attached to roles whose logical id contains `role_fragment`."""
    result = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = json.dumps(policy["Properties"].get("Roles", []))
        if role_fragment in roles:
            result.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return result


# --- repository and registry ------------------------------------------------------------------


def test_repository_scans_on_push_and_only_live_and_rollback_move(
    templates: dict[str, Template],
) -> None:
    repo = only(templates["pipeline"], "AWS::ECR::Repository")
    props = repo["Properties"]
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert props["ImageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert [
        f["ImageTagMutabilityExclusionFilterValue"]
        for f in props["ImageTagMutabilityExclusionFilters"]
    ] == [
        "live",
        "rollback",
    ]
    assert repo["DeletionPolicy"] == "Retain"


def test_lifecycle_policy_never_expires_live_or_rollback(templates: dict[str, Template]) -> None:
    repo = only(templates["pipeline"], "AWS::ECR::Repository")
    rules = json.loads(repo["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert [r["rulePriority"] for r in rules] == [1, 2, 3]
    for rule, tag in zip(rules[:2], ["live", "rollback"], strict=True):
        assert rule["selection"] == {
            "tagStatus": "tagged",
            "tagPatternList": [tag],
            "countType": "imageCountMoreThan",
            "countNumber": 9999,
        }
    assert rules[2]["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 20,
    }


def test_registry_table_is_on_demand_recoverable_encrypted_protected(
    templates: dict[str, Template],
) -> None:
    table = only(templates["pipeline"], "AWS::DynamoDB::GlobalTable")
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    [replica] = props["Replicas"]
    assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert replica["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


# --- the AMI -----------------------------------------------------------------------------------


def test_ami_recipe_starts_from_the_public_ssm_parameter(templates: dict[str, Template]) -> None:
    recipe = only(templates["pipeline"], "AWS::ImageBuilder::ImageRecipe")["Properties"]
    assert recipe["ParentImage"] == (
        "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    )
    assert not re.search(r"ami-[0-9a-f]{8,}", json.dumps(recipe)), "no hard-coded AMI id"
    [device] = recipe["BlockDeviceMappings"]
    assert device["Ebs"]["Encrypted"] is True
    managed, ours = recipe["Components"]
    assert managed["ComponentArn"].endswith(":aws:component/update-linux/x.x.x")
    assert "Fn::GetAtt" in ours["ComponentArn"]


def test_ami_component_installs_docker_python_and_pinned_deps(
    templates: dict[str, Template],
) -> None:
    component = only(templates["pipeline"], "AWS::ImageBuilder::Component")["Properties"]
    document = json.loads(component["Data"])
    assert document == component_document()
    text = json.dumps(document)
    assert "dnf install -y docker" in text
    assert "python3.12 -m venv /opt/trainer/venv" in text
    assert "scikit-learn==1.9.1" in text
    assert "-c /opt/trainer/constraints.txt" in text
    assert [phase["name"] for phase in document["phases"]] == ["build", "validate", "test"]


def test_ami_is_built_at_deploy_and_weekly_and_published_to_ssm(
    templates: dict[str, Template],
) -> None:
    pipeline = templates["pipeline"]
    schedule = only(pipeline, "AWS::ImageBuilder::ImagePipeline")["Properties"]["Schedule"]
    assert schedule == {
        "ScheduleExpression": "cron(0 4 ? * SUN *)",
        "PipelineExecutionStartCondition": "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE",
    }
    only(pipeline, "AWS::ImageBuilder::Image")
    distribution = only(pipeline, "AWS::ImageBuilder::DistributionConfiguration")["Properties"]
    [target] = distribution["Distributions"]
    assert target["SsmParameterConfigurations"] == [
        {"ParameterName": "/iris-ml-dev/trainer/ami-id", "DataType": "aws:ec2:image"}
    ]
    infra = only(pipeline, "AWS::ImageBuilder::InfrastructureConfiguration")["Properties"]
    assert infra["InstanceMetadataOptions"]["HttpTokens"] == "required"
    assert infra["TerminateInstanceOnFailure"] is True


# --- the Spot trainer ----------------------------------------------------------------------------


def launch_templates(templates: dict[str, Template]) -> dict[str, dict[str, Any]]:
    """The trainer's launch template data, keyed "spot" and "on-demand"."""
    found = templates["pipeline"].find_resources("AWS::EC2::LaunchTemplate").values()
    data = [t["Properties"]["LaunchTemplateData"] for t in found]
    return {("spot" if "InstanceMarketOptions" in d else "on-demand"): d for d in data}


def launch_template(templates: dict[str, Template]) -> dict[str, Any]:
    """The Spot launch template's data."""
    return launch_templates(templates)["spot"]


def test_launch_template_requests_spot_and_a_twin_serves_the_fallback(
    templates: dict[str, Template],
) -> None:
    both = launch_templates(templates)
    assert both["spot"]["InstanceMarketOptions"] == {
        "MarketType": "spot",
        "SpotOptions": {
            "InstanceInterruptionBehavior": "terminate",
            "SpotInstanceType": "one-time",
        },
    }
    # Name tags differ (the construct path); everything else is the same instance.
    differ = {"InstanceMarketOptions", "TagSpecifications"}
    spot = {k: v for k, v in both["spot"].items() if k not in differ}
    assert spot == {k: v for k, v in both["on-demand"].items() if k not in differ}


def test_launch_template_is_locked_down(templates: dict[str, Template]) -> None:
    data = launch_template(templates)
    assert data["ImageId"] == "resolve:ssm:/iris-ml-dev/trainer/ami-id"
    assert data["MetadataOptions"] == {
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,
        "InstanceMetadataTags": "enabled",
    }
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert "KeyName" not in data
    [device] = data["BlockDeviceMappings"]
    assert device["Ebs"] == {
        "DeleteOnTermination": True,
        "Encrypted": True,
        "VolumeSize": 30,
        "VolumeType": "gp3",
    }


def test_user_data_fetches_code_runs_the_pipeline_and_always_powers_off(
    templates: dict[str, Template],
) -> None:
    parts = launch_template(templates)["UserData"]["Fn::Base64"]["Fn::Join"][1]
    script = "".join(p if isinstance(p, str) else "<token>" for p in parts)
    assert script.startswith("#!/bin/bash\n")
    assert "shutdown -h +65" in script  # time limit + 5 minutes, whatever happens
    assert "trap 'shutdown -h now' EXIT" in script
    assert "unzip -q -o /tmp/code.zip -d /opt/trainer/src/training" in script
    assert "export DOCKER_PLATFORM=linux/arm64" in script
    assert "/opt/trainer/venv/bin/python -m training pipeline --from-instance-tags" in script


def test_security_group_has_no_inbound_and_only_https_out(templates: dict[str, Template]) -> None:
    groups = templates["pipeline"].find_resources(
        "AWS::EC2::SecurityGroup",
        {"Properties": {"GroupDescription": Match.string_like_regexp("Trainer")}},
    )
    [group] = groups.values()
    assert "SecurityGroupIngress" not in group["Properties"]
    [egress] = group["Properties"]["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)


def test_network_costs_nothing_idle(templates: dict[str, Template]) -> None:
    pipeline = templates["pipeline"]
    pipeline.resource_count_is("AWS::EC2::NatGateway", 0)
    pipeline.resource_count_is("AWS::EC2::EIP", 0)
    endpoints = pipeline.find_resources("AWS::EC2::VPCEndpoint")
    services = sorted(json.dumps(e["Properties"]["ServiceName"]) for e in endpoints.values())
    assert len(services) == 2
    assert all(
        e["Properties"].get("VpcEndpointType", "Gateway") == "Gateway" for e in endpoints.values()
    )
    assert ".dynamodb" in services[0]
    assert ".s3" in services[1]
    only(pipeline, "AWS::EC2::FlowLog", {"TrafficType": "REJECT"})


def test_trainer_role_is_limited_to_its_job(templates: dict[str, Template]) -> None:
    granted = statements(templates["pipeline"], "TrainerRole")
    actions = sorted(
        {
            a
            for s in granted
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }
    )
    assert actions == sorted(
        {
            "s3:GetObject",
            "ecr:BatchCheckLayerAvailability",
            "ecr:CompleteLayerUpload",
            "ecr:DescribeImages",
            "ecr:GetAuthorizationToken",
            "ecr:InitiateLayerUpload",
            "ecr:PutImage",
            "ecr:UploadLayerPart",
            # Pulls the deployed serving runtime its model images are built FROM.
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "ssm:GetParameter",
            "dynamodb:ConditionCheckItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        }
    )
    wildcards = [s for s in granted if s["Resource"] == "*"]
    assert [s["Action"] for s in wildcards] == ["ecr:GetAuthorizationToken"]
    [runtime] = [s for s in granted if s.get("Sid") == "PullTheServingRuntime"]
    assert "cdk-hnb659fds-container-assets-" in json.dumps(runtime["Resource"])
    role = only(
        templates["pipeline"],
        "AWS::IAM::Role",
        {"Description": Match.string_like_regexp("Spot trainer")},
    )
    managed = json.dumps(role["Properties"]["ManagedPolicyArns"])
    assert "AmazonSSMManagedInstanceCore" in managed
    assert "ReadDatasets" in managed  # the data stack's read-only dataset policy


# --- starting and watching runs -------------------------------------------------------------------


def function_env(template: Template, description: str) -> dict[str, str]:
    """Environment variables of the function with this description prefix."""
    fn = only(
        template, "AWS::Lambda::Function", {"Description": Match.string_like_regexp(description)}
    )
    env: dict[str, str] = fn["Properties"]["Environment"]["Variables"]
    return env


def test_launcher_gets_everything_it_needs_from_config(templates: dict[str, Template]) -> None:
    pipeline = templates["pipeline"]
    env = function_env(pipeline, "^Starts a Spot training run")
    assert env["INSTANCE_TYPES"] == "c7g.large,m7g.large,c6g.large,m6g.large,t4g.large"
    assert env["ON_DEMAND_FALLBACK"] == "true"
    assert env["TIME_LIMIT_MINUTES"] == "60"
    required = {"REGISTRY_TABLE", "LAUNCH_TEMPLATE_ID", "ON_DEMAND_LAUNCH_TEMPLATE_ID"}
    assert required | {"SUBNET_IDS", "DATASET_BUCKET"} <= set(env)
    launcher = only(
        pipeline, "AWS::Lambda::Function", {"Description": Match.string_like_regexp("^Starts")}
    )
    props = launcher["Properties"]
    # Reserved concurrency (none by default): tests/infra/test_spot_rules.py.
    assert props["Runtime"] == "python3.14"
    assert props["Handler"] == "training.control.launcher.handler"
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}


def test_new_dataset_versions_start_runs(templates: dict[str, Template]) -> None:
    rule = only(
        templates["pipeline"],
        "AWS::Events::Rule",
        {"Description": Match.string_like_regexp("dataset version")},
    )
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"]["key"] == [{"wildcard": "datasets/iris/*/data.csv"}]
    [target] = rule["Properties"]["Targets"]
    assert "DeadLetterConfig" in target
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 4


def test_monitor_runs_on_a_schedule_and_when_trainers_end(templates: dict[str, Template]) -> None:
    pipeline = templates["pipeline"]
    only(pipeline, "AWS::Events::Rule", {"ScheduleExpression": "rate(10 minutes)"})
    ended = only(
        pipeline, "AWS::Events::Rule", {"Description": Match.string_like_regexp("trainer instance")}
    )
    pattern = ended["Properties"]["EventPattern"]
    assert pattern["detail"] == {"state": ["terminated", "stopped"]}
    granted = statements(pipeline, "TrainingMonitorRole")
    terminate = [s for s in granted if s["Action"] == "ec2:TerminateInstances"]
    assert terminate[0]["Condition"] == {"StringLike": {"aws:ResourceTag/RunId": "*"}}


def test_launcher_may_only_launch_from_the_trainer_template(templates: dict[str, Template]) -> None:
    granted = statements(templates["pipeline"], "TrainingLauncherRole")
    sids = {s.get("Sid"): s for s in granted}
    assert sids["OwnAmisOnly"]["Condition"] == {
        "StringEquals": {"ec2:Owner": {"Ref": "AWS::AccountId"}}
    }
    assert sids["PassTrainerRole"]["Action"] == "iam:PassRole"
    assert "launch-template" in json.dumps(sids["FromTheTrainerTemplate"]["Resource"])


def test_registrar_listens_to_pushes_of_our_repository(templates: dict[str, Template]) -> None:
    pipeline = templates["pipeline"]
    rule = only(
        pipeline, "AWS::Events::Rule", {"Description": Match.string_like_regexp("image was pushed")}
    )
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.ecr"]
    assert pattern["detail-type"] == ["ECR Image Action"]
    assert pattern["detail"]["action-type"] == ["PUSH"]
    assert pattern["detail"]["result"] == ["SUCCESS"]
    env = function_env(pipeline, "^Records pushed model images")
    assert set(env) == {"LOG_LEVEL", "REGISTRY_TABLE", "REPOSITORY_NAME"}


def test_failed_async_invocations_land_in_a_queue(templates: dict[str, Template]) -> None:
    configs = templates["pipeline"].find_resources("AWS::Lambda::EventInvokeConfig")
    assert len(configs) == 3
    for config in configs.values():
        destination = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
        assert "DeadLetters" in destination["Fn::GetAtt"][0]


def test_outputs_for_the_operator_commands(templates: dict[str, Template]) -> None:
    outputs = set(templates["pipeline"].find_outputs("*"))
    assert {"LauncherFunctionName", "RegistryTableName", "RepositoryUri"} <= outputs


def test_x86_config_changes_ami_and_platform(tmp_path: Path) -> None:
    built = build_app(tmp_path, architecture="x86_64", trainer_instance_types="c7i.large,m7i.large")
    pipeline = Template.from_stack(built.pipeline)
    recipe = only(pipeline, "AWS::ImageBuilder::ImageRecipe")["Properties"]
    assert recipe["ParentImage"].endswith("-x86_64")
    assert "linux/amd64" in json.dumps(pipeline.find_resources("AWS::EC2::LaunchTemplate"))


def test_synth_needs_no_lookups(built: BuiltApp) -> None:
    # A context lookup would make `cdk synth` call AWS on every fresh checkout.
    manifest = json.loads((Path(built.app.outdir) / "manifest.json").read_text())
    assert "missing" not in manifest


def test_scheduled_retraining_when_configured(
    templates: dict[str, Template], tmp_path: Path
) -> None:
    templates["pipeline"].resource_properties_count_is(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(3 days)"}, 0
    )
    built = build_app(tmp_path, retrain_every_days=3)
    pipeline = Template.from_stack(built.pipeline)
    rule = only(pipeline, "AWS::Events::Rule", {"ScheduleExpression": "rate(3 days)"})
    [target] = rule["Properties"]["Targets"]
    assert json.loads(target["Input"]) == {"latest_of": "iris"}
    granted = statements(pipeline, "TrainingLauncherRole")
    [listing] = [s for s in granted if s.get("Sid") == "FindNewestDatasetVersion"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "datasets/iris/*"}}
