"""A state kept as many small entries (one per live object), saved entry by entry.

The change timeline and drift keep one entry per live object of a partition. Saving
such a state whole after every batch costs in proportion to the live objects, not to the
batch: a Kafka worker with 100k objects wrote megabytes to its changelog per batch. An
``Entries`` remembers which entries changed since it was last saved, and the engines
save those alone, each under a key of its own (``streams.pipeline.Pipeline.saved``).

>>> entries = Entries()
>>> entries["a"], entries["b"] = "1", "2"
>>> del entries["a"]
>>> entries.changes()
[('a', None), ('b', '2')]
>>> entries.changes(), dict(entries)
([], {'b': '2'})
"""

import base64
import pickle
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any


class Entries(MutableMapping[str, str]):
    """Entry name -> value (JSON text), with the names changed since ``changes``."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._data = dict(items)
        self._changed: set[str] = set()

    def __getitem__(self, name: str) -> str:
        return self._data[name]

    def __setitem__(self, name: str, value: str) -> None:
        self._data[name] = value
        self._changed.add(name)

    def __delitem__(self, name: str) -> None:
        del self._data[name]
        self._changed.add(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Entries({self._data!r})"

    def changes(self) -> list[tuple[str, str | None]]:
        """The entries changed since the last call, in name order: each with its value,
        or None where it was removed; they count as saved from now on."""
        changed = sorted(self._changed)
        self._changed.clear()
        return [(name, self._data.get(name)) for name in changed]


def pickled(value: Any) -> str:
    """``value`` as text an entry can hold (base64 of its pickle: how river models, and
    the state objects kept beside them, are saved)."""
    return base64.b64encode(pickle.dumps(value)).decode()


def unpickled(text: str) -> Any:
    """What ``pickled`` made ``text`` of (the engines' own state, never foreign input)."""
    return pickle.loads(base64.b64decode(text))
