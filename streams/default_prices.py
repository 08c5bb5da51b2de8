"""OpenCost's default unit prices: a module of its own, so that settings can read them
without loading the processors."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DefaultPrices:
    """OpenCost's default unit prices (its ``default.json``), USD per hour."""

    cpu: float = 0.031611
    ram: float = 0.004237
    gpu: float = 0.95
    spot_cpu: float = 0.006655
    spot_ram: float = 0.000892
