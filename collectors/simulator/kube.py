"""How Kubernetes spells what it generates and measures: uids, name suffixes, quantities.

The manifests, the state and the usage model all write these the same way; keeping them
in one place keeps the strings consistent with what a real API server would return.
"""

import random
import uuid
from datetime import datetime

from kubeopera.models.quantity import parse_quantity

MIB = 1024**2
_ALNUM = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated name suffixes


class Rand(random.Random):
    """random.Random with the identifiers Kubernetes would generate."""

    def uid(self) -> str:
        return str(uuid.UUID(int=self.getrandbits(128), version=4))

    def suffix(self, length: int) -> str:
        return "".join(self.choices(_ALNUM, k=length))

    def ip(self) -> str:
        return f"10.{self.randrange(256)}.{self.randrange(256)}.{self.randrange(1, 255)}"


def cpu_text(cores: float) -> str:
    milli = round(cores * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def memory_text(size: float) -> str:
    count = int(size)
    for suffix, power in (("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if count % (1 << power) == 0:
            return f"{count >> power}{suffix}"
    return str(count)


def si(text: str | None) -> float:
    """A quantity string as a number; no quantity counts as zero."""
    return parse_quantity(text) if text is not None else 0.0


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
