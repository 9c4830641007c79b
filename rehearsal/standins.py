"""The one list of what the emulator lacks, and its stand-ins, applied to a copy of cdk.out.

Each stand-in names a resource type or feature MiniStack 1.5.33 does not have and why the
rehearsal can do without it. A stand-in matches by type or feature only, never by a resource
of ours, so a resource the emulator supports is deployed as synthesized and its failure fails
the rehearsal. Every replacement is reported.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Resource = dict[str, Any]
Template = dict[str, Any]
PLACEHOLDER = "AWS::CloudFormation::WaitConditionHandle"
# What the trainer AMI parameter holds instead of an Image Builder AMI: RunInstances in the
# emulator takes any id, and no user data runs there anyway.
STANDIN_AMI = "ami-0123456789abcdef0"
# The serving function's stand-in: it answers like an API Gateway proxy integration and says
# that it is one; the real image needs Docker, which the emulator's local executor lacks.
STANDIN_HANDLER = """\
import json


def handler(event, context):
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-rehearsal-standin": "serving"},
        "body": json.dumps({"standin": "serving function", "path": event.get("rawPath")}),
    }
"""


@dataclasses.dataclass(frozen=True)
class StandIn:
    """A resource type or feature the emulator lacks, why doing without it is safe, the fix."""

    name: str
    reason: str
    matches: Callable[[Resource], bool]
    # The resource to deploy instead; None puts a no-op placeholder there and turns every
    # Ref/GetAtt of it into a literal naming the stand-in.
    replace: Callable[[Template, Resource], Resource] | None = None
    # "type": the emulator lacks the whole resource type (checked against its own list at
    # every run); "feature": it has the type but not this use of it.
    kind: str = "type"


def _type_in(*types: str) -> Callable[[Resource], bool]:
    return lambda resource: resource.get("Type") in types


def _type_prefix(prefix: str) -> Callable[[Resource], bool]:
    return lambda resource: str(resource.get("Type", "")).startswith(prefix)


def _metric_math(resource: Resource) -> bool:
    metrics = resource.get("Properties", {}).get("Metrics", [])
    return resource.get("Type") == "AWS::CloudWatch::Alarm" and any(
        "Expression" in metric for metric in metrics
    )


def _image_function(resource: Resource) -> bool:
    properties = resource.get("Properties", {})
    return resource.get("Type") == "AWS::Lambda::Function" and "ImageUri" in properties.get(
        "Code", {}
    )


def _ami_parameter(template: Template, resource: Resource) -> Resource:
    """An Image Builder image -> the SSM parameter its distribution would have written."""
    distribution = resource["Properties"]["DistributionConfigurationArn"]["Fn::GetAtt"][0]
    configs = template["Resources"][distribution]["Properties"]["Distributions"]
    name = configs[0]["SsmParameterConfigurations"][0]["ParameterName"]
    return {
        "Type": "AWS::SSM::Parameter",
        "Properties": {"Name": name, "Type": "String", "Value": STANDIN_AMI},
    }


def _zip_function(template: Template, resource: Resource) -> Resource:
    """A container-image function -> a zip function with the same role, settings and name."""
    del template
    properties = {
        key: value
        for key, value in resource["Properties"].items()
        if key not in ("Code", "PackageType", "ImageConfig", "SnapStart")
    }
    properties.update(
        Code={"ZipFile": STANDIN_HANDLER}, Handler="index.handler", Runtime="python3.12"
    )
    return {**resource, "Properties": properties}


def _secret_statements(resource: Resource) -> list[dict[str, Any]]:
    """The statements of an IAM policy that grant Secrets Manager actions on a Ref."""
    if resource.get("Type") != "AWS::IAM::Policy":
        return []
    statements = resource["Properties"]["PolicyDocument"]["Statement"]
    return [
        s
        for s in statements
        if isinstance(s.get("Resource"), dict)
        and s["Resource"].keys() == {"Ref"}
        and any(str(a).startswith("secretsmanager:") for a in _as_list(s["Action"]))
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _secret_by_arn(template: Template, resource: Resource) -> Resource:
    """A Ref to a secret in a policy -> the secret's ARN pattern, built from its name."""
    del template
    rewritten: Resource = json.loads(json.dumps(resource))
    for statement in _secret_statements(rewritten):
        name = statement["Resource"]["Ref"]
        statement["Resource"] = {
            "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
            ":secret:${" + name + "}-*"
        }
    return rewritten


def _image_builder_image(resource: Resource) -> bool:
    return resource.get("Type") == "AWS::ImageBuilder::Image"


STANDINS: tuple[StandIn, ...] = (
    StandIn(
        "Image Builder image (trainer AMI)",
        "no Image Builder in the emulator; the SSM parameter its distribution writes is "
        "created instead, so the launch template's resolve:ssm still has to find it",
        _image_builder_image,
        _ami_parameter,
    ),
    StandIn(
        "Image Builder pipeline, recipe, component, configurations, lifecycle",
        "no Image Builder in the emulator; they only build AMIs, which never boot here",
        _type_prefix("AWS::ImageBuilder::"),
    ),
    StandIn(
        "VPC flow log (AWS::EC2::FlowLog)",
        "not in the emulator's CloudFormation; it records traffic, nothing reads it",
        _type_in("AWS::EC2::FlowLog"),
    ),
    StandIn(
        "CodeDeploy application and deployment group",
        "no CodeDeploy in the emulator; the alias is created on version 1 without its "
        "CodeDeploy update policy, and canaries are not rehearsed",
        _type_in("AWS::CodeDeploy::Application", "AWS::CodeDeploy::DeploymentGroup"),
    ),
    StandIn(
        "release custom resource (Custom::ServingRelease)",
        "its handler starts a CodeDeploy deployment, which the emulator lacks",
        _type_in("Custom::ServingRelease"),
    ),
    StandIn(
        "Cost Anomaly Detection monitor and subscription",
        "no Cost Explorer in the emulator's CloudFormation; they only send cost alerts",
        _type_prefix("AWS::CE::"),
    ),
    StandIn(
        "Budgets budget",
        "no AWS Budgets in the emulator's CloudFormation; it only sends mail",
        _type_in("AWS::Budgets::Budget"),
    ),
    StandIn(
        "metric-math alarm (AWS::CloudWatch::Alarm with Metrics)",
        "the emulator's CloudFormation refuses metric math; single-metric alarms deploy as is",
        _metric_math,
        kind="feature",
    ),
    StandIn(
        "IAM policy naming a secret by Ref",
        "CloudFormation's Ref of a Secrets Manager secret is its ARN; the emulator's is its "
        "name, which matches no request, so the statement names the secret's ARN pattern "
        "(arn:...:secret:<name>-*) instead: the same single secret",
        lambda resource: bool(_secret_statements(resource)),
        _secret_by_arn,
        kind="feature",
    ),
    StandIn(
        "container-image Lambda function",
        "image functions need Docker, which the emulator's local executor lacks; a zip function "
        "with the same role, environment and name answers in its place (x-rehearsal-standin)",
        _image_function,
        _zip_function,
        kind="feature",
    ),
)
# Two features are stood in outside the template list: the image asset is dropped from the
# asset manifest with the function that used it (no Docker to build it), and cross-region
# Fn::GetStackOutput, which the emulator resolves in the consumer's region only, becomes the
# producer's real output value read from the emulator just before the consumer deploys.
CROSS_REGION = StandIn(
    "cross-region Fn::GetStackOutput",
    "the emulator looks the producer stack up in the consumer's region; the value is read "
    "from the producer stack in its own region instead",
    lambda resource: False,
)
IMAGE_ASSET = StandIn(
    "Docker image asset",
    "no Docker engine to build it; only the stood-in image function used it",
    lambda resource: False,
)


def _walk(node: Any, visit: Callable[[Any], Any]) -> Any:
    """Rebuild `node` bottom-up, letting `visit` replace any dict or list it returns anew."""
    if isinstance(node, dict):
        node = {key: _walk(value, visit) for key, value in node.items()}
    elif isinstance(node, list):
        node = [_walk(value, visit) for value in node]
    return visit(node)


def _literal(logical_id: str, attribute: str | None = None) -> str:
    return f"rehearsal-standin-{logical_id}" + (f"-{attribute}" if attribute else "")


def _unreference(template: Template, gone: set[str]) -> Template:
    """Turn Ref/GetAtt/Sub of placeholders into literals, drop CodeDeploy update policies."""

    def visit(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if node.keys() == {"Ref"} and node["Ref"] in gone:
            return _literal(node["Ref"])
        if node.keys() == {"Fn::GetAtt"}:
            target, *attribute = (
                node["Fn::GetAtt"].split(".", 1)
                if isinstance(node["Fn::GetAtt"], str)
                else node["Fn::GetAtt"]
            )
            if target in gone:
                return _literal(target, ".".join(attribute))
        if node.keys() == {"Fn::Sub"}:
            text, *variables = (
                node["Fn::Sub"] if isinstance(node["Fn::Sub"], list) else [node["Fn::Sub"]]
            )
            for logical_id in gone:
                text = text.replace("${" + logical_id + "}", _literal(logical_id))
            return {"Fn::Sub": [text, *variables] if variables else text}
        return node

    rewritten: Template = _walk(template, visit)
    for resource in rewritten["Resources"].values():
        resource.get("UpdatePolicy", {}).pop("CodeDeployLambdaAliasUpdate", None)
        if resource.get("UpdatePolicy") == {}:
            del resource["UpdatePolicy"]
    return rewritten


def apply(template: Template) -> tuple[Template, list[tuple[str, str, StandIn]]]:
    """The template with every stand-in applied, and (logical id, type, stand-in) per change."""
    resources: dict[str, Resource] = dict(template["Resources"])
    changes: list[tuple[str, str, StandIn]] = []
    gone: set[str] = set()
    for logical_id, resource in template["Resources"].items():
        standin = next((s for s in STANDINS if s.matches(resource)), None)
        if standin is None:
            continue
        changes.append((logical_id, resource["Type"], standin))
        if standin.replace is not None:
            resources[logical_id] = standin.replace(template, resource)
        else:
            resources[logical_id] = {"Type": PLACEHOLDER}
            gone.add(logical_id)
    return _unreference({**template, "Resources": resources}, gone), changes


def cross_region_outputs(template: Template, region: str) -> Iterator[tuple[str, str, str]]:
    """(stack, region, output) of every Fn::GetStackOutput that names another region."""
    found: list[tuple[str, str, str]] = []

    def visit(node: Any) -> Any:
        if isinstance(node, dict) and node.keys() == {"Fn::GetStackOutput"}:
            spec = node["Fn::GetStackOutput"]
            if spec.get("Region", region) != region:
                found.append((spec["StackName"], spec["Region"], spec["OutputName"]))
        return node

    _walk(template, visit)
    return iter(dict.fromkeys(found))


def resolve_cross_region(
    template: Template, region: str, values: dict[tuple[str, str, str], str]
) -> Template:
    """Replace each cross-region Fn::GetStackOutput with its value from `values`."""

    def visit(node: Any) -> Any:
        if isinstance(node, dict) and node.keys() == {"Fn::GetStackOutput"}:
            spec = node["Fn::GetStackOutput"]
            if spec.get("Region", region) != region:
                return values[(spec["StackName"], spec["Region"], spec["OutputName"])]
        return node

    resolved: Template = _walk(template, visit)
    return resolved


class StandInHidesSupportedTypeError(ValueError):
    """A stand-in would replace a type the emulator supports: it could hide an app defect."""


def copy_assembly(source: Path, dest: Path, supported: set[str]) -> list[str]:
    """Copy the cloud assembly to `dest`, apply the stand-ins there; one line per replacement.

    `supported` is the emulator's own list of types: a stand-in that would replace one of them
    is refused, so an emulator upgrade that adds a type makes the real resource deploy.
    """
    shutil.copytree(source, dest, dirs_exist_ok=True)
    lines: list[str] = []
    for path in sorted(dest.glob("*.template.json")):
        stack = path.name.removesuffix(".template.json")
        rewritten, changes = apply(json.loads(path.read_text()))
        for logical_id, rtype, standin in changes:
            if standin.kind == "type" and rtype in supported:
                raise StandInHidesSupportedTypeError(
                    f"{stack}/{logical_id}: the emulator supports {rtype} now; "
                    f"remove the stand-in {standin.name!r} from rehearsal/standins.py"
                )
        path.write_text(json.dumps(rewritten, indent=1))
        lines += [
            f"stand-in: {stack}/{lid} ({rtype}): {s.name}: {s.reason}" for lid, rtype, s in changes
        ]
        if any(s.replace is _zip_function for _, _, s in changes):
            lines += _drop_image_assets(dest / f"{stack}.assets.json", stack)
    return lines


def _drop_image_assets(manifest: Path, stack: str) -> list[str]:
    """Remove Docker image assets from a stack's asset manifest: nothing may build them here."""
    assets = json.loads(manifest.read_text())
    dropped = sorted(assets.pop("dockerImages", {}))
    manifest.write_text(json.dumps(assets, indent=1))
    return [
        f"stand-in: {stack} asset {asset[:12]}: {IMAGE_ASSET.name}: {IMAGE_ASSET.reason}"
        for asset in dropped
    ]
