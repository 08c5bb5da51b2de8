"""The instance-type catalogue: what a node type has (vCPU, memory, GPUs) and costs.

The package ships a compact table of common AWS families (``data/instance_types.csv``,
written from the published facts); the full catalogue in the same CSV format, e.g.
Karpenter's 1,300+ types, loads from a path the user gives.
"""

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

GIB = 1024**3
MIB = 1024**2


class CatalogueError(ValueError):
    """The catalogue file is missing, empty or not in the expected CSV format."""


@dataclass(frozen=True, slots=True)
class InstanceType:
    name: str
    arch: str
    vcpu: float
    memory_bytes: float
    gpus: int
    usd_per_hour: float | None

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB


REGION = "us-east-1"
"""The region whose on-demand prices the catalogue holds (its price column names it)."""
REQUIRED_COLUMNS = ("instance_type", "vcpu", "memory_mib", "ondemand_usd_per_hour_us_east_1")


class Catalogue(Mapping[str, InstanceType]):
    """Instance types by name; priced types are those with an on-demand price."""

    def __init__(self, types: Iterable[InstanceType], source: str) -> None:
        self._types = {t.name: t for t in types}
        self.source = source
        if not self._types:
            raise CatalogueError(f"instance-type catalogue {source} holds no instance types")

    def __getitem__(self, name: str) -> InstanceType:
        return self._types[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def priced(self) -> list[InstanceType]:
        return [t for t in self._types.values() if t.usd_per_hour is not None]

    @classmethod
    def builtin(cls) -> "Catalogue":
        text = resources.files("kubeopera.models").joinpath("data/instance_types.csv")
        with text.open(encoding="utf-8") as handle:
            return cls(_read_rows(handle, "built-in table"), "built-in table")

    @classmethod
    def from_csv(cls, path: str | Path) -> "Catalogue":
        path = Path(path)
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                return cls(_read_rows(handle, str(path)), str(path))
        except OSError as error:
            raise CatalogueError(
                f"cannot read instance-type catalogue {path}: {error.strerror}"
            ) from error


def _read_rows(lines: Iterable[str], source: str) -> Iterator[InstanceType]:
    reader = csv.DictReader(line for line in lines if not line.startswith("#"))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise CatalogueError(f"instance-type catalogue {source} lacks columns {missing}")
    for number, row in enumerate(reader, start=2):
        try:
            price = row["ondemand_usd_per_hour_us_east_1"]
            yield InstanceType(
                name=row["instance_type"],
                arch=row.get("arch") or "",
                vcpu=float(row["vcpu"]),
                memory_bytes=float(row["memory_mib"]) * MIB,
                gpus=int(row.get("gpu_count") or 0),
                usd_per_hour=float(price) if price else None,
            )
        except ValueError as error:
            raise CatalogueError(f"{source} row {number}: {error}") from error
