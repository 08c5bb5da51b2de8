"""Node prices: from price facts to per-resource unit prices (OpenCost's model).

Which price a node gets, first match wins (its ``price_source``):

- ``price_sheet``: a custom price sheet (OpenCost's custom-pricing CSV);
- ``market``: a price the node's facts carry (a spot market price, per-resource prices);
- ``catalogue``: the instance type's on-demand price; a spot node without a market price
  gets it too, as OpenCost's AWS provider does without a spot data feed
  (``pkg/cloud/aws/provider.go``: the on-demand public price is used for spot nodes
  when the spot feed has no price for them);
- ``catalogue_spot_estimate``: with ``spot_fallback="estimate"``, a spot node without
  a market price at the catalogue price times OpenCost's default spot/on-demand CPU
  ratio (0.006655 / 0.031611);
- ``default``: a node nobody prices (on-prem, bare metal, no instance-type label, an
  instance type missing from the catalogue) gets OpenCost's default unit prices
  (``configs/default.json``: 0.031611 USD per core-hour, 0.004237 USD per GiB-hour,
  0.95 USD per GPU-hour).

When only a node's total is known it is split with OpenCost's ratio (``unit_prices``).
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

import polars as pl

from kubeopera.models import CapacityType, NodePrice
from kubeopera.models.catalogue import REGION as CATALOGUE_REGION
from kubeopera.models.catalogue import Catalogue
from kubeopera.models.price_sheet import PriceSheet
from kubeopera.streams.default_prices import DefaultPrices
from kubeopera.streams.frames import TIME

GIB = 1024.0**3

SpotFallback = Literal["on-demand", "estimate"]


class PriceSource(StrEnum):
    """Where a node's price came from (column ``price_source``)."""

    PRICE_SHEET = "price_sheet"
    MARKET = "market"
    CATALOGUE = "catalogue"
    CATALOGUE_SPOT_ESTIMATE = "catalogue_spot_estimate"
    DEFAULT = "default"


@dataclass(frozen=True)
class NodePricing:
    """What the pipeline knows of one node's price from one price fact.

    Either ``usd_per_hour`` (a total, split over the node's capacity when costed) or both
    per-resource prices are set. ``gpu_usd_per_hour`` is None when no source names a GPU
    price. ``observed_at`` is when the fact became true: a scrape is costed with the
    fact valid at its time.
    """

    cluster: str
    node: str
    instance_type: str
    capacity_type: str
    region: str
    zone: str
    usd_per_hour: float | None
    cpu_usd_per_core_hour: float | None
    ram_usd_per_gib_hour: float | None
    gpu_usd_per_hour: float | None
    price_source: PriceSource
    price_region: str  # whose prices: the node's region, or the catalogue's; "" for defaults
    observed_at: datetime


@dataclass(frozen=True)
class Pricer:
    """Resolves node price facts: the catalogue, the price sheet, the default prices and
    the spot fallback, configured once (settings ``pricing``)."""

    catalogue: Catalogue = field(default_factory=Catalogue.builtin)
    defaults: DefaultPrices = field(default_factory=DefaultPrices)
    sheet: PriceSheet | None = None
    spot_fallback: SpotFallback = "on-demand"

    def resolve(self, price: NodePrice) -> NodePricing:
        """The node's price by the first source that knows it (see the module doc)."""
        spot = price.capacity_type == CapacityType.SPOT
        custom = (
            self.sheet.node_price(price.node, price.region, price.instance_type)
            if self.sheet
            else None
        )
        known = self.catalogue.get(price.instance_type)
        total: float | None
        cpu, ram = price.cpu_usd_per_core_hour, price.ram_usd_per_gib_hour
        region = price.region  # a price sheet's or the market's price is the node's own
        if custom is not None:
            total, cpu, ram, source = custom, None, None, PriceSource.PRICE_SHEET
        elif price.usd_per_hour is not None or (cpu is not None and ram is not None):
            total, source = price.usd_per_hour, PriceSource.MARKET
        elif known is not None and known.usd_per_hour is not None:
            total, cpu, ram, source = known.usd_per_hour, None, None, PriceSource.CATALOGUE
            region = CATALOGUE_REGION
            if spot and self.spot_fallback == "estimate":
                total *= self.defaults.spot_cpu / self.defaults.cpu
                source = PriceSource.CATALOGUE_SPOT_ESTIMATE
        else:
            total, source, region = None, PriceSource.DEFAULT, ""
            cpu = self.defaults.spot_cpu if spot else self.defaults.cpu
            ram = self.defaults.spot_ram if spot else self.defaults.ram
        return NodePricing(
            cluster=price.cluster,
            node=price.node,
            instance_type=price.instance_type,
            capacity_type=str(price.capacity_type),
            region=price.region,
            zone=price.zone,
            usd_per_hour=total,
            cpu_usd_per_core_hour=cpu,
            ram_usd_per_gib_hour=ram,
            gpu_usd_per_hour=price.gpu_usd_per_hour,
            price_source=source,
            price_region=region,
            observed_at=price.observed_at,
        )


PRICE_SCHEMA = pl.Schema(
    {
        "cluster": pl.String(),
        "node": pl.String(),
        "instance_type": pl.String(),
        "capacity_type": pl.String(),
        "region": pl.String(),
        "zone": pl.String(),
        "usd_per_hour": pl.Float64(),
        "cpu_usd_per_core_hour": pl.Float64(),
        "ram_usd_per_gib_hour": pl.Float64(),
        "gpu_usd_per_hour": pl.Float64(),
        "price_source": pl.String(),
        "price_region": pl.String(),
        "observed_at": TIME,
    }
)


def pricing_frame(prices: list[NodePricing]) -> pl.DataFrame:
    """Resolved node prices as rows (table ``node_prices``; the cost join's price side)."""
    return pl.DataFrame(
        [[getattr(p, column) for column in PRICE_SCHEMA] for p in prices],
        schema=PRICE_SCHEMA,
        orient="row",
    )


def unit_prices(nodes: pl.LazyFrame, defaults: DefaultPrices) -> pl.LazyFrame:
    """Add ``cpu_price`` (USD per core-hour), ``ram_price`` (USD per GiB-hour) and
    ``gpu_price`` (USD per GPU-hour) to node scrapes (columns of ``pricing_frame`` plus
    ``capacity_cpu``, ``capacity_memory_bytes``, ``capacity_gpus``).

    Explicit per-resource prices win. Otherwise the total is split as OpenCost's
    ``pkg/costmodel/costmodel.go`` does: a known GPU price times the GPUs is taken off
    first, and the rest is split over CPU and RAM with the default prices' ratio
    r = cpu / ram: ``ram = rest / (vcpu * r + ram_gib)``, ``cpu = ram * r``, so that
    ``vcpu * cpu + ram_gib * ram + gpus * gpu == total`` exactly. A GPU node whose
    GPU price nobody gives joins the split at the default GPU price (every default
    price is scaled by ``total / (vcpu * cpu + ram_gib * ram + gpus * gpu)``), which
    still leaves the CPU and RAM of a GPU node cheaper than the default GPU a price.
    A total below its known GPU price leaves CPU and RAM at 0.
    """
    gpu_known = pl.col("gpu_usd_per_hour").is_not_null()
    gpu_weight = pl.col("gpu_usd_per_hour").fill_null(defaults.gpu)
    ram_gib = pl.col("capacity_memory_bytes") / GIB
    ratio = defaults.cpu / defaults.ram
    rest = pl.max_horizontal(
        pl.col("usd_per_hour") - pl.col("capacity_gpus") * gpu_weight, pl.lit(0.0)
    )
    ram_after_gpu = rest / (pl.col("capacity_cpu") * ratio + ram_gib)
    scale = pl.col("usd_per_hour") / (
        pl.col("capacity_cpu") * defaults.cpu
        + ram_gib * defaults.ram
        + pl.col("capacity_gpus") * gpu_weight
    )
    explicit = (
        pl.col("cpu_usd_per_core_hour").is_not_null() & pl.col("ram_usd_per_gib_hour").is_not_null()
    )
    subtract = gpu_known | (pl.col("capacity_gpus") == 0)
    return nodes.with_columns(
        cpu_price=pl.when(explicit)
        .then(pl.col("cpu_usd_per_core_hour"))
        .when(subtract)
        .then(ram_after_gpu * ratio)
        .otherwise(scale * defaults.cpu),
        ram_price=pl.when(explicit)
        .then(pl.col("ram_usd_per_gib_hour"))
        .when(subtract)
        .then(ram_after_gpu)
        .otherwise(scale * defaults.ram),
        gpu_price=pl.when(explicit | subtract).then(gpu_weight).otherwise(scale * gpu_weight),
    )
