"""The simulated fleet as commands take it: shared options, the spec, a progress bar."""

import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kubeopera.models import Message
from kubeopera.settings.durations import parse_duration, window_start

if TYPE_CHECKING:  # the simulator and the catalogue load numpy and polars: only when used
    from kubeopera.collectors.simulator import FleetSpec
    from kubeopera.models.catalogue import Catalogue

Command = TypeVar("Command", bound=Callable[..., Any])


def duration_option(
    name: str, default: str, help: str, reaching_back: bool = False
) -> Callable[[Command], Command]:
    """An option that takes ``90m``, ``24h``, ``7d`` and passes a timedelta; with
    ``reaching_back`` (a report window from now) no further back than the store's times
    can go."""

    def convert(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
        try:
            duration = parse_duration(value)
            if reaching_back:
                window_start(duration, datetime.now(UTC))
            return duration
        except ValueError as error:
            raise click.BadParameter(str(error), ctx, param) from error

    return click.option(
        name, default=default, show_default=True, metavar="DURATION", callback=convert, help=help
    )


def batch_size_option(default: int, help: str) -> Callable[[Command], Command]:
    """``--batch-size N``, a whole number from 1."""
    return click.option(
        "--batch-size", type=click.IntRange(min=1), default=default, show_default=True, help=help
    )


def fleet_options(command: Command) -> Command:
    """The simulator's options, for every command that simulates a fleet."""
    options = [
        click.option("--clusters", default=3, show_default=True, type=click.IntRange(1, 1000)),
        click.option(
            "--pods-per-cluster", default=170, show_default=True, type=click.IntRange(1, 100_000)
        ),
        duration_option("--duration", "24h", "Simulated span."),
        duration_option("--resolution", "1m", "Scrape interval."),
        click.option("--seed", default=42, show_default=True, type=int),
        click.option(
            "--start",
            type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
            help="UTC start (default: the span ending at today's midnight).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def fleet_spec(
    catalogue: "Catalogue",
    clusters: int,
    pods_per_cluster: int,
    duration: timedelta,
    resolution: timedelta,
    seed: int,
    start: datetime | None,
) -> "FleetSpec":
    """The spec for the options; without a start, the span ends at today's midnight UTC."""
    from kubeopera.collectors.simulator import FleetSpec

    if start is None:
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = midnight - -(-duration // resolution) * resolution
    return FleetSpec(
        clusters=clusters,
        pods_per_cluster=pods_per_cluster,
        start=start.replace(tzinfo=UTC),
        duration=duration,
        resolution=resolution,
        seed=seed,
        catalogue=catalogue,
    )


def simulated(spec: "FleetSpec", doing: str) -> Iterator[list[Message]]:
    """The simulator's steps, with a progress bar on a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from kubeopera.collectors.simulator import simulate

    with Progress(
        TextColumn(doing),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task(doing, total=spec.steps)
        for messages in simulate(spec):
            yield messages
            progress.advance(task)
