"""One notification, rendered twice: an AWS Chatbot custom notification and plain e-mail text.

The Chatbot schema (version "1.0", source "custom", content, metadata) is AWS's:
https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html. SNS picks a
protocol's own text from a `MessageStructure=json` message: Chatbot's subscription gets the
custom notification (`default`, `https`), e-mail gets the readable text (`email`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# AWS access key ids (long-term AKIA, temporary ASIA); the secret key and session token the
# function runs with are redacted by value. A message repeats reasons other code wrote.
_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
REDACTED = "[redacted]"
# SNS e-mail subjects: at most 100 printable ASCII characters, no line breaks.
_SUBJECT_LIMIT = 100


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` without AWS key ids or the running function's own credentials."""
    env = os.environ if environ is None else environ
    for name in _SECRET_ENV:
        value = env.get(name, "")
        if len(value) >= 8:  # a blank or short value would blank out ordinary words
            text = text.replace(value, REDACTED)
    return _KEY_ID.sub(REDACTED, text)


@dataclass(frozen=True)
class Notification:
    """What one message says: a title, a description, facts, next steps and links."""

    title: str
    description: str
    event_type: str
    facts: Sequence[tuple[str, str]] = ()
    next_steps: Sequence[str] = ()
    links: Sequence[tuple[str, str]] = ()
    keywords: Sequence[str] = ()
    related_resources: Sequence[str] = ()
    thread_id: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)

    def chatbot(self) -> dict[str, Any]:
        """The AWS Chatbot custom notification (Slack markdown)."""
        lines = [self.description, ""]
        lines += [f"*{name}:* {value}" for name, value in self.facts]
        lines += [
            f"<{url}|{name}>" if "://" in url else f"{name}: `{url}`" for name, url in self.links
        ]
        metadata: dict[str, Any] = {
            "summary": self.title,
            "eventType": self.event_type,
            "relatedResources": list(self.related_resources),
            "additionalContext": dict(self.context),
        }
        if self.thread_id:
            metadata["threadId"] = self.thread_id
        return {
            "version": "1.0",
            "source": "custom",
            "content": {
                "textType": "client-markdown",
                "title": self.title,
                "description": "\n".join(lines).strip(),
                "nextSteps": list(self.next_steps),
                "keywords": list(self.keywords),
            },
            "metadata": metadata,
        }

    def text(self) -> str:
        """The same facts as plain text, for e-mail."""
        lines = [self.title, "", self.description, ""]
        lines += [f"{name}: {value}" for name, value in self.facts]
        if self.links:
            lines += ["", *(f"{name}: {url}" for name, url in self.links)]
        if self.next_steps:
            lines += ["", "Next steps:", *(f"{n}. {s}" for n, s in enumerate(self.next_steps, 1))]
        return "\n".join(lines).strip() + "\n"

    def subject(self) -> str:
        """A one-line, ASCII subject within SNS's limit."""
        plain = re.sub(r":[a-z_]+:\s*", "", self.title)  # Slack emoji codes mean nothing in mail
        ascii_only = plain.encode("ascii", "replace").decode().replace("\n", " ").strip()
        return ascii_only[:_SUBJECT_LIMIT] or "Iris ML"

    def publish_arguments(self, topic_arn: str) -> dict[str, str]:
        """sns:Publish arguments: one message per protocol, every text redacted."""
        custom = redact(json.dumps(self.chatbot(), ensure_ascii=False))
        message = {"default": custom, "https": custom, "email": redact(self.text())}
        return {
            "TopicArn": topic_arn,
            "Subject": redact(self.subject()),
            "MessageStructure": "json",
            "Message": json.dumps(message, ensure_ascii=False),
        }
