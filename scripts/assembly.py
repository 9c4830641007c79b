"""A small reader of the synthesized app (cdk.out): its stacks, templates and references.

`make diagram` and `make cost` read the same assembly, synthesized here as `cdk synth` would.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as `python scripts/diagram.py`: the app's packages sit in the repository root.
    sys.path.insert(0, str(ROOT))

from cdk_app.config import cdk_json_context  # noqa: E402

# What the CDK CLI adds to the context of every synth (tests/support.py passes the same).
CLI_CONTEXT: Final[Mapping[str, Any]] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
}

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
    return {**CLI_CONTEXT, **cdk_json_context(), **overrides}


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
