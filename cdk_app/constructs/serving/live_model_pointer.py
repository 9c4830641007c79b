"""The live-model SSM parameter: seeded once with the first deploy's model, then promotion's.

It lives in the pipeline stack because the api stack reads it when its change set is created
(cdk_app/constructs/serving/live_model_guard.py): a stack cannot read a parameter that it, or a
stack deployed after it, creates. CloudFormation writes it once (`Overwrite: false`, and
`ParameterAlreadyExists` ignored on every later deploy), so a deploy never moves it back.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from cdk_app.constructs.shared.sdk_call import DeployTimeCall


class LiveModelPointer(Construct):
    """Writes `parameter_name` = `seed_model_version` if it does not exist yet."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        parameter_name: str,
        seed_model_version: str,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        self.parameter_name = parameter_name
        seed = cr.AwsSdkCall(
            service="SSM",
            action="putParameter",
            parameters={
                "Name": parameter_name,
                "Value": seed_model_version,
                "Type": "String",
                "Overwrite": False,
                "Description": "Model version the API serves; promotion and rollback move it",
            },
            physical_resource_id=cr.PhysicalResourceId.of(parameter_name),
            # Written once: after that the pointer belongs to promotion, not to CloudFormation.
            ignore_error_codes_matching="ParameterAlreadyExists",
        )
        self.call = DeployTimeCall(
            self,
            "Seed",
            call=seed,
            statements=[
                iam.PolicyStatement(
                    actions=["ssm:PutParameter"],
                    resources=[
                        cdk.Stack.of(self).format_arn(
                            service="ssm",
                            resource="parameter",
                            resource_name=parameter_name.lstrip("/"),
                        )
                    ],
                )
            ],
            log_retention_days=log_retention_days,
        )
