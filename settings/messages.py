"""Errors as the one line a user or a record is shown."""


def first_line(error: Exception) -> str:
    """The first line of ``error``'s message, or its type's name when it has none.

    >>> first_line(ValueError("bad value\\nmore detail")), first_line(KeyError())
    ('bad value', 'KeyError')
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
