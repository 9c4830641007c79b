"""The architecture as a graph, modelled from the cloud assembly: stacks, boxes and arrows.

Each box is a resource, or a group of like resources, in a synthesized template; each thin arrow
is a reference between two of them (Ref, Fn::GetAtt, Fn::Sub, Fn::GetStackOutput,
Fn::ImportValue) or an EventBridge rule, drawn from its pattern's source to its target. The
request and training paths (architecture_catalog.py) are laid over those arrows hop by hop; a
hop the templates do not show is a run-time hop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as `python scripts/diagram.py`: the app's packages sit in the repository root.
    sys.path.insert(0, str(ROOT))


from scripts.architecture_catalog import EVENT_SOURCES, PATHS, SHOWN, USER  # noqa: E402
from scripts.assembly import Ref, References, StackTemplate  # noqa: E402


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
