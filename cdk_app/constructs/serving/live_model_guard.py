"""A template rule: the api stack deploys only when its image carries the registry's live model.

The image asset bakes `lambda_image/model/`. A laptop's model there (from `make model`) would
replace the live one on the next deploy, so the template compares the baked model version with
the live-model SSM parameter, which promotion moves. CloudFormation evaluates rules when it
creates the change set (before any resource changes), reading the SSM parameter type at that
moment; a mismatch refuses the whole deploy with the message below. `make deploy` fetches the
live model into `lambda_image/model/` first, so it always passes.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct


class LiveModelGuard(Construct):
    """An SSM-typed template parameter and the rule that checks it against the baked model."""

    def __init__(
        self, scope: Construct, id_: str, *, parameter_name: str, model_version: str
    ) -> None:
        super().__init__(scope, id_)
        self.parameter = cdk.CfnParameter(
            self,
            "LiveModelVersion",
            type="AWS::SSM::Parameter::Value<String>",
            default=parameter_name,
            description="Name of the SSM parameter holding the live model version "
            "(leave the default)",
        )
        self.rule = cdk.CfnRule(
            self,
            "ServeTheLiveModel",
            assertions=[
                cdk.CfnRuleAssertion(
                    assert_=cdk.Fn.condition_equals(self.parameter.value_as_string, model_version),
                    assert_description=(
                        f"lambda_image/model holds model {model_version}, which is not the live "
                        "model: deploy with `make deploy` (it fetches the live model first) or "
                        "run `python -m training fetch-live` before `cdk deploy`"
                    ),
                )
            ],
        )
