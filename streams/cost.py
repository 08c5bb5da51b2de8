"""Cost allocation (OpenCost's model), a pure function over a batch of node scrapes.

For every container charged in a scrape: CPU core-hours = max(request, usage) x hours,
RAM GiB-hours likewise on the working set, GPU hours = GPUs requested x hours; cost =
those x the node's unit prices (``pricing.unit_prices``). Allocations are never scaled
to fit a node (OpenCost's ``pkg/costmodel/allocation.go`` charges max(request, usage)
as is): idle = node cost - allocated cost, per node and window, and it is negative
when the node is overcommitted (usage above requests on a full node); the overcommitted
core- and GiB-hours are kept on the node's idle row. So allocations + idle == node
cost in every window, and no allocation is negative.

Which containers a scrape charges: every sample, and every container of a pod the
inventory has Running on the node at the scrape's time though the scrape lists no
sample of it (metrics-server omits pods now and then: usage unknown, the request is
still reserved, as OpenCost charges ``kube_pod_container_resource_requests`` whatever
the usage). Every request, node price and attribute is the one valid at the scrape's
time (the reference's timelines), and a scrape whose window crosses an hour boundary
is split at it, each hour charged its own part.
"""

from datetime import datetime

import polars as pl

from kubeopera.models import IDLE
from kubeopera.streams.default_prices import DefaultPrices
from kubeopera.streams.frames import LABEL_TYPE, TIME
from kubeopera.streams.inventory import VERSION_SCHEMA
from kubeopera.streams.pricing import GIB, PriceSource, unit_prices

SCRAPE_KEY = ["cluster", "node", "window_start"]
SEGMENT_KEY = [*SCRAPE_KEY, "hour"]
CONTAINER_KEY = ["cluster", "pod_uid", "container"]
HOUR_KEY = ["window_start", "cluster", "node", "namespace", "pod", "pod_uid", "container"]
POD_ATTRIBUTES = ["controller_kind", "controller_name", "team", "labels", "annotations"]
NODE_ATTRIBUTES = ["instance_type", "capacity_type", "price_source"]
ATTRIBUTES = [*POD_ATTRIBUTES, *NODE_ATTRIBUTES, "is_idle"]
USAGE = [
    "hours",
    "cpu_request_core_hours",
    "cpu_usage_core_hours",
    "cpu_core_hours",
    "ram_request_gib_hours",
    "ram_usage_gib_hours",
    "ram_gib_hours",
    "gpu_hours",
    "cpu_overcommit_core_hours",
    "ram_overcommit_gib_hours",
]
COSTS = ["cpu_cost", "ram_cost", "gpu_cost", "total_cost"]
MEASURES = ["samples", *USAGE, *COSTS]
SUMMED = [*USAGE, *COSTS]
COST_COLUMNS = HOUR_KEY + ATTRIBUTES + MEASURES
ATTRIBUTES_AT = "attributes_at"
"""Internal column of exact rows: the time of the latest sample, whose attributes the
hour keeps whatever order its partial rows were added in."""

HOUR_MS = 3_600_000


def allocate(
    samples: pl.DataFrame,
    scrapes: pl.DataFrame,
    pricing: pl.DataFrame,
    versions: pl.DataFrame,
    defaults: DefaultPrices,
) -> pl.DataFrame:
    """Hourly cost rows (``COST_COLUMNS``, float measures) of the given scrapes."""
    return to_float(allocate_exact(samples, scrapes, pricing, versions, defaults))


def allocate_exact(
    samples: pl.DataFrame,
    scrapes: pl.DataFrame,
    pricing: pl.DataFrame,
    versions: pl.DataFrame,
    defaults: DefaultPrices,
) -> pl.DataFrame:
    """Hourly cost rows of the given scrapes, idle rows included, with exact (decimal)
    measures: partial sums that windows add up later stay exact until an hour closes, so
    how the input was split into batches never changes a bit of the result.

    ``samples`` and ``scrapes`` are ``frames.samples_frame``/``scrapes_frame`` of the
    same batches; ``pricing`` is ``Reference.pricing`` (price facts with
    ``applies_from``; a node without any is priced at the defaults); ``versions`` is
    ``Inventory.versions`` (``VERSION_SCHEMA``). Rows carry ``ATTRIBUTES_AT``.
    """
    segments = _segments(scrapes).collect()
    charged = _charged(samples, segments, versions).lazy()
    totals = charged.group_by("segment").agg(
        sum_cpu=exact_sum("cpu_alloc").cast(pl.Float64),
        sum_ram=exact_sum("ram_alloc").cast(pl.Float64),
        sum_gpu=exact_sum("gpu_alloc").cast(pl.Float64),
    )
    nodes = unit_prices(
        _priced(segments.lazy(), pricing.lazy(), defaults)
        .join(totals, on="segment", how="left")
        .with_columns(pl.col("sum_cpu", "sum_ram", "sum_gpu").fill_null(0.0)),
        defaults,
    )
    node_columns = ["hours", "cpu_price", "ram_price", "gpu_price", "price_from"]
    hours = pl.col("hours")
    allocated = charged.join(nodes.select("segment", *node_columns), on="segment").with_columns(
        is_idle=pl.lit(False),
        cpu_request_core_hours=pl.col("cpu_request_cores") * hours,
        cpu_usage_core_hours=pl.col("cpu_cores") * hours,
        cpu_core_hours=pl.col("cpu_alloc") * hours,
        ram_request_gib_hours=pl.col("memory_request_bytes") / GIB * hours,
        ram_usage_gib_hours=pl.col("memory_working_set_bytes") / GIB * hours,
        ram_gib_hours=pl.col("ram_alloc") / GIB * hours,
        gpu_hours=pl.col("gpu_alloc") * hours,
        cpu_overcommit_core_hours=pl.lit(0.0),
        ram_overcommit_gib_hours=pl.lit(0.0),
    )
    idle = nodes.with_columns(
        namespace=pl.lit(IDLE),
        pod=pl.lit(IDLE),
        pod_uid=pl.lit(""),
        container=pl.lit(""),
        is_idle=pl.lit(True),
        version_from=pl.lit(None, TIME),
        cpu_request_core_hours=pl.lit(0.0),
        cpu_usage_core_hours=pl.lit(0.0),
        cpu_core_hours=(pl.col("capacity_cpu") - pl.col("sum_cpu")) * hours,
        ram_request_gib_hours=pl.lit(0.0),
        ram_usage_gib_hours=pl.lit(0.0),
        ram_gib_hours=(pl.col("capacity_memory_bytes") - pl.col("sum_ram")) / GIB * hours,
        gpu_hours=(pl.col("capacity_gpus") - pl.col("sum_gpu")) * hours,
        cpu_overcommit_core_hours=_excess("sum_cpu", "capacity_cpu") * hours,
        ram_overcommit_gib_hours=_excess("sum_ram", "capacity_memory_bytes") / GIB * hours,
    )
    row_columns = [*HOUR_KEY[1:], "hour", "start", "is_idle", "version_from", "price_from"]
    prices = ["cpu_price", "ram_price", "gpu_price"]
    costed = (
        pl.concat([frame.select(*row_columns, *USAGE, *prices) for frame in (allocated, idle)])
        .with_columns(
            cpu_cost=pl.col("cpu_core_hours") * pl.col("cpu_price"),
            ram_cost=pl.col("ram_gib_hours") * pl.col("ram_price"),
            gpu_cost=pl.col("gpu_hours") * pl.col("gpu_price"),
        )
        .with_columns(total_cost=pl.sum_horizontal("cpu_cost", "ram_cost", "gpu_cost"))
        .rename({"hour": "window_start"})
        .group_by(*HOUR_KEY, "is_idle")
        .agg(
            pl.len().cast(pl.UInt32).alias("samples"),
            *[exact_sum(c) for c in SUMMED],
            pl.col("start").max().alias(ATTRIBUTES_AT),
            # The facts valid at the latest start: as-of lookups never go back in time.
            pl.col("version_from").max(),
            pl.col("price_from").max(),
        )
    )
    attributes = versions.lazy().select(
        *CONTAINER_KEY, pl.col("valid_from").alias("version_from"), *POD_ATTRIBUTES
    )
    node_attributes = pricing.lazy().select(
        "cluster", "node", pl.col("observed_at").alias("price_from"), *NODE_ATTRIBUTES
    )
    return (
        costed.join(attributes, on=[*CONTAINER_KEY, "version_from"], how="left")
        .join(node_attributes, on=["cluster", "node", "price_from"], how="left")
        .with_columns(
            pl.col("controller_kind", "controller_name", "team", "instance_type").fill_null(""),
            pl.col("capacity_type").fill_null("on-demand"),
            pl.col("price_source").fill_null(str(PriceSource.DEFAULT)),
            pl.col("labels", "annotations").fill_null(pl.lit([], dtype=LABEL_TYPE)),
        )
        .select(*COST_COLUMNS, ATTRIBUTES_AT)
        .sort(HOUR_KEY)
        .collect()
    )


def _segments(scrapes: pl.DataFrame) -> pl.LazyFrame:
    """Each scrape once per hour its window touches, numbered (``segment``): ``hour``,
    the part's ``start`` and its length in ``hours``."""
    window_start, window_end = pl.col("window_start"), pl.col("window_end")
    return (
        scrapes.lazy()
        .with_columns(
            hour=pl.datetime_ranges(
                window_start.dt.truncate("1h"),
                window_end - pl.duration(milliseconds=1),
                interval="1h",
            )
        )
        .explode("hour")
        .with_columns(
            start=pl.max_horizontal(window_start, pl.col("hour")),
            end=pl.min_horizontal(window_end, pl.col("hour") + pl.duration(hours=1)),
        )
        .with_columns(hours=(pl.col("end") - pl.col("start")).dt.total_milliseconds() / HOUR_MS)
        .with_row_index("segment")
    )


def _charged(samples: pl.DataFrame, segments: pl.DataFrame, versions: pl.DataFrame) -> pl.DataFrame:
    """Every container charged in each segment, with its requests and allocation.

    Samples take the requests of their pod's version valid at the segment's start;
    containers Running on the node then without a sample are charged their requests
    with unknown (null) usage. Containers are numbered (``container_id``) so that
    finding the unsampled ones compares integers, not strings."""
    requests = ["cpu_request_cores", "memory_request_bytes", "gpu_request"]
    containers = versions.select(CONTAINER_KEY).unique().with_row_index("container_id")
    versions = versions.join(containers, on=CONTAINER_KEY)
    where = segments.select("segment", *SEGMENT_KEY, "start")
    sampled = (
        samples.lazy()
        .select(*SCRAPE_KEY, *HOUR_KEY[3:], "cpu_cores", "memory_working_set_bytes")
        .join(where.lazy(), on=SCRAPE_KEY)
        .sort("start")
        .join_asof(
            versions.lazy()
            .select(*CONTAINER_KEY, "container_id", "sample_from", "valid_from", *requests)
            .sort("sample_from"),
            left_on="start",
            right_on="sample_from",
            by=CONTAINER_KEY,
            strategy="backward",
            check_sortedness=False,  # sorted by the key above; polars cannot check in groups
        )
        .collect()
    )
    running = versions.filter(pl.col("running")).select(
        "cluster",
        "node",
        "namespace",
        "pod",
        *CONTAINER_KEY[1:],
        "container_id",
        "valid_from",
        "valid_to",
        *requests,
    )
    in_segment = pl.col("segment").cast(pl.Int64) * containers.height + pl.col("container_id")
    reserved = (
        where.join(running, on=["cluster", "node"])
        .filter((pl.col("valid_from") <= pl.col("start")) & (pl.col("start") < pl.col("valid_to")))
        .filter(~in_segment.is_in(sampled.select(in_segment.drop_nulls()).to_series().implode()))
        .with_columns(
            cpu_cores=pl.lit(None, pl.Float64), memory_working_set_bytes=pl.lit(None, pl.Float64)
        )
    )
    columns = [
        "segment",
        *SEGMENT_KEY,
        "start",
        *HOUR_KEY[3:],
        "cpu_cores",
        "memory_working_set_bytes",
        *requests,
        pl.col("valid_from").alias("version_from"),
    ]
    return (
        pl.concat([sampled.select(columns), reserved.select(columns)])
        .with_columns(pl.col(requests).fill_null(0.0))
        .with_columns(
            cpu_alloc=pl.max_horizontal("cpu_request_cores", "cpu_cores"),
            ram_alloc=pl.max_horizontal("memory_request_bytes", "memory_working_set_bytes"),
            gpu_alloc=pl.col("gpu_request"),
        )
    )


def _priced(segments: pl.LazyFrame, pricing: pl.LazyFrame, defaults: DefaultPrices) -> pl.LazyFrame:
    """Segments with the node's price fact valid at their start (``price_from`` is its
    time); a node without any is priced at OpenCost's default unit prices."""
    facts = pricing.select(
        "cluster",
        "node",
        "applies_from",
        pl.col("observed_at").alias("price_from"),
        "usd_per_hour",
        "cpu_usd_per_core_hour",
        "ram_usd_per_gib_hour",
        "gpu_usd_per_hour",
    ).sort("applies_from")
    unknown = pl.col("price_from").is_null()
    return (
        segments.sort("start")
        .join_asof(
            facts,
            left_on="start",
            right_on="applies_from",
            by=["cluster", "node"],
            check_sortedness=False,  # sorted above; polars cannot check within groups
        )
        .with_columns(
            cpu_usd_per_core_hour=pl.when(unknown)
            .then(defaults.cpu)
            .otherwise(pl.col("cpu_usd_per_core_hour")),
            ram_usd_per_gib_hour=pl.when(unknown)
            .then(defaults.ram)
            .otherwise(pl.col("ram_usd_per_gib_hour")),
        )
    )


def _excess(allocated: str, capacity: str) -> pl.Expr:
    return pl.max_horizontal(pl.col(allocated) - pl.col(capacity), pl.lit(0.0))


EXACT = pl.Decimal(38, 18)


def exact_sum(column: str) -> pl.Expr:
    """A sum that does not depend on row order, thread count or batching.

    Each value is rounded once to 1e-18 and summed exactly as a decimal, so the same
    input gives bit-identical tables on any machine (float addition is not associative).
    """
    return pl.col(column).cast(EXACT).sum()


def to_float(rows: pl.DataFrame) -> pl.DataFrame:
    """Exact measures back to floats, once, when rows leave the processors."""
    return rows.select(COST_COLUMNS).with_columns(pl.col(SUMMED).cast(pl.Float64))


def sum_by_hour(rows: pl.DataFrame) -> pl.DataFrame:
    """Merge exact rows of the same container-hour: measures add up, attributes are
    those of the latest sample (``ATTRIBUTES_AT``), whatever order the rows came in."""
    return (
        rows.sort(ATTRIBUTES_AT, maintain_order=True)
        .group_by(HOUR_KEY, maintain_order=True)
        .agg(
            *[pl.col(c).last() for c in ATTRIBUTES],
            pl.col("samples").sum(),
            *[exact_sum(c) for c in SUMMED],
            pl.col(ATTRIBUTES_AT).last(),
        )
        .select(*COST_COLUMNS, ATTRIBUTES_AT)
    )


def empty_costs(exact: bool = False) -> pl.DataFrame:
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        **{c: pl.String for c in HOUR_KEY},
        "window_start": TIME,
        **{c: VERSION_SCHEMA.get(c, pl.String) for c in ATTRIBUTES},
        "is_idle": pl.Boolean,
        **{c: EXACT if exact else pl.Float64 for c in MEASURES},
        "samples": pl.UInt32,
    }
    columns = {c: schema[c] for c in COST_COLUMNS}
    if exact:
        columns[ATTRIBUTES_AT] = TIME
    return pl.DataFrame(schema=columns)


def hour_of(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)
