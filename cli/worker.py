"""``kubeopera worker``: the stream processors on Kafka, writing ClickHouse."""

import os
import threading
from datetime import timedelta
from pathlib import Path

import faust

from kubeopera.collectors.topics import ensure_changelogs, ensure_topics
from kubeopera.models import TOPIC_SETTINGS, Topic
from kubeopera.reports import recorded_budgets
from kubeopera.settings import Settings
from kubeopera.streams.embedded import tune_gc_for_batches
from kubeopera.streams.faust_engine import FaustEngine, FaustOptions


def run_worker(
    settings: Settings,
    app_id: str,
    data_dir: Path,
    batch_size: int,
    log_level: str = "warning",
    progress_every: timedelta = timedelta(minutes=1),
    health_port: int | None = None,
    idle_after: timedelta = timedelta(seconds=30),
) -> None:
    """Run until SIGTERM or Ctrl-C; offsets are committed only after ClickHouse writes.
    Prints ``kubeopera worker: ready: ...`` on each assignment and ``kubeopera worker:
    progress: ...`` every ``progress_every``."""
    tune_gc_for_batches()
    kafka = settings.kafka
    ensure_topics(kafka.bootstrap_servers, **kafka.client_options())
    options = FaustOptions(
        bootstrap=kafka.bootstrap_servers,
        app_id=app_id,
        team_label=settings.cost.team_label,
        data_dir=data_dir,
        batch_size=batch_size,
        security=kafka.aiokafka_options(),
        state_partitions=TOPIC_SETTINGS[Topic.METRICS].partitions,
        progress_every=progress_every.total_seconds(),
        health_port=health_port,
        idle_after=idle_after,
        idle_advance=settings.cost.allowed_lateness,
    )
    with settings.open_store() as store:
        worker = FaustEngine(
            options, store, settings.build_processors(), settings.pricer(), report=_say
        )
        worker.reference.apply_budgets(recorded_budgets(store))  # and the topic's, later
        ensure_changelogs(
            kafka.bootstrap_servers, worker.changelog_topics(), **kafka.client_options()
        )
        BoundedShutdown(worker.app, loglevel=log_level, quiet=True).execute_from_commandline()


def _say(line: str) -> None:
    print(f"kubeopera worker: {line}", flush=True)


SHUTDOWN_GRACE = 10.0
"""Seconds a stopping worker gets to finish its batch and leave the group cleanly."""


class BoundedShutdown(faust.Worker):
    """Faust's worker, whose stop on SIGTERM or Ctrl-C is bounded: Faust's own shutdown
    can hang (a consumer thread stopped mid-request during a rebalance never finishes
    stopping). Past ``SHUTDOWN_GRACE`` the process exits at once; nothing is lost, since
    offsets are committed only after their rows are written and their state saved."""

    def _on_sigterm(self) -> None:
        self._exit_after_grace()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._exit_after_grace()
        super()._on_sigint()

    def _exit_after_grace(self) -> None:
        timer = threading.Timer(SHUTDOWN_GRACE, os._exit, args=(143,))
        timer.daemon = True
        timer.start()
