"""What one request may ask of the server and how many it takes at once (each a flag of `charrnn serve`), and the
refusal a request gets: its status and one sentence."""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_body: int = 64 * 1024  # bytes of a request body
    max_length: int = 5000  # characters a sample may draw
    max_inputs: int = 256  # texts, inputs or completion choices in one request
    max_chars: int = 20_000  # characters of a prime, a text or an input
    max_beam: int = 16  # beam width (and n_best)
    workers: int = 64  # requests computed at once (a sampling request is one, whatever its number of choices)
    queue: int = 64  # requests waiting for a worker beyond those


class RequestError(Exception):
    """A request the server refuses: its HTTP status, one sentence saying why, and the key it is about."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = status, message, param, code, headers or {}


def flags_to_keys(message: str) -> str:
    """A model's sentence about a command-line flag (--top-k) in the request's terms (`top_k`)."""
    message = message.replace("pass --unknown skip", 'send "unknown": "skip"')
    return re.sub(r"--([a-z][a-z-]*)", lambda m: f"`{m.group(1).replace('-', '_')}`", message).replace(
        "`len`", "`length`"
    )
