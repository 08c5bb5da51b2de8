"""Kubernetes resource quantities ('100m', '1.5Gi', '129e6') as plain SI numbers.

Quantities are parsed once, in the collector, where they enter the pipeline; every message
and stage downstream carries SI floats (cores, bytes) and never sees a suffix. The grammar is
that of k8s.io/apimachinery/pkg/api/resource.Quantity, and the arithmetic is done in
`Decimal`, so '100m' is exactly 0.1 before the single rounding to float.
"""

import math
import re
from decimal import Decimal, DecimalException, localcontext

__all__ = ["QuantityError", "parse_quantity"]

_ACCEPTED = "expected a number with an optional suffix (m, k, M, G, Ki, Mi, Gi, ... or e<exp>)"

# <signedNumber><suffix>; the exponent form is tried last, so '1E' is exa and '1E3' is 1000.
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE](?P<exponent>[+-]?[0-9]+))?"
)
_DECIMAL_EXPONENTS = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_MULTIPLIERS = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
}


class QuantityError(ValueError):
    """A value that is not a Kubernetes quantity (or not a finite number)."""


def parse_quantity(value: str | int | float) -> float:
    """Convert a Kubernetes quantity to SI units; ints and floats are taken as already SI.

    >>> parse_quantity("100m"), parse_quantity("1.5Gi"), parse_quantity("129e6"), parse_quantity(2)
    (0.1, 1610612736.0, 129000000.0, 2.0)
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(f"invalid Kubernetes quantity {value!r}: {_ACCEPTED}")
    try:
        result = float(_parse_exact(value) if isinstance(value, str) else value)
    except OverflowError:  # an int beyond the float range
        result = math.inf
    if not math.isfinite(result):  # NaN, inf, or a quantity like '1e999' that overflows float
        raise QuantityError(f"invalid Kubernetes quantity {value!r}: not a finite number")
    return result or 0.0  # '-0' parses to 0.0, not -0.0


def _parse_exact(text: str) -> Decimal:
    """The exact decimal value of a quantity string, or QuantityError."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise QuantityError(f"invalid Kubernetes quantity {text!r}: {_ACCEPTED}")
    number, suffix = match["number"], match["suffix"] or ""
    try:
        if suffix in _BINARY_MULTIPLIERS:
            with localcontext() as ctx:
                ctx.prec = len(number) + 20  # 1024**6 has 19 digits: the product is exact
                return Decimal(number) * _BINARY_MULTIPLIERS[suffix]
        exponent = match["exponent"] or str(_DECIMAL_EXPONENTS.get(suffix, 0))
        return Decimal(f"{number}E{exponent}")  # built from a string, so no rounding
    except DecimalException as exc:  # an exponent too large even for Decimal
        raise QuantityError(f"invalid Kubernetes quantity {text!r}: not a finite number") from exc
