"""ECR repository of model images: scanned on push, immutable tags, bounded, never losing live.

How the lifecycle policy spares those two: promotion moves the tags `live` and `rollback`
(the only mutable ones) onto the images the registry names. ECR evaluates lifecycle rules by
priority and never lets a lower-priority rule expire an image that a higher-priority rule
matched; rules 1 and 2 match `live` and `rollback` and keep up to 9,999 images each, which
means never expire. Rule 3 then keeps only the newest N of all other images.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_app import checkov
from training.contract import LIVE_TAG, ROLLBACK_TAG

PROTECTED_TAGS = (LIVE_TAG, ROLLBACK_TAG)
_KEEP_FOREVER = 9999


class ModelRepository(Construct):
    """The repository the trainer pushes to and the serving function pulls from."""

    def __init__(
        self, scope: Construct, id_: str, *, max_images: int, serving_function_prefix: str
    ) -> None:
        super().__init__(scope, id_)
        self.repository = ecr.Repository(
            self,
            "Repository",
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE_WITH_EXCLUSION,
            image_tag_mutability_exclusion_filters=[
                ecr.ImageTagMutabilityExclusionFilter.wildcard(tag) for tag in PROTECTED_TAGS
            ],
            encryption=ecr.RepositoryEncryption.AES_256,
            # Images hold every model ever served; a stack deletion must not take them.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        checkov.skip(
            self.repository,
            "CKV_AWS_51",
            "Tags are immutable except live and rollback (IMMUTABLE_WITH_EXCLUSION), which "
            "promotion must move; this check only knows plain IMMUTABLE.",
        )
        checkov.skip(
            self.repository,
            "CKV_AWS_136",
            "Images are encrypted at rest with AES-256; they hold the model and public code, "
            "nothing a customer key would protect better.",
        )
        # Lambda pulls a same-account image with its service principal, and needs the repository
        # policy to allow it unless the caller of CreateFunction/UpdateFunctionCode may set that
        # policy itself; the promoter may not (least privilege), so the policy is declared here,
        # scoped to this account's serving functions (their generated names start with the
        # api stack's name).
        stack = cdk.Stack.of(self)
        self.repository.add_to_resource_policy(
            iam.PolicyStatement(
                sid="LambdaPullsServingImages",
                principals=[iam.ServicePrincipal("lambda.amazonaws.com")],
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="lambda",
                            resource="function",
                            resource_name=f"{serving_function_prefix}*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        for priority, tag in enumerate(PROTECTED_TAGS, start=1):
            self.repository.add_lifecycle_rule(
                rule_priority=priority,
                description=f"never expire the image tagged {tag}",
                tag_status=ecr.TagStatus.TAGGED,
                tag_pattern_list=[tag],
                max_image_count=_KEEP_FOREVER,
            )
        self.repository.add_lifecycle_rule(
            rule_priority=len(PROTECTED_TAGS) + 1,
            description=f"keep the newest {max_images} other images",
            tag_status=ecr.TagStatus.ANY,
            max_image_count=max_images,
        )
