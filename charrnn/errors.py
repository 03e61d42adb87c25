"""The one exception type for mistakes a user can fix (bad file, flag, key or checkpoint)."""


class CharRNNError(ValueError):
    """A user-facing error: its message is one sentence that names the input and the fix.

    >>> try:
    ...     charrnn.train("missing.txt")
    ... except charrnn.CharRNNError as e:
    ...     print(e)
    corpus file missing.txt does not exist; check the path.
    """
