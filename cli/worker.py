"""``kubeopera worker``: the stream processors on Kafka, writing ClickHouse."""

from pathlib import Path

import faust

from kubeopera.collectors.topics import ensure_changelogs, ensure_topics
from kubeopera.models import TOPIC_SETTINGS, Topic
from kubeopera.settings import Settings
from kubeopera.streams.embedded import tune_gc_for_batches
from kubeopera.streams.faust_engine import FaustEngine, FaustOptions


def run_worker(
    settings: Settings, app_id: str, data_dir: Path, batch_size: int, log_level: str = "warning"
) -> None:
    """Run until SIGTERM or Ctrl-C; offsets are committed only after ClickHouse writes."""
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
    )
    with settings.open_store() as store:
        worker = FaustEngine(options, store, settings.build_processors(), settings.pricer())
        ensure_changelogs(
            kafka.bootstrap_servers, worker.changelog_topics(), **kafka.client_options()
        )
        faust.Worker(worker.app, loglevel=log_level, quiet=True).execute_from_commandline()
