"""Cost allocation (OpenCost's model), a pure function over a batch of node scrapes.

For every container sample: CPU core-hours = max(request, usage) x hours, RAM GiB-hours
likewise on the working set, GPU hours = GPUs requested x hours; cost = those x the
node's unit prices. Idle = node cost - allocated cost, per node and window. Should the
allocations of a scrape exceed the node's capacity (usage above request on a full
node), they are scaled down to the capacity so that idle is never negative and
allocations + idle == node cost holds in every window.
"""

from datetime import datetime

import polars as pl

from kubeopera.streams.default_prices import DefaultPrices
from kubeopera.streams.frames import LABEL_TYPE, TIME
from kubeopera.streams.inventory import POD_SCHEMA
from kubeopera.streams.pricing import GIB, unit_prices

IDLE = "__idle__"

SCRAPE_KEY = ["cluster", "node", "window_start"]
HOUR_KEY = ["window_start", "cluster", "node", "namespace", "pod", "pod_uid", "container"]
ATTRIBUTES = [
    "controller_kind",
    "controller_name",
    "team",
    "labels",
    "annotations",
    "instance_type",
    "capacity_type",
    "is_idle",
]
MEASURES = [
    "samples",
    "hours",
    "cpu_request_core_hours",
    "cpu_usage_core_hours",
    "cpu_core_hours",
    "ram_request_gib_hours",
    "ram_usage_gib_hours",
    "ram_gib_hours",
    "gpu_hours",
    "cpu_cost",
    "ram_cost",
    "gpu_cost",
    "total_cost",
]
COST_COLUMNS = HOUR_KEY + ATTRIBUTES + MEASURES


def _hours() -> pl.Expr:
    return (pl.col("window_end") - pl.col("window_start")).dt.total_milliseconds() / 3_600_000.0


def allocate(
    samples: pl.DataFrame,
    scrapes: pl.DataFrame,
    pricing: pl.DataFrame,
    containers: pl.DataFrame,
    defaults: DefaultPrices,
) -> pl.DataFrame:
    """Hourly cost rows (``COST_COLUMNS``, float measures) of the given scrapes."""
    return to_float(allocate_exact(samples, scrapes, pricing, containers, defaults))


def allocate_exact(
    samples: pl.DataFrame,
    scrapes: pl.DataFrame,
    pricing: pl.DataFrame,
    containers: pl.DataFrame,
    defaults: DefaultPrices,
) -> pl.DataFrame:
    """Hourly cost rows of the given scrapes, idle rows included, with exact (decimal)
    measures: partial sums that windows add up later stay exact until an hour closes, so
    how the input was split into batches never changes a bit of the result.

    ``pricing`` must hold every scraped node (see ``pricing.pricing_frame``);
    ``containers`` is the inventory's per-container view (``POD_SCHEMA``). Samples are
    costed one by one and summed to the hour before the descriptive attributes
    (controller, team, labels) are joined on, so those travel once per hour, not per
    sample.
    """
    container_key = ["cluster", "pod_uid", "container"]
    requests = containers.lazy().select(
        *container_key, "cpu_request_cores", "memory_request_bytes", "gpu_request"
    )
    used = (
        samples.lazy()
        .select(*SCRAPE_KEY, *HOUR_KEY[3:], "cpu_cores", "memory_working_set_bytes")
        .join(requests, on=container_key, how="left")
        .with_columns(
            pl.col("cpu_request_cores", "memory_request_bytes", "gpu_request").fill_null(0.0)
        )
        .with_columns(
            cpu_alloc=pl.max_horizontal("cpu_request_cores", "cpu_cores"),
            ram_alloc=pl.max_horizontal("memory_request_bytes", "memory_working_set_bytes"),
            gpu_alloc=pl.col("gpu_request"),
        )
    )
    totals = used.group_by(SCRAPE_KEY).agg(
        sum_cpu=exact_sum("cpu_alloc").cast(pl.Float64),
        sum_ram=exact_sum("ram_alloc").cast(pl.Float64),
        sum_gpu=exact_sum("gpu_alloc").cast(pl.Float64),
    )
    nodes = unit_prices(
        scrapes.lazy()
        .with_columns(hours=_hours())
        .join(pricing.lazy().drop("region", "zone", "observed_at"), on=["cluster", "node"])
        .join(totals, on=SCRAPE_KEY, how="left")
        .with_columns(pl.col("sum_cpu", "sum_ram", "sum_gpu").fill_null(0.0))
        .with_columns(
            cpu_scale=_fit("sum_cpu", "capacity_cpu"),
            ram_scale=_fit("sum_ram", "capacity_memory_bytes"),
            gpu_scale=_fit("sum_gpu", "capacity_gpus"),
        ),
        defaults,
    )
    node_columns = [
        "hours",
        "cpu_price",
        "ram_price",
        "gpu_price",
        "cpu_scale",
        "ram_scale",
        "gpu_scale",
    ]
    allocated = used.join(nodes.select(*SCRAPE_KEY, *node_columns), on=SCRAPE_KEY).with_columns(
        is_idle=pl.lit(False),
        cpu_request_core_hours=pl.col("cpu_request_cores") * pl.col("hours"),
        cpu_usage_core_hours=pl.col("cpu_cores") * pl.col("hours"),
        cpu_core_hours=pl.col("cpu_alloc") * pl.col("cpu_scale") * pl.col("hours"),
        ram_request_gib_hours=pl.col("memory_request_bytes") / GIB * pl.col("hours"),
        ram_usage_gib_hours=pl.col("memory_working_set_bytes") / GIB * pl.col("hours"),
        ram_gib_hours=pl.col("ram_alloc") * pl.col("ram_scale") / GIB * pl.col("hours"),
        gpu_hours=pl.col("gpu_alloc") * pl.col("gpu_scale") * pl.col("hours"),
    )
    idle = nodes.with_columns(
        namespace=pl.lit(IDLE),
        pod=pl.lit(IDLE),
        pod_uid=pl.lit(""),
        container=pl.lit(""),
        is_idle=pl.lit(True),
        cpu_request_core_hours=pl.lit(0.0),
        cpu_usage_core_hours=pl.lit(0.0),
        cpu_core_hours=_remainder("capacity_cpu", "sum_cpu", "cpu_scale") * pl.col("hours"),
        ram_request_gib_hours=pl.lit(0.0),
        ram_usage_gib_hours=pl.lit(0.0),
        ram_gib_hours=_remainder("capacity_memory_bytes", "sum_ram", "ram_scale")
        / GIB
        * pl.col("hours"),
        gpu_hours=_remainder("capacity_gpus", "sum_gpu", "gpu_scale") * pl.col("hours"),
    )
    usage = MEASURES[1:9]  # hours .. gpu_hours
    costed = (
        pl.concat(
            [
                frame.select(*HOUR_KEY, "is_idle", *usage, "cpu_price", "ram_price", "gpu_price")
                for frame in (allocated, idle)
            ]
        )
        .with_columns(
            window_start=pl.col("window_start").dt.truncate("1h"),
            samples=pl.lit(1, pl.UInt32),
            cpu_cost=pl.col("cpu_core_hours") * pl.col("cpu_price"),
            ram_cost=pl.col("ram_gib_hours") * pl.col("ram_price"),
            gpu_cost=pl.col("gpu_hours") * pl.col("gpu_price"),
        )
        .with_columns(total_cost=pl.sum_horizontal("cpu_cost", "ram_cost", "gpu_cost"))
        .group_by(*HOUR_KEY, "is_idle")
        .agg(pl.col("samples").sum(), *[exact_sum(c) for c in MEASURES[1:]])
    )
    attributes = containers.lazy().select(
        *container_key, "controller_kind", "controller_name", "team", "labels", "annotations"
    )
    node_types = pricing.lazy().select("cluster", "node", "instance_type", "capacity_type")
    return (
        costed.join(attributes, on=container_key, how="left")
        .join(node_types, on=["cluster", "node"], how="left")
        .with_columns(
            pl.col("controller_kind", "controller_name", "team").fill_null(""),
            pl.col("labels", "annotations").fill_null(pl.lit([], dtype=LABEL_TYPE)),
        )
        .select(COST_COLUMNS)
        .sort(HOUR_KEY)
        .collect()
    )


EXACT = pl.Decimal(38, 18)


def exact_sum(column: str) -> pl.Expr:
    """A sum that does not depend on row order, thread count or batching.

    Each value is rounded once to 1e-18 and summed exactly as a decimal, so the same
    input gives bit-identical tables on any machine (float addition is not associative).
    """
    return pl.col(column).cast(EXACT).sum()


def to_float(rows: pl.DataFrame) -> pl.DataFrame:
    """Exact measures back to floats, once, when rows leave the processors."""
    return rows.with_columns(pl.col(MEASURES[1:]).cast(pl.Float64))


def _fit(allocated: str, capacity: str) -> pl.Expr:
    """The factor that brings allocations down to capacity (1 when they fit)."""
    return (
        pl.when(pl.col(allocated) > pl.col(capacity))
        .then(pl.col(capacity) / pl.col(allocated))
        .otherwise(1.0)
    )


def _remainder(capacity: str, allocated: str, scale: str) -> pl.Expr:
    return pl.max_horizontal(pl.col(capacity) - pl.col(allocated) * pl.col(scale), pl.lit(0.0))


def sum_by_hour(rows: pl.DataFrame) -> pl.DataFrame:
    """Merge rows of the same container-hour: measures add up, attributes keep the latest."""
    return (
        rows.group_by(HOUR_KEY, maintain_order=True)
        .agg(
            *[pl.col(c).last() for c in ATTRIBUTES],
            pl.col("samples").sum(),
            *[exact_sum(c) for c in MEASURES[1:]],
        )
        .select(COST_COLUMNS)
    )


def empty_costs(exact: bool = False) -> pl.DataFrame:
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        **{c: pl.String for c in HOUR_KEY},
        "window_start": TIME,
        **{c: POD_SCHEMA.get(c, pl.String) for c in ATTRIBUTES},
        "is_idle": pl.Boolean,
        **{c: EXACT if exact else pl.Float64 for c in MEASURES},
        "samples": pl.UInt32,
    }
    return pl.DataFrame(schema={c: schema[c] for c in COST_COLUMNS})


def hour_of(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)
