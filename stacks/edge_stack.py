"""Edge stack (us-east-1, only with waf_enabled): the CloudFront web ACL, which WAF keeps there."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import AppConfig
from cdk_app.constructs.serving.web_acl import CloudFrontWebAcl


class EdgeStack(cdk.Stack):
    """Holds what CloudFront needs from us-east-1."""

    def __init__(self, scope: Construct, id_: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.web_acl = CloudFrontWebAcl(
            self, "Waf", name=config.stack_prefix, rate_limit=config.waf_rate_limit
        ).web_acl
