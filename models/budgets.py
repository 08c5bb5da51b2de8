"""Budgets: how much a team, namespace, cluster or label may spend per week or month
(topic ``budgets``, compacted: the latest definition of each budget is kept)."""

from datetime import datetime
from enum import StrEnum

from pydantic import Field, field_validator

from kubeopera.models.base import Contract, UtcDatetime


class BudgetPeriod(StrEnum):
    WEEKLY = "weekly"  # Monday 00:00 UTC to the next Monday
    MONTHLY = "monthly"  # the first of the month 00:00 UTC to the next first


class BudgetScope(StrEnum):
    TEAM = "team"
    NAMESPACE = "namespace"  # ``cluster/namespace``
    CLUSTER = "cluster"
    LABEL = "label"  # ``key=value``: the pods with that label (a key of cost.series_labels)


class Budget(Contract):
    """One budget: ``amount`` USD per ``period`` for the cost of ``scope`` ``target``
    (a team, ``cluster/namespace``, a cluster, ``key=value`` of a pod label).
    ``thresholds``: shares of the amount at which actual and forecast spend open a
    finding, once per period each. ``deleted``: the budget is withdrawn."""

    scope: BudgetScope
    target: str = Field(min_length=1)
    period: BudgetPeriod
    amount: float = Field(gt=0, allow_inf_nan=False)
    thresholds: list[float] = Field(default_factory=lambda: [0.8, 1.0], min_length=1)
    recorded_at: UtcDatetime
    deleted: bool = False

    @field_validator("thresholds")
    @classmethod
    def _shares(cls, thresholds: list[float]) -> list[float]:
        if any(not 0 < t <= 10 for t in thresholds):
            raise ValueError(
                "thresholds are shares of the amount, each above 0 and at most 10 (0.8 = 80 %)"
            )
        return sorted(set(thresholds))

    def name(self) -> str:
        """``scope/target/period``: what identifies a budget (setting it again replaces it)."""
        return f"{self.scope}/{self.target}/{self.period}"

    def key(self) -> str:
        return self.name()

    def event_time(self) -> datetime:
        return self.recorded_at
