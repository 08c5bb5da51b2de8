"""Every docstring example in the package runs. The modules that hold examples (``>>>``)
are found by reading the installed package's sources, so only those modules are imported
here (none that would need a live broker or cluster)."""

import doctest
import importlib
from pathlib import Path

import pytest

import kubeopera


def modules_with_examples() -> list[str]:
    found: set[str] = set()
    for portion in kubeopera.__path__:  # a namespace: one folder per installed copy
        root = Path(portion)
        for source in root.rglob("*.py"):
            if ">>>" in source.read_text(encoding="utf-8"):
                parts = source.relative_to(root).with_suffix("").parts
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found.add(".".join(("kubeopera", *parts)))
    return sorted(found)


MODULES = modules_with_examples()


def test_the_modules_with_examples_are_found() -> None:
    assert {"kubeopera.models.quantity", "kubeopera.streams.timeline"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_run(name: str) -> None:
    results = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0
    assert results.failed == 0
