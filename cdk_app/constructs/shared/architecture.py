"""The Lambda architecture named by the config's `architecture` knob."""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_


def lambda_architecture(name: str) -> lambda_.Architecture:
    """`arm64` (Graviton, about 20 % cheaper per GB-second) or `x86_64`."""
    return lambda_.Architecture.ARM_64 if name == "arm64" else lambda_.Architecture.X86_64
