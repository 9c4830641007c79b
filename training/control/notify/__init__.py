"""Alerts with context and pipeline news for Slack (AWS Chatbot) and e-mail: a boto3 Lambda."""
