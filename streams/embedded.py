"""The embedded engine: the pipeline in one process, batch by batch, into a sink.

It moves batches (from the simulator, a recorded file) through ``streams.pipeline`` and
writes each batch's output before taking the next; the processors' state lives in the
pipeline's slots, one per topic (the embedded source has one partition per topic).
Messages a processor sends to another (the cost processor's ``series`` points) run
through the pipeline right after the output that carried them is written.
"""

import gc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubeopera.models import DeadLetter, Message, MetricBatch, Topic
from kubeopera.streams.decode import RawMessage
from kubeopera.streams.pipeline import Pipeline, decode_all
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import Envelope, Output, Processor
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import build
from kubeopera.streams.sink import Sink, write

DERIVED = frozenset({Topic.SERIES})
"""Topics the processors themselves send to."""


@dataclass
class RunStats:
    """Counters of one run (the demo and the benchmarks print them): ``counts`` adds up
    the processors' own (``samples``, ``cost_rows``)."""

    messages: int = 0
    batches: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    counts: Counter[str] = field(default_factory=Counter)


class EmbeddedEngine:
    """``processors`` default to the registry's defaults; ``pricer`` and ``team_label``
    shape the reference data (node prices, the pod label naming a team)."""

    def __init__(
        self,
        sink: Sink,
        processors: Sequence[Processor[Any]] | None = None,
        pricer: Pricer | None = None,
        team_label: str = "team",
    ) -> None:
        self.sink = sink
        self.reference = Reference(pricer or Pricer(), team_label)
        self.pipeline = Pipeline(build() if processors is None else processors, self.reference)
        self.stats = RunStats()

    def run(
        self,
        source: Iterable[list[Message]],
        batch_samples: int = 200_000,
        on_batch: Callable[[RunStats], None] | None = None,
    ) -> RunStats:
        """Process a stream of message lists, regrouped into batches of about
        ``batch_samples`` container samples, then close every open window."""
        for batch in rebatch(source, batch_samples):
            self.process(batch)
            if on_batch:
                on_batch(self.stats)
        self.finish()
        return self.stats

    def process_raw(self, raws: Iterable[RawMessage]) -> None:
        """Decode raw bytes first: what cannot be read is dead-lettered, the rest runs."""
        envelopes, letters = decode_all(raws)
        self._run(envelopes, letters)

    def process(self, messages: list[Message], rejected: Iterable[DeadLetter] = ()) -> None:
        """One batch; ``rejected`` are the batch's messages that could not be read,
        written to the dead-letter table with the batch's own."""
        self._run([Envelope(topic, message) for topic, message in messages], rejected)

    def finish(self) -> None:
        """End of input: every open window is final, those of the sources first (what
        they close sends the last points of ``DERIVED`` topics), then the rest."""
        sources = {t for t in self.pipeline.topics() if t not in DERIVED}
        self._write(self.pipeline.finish(sources))
        self._write(self.pipeline.finish(DERIVED))

    def _run(self, envelopes: list[Envelope], rejected: Iterable[DeadLetter]) -> None:
        self.stats.messages += len(envelopes)
        self.stats.batches += 1
        output, _ = self.pipeline.run(envelopes, rejected)
        self._write(output)

    def _write(self, output: Output) -> None:
        """Write ``output``, then run the messages it sends to other processors."""
        write(self.sink, output)
        self.stats.dead_letters += len(output.dead_letters)
        self.stats.duplicates += output.duplicates
        self.stats.counts.update(output.counts)
        if output.messages:
            self._run([Envelope(topic, message) for topic, message in output.messages], ())


def tune_gc_for_batches() -> None:
    """Raise the young-generation GC threshold for this process.

    A batch allocates hundreds of thousands of small objects that all die together;
    the default threshold (700) runs the cyclic collector thousands of times over them,
    about a quarter of the embedded pipeline's time. Entry points call this; the library
    never changes it by itself.
    """
    gc.set_threshold(100_000, 50, 50)


def rebatch(source: Iterable[list[Message]], batch_samples: int) -> Iterator[list[Message]]:
    """Regroup message lists so that each batch carries about ``batch_samples`` container
    samples (metric scrapes are the bulk of every input)."""
    pending: list[Message] = []
    samples = 0
    for messages in source:
        pending.extend(messages)
        samples += sum(len(m.containers) for _, m in messages if isinstance(m, MetricBatch))
        if samples >= batch_samples:
            yield pending
            pending, samples = [], 0
    if pending:
        yield pending
