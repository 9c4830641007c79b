"""What the commands that talk to the deployed stacks share: how they word an error."""

from __future__ import annotations

from training.aws import StackOutputError, error_reason
from training.control.promotion_services import PromotionError
from training.registry import RegistryError


def failure(err: BaseException) -> str:
    """An error's one-line reason: ours carry their message, AWS's their code and message."""
    if isinstance(err, PromotionError | RegistryError | StackOutputError):
        return str(err)
    return error_reason(err)
