"""Alerts with context and pipeline news, for Slack (AWS Chatbot) and e-mail.

Runs in a Lambda (stdlib + boto3). The names below are shared with the CDK construct that
deploys it (cdk_app/constructs/observability/alert_enricher.py), so both read them from here.
"""

from __future__ import annotations

# Environment of the enricher function.
TOPIC_ARN = "TOPIC_ARN"
REGISTRY_TABLE = "REGISTRY_TABLE"
DASHBOARD_NAME = "DASHBOARD_NAME"
ALARM_RUNBOOK = "ALARM_RUNBOOK"  # JSON list of [alarm name, runbook anchor]
RUNBOOK_URL = "RUNBOOK_URL"

# The runbook, repository-relative: the project publishes no docs site, so a message names the
# file and anchor to open in the checkout or the repository browser, not a URL that may not exist.
DEFAULT_RUNBOOK = "docs/runbook.md"
ALARMS_SECTION = "alarms-what-they-mean-first-three-things-to-check"

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
DEPLOYMENT_STATE_CHANGE = "CodeDeploy Deployment State-change Notification"
DEPLOYMENT_ENDS = ("SUCCESS", "FAILURE", "STOP")
# Registry audit events that are news (the stream filter and the handler agree on these).
NEWS_EVENTS = ("run-finished", "promoted", "rolled-back", "released")


def runbook_anchor(alarm_id: str) -> str:
    """The runbook anchor of an alarm, from its construct id (`Api5xxRate` -> `api5xxrate`).

    The five dead-letter alarms share one row of the runbook's table.
    """
    if alarm_id.endswith("DeadLetters"):
        return "deadletters"
    return alarm_id.lower()
