"""Text within a receiver's limits."""


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, an ellipsis marking a cut.

    >>> cut("abcdef", 4)
    'abc…'
    >>> cut("abc", 4)
    'abc'
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"
