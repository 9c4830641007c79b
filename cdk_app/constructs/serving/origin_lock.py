"""Origin lock: only CloudFront may call the API, and API Gateway enforces it before Lambda.

CloudFront adds an `x-origin-key` header to every origin request. Every route of the HTTP API
has a Lambda REQUEST authorizer whose identity source is that header: a request without it is
refused by API Gateway with 401 without invoking anything, and a wrong key gets 403 from the
authorizer; the serving function never runs for either (AWS docs: http-api-lambda-authorizer).
The key is a Secrets Manager secret generated at deploy time; CloudFront's header takes it
through a `{{resolve:secretsmanager:...}}` dynamic reference, so its value never appears in a
template, in cdk.out or in the repository. Rotation: docs/runbook.md.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app import checkov
from cdk_app.constructs.shared.python_function import PythonFunction
from training.contract import ORIGIN_HEADER, ORIGIN_KEY_FIELD, Env

HEADER = ORIGIN_HEADER
# API Gateway keeps the authorizer's answer this long per key value (at most an hour): the
# function runs about once per key per period, not per request.
CACHE_TTL = cdk.Duration.minutes(5)


class OriginLock(Construct):
    """The shared secret, CloudFront's header value, and the authorizer that checks it."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        key_version: str,
        architecture: lambda_.Architecture,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            description=f"CloudFront -> API Gateway origin key ({HEADER})",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}",  # noqa: S106 - a JSON skeleton, not a password
                generate_string_key=ORIGIN_KEY_FIELD,
                exclude_punctuation=True,
                password_length=48,
            ),
        )
        cdk.Validations.of(self.secret).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="Rotating this key means changing CloudFront's header after the "
                "authorizer accepts the new key; the runbook's rotation does that without a "
                "failed request, which an automatic single-step rotation cannot.",
            )
        )
        checkov.skip(
            self.secret,
            "CKV_AWS_149",
            "Encrypted with the aws/secretsmanager key; only CloudFormation and the "
            "authorizer read it, so a customer key ($1/month) would guard nothing more.",
        )
        self.header_name = HEADER
        # A dynamic reference string, resolved by CloudFormation at deploy time. Naming a
        # version makes a rotation change the template, so CloudFormation re-reads the secret.
        self.header_value = cdk.SecretValue.secrets_manager(
            self.secret.secret_arn, json_field=ORIGIN_KEY_FIELD, version_id=key_version or None
        ).unsafe_unwrap()
        self.function = PythonFunction(
            self,
            "Authorizer",
            handler="training.control.origin_authorizer.handler",
            description="Origin lock: admits only requests carrying CloudFront's origin key",
            environment={Env.ORIGIN_SECRET_ARN: self.secret.secret_arn},
            architecture=architecture,
            log_retention_days=log_retention_days,
            timeout=cdk.Duration.seconds(5),
        )
        # GetSecretValue of this secret only (AWSCURRENT and AWSPREVIOUS).
        self.secret.grant_read(self.function.function)
        self.authorizer = authorizers.HttpLambdaAuthorizer(
            "OriginKey",
            self.function.function,
            authorizer_name="origin-key",
            identity_source=[f"$request.header.{HEADER}"],
            response_types=[authorizers.HttpLambdaResponseType.SIMPLE],
            results_cache_ttl=CACHE_TTL,
        )
