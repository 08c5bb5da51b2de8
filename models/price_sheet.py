"""Custom node prices (negotiated rates, reserved or on-prem nodes) in OpenCost's format.

The file is OpenCost's custom-pricing CSV (``EndTimestamp, InstanceID, Region,
AssetClass, InstanceIDField, InstanceType, MarketPriceHourly, Version``), so a sheet
kept for OpenCost works unchanged. ``node`` rows price one node by name
(``InstanceIDField`` ``metadata.name``) or every node of an ``InstanceType``, in one
``Region`` or, left empty, in all; the latest ``EndTimestamp`` wins. Other asset
classes (GPU types) are not used yet and are skipped.
"""

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kubeopera.models.catalogue import CatalogueError

COLUMNS = ("EndTimestamp", "InstanceID", "Region", "AssetClass", "InstanceIDField",
           "InstanceType", "MarketPriceHourly")  # fmt: skip


@dataclass(frozen=True)
class PriceSheet:
    source: str
    by_node: dict[str, float] = field(default_factory=dict)
    by_type: dict[tuple[str, str], float] = field(default_factory=dict)

    def node_price(self, node: str, region: str, instance_type: str) -> float | None:
        """USD/hour for the node, most specific rule first; None when the sheet is silent."""
        for price in (
            self.by_node.get(node),
            self.by_type.get((region, instance_type)),
            self.by_type.get(("", instance_type)),
        ):
            if price is not None:
                return price
        return None

    @classmethod
    def from_csv(cls, path: str | Path) -> "PriceSheet":
        path = Path(path)
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                return cls._read(handle, str(path))
        except OSError as error:
            raise CatalogueError(f"cannot read price sheet {path}: {error.strerror}") from error

    @classmethod
    def _read(cls, lines: Iterable[str], source: str) -> "PriceSheet":
        reader = csv.DictReader(lines)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CatalogueError(f"price sheet {source} lacks OpenCost columns {missing}")
        latest: dict[tuple[str, str, str], tuple[str, float]] = {}
        for number, row in enumerate(reader, start=2):
            if row["AssetClass"] != "node":
                continue
            try:
                price = float(row["MarketPriceHourly"])
            except ValueError as error:
                raise CatalogueError(f"price sheet {source} row {number}: {error}") from error
            if row["InstanceType"]:
                key = ("type", row["Region"], row["InstanceType"])
            elif row["InstanceID"] and row["InstanceIDField"] in ("", "metadata.name"):
                key = ("node", "", row["InstanceID"])
            else:
                raise CatalogueError(
                    f"price sheet {source} row {number}: a node row needs an InstanceType or "
                    "an InstanceID matched on metadata.name"
                )
            if key not in latest or row["EndTimestamp"] >= latest[key][0]:
                latest[key] = (row["EndTimestamp"], price)
        return cls(
            source=source,
            by_node={k[2]: p for k, (_, p) in latest.items() if k[0] == "node"},
            by_type={(k[1], k[2]): p for k, (_, p) in latest.items() if k[0] == "type"},
        )
