"""The one exception type for mistakes a user can fix (bad file, flag, key or checkpoint)."""


class CharRNNError(ValueError):
    """A user-facing error: its message is one sentence that names the input and the fix."""
