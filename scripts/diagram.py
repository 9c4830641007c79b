"""`make diagram`: docs/architecture.png drawn from the synthesized app, and a staleness check.

The picture is a model of the cloud assembly, not a hand-kept list: each box is a resource, or a
group of like resources, in a synthesized template; each thin edge is a reference between two of
them (Ref, Fn::GetAtt, Fn::Sub, Fn::GetStackOutput, Fn::ImportValue) or an EventBridge rule,
drawn from its pattern's source to its target. The request and training paths are declared here
hop by hop and drawn over those edges; a hop the templates do not show is dashed.

The PNG carries a fingerprint of the model's structure (stacks, nodes, edges: never logical ids
or asset hashes) in a tEXt chunk; `--check` exits 1 when the app's fingerprint differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import itertools
import json
import re
import statistics
import struct
import sys
import tempfile
import textwrap
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as `python scripts/diagram.py`: the app's packages sit in the repository root.
    sys.path.insert(0, str(ROOT))

OUTPUT: Final = ROOT / "docs" / "architecture.png"
FINGERPRINT_KEY: Final = "Fingerprint"
# What the CDK CLI adds to the context of every synth (tests/support.py passes the same).
CLI_CONTEXT: Final[Mapping[str, Any]] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
}

# --- the cloud assembly ---------------------------------------------------------------------

Ref = tuple[str, str]  # (stack name, logical id)


@dataclasses.dataclass(frozen=True)
class StackTemplate:
    """One synthesized stack: its name, its region and its CloudFormation template."""

    name: str
    region: str
    template: Mapping[str, Any]

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        """The template's resources by logical id."""
        resources: Mapping[str, Mapping[str, Any]] = self.template.get("Resources", {})
        return resources


def load_assembly(directory: Path) -> tuple[StackTemplate, ...]:
    """The stacks of a cloud assembly directory (cdk.out), in the manifest's order."""
    manifest_file = directory / "manifest.json"
    if not manifest_file.is_file():
        raise FileNotFoundError(f"{directory} is not a cloud assembly (no manifest.json)")
    manifest = json.loads(manifest_file.read_text())
    stacks = []
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        properties = artifact.get("properties", {})
        template = json.loads((directory / properties["templateFile"]).read_text())
        region = str(artifact.get("environment", "")).rsplit("/", 1)[-1]
        stacks.append(StackTemplate(properties.get("stackName", artifact_id), region, template))
    return tuple(stacks)


def app_context(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The context `cdk synth` passes: the CLI's own keys, cdk.json's, then `-c` overrides."""
    cdk_json: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return {**CLI_CONTEXT, **cdk_json, **overrides}


class SynthError(RuntimeError):
    """The app does not synthesize: a bad config value, no model, or a cdk-nag finding."""


def synthesize(
    outdir: Path, overrides: Mapping[str, Any] | None = None
) -> tuple[StackTemplate, ...]:
    """Build the app as `cdk synth` does (cdk-nag included) into outdir; its stacks."""
    # Imported here: starting jsii costs seconds, and `--assembly DIR` does not need it.
    import aws_cdk as cdk  # noqa: PLC0415

    from cdk_app.config import ConfigError  # noqa: PLC0415
    from stacks.application import ModelArtifactMissingError, build  # noqa: PLC0415

    app = cdk.App(context=app_context(overrides or {}), outdir=str(outdir))
    try:
        build(app)
        app.synth()
    except (ConfigError, ModelArtifactMissingError) as exc:
        raise SynthError(str(exc)) from None
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        raise SynthError(str(exc)) from None
    return load_assembly(outdir)


def parse_context(pairs: Sequence[str]) -> dict[str, str]:
    """`-c key=value` pairs, as the CDK CLI takes them; the app's config parses the values."""
    context = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"-c {pair!r}: expected key=value")
        context[key.strip()] = value
    return context


class References:
    """Finds the resources a template value refers to, across stacks and regions."""

    _SUB = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")

    def __init__(self, stacks: Sequence[StackTemplate]) -> None:
        self.stacks = {stack.name: stack for stack in stacks}
        self.exports: dict[str, tuple[StackTemplate, Any]] = {}
        for stack in stacks:
            for output in stack.template.get("Outputs", {}).values():
                name = output.get("Export", {}).get("Name")
                if isinstance(name, str):
                    self.exports[name] = (stack, output["Value"])

    def find(self, stack: StackTemplate, value: Any) -> Iterator[Ref]:
        """Every (stack, logical id) that `value` refers to, in document order."""
        if isinstance(value, list):
            for item in value:
                yield from self.find(stack, item)
        elif isinstance(value, dict):
            if len(value) == 1:
                ((key, argument),) = value.items()
                handled = self._intrinsic(stack, key, argument)
                if handled is not None:
                    yield from handled
                    return
            for item in value.values():
                yield from self.find(stack, item)

    def _intrinsic(self, stack: StackTemplate, key: str, argument: Any) -> Iterator[Ref] | None:
        """The references of one intrinsic function, or None when `key` is not one we follow."""
        if key == "Ref" and isinstance(argument, str):
            return self._local(stack, [argument])
        if key == "Fn::GetAtt":
            target = argument[0] if isinstance(argument, list) else str(argument).split(".")[0]
            return self._local(stack, [target])
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            local = self._local(stack, self._SUB.findall(text))
            return itertools.chain(local, self.find(stack, variables))
        if key == "Fn::GetStackOutput":
            producer = self.stacks.get(argument.get("StackName"))
            outputs = producer.template.get("Outputs", {}) if producer else {}
            output = outputs.get(argument.get("OutputName"))
            return self.find(producer, output["Value"]) if producer and output else iter(())
        if key == "Fn::ImportValue" and isinstance(argument, str) and argument in self.exports:
            producer, exported = self.exports[argument]
            return self.find(producer, exported)
        return None

    @staticmethod
    def _local(stack: StackTemplate, ids: Iterable[str]) -> Iterator[Ref]:
        """The ids that name resources of `stack` (not parameters or pseudo parameters)."""
        return ((stack.name, i) for i in ids if i in stack.resources)


# --- the model ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Stack:
    """A stack as drawn: its name, region and role (the name without the app's prefix)."""

    name: str
    region: str
    role: str


@dataclasses.dataclass(frozen=True)
class Node:
    """A box: one resource or a group of like resources ("" stack: outside AWS)."""

    ident: str
    stack: str
    kind: str
    label: str
    members: int


@dataclasses.dataclass(frozen=True)
class Edge:
    """An arrow; `step` numbers it on its path (0 off the paths)."""

    source: str
    target: str
    kind: str
    label: str = ""
    step: int = 0
    # On a path, but no reference or rule in the templates shows it.
    runtime: bool = False


@dataclasses.dataclass(frozen=True)
class Model:
    """What the picture shows: stacks, nodes and edges."""

    stacks: tuple[Stack, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, ident: str) -> Node:
        """The node with this ident."""
        return next(n for n in self.nodes if n.ident == ident)

    def path(self, kind: str) -> tuple[Edge, ...]:
        """The hops of the request or training path, in order."""
        return tuple(sorted((e for e in self.edges if e.kind == kind), key=lambda e: e.step))

    def fingerprint(self) -> str:
        """sha256 of the structure: stacks, (stack, kind, label, members) and edges, sorted."""
        names = {n.ident: f"{n.stack}/{n.label}" for n in self.nodes}
        structure = {
            "stacks": sorted([s.name, s.region] for s in self.stacks),
            "nodes": sorted([n.stack, n.kind, n.label, n.members] for n in self.nodes),
            "edges": sorted(
                [names[e.source], names[e.target], e.kind, e.label, e.step, e.runtime]
                for e in self.edges
            ),
        }
        text = json.dumps(structure, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Shown:
    """A kind of resource the picture shows; `{name}` is the construct's name, humanized."""

    type: str
    ident: str
    kind: str
    label: str
    path: str = ""  # a regex searched in the construct path below the stack


# First match wins; a resource of any other type is hidden (IAM, permissions, log groups, queues,
# custom-resource plumbing, CDKMetadata) and lends its references to the box it belongs to.
SHOWN: Final = (
    Shown("AWS::CloudFront::Distribution", "cdn", "cdn", "CloudFront"),
    Shown("AWS::WAFv2::WebACL", "waf", "cdn", "WAF web ACL"),
    Shown("AWS::Route53::RecordSet", "dns", "cdn", "DNS alias (Route 53)"),
    Shown("AWS::ApiGatewayV2::Api", "api", "api", "API Gateway (HTTP API)"),
    Shown("AWS::Lambda::Function", "serving", "function", "Serving Lambda", r"^Serving/"),
    Shown(
        "AWS::Lambda::Function",
        "promoter",
        "function",
        "Promoter / Watcher",
        r"^Promotion/(Promoter|Watcher)/",
    ),
    Shown(
        "AWS::Lambda::Function",
        "authorizer",
        "function",
        "Origin-lock authorizer",
        r"^OriginLock/",
    ),
    Shown(
        "AWS::Lambda::Function",
        "registry-metrics",
        "function",
        "Registry metrics Lambda",
        r"^RegistryMetrics/",
    ),
    Shown("AWS::Lambda::Function", "{name}", "function", "{Name} Lambda"),
    Shown("AWS::S3::Bucket", "datalake", "storage", "Data lake (S3)", r"^DataLake/"),
    Shown("AWS::S3::Bucket", "access-logs", "storage", "Access logs (S3)", r"^AccessLogs/"),
    Shown("AWS::S3::Bucket", "cdn-logs", "storage", "CDN logs (S3)", r"^Cdn/"),
    Shown("AWS::S3::Bucket", "{name}", "storage", "{Name} (S3)"),
    Shown(
        "AWS::DynamoDB::GlobalTable", "registry", "storage", "Registry (DynamoDB)", r"^Registry/"
    ),
    Shown("AWS::DynamoDB::Table", "registry", "storage", "Registry (DynamoDB)", r"^Registry/"),
    Shown("AWS::DynamoDB::GlobalTable", "{name}", "storage", "{Name} (DynamoDB)"),
    Shown("AWS::DynamoDB::Table", "{name}", "storage", "{Name} (DynamoDB)"),
    Shown("AWS::ECR::Repository", "models", "storage", "ECR models", r"^Models/"),
    Shown("AWS::ECR::Repository", "{name}", "storage", "{Name} (ECR)"),
    Shown("AWS::EC2::LaunchTemplate", "trainer", "trainer", "Spot trainer", r"^Trainer/"),
    Shown("AWS::ImageBuilder::ImagePipeline", "ami", "trainer", "Image Builder AMI"),
    Shown("AWS::ImageBuilder::Image", "ami", "trainer", "Image Builder AMI"),
    Shown("AWS::EC2::VPC", "vpc", "network", "VPC"),
    Shown("AWS::SNS::Topic", "alarm-topic", "messaging", "Alarms (SNS)", r"^Alarms/"),
    Shown("AWS::SNS::Topic", "{name}", "messaging", "{Name} (SNS)"),
    Shown("AWS::CloudWatch::Alarm", "guard-alarms", "alarm", "Canary guard alarms", r"^Promotion/"),
    Shown("AWS::CloudWatch::Alarm", "cdn-alarms", "alarm", "CloudFront alarms", r"^Cdn/"),
    Shown("AWS::CloudWatch::Alarm", "{scope}-alarms", "alarm", "{Scope} alarms"),
    Shown("AWS::CloudWatch::Dashboard", "dashboard", "monitoring", "Dashboard"),
    Shown("AWS::Budgets::Budget", "budget", "monitoring", "Budget"),
    Shown("AWS::Chatbot::SlackChannelConfiguration", "slack", "chat", "Slack (Chatbot)"),
    Shown(
        "AWS::SecretsManager::Secret",
        "origin-secret",
        "security",
        "Origin-lock secret",
        r"^OriginLock/",
    ),
    Shown("AWS::SecretsManager::Secret", "{name}", "security", "{Name} secret"),
    Shown("AWS::CodeDeploy::DeploymentGroup", "canary", "deploy", "CodeDeploy canary"),
    Shown("AWS::CodeDeploy::Application", "canary", "deploy", "CodeDeploy canary"),
)

# Event sources whose rules name no resource: the resource types that emit them.
EVENT_SOURCES: Final[Mapping[str, tuple[str, ...]]] = {
    "aws.ec2": ("AWS::EC2::LaunchTemplate",),
    "aws.s3": ("AWS::S3::Bucket",),
    "aws.ecr": ("AWS::ECR::Repository",),
    "aws.codedeploy": ("AWS::CodeDeploy::DeploymentGroup",),
}

USER: Final = "user"
# The two paths, hop by hop: (from, to, label), nodes named "<stack role>:<ident>".
REQUEST_PATH: Final = (
    (USER, "api:cdn", "HTTPS"),
    ("api:cdn", "api:api", "origin key (authorizer)"),
    ("api:api", "api:serving", "proxy to alias live"),
)
TRAINING_PATH: Final = (
    ("data:datalake", "pipeline:launcher", "new dataset version"),
    ("pipeline:launcher", "pipeline:trainer", "RunInstances (Spot)"),
    ("pipeline:trainer", "pipeline:models", "docker push"),
    ("pipeline:models", "pipeline:registrar", "image pushed"),
    ("pipeline:registrar", "pipeline:registry", "record model"),
    ("pipeline:registry", "api:promoter", "model registered"),
    ("api:promoter", "api:serving", "canary (CodeDeploy)"),
)
PATHS: Final = {"request": REQUEST_PATH, "training": TRAINING_PATH}

# Construct ids that name a construct's default child rather than the thing itself.
_DEFAULT_CHILDREN: Final = frozenset(
    {"Resource", "Default", "Function", "Bucket", "Table", "Repository", "Topic", "Queue"}
)


def _construct_path(stack: StackTemplate, logical_id: str) -> str:
    """The resource's construct path below its stack (its logical id without path metadata)."""
    metadata = stack.resources[logical_id].get("Metadata", {})
    path = str(metadata.get("aws:cdk:path", logical_id))
    return path.split("/", 1)[1] if path.startswith(f"{stack.name}/") else path


def _scope(path: str) -> list[str]:
    """A construct path's segments without the default children at its end."""
    parts = path.split("/")
    while len(parts) > 1 and parts[-1] in _DEFAULT_CHILDREN:
        parts.pop()
    return parts


def _humanize(name: str) -> str:
    """`RegistryMetrics` -> `Registry metrics`."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|\b)|[A-Z]?[a-z]+|\d+", name) or [name]
    text = " ".join(words)
    return text[:1].upper() + text[1:].lower()


def _slug(name: str) -> str:
    """`RegistryMetrics` -> `registry-metrics`."""
    return _humanize(name).lower().replace(" ", "-")


def _roles(stacks: Sequence[StackTemplate]) -> dict[str, str]:
    """Each stack's role: its name without the prefix the app's stack names share."""
    names = [s.name for s in stacks]
    prefix = ""
    if len(names) > 1:
        common = names[0]
        for name in names[1:]:
            while not name.startswith(common):
                common = common[:-1]
        prefix = common[: common.rfind("-") + 1]
    return {name: name[len(prefix) :] for name in names}


class _Builder:
    """Turns the templates into a Model: classify, attach hidden resources, derive edges."""

    def __init__(self, stacks: Sequence[StackTemplate]) -> None:
        self.stacks = stacks
        self.roles = _roles(stacks)
        self.refs = References(stacks)
        self.paths: dict[Ref, str] = {
            (s.name, i): _construct_path(s, i) for s in stacks for i in s.resources
        }
        self.types: dict[Ref, str] = {
            (s.name, i): r["Type"] for s in stacks for i, r in s.resources.items()
        }
        self.owner: dict[Ref, str] = {}
        self.nodes: dict[str, Node] = {}
        self.edges: dict[tuple[str, str, str], set[str]] = defaultdict(set)

    def build(self) -> Model:
        """The model of the whole assembly."""
        plumbing = self._custom_resource_handlers()
        for stack in self.stacks:
            for logical_id in stack.resources:
                if (stack.name, logical_id) not in plumbing:
                    self._classify(stack, logical_id)
        self._attach_by_scope()
        self._attach_by_use()
        for stack in self.stacks:
            for logical_id, resource in stack.resources.items():
                if resource["Type"] == "AWS::Events::Rule":
                    self._rule_edges(stack, logical_id, resource)
                elif resource["Type"] != "AWS::CloudWatch::Dashboard":
                    # A dashboard's body names every metric it graphs: edges to all, no news.
                    self._reference_edges(stack, logical_id, resource)
        self._parameter_edges()
        edges = self._with_paths()
        nodes = tuple(self._counted(n) for n in self.nodes.values())
        stacks = tuple(Stack(s.name, s.region, self.roles[s.name]) for s in self.stacks)
        return Model(stacks, nodes, edges)

    # -- nodes --

    def _custom_resource_handlers(self) -> set[Ref]:
        """Lambda functions that only serve custom resources (their ServiceToken)."""
        handlers: set[Ref] = set()
        for stack in self.stacks:
            for resource in stack.resources.values():
                kind = resource["Type"]
                if kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
                    token = resource.get("Properties", {}).get("ServiceToken")
                    handlers.update(self.refs.find(stack, token))
        return handlers

    def _classify(self, stack: StackTemplate, logical_id: str) -> None:
        """Make the resource a member of its node, if its type is shown."""
        resource = stack.resources[logical_id]
        path = self.paths[(stack.name, logical_id)]
        rule = next(
            (s for s in SHOWN if s.type == resource["Type"] and re.search(s.path, path)), None
        )
        if rule is None:
            return
        scope = _scope(path)
        name, top = scope[-1], scope[0]
        role = self.roles[stack.name]
        ident = f"{role}:" + rule.ident.format(name=_slug(name), scope=_slug(top))
        label = rule.label.format(Name=_humanize(name), Scope=_humanize(top))
        if resource.get("Properties", {}).get("PackageType") == "Image":
            label += " (container)"
        if rule.ident == "vpc":
            nat = any(r["Type"] == "AWS::EC2::NatGateway" for r in stack.resources.values())
            label += " + NAT gateway" if nat else ", no NAT"
        node = self.nodes.get(ident) or Node(ident, stack.name, rule.kind, label, 0)
        self.nodes[ident] = dataclasses.replace(node, members=node.members + 1)
        self.owner[(stack.name, logical_id)] = ident

    @staticmethod
    def _counted(node: Node) -> Node:
        """Alarm boxes say how many alarms they hold."""
        if node.kind == "alarm":
            return dataclasses.replace(node, label=f"{node.label} \u00d7{node.members}")
        return node

    def _attach_by_scope(self) -> None:
        """A hidden resource belongs to the one node whose members share most of its path."""
        for stack in self.stacks:
            members = [
                (_scope(self.paths[ref]), owner)
                for ref, owner in self.owner.items()
                if ref[0] == stack.name
            ]
            for logical_id in stack.resources:
                ref = (stack.name, logical_id)
                if ref in self.owner or not members:
                    continue
                scope = _scope(self.paths[ref])
                shared = [(_common(scope, m), owner) for m, owner in members]
                best = max(depth for depth, _ in shared)
                owners = {owner for depth, owner in shared if depth == best}
                if best >= 1 and len(owners) == 1:
                    self.owner[ref] = owners.pop()

    def _attach_by_use(self) -> None:
        """An IAM policy belongs to its role's node; anything else to the one node using it."""
        changed = True
        while changed:
            changed = False
            users: dict[Ref, set[str]] = defaultdict(set)
            for stack in self.stacks:
                for logical_id, resource in stack.resources.items():
                    owner = self.owner.get((stack.name, logical_id))
                    if owner is None:
                        continue
                    for ref in self.refs.find(stack, resource.get("Properties", {})):
                        users[ref].add(owner)
            for stack in self.stacks:
                for logical_id, resource in stack.resources.items():
                    ref = (stack.name, logical_id)
                    if ref in self.owner:
                        continue
                    candidates = users.get(ref, set())
                    if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
                        roles = self.refs.find(stack, resource.get("Properties", {}).get("Roles"))
                        candidates = {self.owner[r] for r in roles if r in self.owner}
                    if len(candidates) == 1:
                        self.owner[ref] = candidates.pop()
                        changed = True

    # -- edges --

    def _add(self, source: str, target: str, kind: str, label: str = "") -> None:
        """Record an edge between two different nodes; labels of the same edge merge."""
        if source != target:
            labels = self.edges[(source, target, kind)]
            if label:
                labels.add(label)

    def _reference_edges(
        self, stack: StackTemplate, logical_id: str, resource: Mapping[str, Any]
    ) -> None:
        """An edge from the resource's node to the node of each resource it refers to."""
        source = self.owner.get((stack.name, logical_id))
        if source is None:
            return
        for ref in self.refs.find(stack, resource.get("Properties", {})):
            target = self.owner.get(ref)
            if target is None or target == source:
                continue
            if resource["Type"] == "AWS::Lambda::EventSourceMapping":
                self._add(target, source, "event", "stream")
            else:
                self._add(*self._direction(source, target))

    def _parameter_edges(self) -> None:
        """SSM parameters: from the node naming a parameter to each node resolving it.

        The trainer's launch template resolves the AMI id the Image Builder pipeline writes;
        the serving function resolves the image promotion writes. Names, not references.
        """
        writers: dict[str, set[str]] = defaultdict(set)
        readers: dict[str, set[str]] = defaultdict(set)
        for stack in self.stacks:
            for logical_id, resource in stack.resources.items():
                owner = self.owner.get((stack.name, logical_id))
                if owner is None:
                    continue
                for text in _strings(resource.get("Properties", {})):
                    for name in _RESOLVE_SSM.findall(text):
                        readers[name].add(owner)
                    if text.startswith("/"):
                        writers[text].add(owner)
        for name in sorted(readers.keys() & writers.keys()):
            for writer in sorted(writers[name]):
                for reader in sorted(readers[name] - {writer}):
                    self._add(writer, reader, "reference", "SSM parameter")

    def _direction(self, source: str, target: str) -> tuple[str, str, str]:
        """(from, to, kind) of a reference: drawn the way data or alarms flow."""
        source_kind, target_kind = self.nodes[source].kind, self.nodes[target].kind
        if target_kind == "alarm":  # e.g. CodeDeploy stops a canary on its guard alarms
            return target, source, "notify"
        if source_kind == "alarm":
            if target_kind == "messaging":
                return source, target, "notify"
            return target, source, "watch"
        if source_kind == "chat":  # Slack subscribes to the topics it relays
            return target, source, "notify"
        if target_kind == "messaging":
            return source, target, "notify"
        return source, target, "reference"

    def _rule_edges(self, stack: StackTemplate, logical_id: str, rule: Mapping[str, Any]) -> None:
        """An EventBridge rule: an edge from its events' source to each of its targets."""
        properties = rule.get("Properties", {})
        targets = [
            self.owner[ref]
            for target in properties.get("Targets", [])
            for ref in self.refs.find(stack, target.get("Arn"))
            if ref in self.owner
        ]
        schedule = properties.get("ScheduleExpression")
        if schedule:
            sources = [self._schedule_node(stack, logical_id, str(schedule))]
            label = "schedule"
        else:
            pattern = properties.get("EventPattern", {})
            sources = self._event_sources(stack, pattern)
            detail = pattern.get("detail-type", [""])[0]
            label = str(detail).removesuffix(" Notification")
        for source in sources:
            for target in targets:
                self._add(source, target, "event", label)

    def _schedule_node(self, stack: StackTemplate, logical_id: str, expression: str) -> str:
        """A box for a scheduled rule: `rate(10 minutes)` -> `Every 10 minutes`."""
        match = re.fullmatch(r"rate\((.+)\)", expression)
        label = f"Every {match.group(1)}" if match else expression
        ident = f"{self.roles[stack.name]}:schedule-{_slug(label.replace(' ', ''))}"
        self.nodes.setdefault(ident, Node(ident, stack.name, "schedule", label, 0))
        node = self.nodes[ident]
        self.nodes[ident] = dataclasses.replace(node, members=node.members + 1)
        self.owner[(stack.name, logical_id)] = ident
        return ident

    def _event_sources(self, stack: StackTemplate, pattern: Mapping[str, Any]) -> list[str]:
        """Nodes that emit the events a pattern matches."""
        named = {self.owner[r] for r in self.refs.find(stack, pattern) if r in self.owner}
        if named:
            return sorted(named)
        found: set[str] = set()
        for source in pattern.get("source", []):
            if source in EVENT_SOURCES:
                found.update(
                    owner
                    for ref, owner in self.owner.items()
                    if self.types[ref] in EVENT_SOURCES[source]
                )
            else:  # our own events: whoever may put events on the bus
                found.update(self._event_publishers())
        return sorted(found)

    def _event_publishers(self) -> set[str]:
        """Nodes whose IAM policies allow events:PutEvents."""
        publishers = set()
        for stack in self.stacks:
            for logical_id, resource in stack.resources.items():
                owner = self.owner.get((stack.name, logical_id))
                if owner is None or resource["Type"] != "AWS::IAM::Policy":
                    continue
                statements = resource["Properties"]["PolicyDocument"].get("Statement", [])
                for statement in statements:
                    actions = statement.get("Action", [])
                    if "events:PutEvents" in ([actions] if isinstance(actions, str) else actions):
                        publishers.add(owner)
        return publishers

    def _with_paths(self) -> tuple[Edge, ...]:
        """The derived edges with the two paths drawn over them."""
        derived = dict(self.edges)
        path_edges = []
        for kind, hops in PATHS.items():
            for step, (source, target, label) in enumerate(hops, start=1):
                if source == USER and target in self.nodes:
                    self.nodes[USER] = Node(USER, "", "actor", "User", 0)
                if source not in self.nodes or target not in self.nodes:
                    continue
                shown = [k for k in derived if {k[0], k[1]} == {source, target}]
                for key in shown:
                    del derived[key]
                path_edges.append(Edge(source, target, kind, label, step, runtime=not shown))
        linked = {frozenset(k[:2]) for k in derived if k[2] != "reference"}
        linked |= {frozenset((e.source, e.target)) for e in path_edges}
        rest = [
            Edge(source, target, kind, " / ".join(sorted(labels)))
            for (source, target, kind), labels in derived.items()
            # A reference beside a rule, stream or path between the same nodes says nothing more.
            if kind != "reference" or frozenset((source, target)) not in linked
        ]
        return tuple(sorted([*path_edges, *rest], key=lambda e: (e.kind, e.source, e.target)))


_RESOLVE_SSM: Final = re.compile(r"resolve:ssm:(/[\w./-]+)")


def _strings(value: Any) -> Iterator[str]:
    """Every string in a template value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _common(a: Sequence[str], b: Sequence[str]) -> int:
    """How many leading segments two construct paths share."""
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


def build_model(stacks: Sequence[StackTemplate]) -> Model:
    """The picture's model of a synthesized app."""
    return _Builder(stacks).build()


# --- layout ---------------------------------------------------------------------------------

# The order stacks are packed into bands, top to bottom: serving (the request path) above
# training and its data, monitoring below them; any other stack after these.
STACK_ORDER: Final = ("api", "edge", "pipeline", "data", "cdn-monitoring", "observability")
KIND_ORDER: Final = (
    "actor",
    "cdn",
    "api",
    "function",
    "trainer",
    "storage",
    "deploy",
    "security",
    "network",
    "schedule",
    "alarm",
    "messaging",
    "chat",
    "monitoring",
)
WIDTH: Final = 1800
MARGIN: Final = 24
TITLE_HEIGHT: Final = 58
STACK_HEADER: Final = 26
ROW_PITCH: Final = 76
NODE_HEIGHT: Final = 52
NODE_GAP: Final = 64  # between the boxes of two columns: room for the arrows' markers
BAND_GAP: Final = 14
MAX_SHIFT: Final = 2


@dataclasses.dataclass(frozen=True)
class Box:
    """A rectangle in pixels, y growing downwards."""

    x: float
    y: float
    w: float
    h: float

    @property
    def center(self) -> tuple[float, float]:
        """The middle of the box."""
        return self.x + self.w / 2, self.y + self.h / 2


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where everything goes: node boxes, stack boxes, the picture's size."""

    width: int
    height: int
    columns: Mapping[str, int]
    nodes: Mapping[str, Box]
    stacks: Mapping[str, Box]


def _neighbours(model: Model) -> dict[str, list[str]]:
    """Each node's neighbours over every edge, sorted."""
    found: dict[str, set[str]] = defaultdict(set)
    for edge in model.edges:
        found[edge.source].add(edge.target)
        found[edge.target].add(edge.source)
    return {ident: sorted(found[ident]) for ident in sorted(found)}


def _columns(model: Model) -> dict[str, int]:
    """Columns: a hop per column along the paths, other nodes amid their neighbours."""
    columns: dict[str, int] = {}
    training = model.path("training")
    for step, edge in enumerate(training):
        columns.setdefault(edge.source, step)
        columns.setdefault(edge.target, step + 1)
    request = model.path("request")
    if request:
        last = request[-1].target
        end = columns.setdefault(last, len(request))
        for back, edge in enumerate(reversed(request), start=1):
            columns.setdefault(edge.source, end - back)
    neighbours = _neighbours(model)
    pending = sorted(n.ident for n in model.nodes if n.ident not in columns)
    while pending:
        placed = [
            (ident, [columns[n] for n in neighbours.get(ident, []) if n in columns])
            for ident in pending
        ]
        ready = [(ident, cols) for ident, cols in placed if cols]
        if not ready:  # unconnected: the middle of its stack
            ident = pending[0]
            stack = model.node(ident).stack
            cols = [c for i, c in columns.items() if model.node(i).stack == stack] or [0]
            ready = [(ident, cols)]
        for ident, cols in ready:
            columns[ident] = statistics.median_low(cols)
        pending = [i for i in pending if i not in columns]
    low = min(columns.values(), default=0)
    return {ident: col - low for ident, col in columns.items()}


def _bands(model: Model, columns: dict[str, int]) -> list[list[str]]:
    """Stacks packed into bands: each joins its neighbours' band if it fits there."""
    # A stack may move up to MAX_SHIFT columns to fit; else it opens a new band below.
    roles = {s.name: s.role for s in model.stacks}
    order = sorted(
        {n.stack for n in model.nodes if n.stack},
        key=lambda s: (STACK_ORDER.index(roles[s]) if roles[s] in STACK_ORDER else 99, s),
    )
    neighbours = _neighbours(model)
    actors = [n.ident for n in model.nodes if not n.stack]
    bands: list[list[str]] = []
    taken: list[set[int]] = []
    for stack in order:
        members = [n.ident for n in model.nodes if n.stack == stack]
        # Actors outside AWS go in the band of the stack they talk to.
        guests = [a for a in actors if set(neighbours.get(a, [])) & set(members)]
        actors = [a for a in actors if a not in guests]
        idents = [*members, *guests]
        span = {columns[m] for m in members}
        cells = set(range(min(span), max(span) + 1)) | {columns[g] for g in guests}
        near = {n for m in members for n in neighbours.get(m, [])}
        preference = sorted(range(len(bands)), key=lambda b: (-len(near & set(bands[b])), b))
        choice = next(
            (
                (band, shift)
                for shift in sorted(range(-MAX_SHIFT, MAX_SHIFT + 1), key=lambda s: (abs(s), s))
                for band in preference
                if min(cells) + shift >= 0 and not {c + shift for c in cells} & taken[band]
            ),
            None,
        )
        if choice is None:
            bands.append(idents)
            taken.append(cells)
            continue
        band, shift = choice
        bands[band].extend(idents)
        taken[band].update(c + shift for c in cells)
        for ident in idents:
            columns[ident] += shift
    if actors:  # talking to no stack: a band of their own
        bands.append(actors)
    return bands


def _balance(model: Model, band: list[str], columns: dict[str, int]) -> None:
    """Move nodes off the paths to a less crowded neighbouring column of their stack."""
    on_path = {e.source for e in model.edges if e.step} | {e.target for e in model.edges if e.step}
    changed = True
    while changed:
        changed = False
        counts: dict[int, int] = defaultdict(int)
        for ident in band:
            counts[columns[ident]] += 1
        for ident in sorted(band):
            node = model.node(ident)
            if ident in on_path or not node.stack:
                continue
            span = [columns[i] for i in band if model.node(i).stack == node.stack]
            here = columns[ident]
            for there in (here + 1, here - 1):
                if min(span) <= there <= max(span) and counts[there] + 1 < counts[here]:
                    columns[ident] = there
                    counts[here] -= 1
                    counts[there] += 1
                    changed = True
                    break


def _row_key(model: Model, ident: str) -> tuple[int, int, str]:
    """Top to bottom in a column: request path, training path, then by kind and label."""
    steps = {e.kind: e for e in model.edges if ident in (e.source, e.target) and e.step}
    node = model.node(ident)
    path = 0 if "request" in steps else 1 if "training" in steps else 2
    return path, KIND_ORDER.index(node.kind) if node.kind in KIND_ORDER else 99, node.label


def layout(model: Model) -> Layout:
    """Columns left to right, stacks in bands top to bottom, nodes in rows within a band."""
    columns = _columns(model)
    bands = _bands(model, columns)
    count = max(columns.values(), default=0) + 1
    pitch = (WIDTH - 2 * MARGIN) / count
    nodes: dict[str, Box] = {}
    stacks: dict[str, Box] = {}
    y = float(TITLE_HEIGHT)
    for band in bands:
        _balance(model, band, columns)
        cells: dict[int, list[str]] = defaultdict(list)
        for ident in sorted(band, key=lambda i: _row_key(model, i)):
            cells[columns[ident]].append(ident)
        rows = max(len(c) for c in cells.values())
        height = STACK_HEADER + rows * ROW_PITCH
        for col, idents in cells.items():
            for row, ident in enumerate(idents):
                top = y + STACK_HEADER + row * ROW_PITCH + (ROW_PITCH - NODE_HEIGHT) / 2
                nodes[ident] = Box(
                    MARGIN + col * pitch + NODE_GAP / 2, top, pitch - NODE_GAP, NODE_HEIGHT
                )
        for stack in sorted({model.node(i).stack for i in band} - {""}):
            span = [columns[i] for i in band if model.node(i).stack == stack]
            left = MARGIN + min(span) * pitch + 6
            stacks[stack] = Box(left, y, (max(span) - min(span) + 1) * pitch - 12, height)
        y += height + BAND_GAP
    height = int(y - BAND_GAP + _legend_height(model))
    return Layout(WIDTH, height, dict(columns), nodes, stacks)


# --- rendering ------------------------------------------------------------------------------

NODE_COLOURS: Final[Mapping[str, tuple[str, str]]] = {  # kind: (fill, outline)
    "actor": ("#ffffff", "#37474f"),
    "cdn": ("#ede7f6", "#5e35b1"),
    "api": ("#fce4ec", "#ad1457"),
    "function": ("#fff3e0", "#e65100"),
    "trainer": ("#e3f2fd", "#1565c0"),
    "storage": ("#e8f5e9", "#2e7d32"),
    "deploy": ("#e0f7fa", "#00838f"),
    "security": ("#efebe9", "#5d4037"),
    "network": ("#eceff1", "#546e7a"),
    "schedule": ("#f3e5f5", "#7b1fa2"),
    "alarm": ("#fff8e1", "#c17900"),
    "messaging": ("#fbe9e7", "#bf360c"),
    "chat": ("#fbe9e7", "#bf360c"),
    "monitoring": ("#fff8e1", "#c17900"),
}
# kind: (colour, line width, line style, z-order, legend text)
EDGE_STYLES: Final[Mapping[str, tuple[str, float, str, int, str]]] = {
    "request": ("#d32f2f", 3.0, "-", 6, "Request path (R1, R2, ...)"),
    "training": ("#1565c0", 3.0, "-", 5, "Training path (T1, T2, ...)"),
    "event": ("#7b1fa2", 1.4, "-", 4, "EventBridge rule or stream: source to target"),
    "notify": ("#c17900", 1.2, "-", 3, "Alarm or budget notification"),
    "reference": ("#8d8d8d", 1.0, "-", 2, "Reference in a template (env var, IAM grant, origin)"),
    "watch": ("#b0b0b0", 0.9, ":", 1, "Alarm watches a metric of"),
}
# Bends tried in turn for an arrow that is not on a path: the first that misses every box wins.
BENDS: Final = (0.0, 0.12, -0.12, 0.25, -0.25, 0.4, -0.4)
RUNTIME_LEGEND: Final = "Dashed: a path hop no template shows (run time)"
FONT: Final[dict[str, Any]] = {"family": "DejaVu Sans"}  # matplotlib ships it
LEGEND_LINE: Final = 17


def _anchors(a: Box, b: Box) -> tuple[tuple[float, float], tuple[float, float]]:
    """Where an edge from box a to box b leaves and arrives: facing sides."""
    (ax, ay), (bx, by) = a.center, b.center
    if abs(bx - ax) < a.w / 2:  # same column: top and bottom
        if by > ay:
            return (ax, a.y + a.h), (bx, b.y)
        return (ax, a.y), (bx, b.y + b.h)
    if bx > ax:
        return (a.x + a.w, ay), (b.x, by)
    return (a.x, ay), (b.x + b.w, by)


def _curve_point(
    start: tuple[float, float], end: tuple[float, float], rad: float, t: float, height: float
) -> tuple[float, float]:
    """A point of matplotlib's arc3 curve (computed in display space, where y grows up)."""
    x1, y1 = start[0], height - start[1]
    x2, y2 = end[0], height - end[1]
    cx = (x1 + x2) / 2 + rad * (y2 - y1)
    cy = (y1 + y2) / 2 - rad * (x2 - x1)
    u = 1 - t
    x = u * u * x1 + 2 * u * t * cx + t * t * x2
    y = u * u * y1 + 2 * u * t * cy + t * t * y2
    return x, height - y


def render(model: Model, path: Path, *, title: str) -> None:
    """Draw the model to a PNG with its fingerprint in a tEXt chunk."""
    # Imported here: `--check` reads the PNG without matplotlib.
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    where = layout(model)
    figure = Figure(figsize=(where.width / 100, where.height / 100), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_xlim(0, where.width)
    axes.set_ylim(where.height, 0)
    axes.axis("off")
    axes.text(MARGIN, 20, title, fontsize=15, fontweight="bold", va="center", **FONT)
    axes.text(
        MARGIN,
        42,
        "Drawn by scripts/diagram.py from the synthesized templates: boxes are resources (IAM, "
        "permissions, log groups, queues and custom-resource plumbing left out), edges are "
        "references and EventBridge rules between them.",
        fontsize=9.5,
        color="#555555",
        va="center",
        **FONT,
    )
    _draw_stacks(axes, model, where)
    _draw_nodes(axes, model, where)
    _draw_edges(axes, model, where)
    _draw_legend(axes, model, where)
    buffer = io.BytesIO()
    figure.savefig(
        buffer,
        format="png",
        dpi=100,
        metadata={"Software": "scripts/diagram.py", FINGERPRINT_KEY: model.fingerprint()},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def _draw_stacks(axes: Any, model: Model, where: Layout) -> None:
    """A rounded box per stack, titled with its name and region."""
    from matplotlib.patches import FancyBboxPatch  # noqa: PLC0415

    regions = {s.name: s.region for s in model.stacks}
    for name, box in sorted(where.stacks.items()):
        axes.add_patch(
            FancyBboxPatch(
                (box.x, box.y),
                box.w,
                box.h,
                boxstyle="round,pad=0,rounding_size=8",
                facecolor="#f6f7f9",
                edgecolor="#9aa5b1",
                linewidth=1.0,
                zorder=0,
            )
        )
        axes.text(
            box.x + 10,
            box.y + 13,
            f"{name}  ({regions[name]})",
            fontsize=9.5,
            fontweight="bold",
            color="#52606d",
            va="center",
            **FONT,
        )


def _draw_nodes(axes: Any, model: Model, where: Layout) -> None:
    """A rounded box per node, coloured by kind."""
    from matplotlib.patches import FancyBboxPatch  # noqa: PLC0415

    for node in model.nodes:
        box = where.nodes[node.ident]
        fill, outline = NODE_COLOURS.get(node.kind, ("#ffffff", "#555555"))
        axes.add_patch(
            FancyBboxPatch(
                (box.x, box.y),
                box.w,
                box.h,
                boxstyle="round,pad=0,rounding_size=6",
                facecolor=fill,
                edgecolor=outline,
                linewidth=1.6,
                zorder=7,
            )
        )
        axes.text(
            *box.center,
            "\n".join(textwrap.wrap(node.label, 20)),
            ha="center",
            va="center",
            fontsize=10,
            zorder=8,
            linespacing=1.15,
            **FONT,
        )


def _draw_edges(axes: Any, model: Model, where: Layout) -> None:
    """Arrows: the paths bold with a numbered marker per hop, rules labelled where they fit."""
    from matplotlib.patches import FancyArrowPatch  # noqa: PLC0415

    pairs = {(e.source, e.target) for e in model.edges}
    labels = [  # path markers, then each label placed, that later labels must miss
        Box(x - 14, y - 14, 28, 28)
        for e in model.edges
        if e.step
        for x, y in [
            _curve_point(
                *_anchors(where.nodes[e.source], where.nodes[e.target]), 0.0, 0.5, where.height
            )
        ]
    ]
    for edge in sorted(model.edges, key=lambda e: (EDGE_STYLES[e.kind][3], e.source, e.target)):
        colour, width, style, order, _ = EDGE_STYLES[edge.kind]
        start, end = _anchors(where.nodes[edge.source], where.nodes[edge.target])
        rad = 0.0 if edge.step else _bend(start, end, where, (edge.source, edge.target))
        both = edge.kind == "reference" and (edge.target, edge.source) in pairs
        if both and edge.source > edge.target:
            continue  # drawn once, with two heads
        axes.add_patch(
            FancyArrowPatch(
                start,
                end,
                arrowstyle="<|-|>" if both else "-|>",
                mutation_scale=14,
                connectionstyle=f"arc3,rad={rad}",
                color=colour,
                linewidth=width,
                linestyle="--" if edge.runtime else style,
                zorder=order,
                shrinkA=1,
                shrinkB=1,
            )
        )
        x, y = _curve_point(start, end, rad, 0.5, where.height)
        if edge.step:
            axes.text(
                x,
                y,
                _step_name(edge),
                ha="center",
                va="center",
                color="white",
                zorder=9,
                fontsize=9,
                fontweight="bold",
                bbox={"boxstyle": "circle,pad=0.25", "facecolor": colour, "edgecolor": "white"},
                **FONT,
            )
        elif edge.label:
            label = Box(x - 3.1 * len(edge.label) - 4, y - 8, 6.2 * len(edge.label) + 8, 16)
            if not any(_overlap(label, box) for box in [*where.nodes.values(), *labels]):
                labels.append(label)
                axes.text(
                    x,
                    y,
                    edge.label,
                    ha="center",
                    va="center",
                    color=colour,
                    zorder=9,
                    fontsize=8.5,
                    bbox={
                        "boxstyle": "round,pad=0.15",
                        "facecolor": "white",
                        "edgecolor": "none",
                        "alpha": 0.9,
                    },
                    **FONT,
                )


def _bend(
    start: tuple[float, float], end: tuple[float, float], where: Layout, ends: tuple[str, str]
) -> float:
    """The arc3 bend that keeps an arrow off other boxes (it would pass under them unseen)."""
    others = [box for ident, box in where.nodes.items() if ident not in ends]
    for rad in BENDS:
        points = [_curve_point(start, end, rad, t / 24, where.height) for t in range(1, 24)]
        if not any(
            box.x - 4 <= x <= box.x + box.w + 4 and box.y - 4 <= y <= box.y + box.h + 4
            for x, y in points
            for box in others
        ):
            return rad
    return BENDS[0]


def _overlap(a: Box, b: Box) -> bool:
    """Whether two boxes share any area."""
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def _step_name(edge: Edge) -> str:
    """`R2`, `T5`: the hop's marker."""
    return f"{edge.kind[0].upper()}{edge.step}"


def _draw_legend(axes: Any, model: Model, where: Layout) -> None:
    """The bottom strip: each path's hops spelled out, then what each edge style means."""
    top = where.height - _legend_height(model) + 14
    x = float(MARGIN)
    for kind, title in (("request", "Request path"), ("training", "Training path")):
        colour = EDGE_STYLES[kind][0]
        axes.text(x, top, title, fontsize=10, fontweight="bold", color=colour, va="center", **FONT)
        for row, edge in enumerate(model.path(kind), start=1):
            names = f"{model.node(edge.source).label} \u2192 {model.node(edge.target).label}"
            note = ", at run time" if edge.runtime else ""
            axes.text(
                x,
                top + row * LEGEND_LINE,
                f"{_step_name(edge)}  {edge.label}{note}  ({names})",
                fontsize=9,
                color="#333333",
                va="center",
                **FONT,
            )
        x += 560
    axes.text(x, top, "Edges", fontsize=10, fontweight="bold", color="#333333", va="center", **FONT)
    styles = [(s[0], s[1], s[2], s[4]) for s in EDGE_STYLES.values()]
    styles.append(("#555555", 1.6, "--", RUNTIME_LEGEND))
    for row, (colour, width, style, text) in enumerate(styles, start=1):
        y = top + row * LEGEND_LINE
        axes.plot([x, x + 34], [y, y], color=colour, linewidth=width, linestyle=style)
        axes.text(x + 42, y, text, fontsize=9, va="center", color="#333333", **FONT)


def _legend_height(model: Model) -> int:
    """Room for the longest legend column."""
    lines = max(len(model.path("training")), len(model.path("request")), len(EDGE_STYLES) + 1)
    return 24 + (lines + 1) * LEGEND_LINE


# --- the PNG's fingerprint and the command line ---------------------------------------------


def read_fingerprint(path: Path) -> str | None:
    """The fingerprint a PNG carries in its text chunks, or None."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    offset = 8
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        offset += 12 + length
        key, _, value = body.partition(b"\0")
        if key.decode("latin-1") != FINGERPRINT_KEY:
            continue
        if kind == b"tEXt":
            return value.decode("latin-1")
        if kind == b"zTXt":
            return zlib.decompress(value[1:]).decode("latin-1")
        if kind == b"iTXt":
            # compression flag, method, language tag \0, translated keyword \0, text
            flag, rest = value[0], value[2:]
            text = rest.split(b"\0", 2)[2]
            return (zlib.decompress(text) if flag else text).decode()
    return None


def _title(model: Model) -> str:
    """`iris-ml-dev: architecture`, from the stacks' shared prefix."""
    names = [s.name for s in model.stacks]
    prefix = names[0][: len(names[0]) - len(model.stacks[0].role)].rstrip("-") if names else ""
    return f"{prefix or 'app'}: architecture"


def main(argv: Sequence[str] | None = None) -> int:
    """Draw docs/architecture.png, or check that it matches the app (`--check`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assembly", type=Path, help="read this cdk.out instead of synthesizing")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: %(default)s")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the picture's fingerprint is stale"
    )
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a cdk.json context value, as `cdk synth -c` does",
    )
    args = parser.parse_args(argv)
    try:
        overrides = parse_context(args.context)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        stacks = _stacks(args.assembly, overrides, prefix="diagram-")
    except (FileNotFoundError, SynthError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    model = build_model(stacks)
    fingerprint = model.fingerprint()
    shown = _shown(args.output)
    if args.check:
        drawn = read_fingerprint(args.output)
        if drawn != fingerprint:
            sys.stderr.write(
                f"{shown} is stale: run make diagram "
                f"(picture {drawn[:12] if drawn else 'has no fingerprint'}, "
                f"app {fingerprint[:12]})\n"
            )
            return 1
        sys.stdout.write(f"{shown} is current (fingerprint {fingerprint[:12]})\n")
        return 0
    render(model, args.output, title=_title(model))
    sys.stdout.write(
        f"wrote {shown}: {len(model.nodes)} nodes, {len(model.edges)} edges, "
        f"fingerprint {fingerprint[:12]}\n"
    )
    return 0


def _stacks(
    assembly: Path | None, overrides: Mapping[str, Any], *, prefix: str
) -> tuple[StackTemplate, ...]:
    """The stacks of `assembly`, or of the app synthesized into a temporary directory."""
    if assembly is not None:
        return load_assembly(assembly)
    with tempfile.TemporaryDirectory(prefix=prefix) as outdir:
        return synthesize(Path(outdir), overrides)


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
