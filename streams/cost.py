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
from kubeopera.streams.frames import LABEL_TYPE, TIME
from kubeopera.streams.inventory import POD_SCHEMA
from kubeopera.streams.pricing import GIB, DefaultPrices, unit_prices

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
    """Hourly cost rows (``COST_COLUMNS``) of the given scrapes, idle rows included.

    ``pricing`` must hold every scraped node (see ``pricing.pricing_frame``);
    ``containers`` is the inventory's per-container view (``POD_SCHEMA``).
    """
    scrapes = unit_prices(
        scrapes.with_columns(hours=_hours()).join(
            pricing.drop("region", "zone", "observed_at"), on=["cluster", "node"], how="inner"
        ),
        defaults,
    )
    used = (
        samples.join(containers, on=["cluster", "pod_uid", "container"], how="left")
        .with_columns(
            pl.col("cpu_request_cores", "memory_request_bytes", "gpu_request").fill_null(0.0),
            pl.col("controller_kind", "controller_name", "team").fill_null(""),
            pl.col("labels", "annotations").fill_null(pl.lit([], dtype=LABEL_TYPE)),
        )
        .with_columns(
            cpu_alloc=pl.max_horizontal("cpu_request_cores", "cpu_cores"),
            ram_alloc=pl.max_horizontal("memory_request_bytes", "memory_working_set_bytes"),
            gpu_alloc=pl.col("gpu_request"),
        )
    )
    totals = used.group_by(SCRAPE_KEY).agg(
        pl.col("cpu_alloc").sum().alias("sum_cpu"),
        pl.col("ram_alloc").sum().alias("sum_ram"),
        pl.col("gpu_alloc").sum().alias("sum_gpu"),
    )
    scrapes = (
        scrapes.join(totals, on=SCRAPE_KEY, how="left")
        .with_columns(pl.col("sum_cpu", "sum_ram", "sum_gpu").fill_null(0.0))
        .with_columns(
            cpu_scale=_fit("sum_cpu", "capacity_cpu"),
            ram_scale=_fit("sum_ram", "capacity_memory_bytes"),
            gpu_scale=_fit("sum_gpu", "capacity_gpus"),
        )
    )
    node_columns = [
        "hours",
        "cpu_price",
        "ram_price",
        "gpu_price",
        "cpu_scale",
        "ram_scale",
        "gpu_scale",
        "instance_type",
        "capacity_type",
    ]
    allocated = used.join(scrapes.select(SCRAPE_KEY + node_columns), on=SCRAPE_KEY, how="inner")
    allocated = allocated.with_columns(
        is_idle=pl.lit(False),
        samples=pl.lit(1, pl.UInt32),
        cpu_request_core_hours=pl.col("cpu_request_cores") * pl.col("hours"),
        cpu_usage_core_hours=pl.col("cpu_cores") * pl.col("hours"),
        cpu_core_hours=pl.col("cpu_alloc") * pl.col("cpu_scale") * pl.col("hours"),
        ram_request_gib_hours=pl.col("memory_request_bytes") / GIB * pl.col("hours"),
        ram_usage_gib_hours=pl.col("memory_working_set_bytes") / GIB * pl.col("hours"),
        ram_gib_hours=pl.col("ram_alloc") * pl.col("ram_scale") / GIB * pl.col("hours"),
        gpu_hours=pl.col("gpu_alloc") * pl.col("gpu_scale") * pl.col("hours"),
    )
    idle = scrapes.with_columns(
        namespace=pl.lit(IDLE),
        pod=pl.lit(IDLE),
        pod_uid=pl.lit(""),
        container=pl.lit(""),
        controller_kind=pl.lit(""),
        controller_name=pl.lit(""),
        team=pl.lit(""),
        labels=pl.lit([], dtype=LABEL_TYPE),
        annotations=pl.lit([], dtype=LABEL_TYPE),
        is_idle=pl.lit(True),
        samples=pl.lit(1, pl.UInt32),
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
    columns = [*HOUR_KEY, *ATTRIBUTES, *MEASURES[:9], "cpu_price", "ram_price", "gpu_price"]
    rows = pl.concat(
        [allocated.select(columns), idle.select(columns)], how="vertical_relaxed"
    ).with_columns(
        window_start=pl.col("window_start").dt.truncate("1h"),
        cpu_cost=pl.col("cpu_core_hours") * pl.col("cpu_price"),
        ram_cost=pl.col("ram_gib_hours") * pl.col("ram_price"),
        gpu_cost=pl.col("gpu_hours") * pl.col("gpu_price"),
    )
    return sum_by_hour(
        rows.with_columns(total_cost=pl.sum_horizontal("cpu_cost", "ram_cost", "gpu_cost"))
    )


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
        .agg(*[pl.col(c).last() for c in ATTRIBUTES], *[pl.col(c).sum() for c in MEASURES])
        .select(COST_COLUMNS)
    )


def empty_costs() -> pl.DataFrame:
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        **{c: pl.String for c in HOUR_KEY},
        "window_start": TIME,
        **{c: POD_SCHEMA.get(c, pl.String) for c in ATTRIBUTES},
        "is_idle": pl.Boolean,
        **{c: pl.Float64 for c in MEASURES},
        "samples": pl.UInt32,
    }
    return pl.DataFrame(schema={c: schema[c] for c in COST_COLUMNS})


def hour_of(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)
