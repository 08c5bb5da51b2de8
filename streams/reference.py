"""The reference data every metric batch is costed against: node prices and the pods.

Both engines keep one: the embedded runner feeds it from its batches, each Faust worker
from its own full read of the ``prices`` and ``objects`` topics (a node's metrics and
its pods travel on different partitions, so no partition assignment could give one
worker both).
"""

from collections.abc import Iterable
from datetime import datetime

import polars as pl

from kubeopera.models import NodePrice, ObjectChange
from kubeopera.models.catalogue import Catalogue
from kubeopera.models.price_sheet import PriceSheet
from kubeopera.streams.default_prices import DefaultPrices
from kubeopera.streams.inventory import Inventory
from kubeopera.streams.pricing import (
    NodePricing,
    PricingError,
    pricing_frame,
    resolve,
)


def resolve_all(
    prices: Iterable[NodePrice],
    catalogue: Catalogue,
    defaults: DefaultPrices,
    sheet: PriceSheet | None = None,
) -> tuple[list[NodePricing], list[tuple[NodePrice, str]]]:
    """Resolved prices, and the price facts that cannot be priced with the reason."""
    resolved, rejected = [], []
    for price in prices:
        try:
            resolved.append(resolve(price, catalogue, defaults, sheet))
        except PricingError as error:
            rejected.append((price, str(error)))
    return resolved, rejected


class Reference:
    """Latest resolved price per node and the pod inventory, with cached frame views."""

    def __init__(
        self,
        catalogue: Catalogue,
        defaults: DefaultPrices,
        price_sheet: PriceSheet | None = None,
        team_label: str = "team",
    ) -> None:
        self.catalogue = catalogue
        self.defaults = defaults
        self.price_sheet = price_sheet
        self.inventory = Inventory(team_label)
        self._prices: dict[tuple[str, str], NodePricing] = {}
        self._pricing: pl.DataFrame | None = None

    def apply_prices(
        self, prices: Iterable[NodePrice]
    ) -> tuple[list[NodePricing], list[tuple[NodePrice, str]]]:
        """Resolve and keep; returns what ``resolve_all`` does."""
        resolved, rejected = resolve_all(prices, self.catalogue, self.defaults, self.price_sheet)
        for pricing in resolved:
            self._prices[(pricing.cluster, pricing.node)] = pricing
        if resolved:
            self._pricing = None
        return resolved, rejected

    def apply_changes(self, changes: Iterable[ObjectChange]) -> None:
        self.inventory.apply(changes)

    def priced(self, cluster: str, node: str) -> bool:
        return (cluster, node) in self._prices

    def pricing(self) -> pl.DataFrame:
        """Every known node price, one row per node (rebuilt only after a change)."""
        if self._pricing is None:
            self._pricing = pricing_frame([self._prices[k] for k in sorted(self._prices)])
        return self._pricing

    def containers(self) -> pl.DataFrame:
        return self.inventory.containers()

    def forget_deleted(self, before: datetime) -> None:
        """Pods deleted before ``before`` can receive no more admissible scrapes."""
        self.inventory.forget_deleted(before)
