"""Regular expressions in settings files, matched in full (``payments-.*``): checked when
the file is read, so a bad one is an error naming its field, not a failure later."""

import re
from typing import Annotated

from pydantic import AfterValidator, Field


def compiled(values: list[str]) -> list[str]:
    """``values`` if each is a regular expression; raises ``ValueError`` naming the first
    that is not."""
    for value in values:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"{value!r} is not a regular expression: {error}") from None
    return values


Patterns = Annotated[list[str], AfterValidator(compiled), Field(default_factory=list)]
"""A list of regular expressions (empty: anything matches)."""


def any_full(patterns: list[str], value: str) -> bool:
    """Whether ``value`` matches one of ``patterns`` in full, or there is none.

    >>> any_full(["shop|cart"], "cart"), any_full(["shop"], "shopping"), any_full([], "x")
    (True, False, True)
    """
    return not patterns or any(re.fullmatch(p, value) for p in patterns)
