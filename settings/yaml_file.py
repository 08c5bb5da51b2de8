"""A YAML settings file read into a pydantic model, its errors one line naming the file,
the line and the field (the subscriptions, the action policy)."""

from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)

Lines = dict[tuple[Any, ...], int]
"""The line (1-based) of every key and item of a document, by path."""


def read_model(path: Path, model: type[Model], error: type[ValueError]) -> tuple[Model, Lines]:
    """The file at ``path`` as ``model``, and the line of each of its keys and items.
    Raises ``error`` (one line: ``FILE:LINE: FIELD: what``) for a file that cannot be
    read or parsed, an unknown key or a bad value."""
    try:
        text = path.read_text()
    except OSError as problem:
        raise error(f"{path}: cannot read: {problem.strerror}") from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        said = getattr(problem, "problem", None) or str(problem).splitlines()[0]
        raise error(f"{path}{line}: not YAML: {said}") from None
    lines = _lines(node) if node is not None else {}
    try:
        return model.model_validate(data if data is not None else {}), lines
    except ValidationError as invalid:
        first = invalid.errors(include_url=False)[0]
        raise error(f"{located(path, tuple(first['loc']), lines)}: {first['msg']}") from None


def located(path: Path, where: tuple[Any, ...], lines: Lines) -> str:
    """``FILE:LINE: FIELD`` for the field at ``where`` (a missing field: its parent's
    line)."""
    return f"{path}:{_line_of(where, lines)}: {_field(where)}"


def _lines(node: yaml.Node, at: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """The line (1-based) of every key and item of a composed YAML document, by path."""
    found = {at: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*at, key.value)
            found.update(_lines(value, path))
            found[path] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.update(_lines(item, (*at, index)))
    return found


def _line_of(where: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    """The line of the deepest part of ``where`` the file has (a missing field: its
    parent's)."""
    for end in range(len(where), -1, -1):
        if where[:end] in lines:
            return lines[where[:end]]
    return 1


def _field(where: tuple[Any, ...]) -> str:
    """``subscriptions[0].receiver.slack.webhook_url``."""
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(file)"


class _Named(Protocol):
    @property
    def name(self) -> str: ...


Named = TypeVar("Named", bound=_Named)


def named_once(items: list[Named], what: str) -> list[Named]:
    """``items`` if no two share a name; raises ``ValueError`` listing those that do
    (``what``: "rule", "subscription")."""
    names = [item.name for item in items]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{what} names must be unique: {', '.join(twice)}")
    return items
