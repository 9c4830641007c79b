"""A monthly AWS cost budget that warns at 80% and 100% of its amount."""

from __future__ import annotations

from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_sns as sns
from constructs import Construct

THRESHOLDS_PERCENT = (80, 100)


class MonthlyBudget(Construct):
    """Actual monthly cost against `amount_usd`; alerts go to the alarm topic."""

    def __init__(self, scope: Construct, id_: str, *, amount_usd: int, topic: sns.ITopic) -> None:
        super().__init__(scope, id_)
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=amount_usd, unit="USD"),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type="ACTUAL",
                        comparison_operator="GREATER_THAN",
                        threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=[
                        budgets.CfnBudget.SubscriberProperty(
                            subscription_type="SNS", address=topic.topic_arn
                        )
                    ],
                )
                for percent in THRESHOLDS_PERCENT
            ],
        )
