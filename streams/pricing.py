"""Node prices: from price facts to per-resource unit prices (OpenCost's model).

A node's total hourly price comes from its price facts or, failing that, from the
instance-type catalogue. When only the total is known it is split with OpenCost's
ratio: with r = default CPU price / default RAM price, ``ram = total / (vcpu * r +
ram_gib)`` and ``cpu = ram * r``, so that ``vcpu * cpu + ram_gib * ram == total``
exactly (GPUs join the split by the default GPU price, see ``unit_prices``).
"""

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from kubeopera.models import CapacityType, MetricBatch, NodePrice
from kubeopera.models.catalogue import Catalogue
from kubeopera.models.price_sheet import PriceSheet
from kubeopera.streams.default_prices import DefaultPrices
from kubeopera.streams.frames import TIME

GIB = 1024.0**3


class PricingError(ValueError):
    """A node cannot be priced; the message says what to add."""


@dataclass(frozen=True)
class NodePricing:
    """What the pipeline knows of one node's price, resolved once when the facts arrive."""

    cluster: str
    node: str
    instance_type: str
    capacity_type: str
    region: str
    zone: str
    usd_per_hour: float | None
    cpu_usd_per_core_hour: float | None
    ram_usd_per_gib_hour: float | None
    gpu_usd_per_hour: float
    observed_at: datetime


def resolve(
    price: NodePrice,
    catalogue: Catalogue,
    defaults: DefaultPrices,
    sheet: PriceSheet | None = None,
) -> NodePricing:
    """The node's total price: the custom price sheet's, else the facts', else the
    catalogue's (spot at OpenCost's spot/on-demand CPU ratio)."""
    custom = sheet.node_price(price.node, price.region, price.instance_type) if sheet else None
    total = custom if custom is not None else price.usd_per_hour
    explicit_split = (
        price.cpu_usd_per_core_hour is not None and price.ram_usd_per_gib_hour is not None
    )
    if total is None and not explicit_split:
        known = catalogue.get(price.instance_type)
        if known is None or known.usd_per_hour is None:
            raise PricingError(
                f"node {price.cluster}/{price.node}: instance type {price.instance_type!r} is not "
                f"in the catalogue ({catalogue.source}) and its price facts carry no price; "
                "load a fuller catalogue (pricing.catalogue_path), price it in a price sheet "
                "(pricing.price_sheet_path) or send usd_per_hour"
            )
        total = known.usd_per_hour
        if price.capacity_type == CapacityType.SPOT:
            total *= defaults.spot_cpu / defaults.cpu
    return NodePricing(
        cluster=price.cluster,
        node=price.node,
        instance_type=price.instance_type,
        capacity_type=str(price.capacity_type),
        region=price.region,
        zone=price.zone,
        usd_per_hour=total,
        cpu_usd_per_core_hour=price.cpu_usd_per_core_hour,
        ram_usd_per_gib_hour=price.ram_usd_per_gib_hour,
        gpu_usd_per_hour=(
            price.gpu_usd_per_hour if price.gpu_usd_per_hour is not None else defaults.gpu
        ),
        observed_at=price.observed_at,
    )


def unpriced_reason(batch: MetricBatch) -> str:
    """Why a scrape of a node nobody priced cannot be allocated."""
    return (
        f"no price for node {batch.cluster}/{batch.node}: the node is unknown or its "
        "instance type could not be priced (see the node's price dead letter)"
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
    """Add cpu/ram/gpu unit prices to node scrapes (columns of ``pricing_frame`` + capacity).

    Explicit per-resource prices win. Otherwise the total is split over the scrape's
    capacity in proportion to the default prices: every unit price is the default one
    times ``total / (vcpu * cpu + ram_gib * ram + gpus * gpu)``. Without GPUs this is
    exactly OpenCost's ratio split; with GPUs the GPU share scales alike, so a GPU node
    cheaper than the default GPU price still leaves its CPU and RAM a price.
    """
    gpu_weight = pl.col("gpu_usd_per_hour")
    scale = pl.col("usd_per_hour") / (
        pl.col("capacity_cpu") * defaults.cpu
        + pl.col("capacity_memory_bytes") / GIB * defaults.ram
        + pl.col("capacity_gpus") * gpu_weight
    )
    explicit = (
        pl.col("cpu_usd_per_core_hour").is_not_null() & pl.col("ram_usd_per_gib_hour").is_not_null()
    )
    return nodes.with_columns(
        cpu_price=pl.when(explicit)
        .then(pl.col("cpu_usd_per_core_hour"))
        .otherwise(scale * defaults.cpu),
        ram_price=pl.when(explicit)
        .then(pl.col("ram_usd_per_gib_hour"))
        .otherwise(scale * defaults.ram),
        gpu_price=pl.when(explicit).then(gpu_weight).otherwise(scale * gpu_weight),
    )
