"""The cost processor's settings (the ``cost:`` section): a module of its own, so that the
settings can read them without loading the processors (and polars)."""

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CostSettings(BaseModel):
    """The ``cost:`` section: the processor's own settings and the reports' defaults."""

    model_config = ConfigDict(extra="forbid")

    team_label: str = "team"
    allowed_lateness_minutes: float = Field(10, ge=0)
    idle: Literal["none", "weighted"] = "none"
    idle_by: Literal["cluster", "node"] = "cluster"
    shared_namespaces: list[str] = Field(default_factory=list)
    shared_split: Literal["even", "weighted"] = "weighted"
    shared_over: Literal["all", "cluster"] = "all"
    series_labels: list[str] = Field(default_factory=list)
    """Pod label keys whose values get an hourly cost series of their own (for budgets
    by label, ``kubeopera budgets set --label KEY=VALUE``, and their anomalies)."""

    @property
    def allowed_lateness(self) -> timedelta:
        """``allowed_lateness_minutes`` as a duration."""
        return timedelta(minutes=self.allowed_lateness_minutes)
