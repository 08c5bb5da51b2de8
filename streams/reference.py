"""The reference data the processors share: node prices and the pods, each as a
timeline, so a scrape is costed with the facts valid at its time; and the drift
baselines (``streams.baselines``).

Both engines keep one: the embedded engine feeds it from its batches, each Faust worker
from its own full read of the ``prices`` and ``objects`` topics (a node's metrics and
its pods travel on different partitions, so no partition assignment could give one
worker both).
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

import polars as pl

from kubeopera.models import (
    Baseline,
    Budget,
    Contract,
    Finding,
    MetricBatch,
    NodePrice,
    ObjectChange,
    Topic,
)
from kubeopera.streams.baselines import Baselines, PeerGroup, peer_baselines
from kubeopera.streams.inventory import BEGINNING, Inventory
from kubeopera.streams.pricing import NodePricing, Pricer, pricing_frame
from kubeopera.streams.spend import Spend
from kubeopera.streams.timeline import Timeline, prune, record


def _same_price(a: NodePricing, b: NodePricing) -> bool:
    """Equal but for the time observed: a repeated fact changes nothing."""
    return replace(a, observed_at=b.observed_at) == b


class Reference:
    """Every node's price timeline and the pod inventory, with cached frame views;
    every object's drift baselines; the budgets; the findings open when an embedded run
    began."""

    def __init__(self, pricer: Pricer, team_label: str = "team") -> None:
        self.pricer = pricer
        self.inventory = Inventory(team_label)
        self.baselines = Baselines()
        self.peer_groups: list[PeerGroup] = []
        """Clusters whose first one's live objects are the others' peer baselines (set
        by the drift processor: ``processor.PreparesReference``)."""
        self.budgets: dict[str, Budget] = {}
        """Every budget by name (``Budget.name``), the latest definition of each; those
        ``deleted`` are not in force."""
        self._budgets_by_target: dict[tuple[str, str], list[Budget]] = {}
        self.spends: dict[str, dict[str, Spend]] = {}
        """Budget targets' spend so far by cluster (``team/web`` -> cluster -> spend), as
        the store holds it: an embedded run, whose processors start without state, loads
        it so that a budget's period goes on from there."""
        self.open_findings: dict[str, Finding] = {}
        """Findings the store holds open, by fingerprint: an embedded run, whose
        processors start without state, loads them so that they resolve."""
        self._generations: Counter[Topic] = Counter()
        self._prices: dict[tuple[str, str], Timeline[NodePricing]] = {}
        self._pricing: pl.DataFrame | None = None

    def apply_prices(self, prices: Iterable[NodePrice]) -> list[NodePricing]:
        """Resolve and keep each fact from its time; returns them resolved."""
        resolved = [self.pricer.resolve(price) for price in prices]
        for pricing in resolved:
            timeline = self._prices.setdefault((pricing.cluster, pricing.node), [])
            if record(timeline, pricing.observed_at, pricing, _same_price):
                self._pricing = None
        return resolved

    def apply_changes(self, changes: Iterable[ObjectChange]) -> None:
        """Pods and namespaces into the inventory; the peer groups' leading objects as
        peer baselines."""
        batch = list(changes)
        self.inventory.apply(batch)
        if self.peer_groups:
            peers = [b for c in batch for b in peer_baselines(c, self.peer_groups)]
            if self.baselines.apply(peers):
                self._generations[Topic.BASELINES] += 1

    def keeps(self, cluster: str, kind: str) -> bool:
        """Whether an object of ``kind`` in ``cluster`` is reference data: pods and
        namespaces, and the peer groups' leading objects."""
        return kind in ("Pod", "Namespace") or any(g.leads(cluster, kind) for g in self.peer_groups)

    def apply(self, messages: Iterable[Contract]) -> None:
        """Keep what messages of the ``prices``, ``objects``, ``baselines`` and ``budgets``
        topics say; others are ignored."""
        batch = list(messages)
        self.apply_prices(m for m in batch if isinstance(m, NodePrice))
        self.apply_changes(m for m in batch if isinstance(m, ObjectChange))
        if self.baselines.apply(m for m in batch if isinstance(m, Baseline)):
            self._generations[Topic.BASELINES] += 1
        self.apply_budgets(m for m in batch if isinstance(m, Budget))

    def apply_budgets(self, budgets: Iterable[Budget]) -> None:
        """Keep the latest definition of each budget (a deletion too: an older
        definition read again does not bring the budget back)."""
        for budget in budgets:
            known = self.budgets.get(budget.name())
            if known is None or known.recorded_at <= budget.recorded_at:
                self.budgets[budget.name()] = budget
        self._budgets_by_target = {}
        for name in sorted(self.budgets):
            budget = self.budgets[name]
            self._budgets_by_target.setdefault((budget.scope, budget.target), []).append(budget)

    def budgets_for(self, scope: str, target: str) -> list[Budget]:
        """The budgets of one target (deleted ones too), by name."""
        return self._budgets_by_target.get((scope, target), [])

    def generation(self, topic: Topic) -> int:
        """How many times the reference data of ``topic`` has changed (counted for
        ``baselines``, which processors compare their state with:
        ``processor.ComparesWithReference``)."""
        return self._generations[topic]

    def ready(self, message: Contract) -> bool:
        """Whether the reference data ``message`` needs has arrived: a scrape's node
        has a price fact (prices and metrics travel on separate topics, so a node's
        first scrapes may overtake its price)."""
        if isinstance(message, MetricBatch):
            return (message.cluster, message.node) in self._prices
        return True

    def pricing(self) -> pl.DataFrame:
        """Every node's price facts (``pricing_frame`` columns), with ``applies_from``:
        a fact's time, except that a node's first fact also prices what precedes it
        (BEGINNING). Rebuilt only after a change."""
        if self._pricing is None:
            facts = [
                (BEGINNING if index == 0 else at, pricing)
                for key in sorted(self._prices)
                for index, (at, pricing) in enumerate(self._prices[key])
            ]
            self._pricing = pricing_frame([p for _, p in facts]).with_columns(
                applies_from=pl.Series([at for at, _ in facts], dtype=pl.Datetime("ms", "UTC"))
            )
        return self._pricing

    def versions(self) -> pl.DataFrame:
        return self.inventory.versions()

    def forget_before(self, horizon: datetime) -> None:
        """Scrapes before ``horizon`` are no longer admissible: drop what only they need."""
        self.inventory.forget_before(horizon)
        self.baselines.forget_before(horizon)
        for timeline in self._prices.values():
            before = len(timeline)
            prune(timeline, horizon)
            if len(timeline) != before:
                self._pricing = None
