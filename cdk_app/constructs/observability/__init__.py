"""Observability: alarms, the alarm topic, Slack, the dashboard, cost and registry metrics."""
