"""Origin lock: only CloudFront may call the API, and API Gateway itself enforces it.

CloudFront adds an `x-api-key` header to every origin request; every method requires a valid
key, so a direct call to the execute-api URL gets API Gateway's 403 and never invokes Lambda.
The key is a Secrets Manager secret generated at deploy time. The API key and CloudFront's
header take it through `{{resolve:secretsmanager:...}}` dynamic references, so its value never
appears in a template, in cdk.out or in the repository. Rotation: docs/runbook.md.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app import checkov

HEADER = "x-api-key"


class OriginLock(Construct):
    """The shared secret, the API key built from it, and the usage plan that admits it."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        api: apigw.RestApi,
        key_version: str,
        throttle_rate: int,
        throttle_burst: int,
    ) -> None:
        super().__init__(scope, id_)
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            description="CloudFront -> API Gateway origin key (x-api-key)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}",  # noqa: S106 - a JSON skeleton, not a password
                generate_string_key="key",
                exclude_punctuation=True,
                password_length=48,
            ),
        )
        cdk.Validations.of(self.secret).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="Rotating this key means changing API Gateway and CloudFront together; "
                "the runbook's two-key rotation does that without a failed request, which an "
                "automatic single-key rotation cannot.",
            )
        )
        checkov.skip(
            self.secret,
            "CKV_AWS_149",
            "Encrypted with the aws/secretsmanager key; only CloudFormation reads it, at "
            "deploy time, so a customer key ($1/month) would guard nothing more.",
        )
        self.header_name = HEADER
        # A dynamic reference string, resolved by CloudFormation at deploy time. Naming a
        # version makes a rotation change the template, so CloudFormation re-reads the secret.
        self.header_value = cdk.SecretValue.secrets_manager(
            self.secret.secret_arn, json_field="key", version_id=key_version or None
        ).unsafe_unwrap()
        self.key = apigw.ApiKey(
            self,
            "Key",
            description="CloudFront's origin key (value from the Secrets Manager secret)",
            value=self.header_value,
        )
        plan = api.add_usage_plan(
            "CloudFrontOnly",
            description="The only usage plan: CloudFront's key",
            throttle=apigw.ThrottleSettings(rate_limit=throttle_rate, burst_limit=throttle_burst),
            api_stages=[apigw.UsagePlanPerApiStage(api=api, stage=api.deployment_stage)],
        )
        self.plan_key = apigw.CfnUsagePlanKey(
            self,
            "PlanKey",
            key_id=self.key.key_id,
            key_type="API_KEY",
            usage_plan_id=plan.usage_plan_id,
        )
