"""The version of charrnn, kept apart so that any module can name it (checkpoints record it)."""

__version__ = "0.1.0"
