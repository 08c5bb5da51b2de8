"""The processor registry: processors by name, built from their settings sections.

A processor module registers its class with ``@register``; ``build`` makes the processors
a settings file lists (``processors: [archive, cost]``; ``DEFAULT`` when it lists none),
each from its own section (``cost: {allowed_lateness_minutes: 5}``). The built-in
modules are imported on first use, so a processor defined elsewhere (a test's, a
plugin's) registers the same way.

>>> {"archive", "cost"} <= set(names())  # the built-ins (and any registered since)
True
>>> [p.name for p in build(["cost"], {"cost": {"allowed_lateness_minutes": 5}})]
['cost']
>>> build(["costs"])
Traceback (most recent call last):
...
kubeopera.streams.registry.UnknownProcessorError: unknown processor 'costs' (known: ...)
"""

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:  # the processors (and polars) load when a processor is built
    from kubeopera.streams.processor import Processor

DEFAULT = ("archive", "cost", "changes", "drift", "warnings", "anomalies", "budgets")
"""What runs when the settings list no processors."""

_REGISTRY: dict[str, Any] = {}  # name -> processor class (its ``Settings`` included)

P = TypeVar("P")


class UnknownProcessorError(ValueError):
    """A name no registered processor has, or a processor module that cannot be
    imported."""


class ProcessorSettingsError(ValueError):
    """A processor's section that its settings model refuses."""


def register(cls: P) -> P:
    """Class decorator: make the processor known by its ``name``."""
    name: str = getattr(cls, "name")  # noqa: B009 (P is any class with a name)
    if _REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"processor name {name!r} is registered already")
    _REGISTRY[name] = cls
    return cls


def _load_builtins() -> None:
    from kubeopera.streams import processors

    for module in pkgutil.iter_modules(processors.__path__):
        importlib.import_module(f"{processors.__name__}.{module.name}")


def load(modules: Iterable[str]) -> None:
    """Import processor modules defined outside the package (each registers what it
    defines). Raises ``UnknownProcessorError`` naming a module that cannot be imported."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # a plugin may fail to import in any way
            raise UnknownProcessorError(
                f"cannot import processor module {module!r}: {error}"
            ) from error


def names() -> list[str]:
    _load_builtins()
    return list(_REGISTRY)


def settings_model(name: str) -> type[BaseModel]:
    """The pydantic model of a processor's settings section."""
    _load_builtins()
    if name not in _REGISTRY:
        raise UnknownProcessorError(
            f"unknown processor {name!r} (known: {', '.join(sorted(_REGISTRY))})"
        )
    model: type[BaseModel] = _REGISTRY[name].Settings
    return model


def build(
    selected: Iterable[str] = DEFAULT, sections: Mapping[str, Any] | None = None
) -> "list[Processor[Any]]":
    """The processors named, in order, each from its section of ``sections`` (a mapping
    or an instance of its settings model; absent: the defaults).

    Raises ``UnknownProcessorError`` for a name not registered and
    ``ProcessorSettingsError`` for a section its model refuses."""
    built = []
    for name in selected:
        model = settings_model(name)
        section = (sections or {}).get(name) or {}
        try:
            settings = section if isinstance(section, model) else model.model_validate(section)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in (name, *first["loc"]))
            raise ProcessorSettingsError(f"{where}: {first['msg']}") from error
        built.append(_REGISTRY[name](settings))
    return built
