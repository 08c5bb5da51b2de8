"""How large YAML is once its aliases are expanded, measured on the parser's events
before any of it is built: an alias bomb (each level ten aliases of the one before)
takes a few lines and, built, gigabytes. Redaction (YAML held in strings) and the
manifest loader refuse what measures too large.

Every collection, key and value counts one: ``a`` is a list of 3 nodes (itself and two
values), ``b`` one of 1 + 3 x 3 = 10, ``c`` one of 1 + 4 x 10 = 41; with the mapping and
its three keys, 1 + (1 + 3) + (1 + 10) + (1 + 41) = 58.

>>> import yaml
>>> bomb = "a: &a [x, x]\\nb: &b [*a, *a, *a]\\nc: [*b, *b, *b, *b]\\n"
>>> expanded_size(yaml.parse(bomb), deepest=10, most=1_000)
58
>>> expanded_size(yaml.parse(bomb), deepest=10, most=20)
21
"""

from collections.abc import Iterable

import yaml


def expanded_size(events: Iterable[yaml.Event], deepest: int, most: int) -> int:
    """How many nodes the documents of ``events`` hold, aliases expanded; ``most + 1``
    as soon as that is more than ``most``, or nesting goes deeper than ``deepest``."""
    sizes: dict[str, int] = {}  # anchor -> its node's expanded size
    open_: list[tuple[str | None, int]] = []  # the collections being read, their sizes
    total = 0
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_) >= deepest:
                return most + 1
            open_.append((event.anchor, 1))
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, size = open_.pop()
        elif isinstance(event, yaml.AliasEvent):
            anchor, size = None, sizes.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            anchor, size = event.anchor, 1
        else:
            continue
        if anchor:
            sizes[anchor] = size
        if open_:
            open_[-1] = (open_[-1][0], open_[-1][1] + size)
        else:
            total += size
        if total > most or (open_ and open_[-1][1] > most):
            return most + 1
    return total
